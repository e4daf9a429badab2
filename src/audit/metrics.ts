// Prometheus metrics: one registry per process (not prom-client's global), so tests and reloads stay independent.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type PodDecision, podDecisionOf } from '../admission/audit-annotations.js';
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

type AdmissionResult = 'patched' | 'reported' | 'unchanged' | 'skipped' | 'invalid' | 'error';
type Lookup = 'tag' | 'presence';

/** Counts by key, added up on the admission path and handed over when read. */
const addTo = <K>(counts: Map<K, number>, key: K, n = 1): void => {
  counts.set(key, (counts.get(key) ?? 0) + n);
};

/** The admission result label of each pod decision (audit-annotations.ts decides it). */
const RESULT_OF = {
  rewritten: 'patched',
  reported: 'reported',
  unchanged: 'unchanged',
  skipped: 'skipped',
  'patch-failed': 'error',
} as const satisfies Record<PodDecision, AdmissionResult>;

/** Rewrite counts by registry left, then registry chosen, then reason. */
type RewriteCounts = Map<string, Map<string, Map<string, number>>>;

/** Hands counts added up since the last scrape to their counter, and starts them again from zero. */
function flushRewrites(counts: RewriteCounts, counter: Counter<'from' | 'to' | 'reason'>): void {
  for (const [from, byTarget] of counts) {
    for (const [to, byReason] of byTarget) {
      for (const [reason, n] of byReason) if (n > 0) counter.inc({ from, to, reason }, n);
      byReason.clear();
    }
  }
}

export class Metrics {
  readonly registry = new Registry();
  readonly registryLabels = new RegistryLabels();

  // What the admission path counts, per review and per image, is added up in plain numbers here and handed to its
  // counter when the counter is read (a scrape): an increment of a prom-client counter hashes and validates its
  // labels, which for every image of every admission costs more than the decision itself.
  readonly #admissions = new Map<AdmissionResult, number>();
  readonly #decisions = new Map<string, number>();
  /** Rewrites by registry left, then registry chosen, then reason. */
  readonly #rewrites: RewriteCounts = new Map();
  /** Report mode's rewrites, which were not made: counted apart, so rewrites_total stays what pods run. */
  readonly #reportedRewrites: RewriteCounts = new Map();
  readonly #lookups: Record<Lookup, { hit: number; miss: number }> = {
    tag: { hit: 0, miss: 0 },
    presence: { hit: 0, miss: 0 },
  };

  readonly admissions = new Counter({
    name: 'regroute_admission_requests_total',
    help: 'Admission reviews answered, by result: patched, reported (report mode: would have been patched), unchanged, skipped, invalid, error.',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [result, n] of this.#admissions) if (n > 0) this.admissions.inc({ result }, n);
      this.#admissions.clear();
    },
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
    collect: () => {
      for (const [reason, n] of this.#decisions) if (n > 0) this.decisions.inc({ reason }, n);
      this.#decisions.clear();
    },
  });

  readonly rewrites: Counter<'from' | 'to' | 'reason'> = new Counter({
    name: 'regroute_rewrites_total',
    help: 'Images rewritten, by registry left, registry chosen and reason.',
    labelNames: ['from', 'to', 'reason'] as const,
    registers: [this.registry],
    collect: (): void => flushRewrites(this.#rewrites, this.rewrites),
  });

  readonly reportedRewrites: Counter<'from' | 'to' | 'reason'> = new Counter({
    name: 'regroute_reported_rewrites_total',
    help: 'Images report mode (admission.mode report) would have rewritten, by registry left, registry chosen and reason; none was.',
    labelNames: ['from', 'to', 'reason'] as const,
    registers: [this.registry],
    collect: (): void => flushRewrites(this.#reportedRewrites, this.reportedRewrites),
  });

  readonly digestMismatches = new Counter({
    name: 'regroute_registry_digest_mismatches_total',
    help: 'Manifests a registry served whose bytes do not hash to the digest it claimed: a registry caught lying.',
    labelNames: ['registry'] as const,
    registers: [this.registry],
  });

  readonly registryRequests = new Counter({
    name: 'regroute_registry_requests_total',
    help: 'HTTP requests made to registries, by registry, operation, outcome class, HTTP status (none: no answer) and kind (probe: health checks; lookup: admissions, commands).',
    labelNames: ['registry', 'operation', 'outcome', 'status', 'kind'] as const,
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
    collect: () => {
      for (const cache of ['tag', 'presence'] as const) {
        const counts = this.#lookups[cache];
        if (counts.hit > 0) this.cacheLookups.inc({ cache, result: 'hit' }, counts.hit);
        if (counts.miss > 0) this.cacheLookups.inc({ cache, result: 'miss' }, counts.miss);
        counts.hit = 0;
        counts.miss = 0;
      }
    },
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
    const result = RESULT_OF[podDecisionOf(outcome)];
    addTo(this.#admissions, result);
    this.admissionDuration.observe({ result }, seconds);
    for (const { reference, decision } of outcome.decisions) {
      addTo(this.#decisions, decision.reason);
      if (decision.target && decision.candidate && reference && !outcome.patchError) {
        const from = this.registryLabels.of(reference.registry);
        const to = this.registryLabels.of(decision.candidate.registry);
        const counts = outcome.reported ? this.#reportedRewrites : this.#rewrites;
        let byTarget = counts.get(from);
        if (!byTarget) {
          byTarget = new Map();
          counts.set(from, byTarget);
        }
        let byReason = byTarget.get(to);
        if (!byReason) {
          byReason = new Map();
          byTarget.set(to, byReason);
        }
        addTo(byReason, decision.reason);
      }
    }
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
      kind: event.kind,
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

  recordCache(cache: Lookup, hit: boolean): void {
    if (hit) this.#lookups[cache].hit++;
    else this.#lookups[cache].miss++;
  }

  recordRejected(result: 'invalid' | 'error', seconds: number): void {
    addTo(this.#admissions, result);
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
