// Builds the registry state a process routes with, from the config: clients, health, caches and the prober.
import type { Logger } from 'pino';
import { type Config, RegistrySettings } from '../config/schema.js';
import type { RequestEvent } from '../registry/index.js';
import { ClientPool } from './clients.js';
import { ContentSamples } from './content-samples.js';
import { HealthTracker } from './health.js';
import { LiveState } from './live-state.js';
import { type ProbeResult, Prober } from './prober.js';
import type { StateHandle } from './state.js';

export interface LiveStateHandle extends StateHandle {
  readonly samples: ContentSamples;
  readonly state: LiveState;
  readonly prober: Prober;
  readonly tracker: HealthTracker;
  readonly clients: ClientPool;
}

/**
 * What the state reports as it works. The metrics module implements it; the state names only what it calls, so it
 * depends on no layer above it.
 */
export interface StateMetrics {
  recordRegistryRequest(event: RequestEvent): void;
  recordProbe(result: ProbeResult): void;
  recordCache(cache: 'tag' | 'presence', hit: boolean): void;
  recordDigestMismatch(registry: string): void;
  watchCacheSizes(sizes: () => { tag: number; presence: number }): void;
}

export interface StateOptions {
  readonly metrics?: StateMetrics;
  /** Do not start background probes (one-shot commands probe on demand). */
  readonly probe?: boolean;
  /**
   * The state this one replaces on a config reload. Its caches are kept when the cache settings are unchanged:
   * digests and their presence are facts about content, and the last known digest of each tag is what routes
   * pods while a source is down, so a reload during an outage must not forget them. Its registry clients are
   * kept for registries whose files cannot be read now (see ClientPoolOptions.previous).
   */
  readonly previous?: { readonly config: Config; readonly handle: LiveStateHandle };
}

export function createStateHandle(config: Config, log: Logger, options: StateOptions = {}): LiveStateHandle {
  const { metrics, previous } = options;
  const sameCaches = previous && JSON.stringify(previous.config.cache) === JSON.stringify(config.cache);
  const tracker = new HealthTracker(config.probe);
  // Hosts outside the config (wildcard routes) keep the schema's default reserve.
  const defaultReserve = RegistrySettings.parse({}).rateLimitReserve;
  const reserveOf = (registry: string) => config.registries[registry]?.rateLimitReserve ?? defaultReserve;
  const clients = new ClientPool(config, log, {
    onRequest: (event: RequestEvent) => {
      metrics?.recordRegistryRequest(event);
      // A registry announcing its pull budget (Docker Hub) is avoided before it answers 429.
      if (event.rateLimitRemaining !== undefined) {
        tracker.budget(event.registry, event.rateLimitRemaining, reserveOf(event.registry));
      }
    },
    ...(previous ? { previous: previous.handle.clients } : {}),
    // An evicted host is no longer probed: a verdict kept for it would stand for ever, and a down one would
    // never be asked again.
    onEvict: (registry) => tracker.forget(registry),
  });
  // What each registry is known to hold outlives a reload, like the caches: the prober's deep checks need it.
  const samples = previous?.handle.samples ?? new ContentSamples();
  const trusted = new Set(
    Object.entries(config.registries).flatMap(([host, settings]) => (settings.trusted ? [host] : [])),
  );
  const state = new LiveState(clients, tracker, {
    samples,
    trusted,
    ttls: {
      tagTtlMs: config.cache.tagTtlSeconds * 1000,
      presentTtlMs: config.cache.presentTtlSeconds * 1000,
      absentTtlMs: config.cache.absentTtlSeconds * 1000,
      maxEntries: config.cache.maxEntries,
    },
    // A lookup runs on its own clock, at least as long as an admission waits: a late answer still fills the cache.
    requestTimeoutMs: Math.max(config.probe.timeoutMs, config.admission.deadlineMs),
    ...(metrics ? { onCache: (cache, hit) => metrics.recordCache(cache, hit) } : {}),
    onMismatch: (location, reference, message) => {
      metrics?.recordDigestMismatch(location.registry);
      log.warn(
        { registry: location.registry, repository: location.repository, reference, error: message },
        'registry served bytes that do not match the digest it claimed; it is not trusted with this digest',
      );
    },
    ...(sameCaches
      ? { caches: { tags: previous.handle.state.tags, presence: previous.handle.state.presence } }
      : {}),
  });
  metrics?.watchCacheSizes(() => ({ tag: state.tags.size, presence: state.presence.size }));
  const prober = new Prober(
    config,
    clients,
    tracker,
    log,
    metrics ? (result) => metrics.recordProbe(result) : undefined,
    samples,
  );
  if (options.probe ?? true) prober.start();
  return {
    state,
    samples,
    prober,
    tracker,
    clients,
    isReady: () => prober.ready,
    async close() {
      prober.stop();
      await clients.close();
    },
  };
}
