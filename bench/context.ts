// What every scenario gets: the registries, the trust anchor, and how long to run (quick or full).
import type { ChildScripts } from './build.js';
import type { Topology } from './topology.js';

export interface Plan {
  readonly quick: boolean;
  /** Warm path: per run, a discarded warm-up, then the measured stretch. */
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly concurrencies: readonly number[];
  /** Cold path: admissions measured after the connection warm-up. */
  readonly coldAdmissions: number;
  /** Registry load: pods per run (one run per entry), the distinct images they share, and the concurrency. */
  readonly loadPods: readonly number[];
  readonly loadImages: number;
  readonly loadConcurrency: number;
  /** Faults: how long admissions continue once the source is marked down. */
  readonly afterDetectionMs: number;
  /** Failover: skopeo runs per reference (the mirror fallback costs ~20 s each). */
  readonly skopeoRuns: number;
  /** Memory: tag answers and presence answers recorded into the caches. */
  readonly cacheInserts: number;
}

export const QUICK: Plan = {
  quick: true,
  warmupMs: 400,
  durationMs: 1600,
  concurrencies: [1, 10, 50],
  coldAdmissions: 60,
  loadPods: [1000],
  loadImages: 10,
  loadConcurrency: 50,
  afterDetectionMs: 2000,
  skopeoRuns: 1,
  cacheInserts: 100_000,
};

export const FULL: Plan = {
  quick: false,
  warmupMs: 1000,
  durationMs: 10_000,
  concurrencies: [1, 10, 50],
  coldAdmissions: 300,
  loadPods: [1000, 10_000],
  loadImages: 10,
  loadConcurrency: 50,
  afterDetectionMs: 5000,
  skopeoRuns: 3,
  cacheInserts: 100_000,
};

export interface BenchContext {
  readonly plan: Plan;
  readonly topology: Topology;
  /** The harness CA (PEM) that signed every server's certificate, the webhook's included. */
  readonly caPem: string;
  readonly scripts: ChildScripts;
  readonly profileDir?: string | undefined;
}
