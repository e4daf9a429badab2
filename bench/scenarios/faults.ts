// Faults: the source registry is blackholed (connections accepted, never answered) while admissions keep coming.
// Every answer must come within the admission deadline (+10 ms); once the probes mark the source down, admissions
// must be as fast as before the fault. Also reports how long the probes took to notice.
import { AdmissionClient, type Admitted, patchedImages } from '../admit.js';
import type { BenchContext } from '../context.js';
import {
  containersOf,
  grownTo,
  imagesToPush,
  loadReview,
  type Review,
  relocate,
  SMALL_FIXTURE,
  withFreshUid,
  withImages,
} from '../pods.js';
import { startLoadGenerator, startWebhook } from '../servers.js';
import { type Summary, summarize } from '../stats.js';
import { configFor, location, pushImages } from '../topology.js';
import { inPool, progress, sleep, waitFor } from '../util.js';

/**
 * Short settings so the scenario takes seconds, not minutes: with the defaults (2 s deadline, probes every 10 s,
 * 3 failures, 30 s tag TTL) the same sequence plays out about ten times slower. The tag TTL of 1 s makes every
 * admission ask the source again, as it would every 30 s by default.
 */
const DEADLINE_MS = 200;
const PROBE = { intervalSeconds: 1, timeoutMs: 500, failureThreshold: 3 };
const TAG_TTL_SECONDS = 1;
/** Admissions before the baseline, unmeasured: a new process answers slower until its hot code is compiled. */
const WARMUP_ADMISSIONS = 300;
const BASELINE_ADMISSIONS = 200;
const CONCURRENT_CLIENTS = 4;
const MAX_FAULT_MS = 30_000;
/** The container whose image the failover comparison fetches with skopeo. */
const APP_CONTAINER = 'app';

export interface FaultResult {
  readonly deadlineMs: number;
  /** Admissions in flight at any time, each client sending its next as soon as it has an answer. */
  readonly clients: number;
  readonly probe: typeof PROBE;
  readonly tagTtlSeconds: number;
  /** Same pod, same process, before the fault. */
  readonly baseline: Summary;
  /** Answers to admissions sent between the blackhole and its detection. */
  readonly duringFault: Summary;
  /** Answers to admissions sent once the probes had marked the source down. */
  readonly afterDetection: Summary;
  /** Slowest answer under the blackholed source, and by how much it passed the deadline. */
  readonly slowestMs: number;
  readonly overrunMs: number;
  /** The same inside the webhook (regroute_admission_duration_seconds), without the network and the client. */
  readonly serverOverrunMs: number;
  /** Longest the webhook's event loop was held up while the fault lasted: time no timer, deadline included, could fire. */
  readonly eventLoopDelayMaxMs: number;
  /** The same for an idle bystander process in the same window: stalls that come from the machine, not the webhook. */
  readonly bystanderDelayMaxMs: number;
  readonly timeToDetectMs: number;
  /** Answers in which every image was rewritten to a healthy candidate, of all answers under the fault. */
  readonly routed: number;
  readonly answers: number;
  /** The app container's image as the pod asks for it, and as regroute rewrote it after detection. */
  readonly original: string;
  readonly chosen: string;
}

