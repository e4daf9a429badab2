// What regroute remembers of registries: tag → digest (with the last known digest kept) and digest presence.
import { LRUCache } from 'lru-cache';
import { locationKey, type RepositoryLocation } from './state.js';

export interface CacheTtls {
  readonly tagTtlMs: number;
  readonly presentTtlMs: number;
  readonly absentTtlMs: number;
  readonly maxEntries: number;
}

/** `digest` is the latest answer (null: the tag does not exist); `lastDigest` the latest digest ever seen. */
type TagEntry = { readonly digest: string | null; readonly lastDigest: string | null; readonly at: number };

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
    const entry = this.#entries.get(TagCache.key(location, tag));
    if (!entry) return undefined;
    const ttl = entry.digest === null ? this.ttls.absentTtlMs : this.ttls.tagTtlMs;
    return this.now() - entry.at < ttl ? entry.digest : undefined;
  }

  /**
   * A digest answer that expired less than one TTL ago: good enough to route with while a refresh is on its way,
   * since the source vouched for it moments ago.
   */
  recent(location: RepositoryLocation, tag: string): string | undefined {
    const entry = this.#entries.get(TagCache.key(location, tag));
    if (!entry || entry.digest === null) return undefined;
    return this.now() - entry.at < 2 * this.ttls.tagTtlMs ? entry.digest : undefined;
  }

  lastKnown(location: RepositoryLocation, tag: string): string | undefined {
    return this.#entries.get(TagCache.key(location, tag))?.lastDigest ?? undefined;
  }

  record(location: RepositoryLocation, tag: string, digest: string | null): void {
    const key = TagCache.key(location, tag);
    // "The tag is gone" does not erase the last digest seen: a source losing a tag is no reason to forget it.
    const lastDigest = digest ?? this.#entries.get(key)?.lastDigest ?? null;
    this.#entries.set(key, { digest, lastDigest, at: this.now() });
  }

  get size(): number {
    return this.#entries.size;
  }
}

type PresenceEntry = { readonly present: boolean; readonly at: number };

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

  get(location: RepositoryLocation, digest: string): 'present' | 'absent' | 'unknown' {
    const key = PresenceCache.key(location, digest);
    const entry = this.#entries.get(key);
    if (!entry) return 'unknown';
    const ttl = entry.present ? this.ttls.presentTtlMs : this.ttls.absentTtlMs;
    if (this.now() - entry.at >= ttl) {
      this.#entries.delete(key);
      return 'unknown';
    }
    return entry.present ? 'present' : 'absent';
  }

  record(location: RepositoryLocation, digest: string, present: boolean): void {
    this.#entries.set(PresenceCache.key(location, digest), { present, at: this.now() });
  }

  get size(): number {
    return this.#entries.size;
  }
}
