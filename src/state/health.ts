// Registry health as Kubernetes probes count it: thresholds over consecutive results, plus rate limits and passive signals.
import type { Health } from './state.js';

export interface Thresholds {
  readonly failureThreshold: number;
  readonly successThreshold: number;
}

export interface HealthSnapshot {
  readonly health: Health;
  readonly lastError: string | null;
  readonly latencyMs: number | null;
  readonly checkedAt: number | null;
  readonly rateLimitedUntil: number | null;
  readonly rateLimitRemaining: number | null;
}

/** Used when a 429 carries no Retry-After: long enough not to hammer a rate-limited registry, short enough to recover. */
export const DEFAULT_RATE_LIMIT_MS = 30_000;

/**
 * The longest a 429 keeps a registry avoided, whatever its Retry-After asks: a registry is not ours to switch off
 * for a year on one answer (`Retry-After: 31536000`), and Docker Hub's pull limit is counted over hours but lifts
 * gradually. Five minutes, then the registry is tried again, and a new 429 starts a new period.
 */
export const MAX_RATE_LIMIT_MS = 5 * 60_000;

/** What a success proved: that `/v2/` answers, or that a manifest could be read (which is what rate limits stop). */
export type Evidence = 'ping' | 'manifest';

class RegistryHealth {
  health: 'healthy' | 'unhealthy' | 'unknown' | 'suspect' = 'unknown';
  /** True once the registry had a verdict (healthy or unhealthy): a first failure then needs less confirming. */
  judged = false;
  /** Set while suspect: resolves when the suspicion is settled either way. */
  settling: { promise: Promise<void>; resolve: () => void } | null = null;
  successes = 0;
  failures = 0;
  lastError: string | null = null;
  /** The last probe or request failure (a 429 included), until a success settles the registry healthy. */
  lastFailure: { readonly error: string; readonly at: number } | null = null;
  latencyMs: number | null = null;
  checkedAt: number | null = null;
  rateLimitedUntil: number | null = null;
  /** Pulls the registry last said were left, and whether that is within the reserve kept. */
  rateLimitRemaining: number | null = null;
  budgetLow = false;
}

export class HealthTracker {
  readonly #registries = new Map<string, RegistryHealth>();
  readonly #suspicionListeners = new Set<(registry: string) => void>();

  constructor(
    private readonly thresholds: Thresholds,
    private readonly now: () => number = Date.now,
  ) {}

