// Properties over generated input: every valid reference survives formatting both ways, and no input throws.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  familiarString,
  formatReference,
  parseAnyReference,
  parseCanonical,
  parseDigest,
  parseDockerRef,
  parseLiteral,
  parseReference,
} from '../../../src/reference/index.js';
import { propertyRuns, SEED } from '../../helpers/runs.js';
import { grammarString, nearMiss, reference } from './arbitraries.js';

describe('round trips of generated references', () => {
  test('parseReference(formatReference(r)) gives r back', () => {
    fc.assert(
      fc.property(reference, (r) => {
        assert.deepEqual(parseReference(formatReference(r)), { ok: true, reference: r });
      }),
      { seed: SEED, numRuns: propertyRuns(1000) },
    );
  });

  test('parseReference(familiarString(r)) gives r back', () => {
    fc.assert(
      fc.property(reference, (r) => {
        assert.deepEqual(parseReference(familiarString(r)), { ok: true, reference: r });
      }),
      { seed: SEED, numRuns: propertyRuns(1000) },
    );
  });

  test('the full form is canonical, and parseLiteral finds the same registry and repository in it', () => {
    fc.assert(
      fc.property(reference, (r) => {
        assert.deepEqual(parseCanonical(formatReference(r)), { ok: true, reference: r });
        assert.deepEqual(parseLiteral(formatReference(r)), {
          ok: true,
          reference: { domain: r.registry, path: r.repository, tag: r.tag, digest: r.digest },
        });
      }),
      { seed: SEED, numRuns: propertyRuns(500) },
    );
  });

  test('whatever parseReference accepts, it accepts again in both written forms', () => {
    fc.assert(
      fc.property(fc.oneof(grammarString, nearMiss), (input) => {
        const parsed = parseReference(input);
        if (!parsed.ok) return;
        assert.deepEqual(parseReference(formatReference(parsed.reference)), parsed);
        assert.deepEqual(parseReference(familiarString(parsed.reference)), parsed);
      }),
      { seed: SEED, numRuns: propertyRuns(3000) },
    );
  });
});

describe('no input makes a parser throw', () => {
  const inputs: [string, fc.Arbitrary<string>][] = [
    ['any string', fc.string({ maxLength: 200 })],
    ['any code points, astral ones included', fc.string({ unit: 'binary', maxLength: 200 })],
    ['any grapheme clusters', fc.string({ unit: 'grapheme', maxLength: 100 })],
    [
      'lone surrogates and other UTF-16 units',
      fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)) }),
    ],
    ['strings of the grammar characters', grammarString],
    ['near misses of valid references', nearMiss],
  ];
  const parsers: [string, (input: string) => { ok: boolean }][] = [
    ['parseReference', parseReference],
    ['parseLiteral', parseLiteral],
    ['parseAnyReference', parseAnyReference],
    ['parseDockerRef', parseDockerRef],
    ['parseCanonical', parseCanonical],
    ['parseDigest', parseDigest],
  ];
  for (const [inputName, arbitrary] of inputs) {
    test(`every parser answers a value for ${inputName}`, () => {
      fc.assert(
        fc.property(arbitrary, (input) => {
          for (const [parserName, parse] of parsers) {
            const parsed = parse(input) as
              | { ok: true }
              | { ok: false; error: { code: unknown; message: unknown } };
            if (parsed.ok) continue;
            assert.equal(typeof parsed.error.code, 'string', parserName);
            assert.equal(typeof parsed.error.message, 'string', parserName);
          }
        }),
        { seed: SEED, numRuns: propertyRuns(500) },
      );
    });
  }
});
