// Registry state from live registries: caches first, then one shared request per question, never past a deadline.
import { LRUCache } from 'lru-cache';
import type { ManifestResult } from '../registry/index.js';
import { type CacheTtls, PresenceCache, TagCache } from './caches.js';
import type { ClientPool } from './clients.js';
import type { ContentSamples } from './content-samples.js';
import { untilAborted } from './deadline.js';
import type { HealthTracker } from './health.js';
import { SingleFlight } from './single-flight.js';
import {
  type Health,
  isFailing,
  locationKey,
  type Presence,
  type RegistryState,
  type RepositoryLocation,
  type TagAnswer,
  type Trust,
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
  /** A registry served bytes that do not hash to the digest it claimed: for metrics and the log. */
  readonly onMismatch?: (location: RepositoryLocation, reference: string, message: string) => void;
  /** Registries configured `trusted`: never asked, assumed healthy and holding what the source named. */
  readonly trusted?: ReadonlySet<string>;
  /** Where manifests found are offered to the prober's deep checks. */
  readonly samples?: ContentSamples;
  /** Caches to keep using, from the state this one replaces: what is known of registries outlives a reload. */
  readonly caches?: { readonly tags: TagCache; readonly presence: PresenceCache };
}

/** The clients LiveState asks: a ClientPool, or scripted clients in tests. */
export type Clients = Pick<ClientPool, 'get'>;

type Method = 'HEAD' | 'GET';

const TRUSTED_TAG: TagAnswer = { kind: 'unknown', cause: 'error' };
const ABSENT_TAG: TagAnswer = { kind: 'absent' };

/** Which manifests an index names, by the index's digest: content-addressed, so never stale. */
const MAX_INDEXES = 4096;

export class LiveState implements RegistryState {
  readonly tags: TagCache;
  readonly presence: PresenceCache;
  readonly #children = new LRUCache<string, readonly string[]>({ max: MAX_INDEXES });
  readonly #requests = new SingleFlight<ManifestResult>();

  constructor(
    private readonly clients: Clients,
    private readonly tracker: HealthTracker,
    private readonly options: LiveStateOptions,
  ) {
    this.tags = options.caches?.tags ?? new TagCache(options.ttls, options.now);
    this.presence = options.caches?.presence ?? new PresenceCache(options.ttls, options.now);
  }

  health(registry: string): Health {
    if (this.options.trusted?.has(registry)) return 'healthy';
    return this.tracker.health(registry);
  }

  async settledHealth(registry: string, signal: AbortSignal): Promise<Health> {
    if (this.health(registry) === 'suspect')
      await untilAborted(this.tracker.settled(registry), signal, undefined);
    return this.health(registry);
  }

  /**
   * What resolveTag answers without a request: a fresh cache entry (its refresh-ahead started when due), or, while
   * the probes find the registry failing, the last digest seen for the tag. Undefined when a request is needed.
   */
  cachedTag(location: RepositoryLocation, tag: string, withBody = false): TagAnswer | undefined {
    // A trusted cache is never asked: its tags say nothing regroute could check.
    if (this.options.trusted?.has(location.registry)) return TRUSTED_TAG;
    const entry = this.tags.freshEntry(location, tag);
    const fresh = entry?.digest;
    if (fresh === null) {
      this.options.onCache?.('tag', true);
      return ABSENT_TAG;
    }
    // Health is read only where it matters: most answers are fresh, not due for a refresh, and wanted without body.
    const failing = () => isFailing(this.health(location.registry));
    if (entry !== undefined && fresh !== undefined) {
      // Refresh-ahead: a tag pods keep asking for is looked up again before it expires, in the background, so a
      // refresh never holds up an admission and no answer older than the TTL is served.
      if (this.tags.isRefreshDue(entry) && !failing()) {
        this.#request('HEAD', location, tag).catch(() => {});
      }
      const children = this.#children.get(fresh);
      // Without its body (children unknown) a fresh answer still serves unless the caller needs the body and the
      // registry can be asked for it.
      if (children === undefined && withBody && !failing()) return undefined;
      this.options.onCache?.('tag', true);
      return children
        ? { kind: 'digest', digest: fresh, from: 'cache', children }
        : { kind: 'digest', digest: fresh, from: 'cache' };
    }
    if (!failing()) return undefined;
    this.options.onCache?.('tag', false);
    return this.#fallback(location, tag, 'unhealthy');
  }

  async resolveTag(
    location: RepositoryLocation,
    tag: string,
    signal: AbortSignal,
    withBody = false,
  ): Promise<TagAnswer> {
    const known = this.cachedTag(location, tag, withBody);
    if (known !== undefined) return known;
    // A request it is: no fresh entry, or a fresh one without the body asked for.
    this.options.onCache?.('tag', this.tags.fresh(location, tag) !== undefined);
    if (signal.aborted) return this.#fallback(location, tag, 'deadline');
    const result = await untilAborted(this.#request(withBody ? 'GET' : 'HEAD', location, tag), signal, null);
    if (result === null) return this.#fallback(location, tag, 'deadline');
    if (result.kind === 'found') {
      return result.children
        ? { kind: 'digest', digest: result.digest, from: 'registry', children: result.children }
        : { kind: 'digest', digest: result.digest, from: 'registry' };
    }
    if (result.kind === 'not-found') return ABSENT_TAG;
    if (result.availability === 'timeout') return this.#fallback(location, tag, 'deadline');
    // The error just made the source suspect: its confirmation decides between "failing" (its last-known answer
    // stands in) and "a blip" (the pod stays with its source), within the deadline.
    await this.settledHealth(location.registry, signal);
    return this.#fallback(location, tag, 'error');
  }

  /**
   * The source's last answer stands in for a fresh one only while the probes find the source failing: a source
   * that is merely slow or answered one error still serves its pods, and its tag may have moved since.
   */
  #fallback(location: RepositoryLocation, tag: string, cause: 'deadline' | 'unhealthy' | 'error'): TagAnswer {
    const last = isFailing(this.health(location.registry)) ? this.tags.lastKnown(location, tag) : undefined;
    return last
      ? { kind: 'digest', digest: last.digest, from: 'last-known', ageMs: last.ageMs }
      : { kind: 'unknown', cause };
  }

