// Distinct, well-formed digests for tests that need content identities but no content.
import { createHash } from 'node:crypto';

export const digestOf = (seed: string): string => `sha256:${createHash('sha256').update(seed).digest('hex')}`;
