// Prometheus metrics: one registry per process (not prom-client's global), so tests and reloads stay independent.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { MutateOutcome } from '../admission/mutate.js';
import type { RequestEvent } from '../registry/index.js';
import { REASONS } from '../routing/decision.js';
import type { ProbeResult } from '../state/prober.js';

/**
 * Registry hosts outside the config reach labels too: a wildcard route lets a pod name any subdomain. Past this
 * many such hosts they share the label value `other`, so whoever can create pods cannot grow the series count.
 */
export const MAX_UNCONFIGURED_REGISTRY_LABELS = 32;
export const OTHER = 'other';

/** An HTTP status as a label: the code, `none` when no answer came (the outcome names why), `other` when bogus. */
export function statusLabel(status: number | undefined): string {
  if (status === undefined) return 'none';
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : OTHER;
}

/** Keeps label values of registry hosts bounded: configured hosts always, a few others, then `other`. */
export class RegistryLabels {
  #configured = new Set<string>();
  readonly #others = new Set<string>();

  constructor(private readonly maxOthers = MAX_UNCONFIGURED_REGISTRY_LABELS) {}

  configure(registries: Iterable<string>): void {
    this.#configured = new Set(registries);
  }

  isConfigured(registry: string): boolean {
    return this.#configured.has(registry);
  }

