// Specification of the WWW-Authenticate parser, driven by the public vectors in test/fixtures/registry.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { type Challenge, parseAuthParams, parseWwwAuthenticate } from '../../../src/registry/challenge.js';

interface ExpectedChallenge {
  scheme: string;
  params: Record<string, string> | null;
  token68?: string;
  paramsPartial?: boolean;
  paramsAsserted?: boolean;
}
interface RegistryCase {
  header: string;
  expected: ExpectedChallenge[];
  profile: 'registry-client' | 'registry-client-oras';
  name?: string;
}
interface StrictCase {
  description: string;
  header: string;
  expected: ExpectedChallenge[] | null;
}
interface Corpus {
  cases: RegistryCase[];
  rfc7235: { cases: StrictCase[] };
  paramListOnly: { input: string; expectedParams: Record<string, string>; name: string }[];
}

const corpus = JSON.parse(
  readFileSync(new URL('../../fixtures/registry/www-authenticate.json', import.meta.url), 'utf8'),
) as Corpus;

function assertChallenge(actual: Challenge | undefined, expected: ExpectedChallenge): void {
  assert.ok(actual, `expected a ${expected.scheme} challenge`);
  assert.equal(actual.scheme, expected.scheme);
  if (expected.paramsAsserted === false) return;
  const params = expected.params ?? {};
  if (expected.paramsPartial) {
    for (const [name, value] of Object.entries(params)) assert.equal(actual.params[name], value, name);
  } else {
    assert.deepEqual(actual.params, params);
  }
  assert.equal(actual.token68, expected.token68);
}

describe('parseWwwAuthenticate', () => {
  describe('registry-client vectors (containerd, distribution, containers/image, go-containerregistry, observed)', () => {
    for (const [i, c] of corpus.cases.entries()) {
      if (c.profile !== 'registry-client') continue;
      it(`#${i} ${c.name ?? c.header}`, () => {
        for (const lenient of [false, true]) {
          const parsed = lenient
            ? parseWwwAuthenticate(c.header, { lenient })
            : parseWwwAuthenticate(c.header);
          assert.ok(parsed, `parses (lenient=${lenient})`);
          assert.equal(parsed.length, c.expected.length);
          for (const [k, expected] of c.expected.entries()) assertChallenge(parsed[k], expected);
        }
      });
    }
  });

  describe('oras-go vectors (one challenge; lenient on trailing garbage)', () => {
    // oras-go knows Basic and Bearer only and reports any other header as scheme "unknown"; it returns a single
    // challenge, so only the first one is compared. Its "params: null" is an empty parameter set.
    for (const [i, c] of corpus.cases.entries()) {
      if (c.profile !== 'registry-client-oras') continue;
      it(`#${i} ${c.name ?? c.header}`, () => {
        const parsed = parseWwwAuthenticate(c.header, { lenient: true });
        const [expected] = c.expected;
        assert.ok(expected);
        const first = parsed[0];
        if (expected.scheme === 'unknown') {
          assert.ok(first === undefined || !['basic', 'bearer'].includes(first.scheme));
          return;
        }
        // oras-go has no token68: where its parameters are asserted, a header it reads has none.
        assertChallenge(first, { ...expected, token68: undefined });
      });
    }
  });

  describe('RFC 7235 strict vectors (oauth4webapi, after Reschke)', () => {
    for (const c of corpus.rfc7235.cases) {
      it(`${c.expected === null ? 'rejects' : 'parses'}: ${c.description}`, () => {
        const parsed = parseWwwAuthenticate(c.header);
        if (c.expected === null) {
          assert.equal(parsed, null);
          return;
        }
        assert.ok(parsed);
        assert.equal(parsed.length, c.expected.length);
        for (const [k, expected] of c.expected.entries()) assertChallenge(parsed[k], expected);
        // Lenient mode changes nothing for a well-formed header.
        assert.deepEqual(parseWwwAuthenticate(c.header, { lenient: true }), parsed);
      });
    }
  });

  it('keeps, when lenient, the challenges and parameters parsed before a malformed part', () => {
    assert.deepEqual(
      parseWwwAuthenticate('Bearer realm="https://r.example/token",service="reg', { lenient: true }),
      [{ scheme: 'bearer', params: { realm: 'https://r.example/token' } }],
    );
    assert.deepEqual(parseWwwAuthenticate('Basic realm="a", ??? Bearer realm="b"', { lenient: true }), [
      { scheme: 'basic', params: { realm: 'a' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('', { lenient: true }), []);
  });

  it('stores a parameter named __proto__ as an own property, not a prototype', () => {
    const parsed = parseWwwAuthenticate('Bearer __proto__="x", realm="r"');
    assert.ok(parsed?.[0]);
    assert.equal(Object.getPrototypeOf(parsed[0].params), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(parsed[0].params, '__proto__')?.value, 'x');
    assert.equal(parsed[0].params.realm, 'r');
  });
});

describe('parseAuthParams (go-containerregistry parameter-list vectors)', () => {
  for (const c of corpus.paramListOnly) {
    it(`${c.name}: ${c.input}`, () => {
      assert.deepEqual(parseAuthParams(c.input), c.expectedParams);
    });
  }

  it('rejects an unterminated quoted string', () => {
    assert.equal(parseAuthParams('realm="x'), null);
  });
});
