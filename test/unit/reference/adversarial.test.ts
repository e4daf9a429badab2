// Long crafted inputs of the shapes that drive backtracking regexps into super-linear time: each must still
// get its correct answer. No timing is asserted; a super-linear parser shows up as a test that never ends.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { matchReference, parseLiteral, parseReference } from '../../../src/reference/index.js';
import { outcomeOf } from './corpora.js';

const N = 10_000;
const HEX = 'f'.repeat(64);

/** [title, input, parseReference's outcome, parseLiteral's outcome] */
const CASES: [string, string, string, string][] = [
  ['a.a.a.… ending in a dot', 'a.'.repeat(N / 2), 'reference-invalid-format', 'reference-invalid-format'],
  ['a.a.a.…a, one path component far too long', `${'a.'.repeat(N / 2)}a`, 'name-too-long', 'name-too-long'],
  ['a-a-…- ending in a dash', 'a-'.repeat(N / 2), 'reference-invalid-format', 'reference-invalid-format'],
  [
    'a__a__…__ ending in underscores',
    'a__'.repeat(N / 3),
    'reference-invalid-format',
    'reference-invalid-format',
  ],
  [
    'a___a: three underscores after a long run',
    `${'a__'.repeat(N / 3)}_a`,
    'reference-invalid-format',
    'reference-invalid-format',
  ],
  ['a long run of dashes between two letters', `a${'-'.repeat(N)}a`, 'name-too-long', 'name-too-long'],
  [
    'a long run of dashes ending the name',
    `a${'-'.repeat(N)}`,
    'reference-invalid-format',
    'reference-invalid-format',
  ],
  ['a/a/…/a ending in a slash', 'a/'.repeat(N / 2), 'reference-invalid-format', 'reference-invalid-format'],
  [
    'a//a: an empty component after many',
    `${'a/'.repeat(N / 2)}/a`,
    'reference-invalid-format',
    'reference-invalid-format',
  ],
  ['a long dotted domain before a short path', `${'a.'.repeat(N / 2)}a/app`, 'accepted', 'accepted'],
  [
    'a long dotted domain with a bad last label',
    `${'a.'.repeat(N / 2)}-/app`,
    'reference-invalid-format',
    'reference-invalid-format',
  ],
  ['a long domain label of dashes', `a${'-'.repeat(N)}a.io/app`, 'accepted', 'accepted'],
  [
    'a long domain label ending in a dash',
    `a${'-'.repeat(N)}.io/app`,
    'reference-invalid-format',
    'reference-invalid-format',
  ],
  ['colons after a host', `host${':'.repeat(N)}/app`, 'reference-invalid-format', 'reference-invalid-format'],
  ['a long port', `host:${'5'.repeat(N)}/app`, 'accepted', 'accepted'],
  [
    'an unclosed IPv6 bracket',
    `[${'a:'.repeat(N / 2)}/app`,
    'reference-invalid-format',
    'reference-invalid-format',
  ],
  ['a long IPv6 literal', `[${'a:'.repeat(N / 2)}]/app`, 'accepted', 'accepted'],
  [
    'a tag of 10 000 characters',
    `app:${'t'.repeat(N)}`,
    'reference-invalid-format',
    'reference-invalid-format',
  ],
  ['many tag separators', `app${':a'.repeat(N / 2)}`, 'reference-invalid-format', 'reference-invalid-format'],
  [
    'many @ signs',
    `app${`@sha256:${HEX}`.repeat(100)}`,
    'reference-invalid-format',
    'reference-invalid-format',
  ],
  [
    'a digest of 10 000 hex digits',
    `app@sha256:${'f'.repeat(N)}`,
    'digest-invalid-length',
    'digest-invalid-length',
  ],
  [
    'a long digest algorithm',
    `app@${'a+'.repeat(N / 2)}a:${HEX}`,
    'digest-unsupported',
    'digest-unsupported',
  ],
  [
    'a long digest algorithm ending in a separator',
    `app@${'a+'.repeat(N / 2)}:${HEX}`,
    'reference-invalid-format',
    'reference-invalid-format',
  ],
  ['upper case everywhere', 'A'.repeat(N), 'name-contains-uppercase', 'name-contains-uppercase'],
  [
    'upper case with a trailing bad character',
    `${'A'.repeat(N)}!`,
    'name-contains-uppercase',
    'reference-invalid-format',
  ],
  ['10 000 slashes', '/'.repeat(N), 'reference-invalid-format', 'reference-invalid-format'],
];

describe('long adversarial inputs get correct answers', () => {
  for (const [title, input, normalized, literal] of CASES) {
    test(`${title} (${input.length} characters)`, () => {
      assert.equal(outcomeOf(parseReference(input)), normalized);
      assert.equal(outcomeOf(parseLiteral(input)), literal);
      // Parse refuses these three on the grammar itself; the others pass it and fail a later check.
      const grammatical = !['reference-invalid-format', 'name-contains-uppercase', 'name-empty'].includes(
        literal,
      );
      assert.equal(matchReference(input) !== null, grammatical);
    });
  }
});
