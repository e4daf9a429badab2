// Content digests ("sha256:<hex>"): go-digest's Parse and Validate, for the algorithms OCI registers.
import { type ReferenceErrorCode, type Refused, refused } from './errors.js';
import { isLowerHexString, isOciDigest } from './grammar.js';

/**
 * Hex length of each supported algorithm: the two the OCI image spec registers, which go-digest also
 * registers by default. Go programs must opt in to sha384 and blake3, and registries do not emit them.
 */
const ENCODED_LENGTHS: ReadonlyMap<string, number> = new Map([
  ['sha256', 64],
  ['sha512', 128],
]);

export type ParsedDigest = { ok: true; algorithm: string; encoded: string } | Refused;

export function parseDigest(input: string): ParsedDigest {
  const problem = digestProblem(input);
  if (problem !== null) return refused(problem, input);
  const colon = input.indexOf(':');
  return { ok: true, algorithm: input.slice(0, colon), encoded: input.slice(colon + 1) };
}

/** The hex length a supported algorithm's digest has, or undefined for an algorithm we cannot verify. */
export function digestEncodedLength(algorithm: string): number | undefined {
  return ENCODED_LENGTHS.get(algorithm);
}

/** go-digest `Digest.Validate`, checks in its order: the order decides which code a bad digest gets. */
export function digestProblem(input: string): ReferenceErrorCode | null {
  const colon = input.indexOf(':');
  if (colon < 0 || colon === input.length - 1) return 'digest-invalid-format';
  const length = ENCODED_LENGTHS.get(input.slice(0, colon));
  if (length === undefined) return isOciDigest(input) ? 'digest-unsupported' : 'digest-invalid-format';
  const encoded = input.slice(colon + 1);
  if (utf8Length(encoded) !== length) return 'digest-invalid-length';
  return isLowerHexString(encoded) ? null : 'digest-invalid-format';
}

/** Go measures strings in UTF-8 bytes, and that decides between a length and a format error. */
function utf8Length(s: string): number {
  let bytes = 0;
  for (const character of s) {
    const point = character.codePointAt(0) ?? 0;
    bytes += point < 0x80 ? 1 : point < 0x800 ? 2 : point < 0x10000 ? 3 : 4;
  }
  return bytes;
}
