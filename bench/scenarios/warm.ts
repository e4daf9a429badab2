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
  /** Registry requests the webhook made during the run (a tag answer older than its TTL), probes excluded. */
  readonly registryRequests: number;
}

export interface WarmResult {
  readonly bytes: Record<PodSize, number>;
  readonly containers: Record<PodSize, number>;
  readonly runs: WarmRun[];
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
            begin: () => webhook.process.call('decisionTimes', { reset: true }, 10_000),
          }),
        );
        underLoadMb = Math.max(underLoadMb, peakMb);
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
        });
      }
    }

    return {
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
