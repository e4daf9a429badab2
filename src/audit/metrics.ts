// Prometheus metrics: one registry per process (not prom-client's global), so tests and reloads stay independent.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { MutateOutcome } from '../admission/mutate.js';
import type { RequestEvent } from '../registry/index.js';
import type { ProbeResult } from '../state/prober.js';

export class Metrics {
  readonly registry = new Registry();

  readonly admissions = new Counter({
    name: 'regroute_admission_requests_total',
    help: 'Admission reviews answered, by result: patched, unchanged, skipped, invalid, error.',
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

  readonly registryRequests = new Counter({
    name: 'regroute_registry_requests_total',
    help: 'HTTP requests made to registries, by registry, operation and outcome.',
    labelNames: ['registry', 'operation', 'outcome'] as const,
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

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  recordOutcome(outcome: MutateOutcome, seconds: number): void {
    const result = outcome.patchError
      ? 'error'
      : outcome.skipped
        ? 'skipped'
        : outcome.response.patch
          ? 'patched'
          : 'unchanged';
    this.admissions.inc({ result });
    this.admissionDuration.observe({ result }, seconds);
    for (const { reference, decision } of outcome.decisions) {
      this.decisions.inc({ reason: decision.reason });
      if (decision.target && decision.candidate && reference && !outcome.patchError) {
        this.rewrites.inc({
          from: reference.registry,
          to: decision.candidate.registry,
          reason: decision.reason,
        });
      }
    }
  }

  recordRegistryRequest(event: RequestEvent): void {
    this.registryRequests.inc({
      registry: event.registry,
      operation: event.operation,
      outcome: event.outcome,
    });
  }

  recordProbe(result: ProbeResult): void {
    this.registryUp.set({ registry: result.registry }, result.ok ? 1 : 0);
    this.probeDuration.observe({ registry: result.registry }, result.latencyMs / 1000);
  }

  recordCache(cache: 'tag' | 'presence', hit: boolean): void {
    this.cacheLookups.inc({ cache, result: hit ? 'hit' : 'miss' });
  }

  recordRejected(result: 'invalid' | 'error', seconds: number): void {
    this.admissions.inc({ result });
    this.admissionDuration.observe({ result }, seconds);
  }
}