  #entry(registry: string): RegistryHealth {
    let entry = this.#registries.get(registry);
    if (!entry) {
      entry = new RegistryHealth();
      this.#registries.set(registry, entry);
    }
    return entry;
  }

  health(registry: string): Health {
    const entry = this.#registries.get(registry);
    if (!entry) return 'unknown';
    if (entry.rateLimitedUntil !== null) {
      if (this.now() < entry.rateLimitedUntil) return 'rate-limited';
      entry.rateLimitedUntil = null;
    }
    if (entry.budgetLow) return 'rate-limited';
    return entry.health;
  }

  /**
   * A success. A registry never seen before, or suspect after one failure, is trusted at once (a blip is forgiven);
   * an unhealthy one needs successThreshold successes in a row. A manifest read ends a rate limit early: it is what
   * the limit stopped, while `/v2/` answers throughout one (Docker Hub does not count it).
   */
  succeeded(registry: string, latencyMs: number | null = null, evidence: Evidence = 'ping'): void {
    const entry = this.#entry(registry);
    if (evidence === 'manifest') entry.rateLimitedUntil = null;
    entry.failures = 0;
    entry.successes += 1;
    entry.checkedAt = this.now();
    if (latencyMs !== null) entry.latencyMs = latencyMs;
    if (entry.health !== 'unhealthy' || entry.successes >= this.thresholds.successThreshold) {
      this.#settle(entry, 'healthy');
      entry.lastError = null;
      entry.lastFailure = null;
    }
  }

  /**
   * A failure, from a probe or from any request that failed (a passive signal). The first one makes the registry
   * suspect at once — the prober confirms it with immediate re-probes, and admissions wait for that verdict
   * rather than move a pod on one blip — and failureThreshold failures in a row make it unhealthy. A registry
   * without a verdict yet needs at least two: one failure of a replica just started may be its own (building TLS
   * contexts and reading files on a loaded machine).
   */
  failed(registry: string, error: string, latencyMs: number | null = null): void {
    const entry = this.#entry(registry);
    entry.successes = 0;
    entry.failures += 1;
    entry.lastError = error;
    entry.checkedAt = this.now();
    entry.lastFailure = { error, at: entry.checkedAt };
    if (latencyMs !== null) entry.latencyMs = latencyMs;
    const needed = entry.judged
      ? this.thresholds.failureThreshold
      : Math.max(2, this.thresholds.failureThreshold);
    if (entry.failures >= needed) {
      this.#settle(entry, 'unhealthy');
    } else if (entry.health !== 'unhealthy' && entry.health !== 'suspect') {
      entry.health = 'suspect';
      let resolve = () => {};
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      entry.settling = { promise, resolve };
      for (const listener of this.#suspicionListeners) listener(registry);
    }
  }

  #settle(entry: RegistryHealth, verdict: 'healthy' | 'unhealthy'): void {
    entry.health = verdict;
    entry.judged = true;
    entry.settling?.resolve();
    entry.settling = null;
  }

  /** Called whenever a registry turns suspect: the prober confirms the suspicion at once. */
  onSuspicion(listener: (registry: string) => void): () => void {
    this.#suspicionListeners.add(listener);
    return () => this.#suspicionListeners.delete(listener);
  }

  /** Resolves once the registry is not (or no longer) suspect. */
  settled(registry: string): Promise<void> {
    return this.#registries.get(registry)?.settling?.promise ?? Promise.resolve();
  }

  /**
   * True while a suspicion awaits its confirmation: the prober probes again at once. Not while rate-limited:
   * asking again is what the registry asked us not to do.
   */
  awaitsVerdict(registry: string): boolean {
    return this.health(registry) === 'suspect';
  }

  /**
   * A 429: the registry is avoided until Retry-After has passed (at most MAX_RATE_LIMIT_MS), or until a manifest
   * can be read again, whatever `/v2/` says meanwhile.
   */
  rateLimited(registry: string, retryAfterMs: number | undefined): void {
    const entry = this.#entry(registry);
    entry.rateLimitedUntil = this.now() + Math.min(retryAfterMs ?? DEFAULT_RATE_LIMIT_MS, MAX_RATE_LIMIT_MS);
    entry.lastError = 'rate limited (429)';
    entry.lastFailure = { error: entry.lastError, at: this.now() };
  }

  /**
   * The pulls a registry says are left (any manifest request's answer, probes' included): within `reserve`, it is
   * avoided as if rate-limited, so pods go to a mirror before it answers 429; above it again, it is used again.
   */
  budget(registry: string, remaining: number, reserve: number): void {
    const entry = this.#entry(registry);
    entry.rateLimitRemaining = remaining;
    entry.budgetLow = remaining <= reserve;
    if (entry.budgetLow) entry.lastError = `rate limit nearly used up (${remaining} pulls left)`;
  }

  /** Drops what is known of a registry no longer probed: an old verdict would otherwise stand for ever. */
  forget(registry: string): void {
    this.#registries.get(registry)?.settling?.resolve();
    this.#registries.delete(registry);
  }

  snapshot(registry: string): HealthSnapshot {
    const health = this.health(registry);
    const entry = this.#entry(registry);
    return {
      health,
      lastError: entry.lastError,
      latencyMs: entry.latencyMs,
      checkedAt: entry.checkedAt,
      rateLimitedUntil: entry.rateLimitedUntil,
      rateLimitRemaining: entry.rateLimitRemaining,
    };
  }

  /**
   * Why a registry is failing, read-only (`regroute explain`): the last failure's cause and time, and the failures
   * in a row since the last success. Null for a registry with no failure since it was last settled healthy.
   */
  lastFailure(registry: string): { error: string; at: number; consecutiveFailures: number } | null {
    const entry = this.#registries.get(registry);
    if (!entry?.lastFailure) return null;
    return { ...entry.lastFailure, consecutiveFailures: entry.failures };
  }

  registries(): string[] {
    return [...this.#registries.keys()];
  }
}
