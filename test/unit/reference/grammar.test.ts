// The grammar scanners against regexp_test.go's tables, and against regexp.go's regexps on generated input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  isAlgorithmName,
  isDomainAndPort,
  isIdentifier,
  isOciDigest,
  isReferenceDigest,
  isTag,
  matchName,
  matchReference,
} from '../../../src/reference/index.js';
import { propertyRuns, SEED } from '../../helpers/runs.js';
import { grammarString, nearMiss } from './arbitraries.js';
import { referenceRegexp, show } from './corpora.js';
import { oracle } from './regexp-oracle.js';

// Source: distribution/reference regexp_test.go @ 0965666a (test/fixtures/reference/README.md).
describe('domainAndPort (regexp_test.go TestDomainRegexp)', () => {
  for (const { input, match } of referenceRegexp.domainAndPort) {
    test(`${match ? 'accepts' : 'refuses'} ${show(input)} as a domain`, () => {
      assert.equal(isDomainAndPort(input), match);
    });
  }
});

describe('anchoredName (regexp_test.go TestFullNameRegexp)', () => {
  for (const { input, match, domain, path } of referenceRegexp.anchoredName) {
    test(`${match ? 'splits' : 'refuses'} the name ${show(input)}`, () => {
      const found = matchName(input);
      if (!match) return assert.equal(found, null);
      assert.notEqual(found, null);
      // One match case of the source asserts no submatches; the others give both.
      if (domain !== undefined || path !== undefined) assert.deepEqual(found, { domain, path });
    });
  }
});

describe('ReferenceRegexp (regexp_test.go TestReferenceRegexp)', () => {
  for (const { input, match, name, tag, digest } of referenceRegexp.reference) {
    test(`${match ? 'matches' : 'refuses'} the reference ${show(input)}`, () => {
      const found = matchReference(input);
      if (!match) return assert.equal(found, null);
      assert.deepEqual(found && { name: found.name, tag: found.tag, digest: found.digest }, {
        name,
        tag,
        digest,
      });
    });
  }
});

describe('anchoredIdentifierRegexp (regexp_test.go TestIdentifierRegexp)', () => {
  for (const { input, match } of referenceRegexp.identifier) {
    test(`${match ? 'accepts' : 'refuses'} ${show(input)} as an image ID`, () => {
      assert.equal(isIdentifier(input), match);
    });
  }
});

describe('the scanners agree with the regexps of regexp.go and go-digest', () => {
  const inputs = fc.oneof(grammarString, nearMiss);
  const agree = (scanner: (s: string) => unknown, regexp: RegExp) =>
    fc.assert(
      fc.property(inputs, (s) => {
        assert.equal(scanner(s), regexp.test(s), show(s));
      }),
      { seed: SEED, numRuns: propertyRuns(2000) },
    );

  test('domainAndPort', () => agree(isDomainAndPort, oracle.domainAndPort));
  test('tag', () => agree(isTag, oracle.tag));
  test('digest (distribution/reference digestPat)', () => agree(isReferenceDigest, oracle.digest));
  test('identifier', () => agree(isIdentifier, oracle.identifier));
  test('digest (go-digest DigestRegexpAnchored)', () => agree(isOciDigest, oracle.ociDigest));
  test('algorithm name (go-digest algorithmRegexp)', () => agree(isAlgorithmName, oracle.algorithmName));

  test('anchoredName, submatches included', () => {
    fc.assert(
      fc.property(inputs, (s) => {
        const m = oracle.anchoredName.exec(s);
        assert.deepEqual(matchName(s), m && { domain: m[1] ?? '', path: m[2] }, show(s));
      }),
      { seed: SEED, numRuns: propertyRuns(2000) },
    );
  });

  test('ReferenceRegexp, submatches included', () => {
    fc.assert(
      fc.property(inputs, (s) => {
        const m = oracle.reference.exec(s);
        const found = matchReference(s);
        const expected = m && { name: m[1], tag: m[2] ?? '', digest: m[3] ?? '' };
        assert.deepEqual(
          found && { name: found.name, tag: found.tag, digest: found.digest },
          expected,
          show(s),
        );
      }),
      { seed: SEED, numRuns: propertyRuns(2000) },
    );
  });
});
