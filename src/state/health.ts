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
  health: 'healthy' | 'unhealthy' | 'unknown' = 'unknown';
  successes = 0;
  failures = 0;
  lastError: string | null = null;
  latencyMs: number | null = null;
  checkedAt: number | null = null;
  rateLimitedUntil: number | null = null;
}

export class HealthTracker {
  readonly #registries = new Map<string, RegistryHealth>();

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
    return entry.health;
  }

  /**
   * A success. A registry never seen before is trusted at once (there is no earlier verdict to overturn);
   * an unhealthy one needs successThreshold successes in a row. A manifest read ends a rate limit early: it is
   * what the limit stopped, while `/v2/` answers throughout one (Docker Hub does not count it).
   */
  succeeded(registry: string, latencyMs: number | null = null, evidence: Evidence = 'ping'): void {
    const entry = this.#entry(registry);
    if (evidence === 'manifest') entry.rateLimitedUntil = null;
    entry.failures = 0;
    entry.successes += 1;
    entry.checkedAt = this.now();
    if (latencyMs !== null) entry.latencyMs = latencyMs;
    if (entry.health === 'unknown' || entry.successes >= this.thresholds.successThreshold) {
      entry.health = 'healthy';
      entry.lastError = null;
    }
  }

  /**
   * A failure. A healthy registry needs failureThreshold failures in a row. So does one without a verdict yet,
   * and at least two: one failure of a replica just started may be its own (building TLS contexts and reading
   * files on a loaded machine), and the prober gathers the rest at once (see awaitsVerdict), so a new replica
   * still learns of a dead registry within its first round.
   */
  failed(registry: string, error: string, latencyMs: number | null = null): void {
    const entry = this.#entry(registry);
    entry.successes = 0;
    entry.failures += 1;
    entry.lastError = error;
    entry.checkedAt = this.now();
    if (latencyMs !== null) entry.latencyMs = latencyMs;
    const needed =
      entry.health === 'unknown'
        ? Math.max(2, this.thresholds.failureThreshold)
        : this.thresholds.failureThreshold;
    if (entry.failures >= needed) entry.health = 'unhealthy';
  }

  /**
   * True while failures have been seen but not enough for a first verdict: the prober probes again at once. Not
   * while rate-limited: asking again is what the registry asked us not to do.
   */
  awaitsVerdict(registry: string): boolean {
    const entry = this.#registries.get(registry);
    return entry !== undefined && this.health(registry) === 'unknown' && entry.failures > 0;
  }

  /**
   * A 429: the registry is avoided until Retry-After has passed (at most MAX_RATE_LIMIT_MS), or until a manifest
   * can be read again, whatever `/v2/` says meanwhile.
   */
  rateLimited(registry: string, retryAfterMs: number | undefined): void {
    const entry = this.#entry(registry);
    entry.rateLimitedUntil = this.now() + Math.min(retryAfterMs ?? DEFAULT_RATE_LIMIT_MS, MAX_RATE_LIMIT_MS);
    entry.lastError = 'rate limited (429)';
  }

  /** Drops what is known of a registry no longer probed: an old verdict would otherwise stand for ever. */
  forget(registry: string): void {
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
    };
  }

  registries(): string[] {
    return [...this.#registries.keys()];
  }
}