  of(registry: string): string {
    if (this.#configured.has(registry) || this.#others.has(registry)) return registry;
    if (this.#others.size >= this.maxOthers) return OTHER;
    this.#others.add(registry);
    return registry;
  }
}

export type ReloadKind = 'config' | 'tls';

export class Metrics {
  readonly registry = new Registry();
  readonly registryLabels = new RegistryLabels();

  readonly admissions = new Counter({
    name: 'regroute_admission_requests_total',
    help: 'Admission reviews answered, by result: patched, reported (report mode: would have been patched), unchanged, skipped, invalid, error.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly admissionDuration = new Histogram({
    name: 'regroute_admission_duration_seconds',
    help: 'Time from receiving an admission review to answering it, by result.',
    labelNames: ['result'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers: [this.registry],
  });

  readonly decisions = new Counter({
    name: 'regroute_image_decisions_total',
    help: 'Routing decisions per image, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly rewrites = new Counter({
    name: 'regroute_rewrites_total',
    help: 'Images rewritten, by registry left, registry chosen and reason.',
    labelNames: ['from', 'to', 'reason'] as const,
    registers: [this.registry],
  });

  readonly reportedRewrites = new Counter({
    name: 'regroute_reported_rewrites_total',
    help: 'Images report mode (admission.mode report) would have rewritten, by registry left, registry chosen and reason; none was.',
    labelNames: ['from', 'to', 'reason'] as const,
    registers: [this.registry],
  });

  readonly digestMismatches = new Counter({
    name: 'regroute_registry_digest_mismatches_total',
    help: 'Manifests a registry served whose bytes do not hash to the digest it claimed: a registry caught lying.',
    labelNames: ['registry'] as const,
    registers: [this.registry],
  });

  readonly registryRequests = new Counter({
    name: 'regroute_registry_requests_total',
    help: 'HTTP requests made to registries, by registry, operation, outcome class and HTTP status (none: no answer).',
    labelNames: ['registry', 'operation', 'outcome', 'status'] as const,
    registers: [this.registry],
  });

  readonly registryUp = new Gauge({
    name: 'regroute_registry_up',
    help: 'Whether the last health probe of the registry succeeded (1) or not (0).',
    labelNames: ['registry'] as const,
    registers: [this.registry],
  });

  readonly probeDuration = new Histogram({
    name: 'regroute_registry_probe_duration_seconds',
    help: 'Duration of registry health probes.',
    labelNames: ['registry'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers: [this.registry],
  });

  readonly cacheLookups = new Counter({
    name: 'regroute_cache_lookups_total',
    help: 'Registry state cache lookups by cache (tag, presence) and result (hit, miss).',
    labelNames: ['cache', 'result'] as const,
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: 'regroute_config_reloads_total',
    help: 'Config file changes applied without a restart.',
    registers: [this.registry],
  });

  readonly configReloadErrors = new Counter({
    name: 'regroute_config_reload_errors_total',
    help: 'Config file changes refused (unreadable or invalid); the running config stayed.',
    registers: [this.registry],
  });

  readonly configLastReloadSuccessful = new Gauge({
    name: 'regroute_config_last_reload_successful',
    help: 'Whether the config file as it is now is the one running (1) or was refused (0).',
    registers: [this.registry],
  });

  readonly tlsReloads = new Counter({
    name: 'regroute_tls_reloads_total',
    help: 'Serving certificate changes applied to the running server.',
    registers: [this.registry],
  });

  readonly tlsReloadErrors = new Counter({
    name: 'regroute_tls_reload_errors_total',
    help: 'Serving certificate changes refused (unreadable, or not a matching cert and key); the last good pair stayed.',
    registers: [this.registry],
  });

  readonly tlsLastReloadSuccessful = new Gauge({
    name: 'regroute_tls_last_reload_successful',
    help: 'Whether the cert and key files as they are now are being served (1) or were refused (0).',
    registers: [this.registry],
  });

  readonly tlsCertificateExpiry = new Gauge({
    name: 'regroute_tls_certificate_expiry_timestamp_seconds',
    help: 'When the serving certificate in use expires (notAfter), as a Unix time.',
    registers: [this.registry],
  });

  /** Reads the cache sizes of the registry state in force; replaced when a reload swaps the state. */
  #cacheSizes: () => { tag: number; presence: number } = () => ({ tag: 0, presence: 0 });

  readonly cacheEntries = new Gauge({
    name: 'regroute_cache_entries',
    help: 'Entries held per cache (tag, presence); bounded by cache.maxEntries.',
    labelNames: ['cache'] as const,
    registers: [this.registry],
    // Read at scrape time: counting on every lookup would put work on the admission path for a scrape's sake.
    collect: () => {
      const sizes = this.#cacheSizes();
      this.cacheEntries.set({ cache: 'tag' }, sizes.tag);
      this.cacheEntries.set({ cache: 'presence' }, sizes.presence);
    },
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    // Every reason from the start: a series that first appears with its first decision has no rate() or increase()
    // in Prometheus until its second, so an alert on one decision (no-candidate, source-unhealthy) would miss it.
    for (const reason of REASONS) this.decisions.inc({ reason }, 0);
  }

  recordOutcome(outcome: MutateOutcome, seconds: number): void {
    // A reported review would have been patched exactly when enforce builds a patch: some image has a target.
    const rewritten = outcome.reported
      ? outcome.decisions.some(({ decision }) => decision.target !== null)
      : outcome.response.patch !== undefined;
    const result = outcome.patchError
      ? 'error'
      : outcome.skipped
        ? 'skipped'
        : rewritten
          ? outcome.reported
            ? 'reported'
            : 'patched'
          : 'unchanged';
    this.admissions.inc({ result });
    this.admissionDuration.observe({ result }, seconds);
    // Counted per pod first, then one increment per series: a pod's images mostly share a reason and a route, and
    // each increment hashes its labels.
    const reasons = new Map<string, number>();
    const rewrites = new Map<
      string,
      { labels: { from: string; to: string; reason: string }; count: number }
    >();
    for (const { reference, decision } of outcome.decisions) {
      reasons.set(decision.reason, (reasons.get(decision.reason) ?? 0) + 1);
      if (decision.target && decision.candidate && reference && !outcome.patchError) {
        const from = this.registryLabels.of(reference.registry);
        const to = this.registryLabels.of(decision.candidate.registry);
        const key = `${from} ${to} ${decision.reason}`;
        const seen = rewrites.get(key);
        if (seen) seen.count++;
        else rewrites.set(key, { labels: { from, to, reason: decision.reason }, count: 1 });
      }
    }
    for (const [reason, count] of reasons) this.decisions.inc({ reason }, count);
    // Report mode's rewrites were not made: they are counted apart, so rewrites_total stays what pods run.
    const counter = outcome.reported ? this.reportedRewrites : this.rewrites;
    for (const { labels, count } of rewrites.values()) counter.inc(labels, count);
  }

  recordDigestMismatch(registry: string): void {
    this.digestMismatches.inc({ registry: this.registryLabels.of(registry) });
  }

  readonly rateLimitRemaining = new Gauge({
    name: 'regroute_registry_rate_limit_remaining',
    help: 'Pulls a registry last said were left (Docker Hub ratelimit-remaining), for registries that say.',
    labelNames: ['registry'] as const,
    registers: [this.registry],
  });

  recordRegistryRequest(event: RequestEvent): void {
    if (event.rateLimitRemaining !== undefined) {
      this.rateLimitRemaining.set(
        { registry: this.registryLabels.of(event.registry) },
        event.rateLimitRemaining,
      );
    }
    this.registryRequests.inc({
      registry: this.registryLabels.of(event.registry),
      operation: event.operation,
      outcome: event.outcome,
      status: statusLabel(event.status),
    });
  }

  recordProbe(result: ProbeResult): void {
    const registry = this.registryLabels.of(result.registry);
    this.registryUp.set({ registry }, result.ok ? 1 : 0);
    this.probeDuration.observe({ registry }, result.latencyMs / 1000);
  }

  watchCacheSizes(sizes: () => { tag: number; presence: number }): void {
    this.#cacheSizes = sizes;
  }

  recordCache(cache: 'tag' | 'presence', hit: boolean): void {
    this.cacheLookups.inc({ cache, result: hit ? 'hit' : 'miss' });
  }

  recordRejected(result: 'invalid' | 'error', seconds: number): void {
    this.admissions.inc({ result });
    this.admissionDuration.observe({ result }, seconds);
  }

  /** The registries the running config names: their label values are always kept. */
  configureRegistries(registries: Iterable<string>): void {
    this.registryLabels.configure(registries);
  }

  /** A registry no longer probed must not keep reporting its last verdict as if it were current. */
  forgetRegistry(registry: string): void {
    this.registryUp.remove({ registry });
  }

  /** A change of the files noticed: applied, or refused with the running one kept. */
  recordReload(kind: ReloadKind, applied: boolean): void {
    if (kind === 'config') (applied ? this.configReloads : this.configReloadErrors).inc();
    else (applied ? this.tlsReloads : this.tlsReloadErrors).inc();
  }

  /** Whether the files as they are now are usable; those loaded at start are, or the process would not run. */
  recordFilesValid(kind: ReloadKind, valid: boolean): void {
    (kind === 'config' ? this.configLastReloadSuccessful : this.tlsLastReloadSuccessful).set(valid ? 1 : 0);
  }

  recordServingCertificate(notAfter: Date): void {
    this.tlsCertificateExpiry.set(Math.floor(notAfter.getTime() / 1000));
  }
}
