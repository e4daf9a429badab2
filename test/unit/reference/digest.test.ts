// parseDigest against go-digest's tables: the same digests accepted, the same error for each refused one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  digestEncodedLength,
  isAlgorithmName,
  isOciDigest,
  parseDigest,
} from '../../../src/reference/index.js';
import { CODE_OF_GO_ERROR, digest, show } from './corpora.js';

/** The algorithms regroute verifies: those OCI registers and go-digest registers by default. */
const SUPPORTED = ['sha256', 'sha512'];

// Source: opencontainers/go-digest digest_test.go @ 137fd2bb (test/fixtures/reference/README.md).
describe('parseDigest (go-digest TestParseDigest)', () => {
  for (const c of digest.cases) {
    // The Go test registers sha384 before it runs; regroute, like go-digest by default, does not, so such a
    // case is expected to come back unsupported: grammar-valid, but not verifiable.
    const unregistered = (c.requiresRegistered ?? []).filter((algorithm) => !SUPPORTED.includes(algorithm));
    if (c.valid && unregistered.length === 0) {
      test(`accepts ${show(c.input)}`, () => {
        assert.deepEqual(parseDigest(c.input), { ok: true, algorithm: c.algorithm, encoded: c.encoded });
      });
      continue;
    }
    const code = unregistered.length > 0 ? 'digest-unsupported' : c.error && CODE_OF_GO_ERROR[c.error];
    const why = unregistered.length > 0 ? `, ${unregistered.join(', ')} not being registered here` : '';
    test(`refuses ${show(c.input)} as ${code}${why}`, () => {
      const parsed = parseDigest(c.input);
      assert.equal(parsed.ok, false);
      if (parsed.ok) return;
      assert.equal(parsed.error.code, code);
      assert.ok(parsed.error.message.includes(JSON.stringify(c.input)), parsed.error.message);
      if (c.error) assert.ok(parsed.error.message.startsWith(digest.errorMessages[c.error] ?? '?'));
    });
    if (c.grammarValid || unregistered.length > 0) {
      test(`reads ${show(c.input)} as grammar-valid all the same`, () => {
        assert.equal(isOciDigest(c.input), true);
        const colon = c.input.indexOf(':');
        if (c.algorithm !== undefined) assert.equal(c.input.slice(0, colon), c.algorithm);
        if (c.encoded !== undefined) assert.equal(c.input.slice(colon + 1), c.encoded);
      });
    }
  }
});

describe('algorithm names (go-digest Test{Bad,Good}AlgorithmNameRegistration)', () => {
  for (const { name, valid } of digest.algorithmNameGrammar) {
    test(`${valid ? 'accepts' : 'refuses'} the algorithm name ${show(name)}`, () => {
      assert.equal(isAlgorithmName(name), valid);
    });
  }
});

describe('encoded lengths (go-digest algorithm.go)', () => {
  for (const [algorithm, length] of Object.entries(digest.encodedLength)) {
    const supported = SUPPORTED.includes(algorithm);
    const title = supported
      ? `knows ${algorithm} digests have ${length} hex digits`
      : `does not support ${algorithm}`;
    test(title, () => {
      assert.equal(digestEncodedLength(algorithm), supported ? length : undefined);
    });
  }
});

describe('known digests (go-digest blake3_test.go)', () => {
  // The vector asserts a BLAKE3 hash of some bytes; regroute compares digests and never computes one, so
  // only the digest string is used: a well-formed digest of an algorithm it cannot verify.
  for (const known of digest.knownDigests) {
    test(`reports ${known.algorithm} digests as unsupported, not malformed`, () => {
      const parsed = parseDigest(known.digest);
      assert.equal(parsed.ok ? 'accepted' : parsed.error.code, 'digest-unsupported');
      assert.equal(isOciDigest(known.digest), true);
    });
  }
});

describe('parseDigest beyond the tables', () => {
  test("measures in UTF-8 bytes as Go does: 32 two-byte characters have sha256's length", () => {
    const parsed = parseDigest(`sha256:${'é'.repeat(32)}`);
    assert.equal(parsed.ok ? 'accepted' : parsed.error.code, 'digest-invalid-format');
    const longer = parseDigest(`sha256:${'é'.repeat(64)}`);
    assert.equal(longer.ok ? 'accepted' : longer.error.code, 'digest-invalid-length');
  });

  test('does not take a name inherited from Object for an algorithm', () => {
    const parsed = parseDigest(`constructor:${'a'.repeat(64)}`);
    assert.equal(parsed.ok ? 'accepted' : parsed.error.code, 'digest-unsupported');
  });
});
