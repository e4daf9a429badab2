// fast-check generators built from the reference grammar's productions: valid references and near misses.
import fc from 'fast-check';
import { formatReference, type Reference } from '../../../src/reference/index.js';

/** `domainNameComponent`, either case. */
const label = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?$/);
/** Any digits: the grammar does not bound ports, nor forbid leading zeros. */
const port = fc.stringMatching(/^:[0-9]{1,6}$/);
const withOptionalPort = (host: fc.Arbitrary<string>) =>
  fc.tuple(host, fc.option(port, { nil: '' })).map(([h, p]) => `${h}${p}`);

/**
 * Only first components that normalization reads as a registry: a dot, a port, localhost, an upper-case
 * letter, or an IPv6 literal with its ":". A bare lower-case label would be a Docker Hub namespace instead.
 */
export const registry: fc.Arbitrary<string> = fc
  .oneof(
    withOptionalPort(fc.array(label, { minLength: 2, maxLength: 4 }).map((labels) => labels.join('.'))),
    fc.tuple(label, port).map(([h, p]) => `${h}${p}`),
    withOptionalPort(fc.constant('localhost')),
    withOptionalPort(fc.stringMatching(/^[A-Z][a-zA-Z0-9]{0,5}$/)),
    withOptionalPort(fc.stringMatching(/^\[[a-fA-F0-9]{0,4}:[a-fA-F0-9:]{0,12}\]$/)),
    fc.constant('docker.io'),
  )
  .filter((host) => host !== 'index.docker.io');

/** `pathComponent`; runs of at most 5 characters can never spell a 64-hex image ID. */
export const pathComponent = fc.stringMatching(/^[a-z0-9]{1,5}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,5}){0,3}$/);

const repository = fc
  .array(pathComponent, { minLength: 1, maxLength: 4 })
  .map((components) => components.join('/'));
const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/);
const digest = fc.oneof(
  fc.stringMatching(/^[a-f0-9]{64}$/).map((hex) => `sha256:${hex}`),
  fc.stringMatching(/^[a-f0-9]{128}$/).map((hex) => `sha512:${hex}`),
);

/** A normalized Reference, as parseReference would return it. */
export const reference: fc.Arbitrary<Reference> = fc
  .record({
    registry,
    repository,
    tag: fc.option(tag, { nil: null }),
    digest: fc.option(digest, { nil: null }),
  })
  .map((r) => ({
    ...r,
    repository:
      r.registry === 'docker.io' && !r.repository.includes('/') ? `library/${r.repository}` : r.repository,
  }));

/** The characters the grammar cares about, a few it refuses, and the two Go lowers to ASCII (K, İ). */
const GRAMMAR_CHARACTERS = [...'aAzZ09fF-_.:/@[]%+=~ ', '\u212A', '\u0130'];

/** Short strings over the grammar's own characters: they reach every branch, valid or not, quickly. */
export const grammarString = fc.string({ unit: fc.constantFrom(...GRAMMAR_CHARACTERS), maxLength: 40 });

/** Valid strings of every production the scanners implement, standalone digests and image IDs included. */
const validStrings = fc.oneof(
  reference.map(formatReference),
  registry,
  tag,
  digest,
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,3}(?:[-_+.][A-Za-z][A-Za-z0-9]{0,3}){0,2}:[0-9A-Fa-f]{32,40}$/),
  fc.stringMatching(/^[a-z0-9]{1,4}(?:[.+_-][a-z0-9]{1,4}){0,2}:[a-zA-Z0-9=_-]{1,20}$/),
  fc.stringMatching(/^[a-f0-9]{64}$/),
);

/** A valid string with one character inserted, deleted or replaced, or none: near misses. */
export const nearMiss: fc.Arbitrary<string> = fc
  .tuple(validStrings, fc.nat(), fc.constantFrom(...GRAMMAR_CHARACTERS), fc.nat(3))
  .map(([valid, at, character, edit]) => {
    const i = at % (valid.length + 1);
    if (edit === 0) return `${valid.slice(0, i)}${character}${valid.slice(i)}`;
    if (edit === 1) return `${valid.slice(0, i)}${valid.slice(i + 1)}`;
    if (edit === 2) return `${valid.slice(0, i)}${character}${valid.slice(i + 1)}`;
    return valid;
  });
