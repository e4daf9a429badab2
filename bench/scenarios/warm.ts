// Warm path: /mutate throughput and latency on a warm cache against the floor (a bare fastify handler parsing the
// same body), the server's CPU time per answer, the server-side decision time, and the webhook's RSS under load.
import { AdmissionClient, expectAllRouted } from '../admit.js';
import type { BenchContext } from '../context.js';
import {
  bodyOf,
  containersOf,
  grownTo,
  imagesToPush,
  LARGE_FIXTURE,
  loadReview,
  type Review,
  relocate,
  SMALL_FIXTURE,
  withFreshUid,
  withImages,
} from '../pods.js';
import type { LoadJob, LoadResult } from '../protocol.js';
import { startFloor, startLoadGenerator, startWebhook, type Webhook } from '../servers.js';
import type { Summary } from '../stats.js';
import { configFor, location, pushImages } from '../topology.js';
import { progress, sleep } from '../util.js';

export type PodSize = 'small' | 'large';

export interface WarmRun {
  readonly pod: PodSize;
  readonly connections: number;
  readonly floor: LoadResult;
  readonly regroute: LoadResult;
  /** regroute req/s divided by the floor's. */
  readonly ratio: number;
  /**
   * Server CPU time per answer (µs) over the measured stretch. Unlike req/s it barely moves when other work
   * shares the machine, and with a CPU-bound server it is what the throughput ratio comes to on a quiet one.
   */
  readonly cpuPerAnswerUs: { readonly floor: number; readonly regroute: number };
  /** The floor's CPU time per answer divided by regroute's. */
  readonly cpuRatio: number;
  /**
   * Server-side, as regroute_admission_duration_seconds measures it (every sample kept): from the parsed body to the
   * answer built, before audit lines and serialization.
   */
  readonly decision: Summary;
  /**
   * Registry requests the webhook made during the run: refreshes of tag answers, and the prober's deep checks
   * (a manifest and a blob HEAD per registry per round), which the metric counts alike. Pings excluded.
   */
  readonly registryRequests: number;
  /** Where a tail can come from besides queueing, in the webhook during the measured stretch. */
  readonly server: ServerStalls;
  /** The webhook's highest RSS during the run. */
  readonly peakRssMb: number;
}

export interface ServerStalls {
  /** How late timers fired (ms): the longest stretch the event loop was held by one piece of work. */
  readonly eventLoopDelay: { readonly p99: number; readonly max: number };
  /** Garbage-collection pauses: how many, their total and the longest (ms). */
  readonly gc: { readonly count: number; readonly totalMs: number; readonly maxMs: number };
  /** Registries found suspect (a probe or lookup failed), whose pods' admissions waited for the verdict. */
  readonly suspicions: { readonly count: number; readonly registries: readonly string[] };
}

/**
 * Head-of-line between review sizes: both pods at once, half the connections each, against the floor and regroute.
 * A small review queued behind large ones shows as a small-pod tail far above the small pod's run alone.
 */
export interface MixedRun {
  readonly connections: number;
  readonly floor: Record<PodSize, LoadResult>;
  readonly regroute: Record<PodSize, LoadResult>;
  readonly server: ServerStalls;
  readonly peakRssMb: number;
}

export interface WarmResult {
  readonly bytes: Record<PodSize, number>;
  readonly containers: Record<PodSize, number>;
  readonly runs: WarmRun[];
  readonly mixed: MixedRun;
  /** The webhook's highest RSS while the runs lasted (sampled every 250 ms). */
  readonly peakRssMb: number;
}

/** The fixture grown to `bytes`, its images relocated under the warm route of the source registry. */
function warmReview(fixture: string, bytes: number, at: string): Review {
  return grownTo(
    withImages(loadReview(fixture), (image) => relocate(image, at)),
    bytes,
  );
}

async function lookupRequests(webhook: Webhook): Promise<number> {
  const totals = await webhook.process.call('registryRequests', null, 10_000);
  return Object.entries(totals).reduce(
    (sum, [operation, count]) => (operation === 'ping' ? sum : sum + count),
    0,
  );
}

/**
 * Runs a load job; once the load generator's warm-up is over, opens the measured window on the server (`begin`)
 * and reads its CPU time, so that CPU per answer covers the same stretch as the load generator's figures.
 */
async function measured(
  run: () => Promise<LoadResult>,
  warmupMs: number,
  server: { cpuUs(): Promise<number>; begin?: () => Promise<unknown> },
): Promise<{ result: LoadResult; cpuPerAnswerUs: number }> {
  const pending = run();
  await sleep(warmupMs);
  await server.begin?.();
  const before = await server.cpuUs();
  const result = await pending;
  const used = (await server.cpuUs()) - before;
  return { result, cpuPerAnswerUs: used / Math.max(1, result.responses) };
}

/** Highest RSS seen while `during` runs, sampled every 250 ms (a sample is a small IPC message to the webhook). */
async function peakRss<T>(webhook: Webhook, during: Promise<T>): Promise<{ value: T; peakMb: number }> {
  let done = false;
  let peakMb = 0;
  const sampler = (async () => {
    while (!done) {
      peakMb = Math.max(peakMb, await webhook.rssMb());
      await sleep(250);
    }
  })();
  try {
    return { value: await during, peakMb };
  } finally {
    done = true;
    await sampler;
  }
}

/** Opens a measured stretch on the webhook: decision times, event-loop delay and GC pauses start afresh. */
async function beginStalls(webhook: Webhook): Promise<void> {
  await Promise.all([
    webhook.process.call('decisionTimes', { reset: true }, 10_000),
    webhook.process.call('eventLoopDelay', { reset: true }, 10_000),
    webhook.process.call('gcPauses', { reset: true }, 10_000),
    webhook.process.call('suspicions', { reset: true }, 10_000),
  ]);
}

