// Registry state from live registries: caches first, then one shared request per question, never past a deadline.
import type { ManifestResult } from '../registry/index.js';
import { type CacheTtls, PresenceCache, TagCache } from './caches.js';
import type { ClientPool } from './clients.js';
import { untilAborted } from './deadline.js';
import type { HealthTracker } from './health.js';
import { SingleFlight } from './single-flight.js';
import {
  type Health,
  locationKey,
  type Presence,
  type RegistryState,
  type RepositoryLocation,
  type TagAnswer,
} from './state.js';

export interface LiveStateOptions {
  readonly ttls: CacheTtls;
  /**
   * Ceiling of one registry request. It runs on its own clock, not the admission's: an answer arriving after one
   * admission's deadline still fills the cache for the next.
   */
  readonly requestTimeoutMs: number;
  readonly now?: () => number;
  readonly onCache?: (cache: 'tag' | 'presence', hit: boolean) => void;
  /** Caches to keep using, from the state this one replaces: what is known of registries outlives a reload. */
  readonly caches?: { readonly tags: TagCache; readonly presence: PresenceCache };
}

const isDown = (health: Health) => health === 'unhealthy' || health === 'rate-limited';

export class LiveState implements RegistryState {
  readonly tags: TagCache;
  readonly presence: PresenceCache;
  readonly #requests = new SingleFlight<ManifestResult>();

  constructor(
    private readonly clients: ClientPool,
    private readonly tracker: HealthTracker,
    private readonly options: LiveStateOptions,
  ) {
    this.tags = options.caches?.tags ?? new TagCache(options.ttls, options.now);
    this.presence = options.caches?.presence ?? new PresenceCache(options.ttls, options.now);
  }

  health(registry: string): Health {
    return this.tracker.health(registry);
  }

  async resolveTag(location: RepositoryLocation, tag: string, signal: AbortSignal): Promise<TagAnswer> {
    const fresh = this.tags.fresh(location, tag);
    this.options.onCache?.('tag', fresh !== undefined);
    if (fresh === null) return { kind: 'absent' };
    if (fresh !== undefined) return { kind: 'digest', digest: fresh, from: 'cache' };

    const fallback = (cause: 'deadline' | 'unhealthy' | 'error'): TagAnswer => {
      const digest = this.tags.lastKnown(location, tag);
      return digest ? { kind: 'digest', digest, from: 'last-known' } : { kind: 'unknown', cause };
    };
    if (isDown(this.health(location.registry))) return fallback('unhealthy');
    // Stale-while-revalidate: an answer just past its TTL routes this pod while one refresh runs for the next,
    // so a tag refresh never holds up the admissions in flight (at 50 concurrent reviews it set their p99).
    const recent = this.tags.recent(location, tag);
    if (recent !== undefined) {
      this.#head(location, tag).catch(() => {});
      return { kind: 'digest', digest: recent, from: 'cache' };
    }
    const result = await untilAborted(this.#head(location, tag), signal, null);
    if (result === null) return fallback('deadline');
    if (result.kind === 'found') return { kind: 'digest', digest: result.digest, from: 'registry' };
    if (result.kind === 'not-found') return { kind: 'absent' };
    return fallback('error');
  }

  async hasManifest(location: RepositoryLocation, digest: string, signal: AbortSignal): Promise<Presence> {
    const known = this.knownPresence(location, digest);
    this.options.onCache?.('presence', known !== 'unknown');
    if (known !== 'unknown') return known;
    if (isDown(this.health(location.registry))) return 'unknown';
    const result = await untilAborted(this.#head(location, digest), signal, null);
    if (result?.kind === 'found') return 'present';
    if (result?.kind === 'not-found') return 'absent';
    // A request that ran out of time is as unanswered as one the deadline cut short.
    return result === null || result.availability === 'timeout' ? 'unknown' : 'error';
  }

  knownPresence(location: RepositoryLocation, digest: string): Presence {
    return this.presence.get(location, digest);
  }

  /** One HEAD per (location, reference) at a time; its answer goes into the caches and the registry's health. */
  #head(location: RepositoryLocation, reference: string): Promise<ManifestResult> {
    return this.#requests.run(`${locationKey(location)}|${reference}`, async () => {
      const made = await this.clients.get(location.registry);
      if (!made.ok) {
        this.tracker.failed(location.registry, made.error);
        return { kind: 'error', availability: 'unreachable', message: made.error };
      }
      const signal = AbortSignal.timeout(this.options.requestTimeoutMs);
      const result = await made.client.headManifest(location.repository, reference, { signal });
      this.#learn(location, reference, result);
      return result;
    });
  }

  #learn(location: RepositoryLocation, reference: string, result: ManifestResult): void {
    const byDigest = reference.includes(':');
    const registry = location.registry;
    switch (result.kind) {
      case 'found':
        this.tracker.succeeded(registry);
        this.presence.record(location, result.digest, true);
        if (!byDigest) this.tags.record(location, reference, result.digest);
        return;
      case 'not-found':
        this.tracker.succeeded(registry);
        if (byDigest) this.presence.record(location, reference, false);
        else this.tags.record(location, reference, null);
        return;
      case 'error':
        // Passive signals: what a lookup learns about a registry counts like a probe. A timeout does not: it may be
        // the admission's tight deadline rather than the registry, and the prober measures that with its own.
        if (result.availability === 'rate-limited') this.tracker.rateLimited(registry, result.retryAfterMs);
        else if (result.availability !== 'timeout' && result.availability !== 'not-found') {
          this.tracker.failed(registry, result.message);
        }
    }
  }
}
