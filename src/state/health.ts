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
   * an unhealthy one needs successThreshold successes in a row.
   */
  succeeded(registry: string, latencyMs: number | null = null): void {
    const entry = this.#entry(registry);
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
   * A failure. A registry never seen before is distrusted at once, so a new replica does not route to a dead
   * registry for failureThreshold intervals; a healthy one needs failureThreshold failures in a row.
   */
  failed(registry: string, error: string, latencyMs: number | null = null): void {
    const entry = this.#entry(registry);
    entry.successes = 0;
    entry.failures += 1;
    entry.lastError = error;
    entry.checkedAt = this.now();
    if (latencyMs !== null) entry.latencyMs = latencyMs;
    if (entry.health === 'unknown' || entry.failures >= this.thresholds.failureThreshold)
      entry.health = 'unhealthy';
  }

  /** A 429: the registry is avoided until Retry-After has passed, whatever the probes say meanwhile. */
  rateLimited(registry: string, retryAfterMs: number | undefined): void {
    const entry = this.#entry(registry);
    entry.rateLimitedUntil = this.now() + (retryAfterMs ?? DEFAULT_RATE_LIMIT_MS);
    entry.lastError = 'rate limited (429)';
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