async function stallsOf(webhook: Webhook): Promise<ServerStalls> {
  const [eventLoopDelay, gc, suspicions] = await Promise.all([
    webhook.process.call('eventLoopDelay', { reset: true }, 10_000),
    webhook.process.call('gcPauses', { reset: true }, 10_000),
    webhook.process.call('suspicions', { reset: true }, 10_000),
  ]);
  return { eventLoopDelay, gc, suspicions };
}

export async function warmPath(context: BenchContext): Promise<WarmResult> {
  const { plan, topology, caPem } = context;
  const { source, cache, mirror, harness } = topology;
  const at = location(source, 'warm');
  const reviews: Record<PodSize, Review> = {
    small: warmReview(SMALL_FIXTURE, 12_000, at),
    large: warmReview(LARGE_FIXTURE, 100_000, at),
  };
  const bodies = { small: bodyOf(reviews.small), large: bodyOf(reviews.large) };
  const images = [...imagesToPush(reviews.small), ...imagesToPush(reviews.large)];
  progress(`warm path: pushing ${images.length} images to 3 registries`);
  await pushImages([source, cache, mirror], images);

  const { scripts, profileDir } = context;
  const webhook = await startWebhook('webhook (warm path)', await configFor(topology, ['warm']), {
    scripts,
    profileDir,
  });
  const floor = await startFloor(
    scripts,
    harness.ca.serving.certFile,
    harness.ca.serving.keyFile,
    profileDir,
  ).catch(async (error) => {
    await webhook.stop();
    throw error;
  });
  const load = startLoadGenerator(scripts);
  const client = new AdmissionClient(webhook.port, caPem);
  try {
    await webhook.waitHealthy([source.host, cache.host, mirror.host]);
    // Fill the caches, and check that the answers are the full ones: every image rewritten, a patch built.
    for (const pod of ['small', 'large'] as const) {
      for (let round = 0; round < 3; round++) {
        const { response } = await client.admit(withFreshUid(reviews[pod]));
        expectAllRouted(response, containersOf(reviews[pod]).length, `warm ${pod} pod`);
      }
    }
    const runs: WarmRun[] = [];
    let underLoadMb = 0;
    const job = (port: number, pod: PodSize, connections: number): LoadJob => ({
      url: `https://127.0.0.1:${port}/mutate`,
      body: bodies[pod],
      connections,
      warmupMs: plan.warmupMs,
      durationMs: plan.durationMs,
    });
    const runTimeout = plan.warmupMs + plan.durationMs + 60_000;
    for (const pod of ['small', 'large'] as const) {
      for (const connections of plan.concurrencies) {
        progress(`warm path: ${pod} pod, ${connections} connection(s): floor, then regroute`);
        const floorRun = await measured(
          () => load.call('run', job(floor.port, pod, connections), runTimeout),
          plan.warmupMs,
          floor,
        );
        const before = await lookupRequests(webhook);
        const { value: regroute, peakMb } = await peakRss(
          webhook,
          measured(() => load.call('run', job(webhook.port, pod, connections), runTimeout), plan.warmupMs, {
            cpuUs: webhook.cpuUs,
            begin: () => beginStalls(webhook),
          }),
        );
        underLoadMb = Math.max(underLoadMb, peakMb);
        const server = await stallsOf(webhook);
        const decision = await webhook.process.call('decisionTimes', { reset: true }, 10_000);
        runs.push({
          pod,
          connections,
          floor: floorRun.result,
          regroute: regroute.result,
          ratio: regroute.result.requestsPerSecond / floorRun.result.requestsPerSecond,
          cpuPerAnswerUs: { floor: floorRun.cpuPerAnswerUs, regroute: regroute.cpuPerAnswerUs },
          cpuRatio: floorRun.cpuPerAnswerUs / regroute.cpuPerAnswerUs,
          decision: decision.summary,
          registryRequests: (await lookupRequests(webhook)) - before,
          server,
          peakRssMb: peakMb,
        });
      }
    }

    const mixedConnections = Math.max(...plan.concurrencies);
    progress(`warm path: both pods at once, ${mixedConnections / 2} connections each: floor, then regroute`);
    const both = async (port: number, begin?: () => Promise<unknown>) => {
      const half = Math.max(1, Math.floor(mixedConnections / 2));
      const small = load.call('run', job(port, 'small', half), runTimeout);
      const large = load.call('run', job(port, 'large', half), runTimeout);
      await sleep(plan.warmupMs);
      await begin?.();
      return { small: await small, large: await large };
    };
    const mixedFloor = await both(floor.port);
    const { value: mixedRegroute, peakMb } = await peakRss(
      webhook,
      both(webhook.port, () => beginStalls(webhook)),
    );
    underLoadMb = Math.max(underLoadMb, peakMb);
    const mixed = {
      connections: mixedConnections,
      floor: mixedFloor,
      regroute: mixedRegroute,
      server: await stallsOf(webhook),
      peakRssMb: peakMb,
    };

    return {
      mixed,
      bytes: { small: Buffer.byteLength(bodies.small), large: Buffer.byteLength(bodies.large) },
      containers: { small: containersOf(reviews.small).length, large: containersOf(reviews.large).length },
      runs,
      peakRssMb: underLoadMb,
    };
  } finally {
    await client.close();
    await Promise.allSettled([load.stop(), floor.stop(), webhook.stop()]);
  }
}