  async hasManifest(
    location: RepositoryLocation,
    digest: string,
    signal: AbortSignal,
    trust: Trust = 'claim',
  ): Promise<Presence> {
    const known = this.knownPresence(location, digest, trust);
    this.options.onCache?.('presence', known !== 'unknown');
    if (known !== 'unknown') return known;
    if (isFailing(this.health(location.registry)) || signal.aborted) return 'unknown';
    // Trusting a mirror takes its bytes: a GET hashed to the digest, once per (location, digest) while cached.
    const result = await untilAborted(
      this.#request(trust === 'bytes' ? 'GET' : 'HEAD', location, digest),
      signal,
      null,
    );
    if (result?.kind === 'found') return 'present';
    if (result?.kind === 'not-found') return 'absent';
    // A request that ran out of time is as unanswered as one the deadline cut short.
    if (result === null || result.availability === 'timeout') return 'unknown';
    return result.mismatch ? 'mismatch' : 'error';
  }

  /**
   * A tag → digest learned from the cluster (what pods run): it becomes the tag's last-known digest only once a
   * presence check finds that digest at `location` (the source repository) or at one of `alsoAt` (its candidates),
   * so that a digest the source never named — a node's platform manifest, a typo — cannot route a pod. Answers
   * whether it was taken. Never overrides what the source itself answered.
   */
  async learnTag(
    location: RepositoryLocation,
    tag: string,
    digest: string,
    alsoAt: readonly RepositoryLocation[],
    signal: AbortSignal,
  ): Promise<boolean> {
    if (this.tags.lastKnown(location, tag)) return false;
    for (const where of [location, ...alsoAt]) {
      const trust = where === location ? 'claim' : 'bytes';
      if ((await this.hasManifest(where, digest, signal, trust)) === 'present') {
        return this.tags.learn(location, tag, digest);
      }
      if (signal.aborted) return false;
    }
    return false;
  }

  knownTag(location: RepositoryLocation, tag: string): string | null | undefined {
    return this.tags.fresh(location, tag);
  }

  knownPresence(location: RepositoryLocation, digest: string, trust: Trust = 'claim'): Presence {
    if (this.options.trusted?.has(location.registry)) return 'present';
    return this.presence.get(location, digest, trust);
  }

  /** The manifests an index names, when its body has been read. */
  platformsOf(digest: string): readonly string[] | undefined {
    return this.#children.get(digest);
  }

  /**
   * Reads the manifest at `location` (a GET: a pull on Docker Hub) to learn the platforms it names: for
   * `explain`, which says when a mirror holds one platform of the source's index.
   */
  async readPlatforms(
    location: RepositoryLocation,
    digest: string,
    signal: AbortSignal,
  ): Promise<readonly string[] | undefined> {
    const known = this.#children.get(digest);
    if (known) return known;
    await untilAborted(this.#request('GET', location, digest), signal, null);
    return this.#children.get(digest);
  }

  /** One request per (method, location, reference) at a time; its answer fills the caches and the registry's health. */
  #request(method: Method, location: RepositoryLocation, reference: string): Promise<ManifestResult> {
    return this.#requests.run(`${method} ${locationKey(location)}|${reference}`, async () => {
      const made = await this.clients.get(location.registry);
      if (!made.ok) {
        // A limit of our own (too many clients, say) says nothing about the registry.
        if (!made.local) this.tracker.failed(location.registry, made.error);
        return { kind: 'error', availability: 'unreachable', message: made.error };
      }
      const signal = AbortSignal.timeout(this.options.requestTimeoutMs);
      const result =
        method === 'GET'
          ? await made.client.getManifest(location.repository, reference, { signal })
          : await made.client.headManifest(location.repository, reference, { signal });
      this.#learn(location, reference, method, result);
      return result;
    });
  }

  #learn(location: RepositoryLocation, reference: string, method: Method, result: ManifestResult): void {
    const byDigest = reference.includes(':');
    const registry = location.registry;
    switch (result.kind) {
      case 'found':
        this.tracker.succeeded(registry);
        this.options.samples?.add(location, result.digest);
        this.presence.record(location, result.digest, true, method === 'GET');
        if (result.children) this.#children.set(result.digest, result.children);
        if (!byDigest) this.tags.record(location, reference, result.digest);
        return;
      case 'not-found':
        this.tracker.succeeded(registry);
        if (byDigest) this.presence.record(location, reference, false);
        else this.tags.record(location, reference, null);
        return;
      case 'error':
        if (result.mismatch) {
          // Caught serving other content: never trusted for this digest, reported, and not a health fault
          // (the registry answers; what it says cannot be believed).
          if (byDigest) this.presence.recordMismatch(location, reference);
          this.options.onMismatch?.(location, reference, result.message);
          return;
        }
        // Passive signals: what a lookup learns about a registry counts like a probe. A timeout does not: it may be
        // the admission's tight deadline rather than the registry, and the prober measures that with its own.
        if (result.availability === 'rate-limited') this.tracker.rateLimited(registry, result.retryAfterMs);
        else if (result.availability !== 'timeout' && result.availability !== 'not-found') {
          this.tracker.failed(registry, result.message);
        }
    }
  }
}
