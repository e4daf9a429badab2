// Content digests of manifests: the grammar regroute accepts and hashing bytes into one.
import { createHash } from 'node:crypto';

/** Algorithms a digest may name, with the length of their lower-case hex encoding. */
const ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof ALGORITHMS;

/** `algorithm:hex` for a registered algorithm with an encoding of the right length, else undefined. */
export function parseDigest(
  value: string | undefined,
): { algorithm: DigestAlgorithm; hex: string } | undefined {
  if (value === undefined) return undefined;
  const match = /^([a-z0-9]+):([a-f0-9]+)$/.exec(value.trim());
  if (!match) return undefined;
  const [, algorithm = '', hex = ''] = match;
  if (!(algorithm in ALGORITHMS)) return undefined;
  const alg = algorithm as DigestAlgorithm;
  return hex.length === ALGORITHMS[alg] ? { algorithm: alg, hex } : undefined;
}

export function isDigest(reference: string): boolean {
  return parseDigest(reference) !== undefined;
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