export async function faults(context: BenchContext): Promise<FaultResult> {
  const { topology, caPem, plan } = context;
  const { sourceProxy, source, cache } = topology;
  const pod = grownTo(
    withImages(loadReview(SMALL_FIXTURE), (image) => relocate(image, location(sourceProxy, 'fault'))),
    12_000,
  );
  const containers = pod.request.object.spec.containers;
  const appIndex = containers.findIndex((container) => container.name === APP_CONTAINER);
  const original = containers[appIndex]?.image ?? '';
  const sites = containersOf(pod).length;
  // The source proxy forwards to the source registry: the images live there and in the cache mirror.
  const images = imagesToPush(pod);
  await sourceProxy.setMode('pass');
  await pushImages([source, cache], images);

  const config = await configFor(topology, ['fault'], {
    admission: { deadlineMs: DEADLINE_MS },
    probe: PROBE,
    cache: { tagTtlSeconds: TAG_TTL_SECONDS },
  });
  const webhook = await startWebhook('webhook (faults)', config, context);
  const client = new AdmissionClient(webhook.port, caPem, CONCURRENT_CLIENTS);
  // The idle load generator serves as the bystander.
  const bystander = startLoadGenerator(context.scripts);
  try {
    await webhook.waitHealthy([sourceProxy.host, cache.host]);
    await client.connect(CONCURRENT_CLIENTS);
    const admit = (review: Review) => client.admit(withFreshUid(review));
    const allRouted = (admitted: Admitted) => patchedImages(admitted.response).size === sites;
    for (let round = 0; round < 3; round++) {
      const warm = await admit(pod);
      if (!allRouted(warm)) {
        throw new Error(
          `faults: the pod was not routed before the fault: ${JSON.stringify(warm.response.warnings)}`,
        );
      }
    }
    // The baseline: the same clients sending the same pod, before the fault.
    await inPool(Array.from({ length: WARMUP_ADMISSIONS }), CONCURRENT_CLIENTS, () => admit(pod));
    const baseline: number[] = [];
    await inPool(Array.from({ length: BASELINE_ADMISSIONS }), CONCURRENT_CLIENTS, async () => {
      baseline.push((await admit(pod)).ms);
    });

    // Let the tag answers go stale, so that the next admissions ask the source, which then hangs.
    await sleep(TAG_TTL_SECONDS * 1000 + 100);
    progress('faults: blackholing the source; admissions continue until the probes mark it down');
    await webhook.process.call('decisionTimes', { reset: true }, 10_000);
    await webhook.process.call('eventLoopDelay', { reset: true }, 10_000);
    await bystander.call('eventLoopDelay', { reset: true }, 10_000);
    await sourceProxy.setMode('blackhole');
    const faultAt = performance.now();
    let detectedAt: number | null = null;
    const detection = waitFor(
      async () => {
        if ((await webhook.process.call('health', { registry: sourceProxy.host }, 5000)) !== 'unhealthy')
          return false;
        detectedAt = performance.now();
        return true;
      },
      MAX_FAULT_MS,
      20,
    );
    const answers: { sentAt: number; admitted: Admitted }[] = [];
    const keepGoing = () => {
      const now = performance.now();
      if (now - faultAt > MAX_FAULT_MS) return false;
      return detectedAt === null || now - detectedAt < plan.afterDetectionMs;
    };
    await inPool(Array.from({ length: CONCURRENT_CLIENTS }), CONCURRENT_CLIENTS, async () => {
      // Bounded by keepGoing's time limit: each turn is one admission, which the deadline bounds in turn.
      while (keepGoing()) {
        const sentAt = performance.now();
        answers.push({ sentAt, admitted: await admit(pod) });
      }
    });
    if (!(await detection) || detectedAt === null) {
      throw new Error('faults: the source was never marked down');
    }
    const server = await webhook.process.call('decisionTimes', { reset: true }, 10_000);
    const loopDelay = await webhook.process.call('eventLoopDelay', { reset: true }, 10_000);
    const bystanderDelay = await bystander.call('eventLoopDelay', { reset: true }, 10_000);
    const detected: number = detectedAt;
    const during = answers.filter((answer) => answer.sentAt < detected);
    const after = answers.filter((answer) => answer.sentAt >= detected);
    const slowestMs = Math.max(...answers.map((answer) => answer.admitted.ms));
    const lastAfter = after.at(-1)?.admitted.response;
    const chosen = lastAfter
      ? (patchedImages(lastAfter).get(`/spec/containers/${appIndex}/image`) ?? '')
      : '';
    return {
      deadlineMs: DEADLINE_MS,
      clients: CONCURRENT_CLIENTS,
      probe: PROBE,
      tagTtlSeconds: TAG_TTL_SECONDS,
      baseline: summarize(baseline),
      duringFault: summarize(during.map((answer) => answer.admitted.ms)),
      afterDetection: summarize(after.map((answer) => answer.admitted.ms)),
      slowestMs,
      overrunMs: slowestMs - DEADLINE_MS,
      serverOverrunMs: server.summary.max - DEADLINE_MS,
      eventLoopDelayMaxMs: loopDelay.max,
      bystanderDelayMaxMs: bystanderDelay.max,
      timeToDetectMs: detected - faultAt,
      routed: answers.filter((answer) => allRouted(answer.admitted)).length,
      answers: answers.length,
      original,
      chosen,
    };
  } finally {
    await client.close();
    await Promise.allSettled([webhook.stop(), bystander.stop()]);
  }
}
