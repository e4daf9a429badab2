// What regroute remembers of registries: tag → digest (with the last known digest kept) and digest presence.
import { LRUCache } from 'lru-cache';
import { locationKey, type Presence, type RepositoryLocation, type Trust } from './state.js';

export interface CacheTtls {
  readonly tagTtlMs: number;
  readonly presentTtlMs: number;
  readonly absentTtlMs: number;
  readonly maxEntries: number;
}

/**
 * `digest` is the latest answer (null: the tag does not exist); `lastDigest` the latest digest ever seen, at
 * `lastAt`.
 */
type TagEntry = {
  readonly digest: string | null;
  readonly lastDigest: string | null;
  readonly lastAt: number;
  readonly at: number;
};

/** A fresh entry, as freshEntry hands it out: its answer, and when it was recorded. */
export type FreshTag = Pick<TagEntry, 'digest' | 'at'>;

/**
 * Share of a tag's TTL after which an admission reading the entry starts one refresh in the background. A tag that
 * pods keep asking for is refreshed before it expires, so no admission waits for it, and no answer older than the
 * TTL is ever served as fresh.
 */
export const REFRESH_AHEAD = 0.75;

/**
 * Tag resolutions. An entry stays after its TTL (until the LRU evicts it): stale, it is no longer an answer,
 * but it is the last known digest to fall back on when the source is down.
 */
export class TagCache {
  readonly #entries: LRUCache<string, TagEntry>;

  constructor(
    private readonly ttls: CacheTtls,
    private readonly now: () => number = Date.now,
  ) {
    this.#entries = new LRUCache({ max: ttls.maxEntries });
  }

  static key(location: RepositoryLocation, tag: string): string {
    return `${locationKey(location)}:${tag}`;
  }

  /** A fresh answer: a digest, null for "the tag does not exist", or undefined when not known fresh. */
  fresh(location: RepositoryLocation, tag: string): string | null | undefined {
    return this.freshEntry(location, tag)?.digest;
  }

  /** True when a fresh digest answer is old enough to be refreshed ahead of its expiry. */
  refreshDue(location: RepositoryLocation, tag: string): boolean {
    const entry = this.freshEntry(location, tag);
    return entry !== undefined && this.isRefreshDue(entry);
  }

  /**
   * The tag's entry while its answer is fresh: one read of the cache serves both the answer (`digest`) and
   * isRefreshDue, which an admission asks of every image.
   */
  freshEntry(location: RepositoryLocation, tag: string): FreshTag | undefined {
    const entry = this.#entries.get(TagCache.key(location, tag));
    if (!entry) return undefined;
    const ttl = entry.digest === null ? this.ttls.absentTtlMs : this.ttls.tagTtlMs;
    return this.now() - entry.at < ttl ? entry : undefined;
  }

  /** True when a fresh digest answer is old enough to be refreshed ahead of its expiry. */
  isRefreshDue(entry: FreshTag): boolean {
    if (entry.digest === null) return false;
    const age = this.now() - entry.at;
    return age >= REFRESH_AHEAD * this.ttls.tagTtlMs && age < this.ttls.tagTtlMs;
  }

  /** The latest digest ever seen for the tag, and how long ago it was seen. */
  lastKnown(location: RepositoryLocation, tag: string): { digest: string; ageMs: number } | undefined {
    const entry = this.#entries.get(TagCache.key(location, tag));
    if (!entry?.lastDigest) return undefined;
    return { digest: entry.lastDigest, ageMs: Math.max(0, this.now() - entry.lastAt) };
  }

  record(location: RepositoryLocation, tag: string, digest: string | null): void {
    const key = TagCache.key(location, tag);
    const now = this.now();
    const before = this.#entries.get(key);
    // "The tag is gone" does not erase the last digest seen: a source losing a tag is no reason to forget it.
    const lastDigest = digest ?? before?.lastDigest ?? null;
    const lastAt = digest !== null ? now : (before?.lastAt ?? now);
    this.#entries.set(key, { digest, lastDigest, lastAt, at: now });
  }

  /**
   * A digest learned elsewhere than the source's own answer (a pod running the tag, say): kept as the tag's
   * last-known digest when none is known yet, never as a fresh answer. The source's word, when it comes, wins.
   */
  learn(location: RepositoryLocation, tag: string, digest: string): boolean {
    const key = TagCache.key(location, tag);
    if (this.#entries.get(key)?.lastDigest) return false;
    this.#entries.set(key, {
      digest: null,
      lastDigest: digest,
      lastAt: this.now(),
      at: Number.NEGATIVE_INFINITY,
    });
    return true;
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** `verified`: the bytes were hashed to the digest; `mismatch`: they were not (a registry caught lying). */
type PresenceEntry = {
  readonly present: boolean;
  readonly verified: boolean;
  readonly mismatch: boolean;
  readonly at: number;
};

export class PresenceCache {
  readonly #entries: LRUCache<string, PresenceEntry>;

  constructor(
    private readonly ttls: CacheTtls,
    private readonly now: () => number = Date.now,
  ) {
    this.#entries = new LRUCache({ max: ttls.maxEntries });
  }

  static key(location: RepositoryLocation, digest: string): string {
    return `${locationKey(location)}@${digest}`;
  }

  /**
   * What is known of the manifest at `location`. With `trust: 'bytes'`, a presence only claimed (a HEAD) is not
   * enough and reads as unknown, so the caller verifies it.
   */
  get(location: RepositoryLocation, digest: string, trust: Trust = 'claim'): Presence {
    const key = PresenceCache.key(location, digest);
    const entry = this.#entries.get(key);
    if (!entry) return 'unknown';
    const ttl = entry.present || entry.mismatch ? this.ttls.presentTtlMs : this.ttls.absentTtlMs;
    if (this.now() - entry.at >= ttl) {
      this.#entries.delete(key);
      return 'unknown';
    }
    if (entry.mismatch) return 'mismatch';
    if (!entry.present) return 'absent';
    return entry.verified || trust === 'claim' ? 'present' : 'unknown';
  }

  record(location: RepositoryLocation, digest: string, present: boolean, verified = false): void {
    const key = PresenceCache.key(location, digest);
    const before = this.#entries.get(key);
    // A HEAD confirming what a GET verified earlier does not make it less trusted.
    const keepVerified = present && !verified && before?.present === true && before.verified;
    this.#entries.set(key, { present, verified: verified || keepVerified, mismatch: false, at: this.now() });
  }

  /** The registry served other bytes for this digest: remembered as long as a presence, and never trusted. */
  recordMismatch(location: RepositoryLocation, digest: string): void {
    this.#entries.set(PresenceCache.key(location, digest), {
      present: false,
      verified: true,
      mismatch: true,
      at: this.now(),
    });
  }

  get size(): number {
    return this.#entries.size;
  }
}
