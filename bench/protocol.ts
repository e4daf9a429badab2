// What the orchestrator may ask of each child process: the webhook under test, the floor server, the load generator.
import type { ConfigInput } from '../src/config/schema.js';
import type { Summary } from './stats.js';

// A type, not an interface: only type literals satisfy the method table's index signature.
export type WebhookMethods = {
  /** Starts regroute on loopback (HTTPS on a free port) and answers once its first probe round has finished. */
  start: { params: { config: ConfigInput }; result: { port: number; metricsPort: number; readyMs: number } };
  /** Memory in use; `collect`: after a full garbage collection. */
  rss: { params: { collect: boolean }; result: { rssBytes: number; heapUsedBytes: number } };
  /** CPU time the process has used so far (user + system), in microseconds. */
  cpu: { params: null; result: number };
  /**
   * Event-loop delay (ms) since the last reset: how long ready work waited for the loop. The monitor starts on the
   * first call, so that runs which never ask pay nothing for it.
   */
  eventLoopDelay: { params: { reset: boolean }; result: { p99: number; max: number } };
  /**
   * Garbage-collection pauses since the last reset (their count, total and longest, ms). The observer starts on the
   * first call.
   */
  gcPauses: { params: { reset: boolean }; result: { count: number; totalMs: number; maxMs: number } };
  /**
   * Registries found suspect since the last reset (a failed probe or lookup): admissions of their pods wait for the
   * verdict, within the deadline.
   */
  suspicions: { params: { reset: boolean }; result: { count: number; registries: string[] } };
  /** Server-side decision times (ms) recorded since the last reset; `reset` starts a new series. */
  decisionTimes: { params: { reset: boolean }; result: { summary: Summary; dropped: number } };
  /** The prober's verdict on a registry host. */
  health: { params: { registry: string }; result: string };
  /**
   * regroute_registry_requests_total summed by operation (ping, manifest, blob, token): of every registry, or of
   * the one given.
   */
  registryRequests: { params: { registry?: string } | null; result: Record<string, number> };
  /** Manifests regroute found at a registry, which the prober's default deep check reads one after another. */
  contentSamples: { params: { registry: string }; result: number };
  /**
   * Records `inserts` tag answers and as many presence answers (the caches keep at most cache.maxEntries each),
   * then collects garbage and answers the memory in use.
   */
  fillCaches: {
    params: { inserts: number };
    result: {
      tagEntries: number;
      presenceEntries: number;
      elapsedMs: number;
      rssBytes: number;
      heapUsedBytes: number;
    };
  };
};

export type FloorMethods = {
  start: { params: { certFile: string; keyFile: string }; result: { port: number } };
  cpu: { params: null; result: number };
};

export interface LoadJob {
  readonly url: string;
  readonly body: string;
  readonly connections: number;
  /** Responses in this first stretch are discarded: connections are opened and the JIT warms up meanwhile. */
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface LoadResult {
  readonly responses: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  /** Client-observed latency (ms) of the 2xx responses to requests sent after the warm-up. */
  readonly latency: Summary;
}

export type LoadMethods = {
  run: { params: LoadJob; result: LoadResult };
  /**
   * Event-loop delay (ms) since the last reset, measured while this process idles between runs: what a bystander
   * process on the machine is held up, which tells the machine's own stalls from the webhook's.
   */
  eventLoopDelay: { params: { reset: boolean }; result: { p99: number; max: number } };
};
