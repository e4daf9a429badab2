// Outage window: the first seconds of an outage with the default probe settings. A source behind a fault proxy, a
// mirror holding the same digests, and a pod every 250 ms from the moment each fault starts: how long until pods
// are routed around, how many were sent to the failing source meanwhile, how long until they come back once it
// recovers, and what the probes cost each registry while nothing fails.
import { Config } from '../../src/config/schema.js';
import { AdmissionClient, type Admitted, patchedImages } from '../admit.js';
import type { BenchContext } from '../context.js';
import {
  containersOf,
  grownTo,
  imagesToPush,
  loadReview,
  relocate,
  SMALL_FIXTURE,
  withFreshUid,
  withImages,
} from '../pods.js';
import { startWebhook, type Webhook } from '../servers.js';
import { configFor, location, pushImages } from '../topology.js';
import { progress, sleep, waitFor } from '../util.js';

/** The fault proxy's modes and options, as test/integration/outage-window.test.ts lists the faults. */
type FaultSpec = Parameters<BenchContext['topology']['outageSource']['setMode']>;

export const OUTAGE_FAULTS: readonly { readonly name: string; readonly set: FaultSpec }[] = [
  { name: 'blackhole', set: ['blackhole'] },
  { name: 'connection refused', set: ['refuse'] },
  { name: 'connection reset', set: ['reset'] },
  { name: 'manifests 503', set: ['status', { status: 503, paths: /\/manifests\// }] },
  { name: 'blobs 503', set: ['status', { status: 503, paths: /\/blobs\// }] },
  { name: '429 (Retry-After 60 s)', set: ['rate-limit', { retryAfterSeconds: 60 }] },
  { name: 'bad TLS', set: ['bad-tls'] },
];

/** As the issue measured it: a pod every 250 ms. */
export const POD_EVERY_MS = 250;
/** A fault not routed around by then is reported at this value, and fails the target. */
const MAX_WINDOW_MS = 15_000;
/** A source not used again by then after recovery is reported at this value. */
const MAX_BACK_MS = 30_000;
/** Concurrent admissions: a pod waiting for a suspect source's verdict must not hold up the next one. */
const CONNECTIONS = 16;

export interface OutageFault {
  readonly name: string;
  /** From the fault to the first answer that sent every image of the pod to the mirror; null: never. */
  readonly windowMs: number | null;
  /** Pods sent while the fault lasted whose answer left at least one image at the failing source. */
  readonly toFailingSource: number;
  /** Pods sent while the fault lasted. */
  readonly pods: number;
  /** From the recovery to the first answer that left every image at its source again; null: not within the bound. */
  readonly backMs: number | null;
  /** Answers that pinned an image to anything but the mirror's copy of the exact digest: must stay 0. */
  readonly wrongDigest: number;
  /** Requests (or, for faults that end connections, connections) the failing source saw per second. */
  readonly sourceAttemptsPerSecond: number | null;
  /** How long the fault lasted. */
  readonly faultMs: number;
}

export interface OutageResult {
  readonly faults: readonly OutageFault[];
  /** The worst fault's window (MAX_WINDOW_MS when one was never routed around). */
  readonly outageWindowMs: number;
  readonly images: number;
  readonly podEveryMs: number;
  /** Times each fault was played, each starting at a random point of the probe cycle; the worst is reported. */
  readonly repeats: number;
  readonly probe: {
    readonly intervalSeconds: number;
    readonly timeoutMs: number;
    readonly failureThreshold: number;
  };
  /**
   * Probe load with no admission running: requests per second per registry for one replica, counted at the source's
   * fault proxy, and by operation from the webhook's regroute_registry_requests_total for the source and the mirror.
   */
  readonly probeLoad: {
    readonly seconds: number;
    readonly atProxyPerSecond: number;
    readonly source: Record<string, number>;
    readonly mirror: Record<string, number>;
  };
}

interface Sent {
  readonly sentAt: number;
  answeredAt?: number;
  admitted?: Admitted;
  failed?: string;
}

function difference(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - (before[key] ?? 0)]));
}

export async function outageWindow(context: BenchContext): Promise<OutageResult> {
  const { topology, caPem, plan } = context;
  const { outageSource, source, cache } = topology;
  const pod = grownTo(
    withImages(loadReview(SMALL_FIXTURE), (image) => relocate(image, location(outageSource, 'outage'))),
    12_000,
  );
  const sites = containersOf(pod).length;
  await outageSource.setMode('pass');
  const digests = await pushImages([source, cache], imagesToPush(pod));
  // The only answer a routed image may get: the mirror's repository, the tag, and the digest the source named.
  const { spec } = pod.request.object;
  const expected = new Map<string, string>();
  for (const kind of ['initContainers', 'containers'] as const) {
    for (const [index, container] of (spec[kind] ?? []).entries()) {
      const named = container.image.slice(outageSource.host.length + 1);
      expected.set(`/spec/${kind}/${index}/image`, `${cache.host}/${named}@${digests.get(named)}`);
    }
  }

  // Every setting at its default but what names the registries, and only the two registries of the route: a
  // registry dead for good (the bench's dead mirror) would lengthen every probe round by its timeout.
  const all = await configFor(topology, ['outage']);
  const config = {
    ...all,
    registries: Object.fromEntries(
      Object.entries(all.registries ?? {}).filter(
        ([host]) => host === outageSource.host || host === cache.host,
      ),
    ),
  };
  const webhook = await startWebhook('webhook (outage window)', config, context);
  const client = new AdmissionClient(webhook.port, caPem, CONNECTIONS);
  try {
    await webhook.waitHealthy([outageSource.host, cache.host]);
    await client.connect(CONNECTIONS);
    const admit = async (): Promise<Admitted> => client.admit(withFreshUid(pod));
    const atSource = (admitted: Admitted) =>
      patchedImages(admitted.response).size === 0 && (admitted.response.warnings ?? []).length === 0;
    // The tags resolved once (their digests cached from now on), and a sample of the source for the deep probes.
    const first = await admit();
    if (!atSource(first)) {
      throw new Error(`outage: the pod left its source before any fault: ${JSON.stringify(first.response)}`);
    }
    if (
      !(await waitFor(
        async () => (await webhook.process.call('contentSamples', { registry: outageSource.host }, 5000)) > 0,
        10_000,
        50,
      ))
    ) {
      throw new Error('outage: no sample of the source for the deep probes');
    }

    const probeLoad = await measureProbeLoad(context, webhook, plan.quick ? 5 : 20);

    const { probe } = Config.parse(config);
    const cycleMs = probe.intervalSeconds * 1000 + probe.timeoutMs;
    const repeats = plan.quick ? 1 : 3;
    const results: OutageFault[] = [];
    for (const fault of OUTAGE_FAULTS) {
      progress(`outage window: ${fault.name}, ${repeats} time(s)`);
      const runs: OutageFault[] = [];
      for (let repeat = 0; repeat < repeats; repeat++) {
        await waitBack(webhook, outageSource.host, admit, atSource, fault.name);
        // A fault starts anywhere in the probe cycle; a fixed phase would measure one point of it only.
        await sleep(Math.random() * cycleMs);
        runs.push(await oneFault(fault, { webhook, admit, atSource, expected, sites, context }));
      }
      results.push(worst(runs));
    }
    const windows = results.map((r) => r.windowMs ?? MAX_WINDOW_MS);
    return {
      faults: results,
      outageWindowMs: Math.max(...windows),
      images: sites,
      podEveryMs: POD_EVERY_MS,
      repeats,
      probe,
      probeLoad,
    };
  } finally {
    await client.close();
    await webhook.stop();
    await outageSource.setMode('pass');
  }
}

/** The run of a fault with the longest window (a never-ending one first). */
function worst(runs: readonly OutageFault[]): OutageFault {
  const windowOf = (run: OutageFault) => run.windowMs ?? Number.POSITIVE_INFINITY;
  return runs.reduce((a, b) => (windowOf(b) > windowOf(a) ? b : a));
}

/** Before each fault: the source healthy again and a pod left at it, so that no fault starts inside another. */
async function waitBack(
  webhook: Webhook,
  registry: string,
  admit: () => Promise<Admitted>,
  atSource: (admitted: Admitted) => boolean,
  what: string,
): Promise<void> {
  const back = await waitFor(
    async () =>
      (await webhook.process.call('health', { registry }, 5000)) === 'healthy' && atSource(await admit()),
    MAX_BACK_MS,
    100,
  );
  if (!back) throw new Error(`outage: the source never came back before ${what}`);
  // Let the answers and probes of the last check settle.
  await sleep(500);
}

/** Probe requests with no admission running, per registry per second. */
async function measureProbeLoad(context: BenchContext, webhook: Webhook, seconds: number) {
  const { outageSource, cache } = context.topology;
  progress(`outage window: probe load, ${seconds} s without admissions`);
  const before = {
    source: await webhook.process.call('registryRequests', { registry: outageSource.host }, 10_000),
    mirror: await webhook.process.call('registryRequests', { registry: cache.host }, 10_000),
  };
  outageSource.resetCounts();
  const started = performance.now();
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - started) / 1000;
  const atProxy = outageSource.requests.pass;
  const perSecond = (totals: Record<string, number>) =>
    Object.fromEntries(Object.entries(totals).map(([operation, count]) => [operation, count / elapsed]));
  return {
    seconds: elapsed,
    atProxyPerSecond: atProxy / elapsed,
    source: perSecond(
      difference(
        await webhook.process.call('registryRequests', { registry: outageSource.host }, 10_000),
        before.source,
      ),
    ),
    mirror: perSecond(
      difference(
        await webhook.process.call('registryRequests', { registry: cache.host }, 10_000),
        before.mirror,
      ),
    ),
  };
}

interface FaultRun {
  readonly webhook: Webhook;
  readonly admit: () => Promise<Admitted>;
  readonly atSource: (admitted: Admitted) => boolean;
  readonly expected: ReadonlyMap<string, string>;
  readonly sites: number;
  readonly context: BenchContext;
}

async function oneFault(
  fault: (typeof OUTAGE_FAULTS)[number],
  { admit, atSource, expected, sites, context }: FaultRun,
): Promise<OutageFault> {
  const { outageSource } = context.topology;
  // How long the fault stays once pods are routed around: long enough to see them stay there.
  const holdMs = context.plan.quick ? 1000 : 3000;
  const sent: Sent[] = [];
  let stop = false;
  const inFlight = new Set<Promise<void>>();
  // A pod every POD_EVERY_MS on a fixed schedule, whether or not earlier ones have their answers.
  const sender = (async () => {
    const started = performance.now();
    for (let n = 0; !stop; n++) {
      const entry: Sent = { sentAt: performance.now() };
      sent.push(entry);
      const pending = admit().then(
        (admitted) => {
          entry.answeredAt = performance.now();
          entry.admitted = admitted;
        },
        (error: unknown) => {
          entry.answeredAt = performance.now();
          entry.failed = error instanceof Error ? error.message : String(error);
        },
      );
      inFlight.add(pending);
      void pending.finally(() => inFlight.delete(pending));
      await sleep(Math.max(0, started + (n + 1) * POD_EVERY_MS - performance.now()));
    }
  })();
  const routed = (entry: Sent) => {
    if (!entry.admitted) return false;
    const patched = patchedImages(entry.admitted.response);
    return patched.size === sites && [...patched].every(([path, image]) => expected.get(path) === image);
  };
  const firstAnswered = (from: number, accept: (entry: Sent) => boolean) =>
    sent
      .filter((entry) => entry.sentAt >= from && entry.answeredAt !== undefined && accept(entry))
      .reduce<number | null>(
        (min, entry) => Math.min(min ?? Number.POSITIVE_INFINITY, entry.answeredAt as number),
        null,
      );

  outageSource.resetCounts();
  await outageSource.setMode(...fault.set);
  const faultAt = performance.now();
  await waitFor(async () => firstAnswered(faultAt, routed) !== null, MAX_WINDOW_MS, 20);
  await sleep(holdMs);
  const mode = outageSource.mode;
  const attempts =
    mode === 'refuse' ? null : Math.max(outageSource.requests[mode], outageSource.connections[mode]);
  await outageSource.setMode('pass');
  const recoveredAt = performance.now();
  const back = (entry: Sent) => entry.admitted !== undefined && atSource(entry.admitted);
  await waitFor(async () => firstAnswered(recoveredAt, back) !== null, MAX_BACK_MS, 20);
  stop = true;
  await sender;
  await Promise.all(inFlight);

  const routedAt = firstAnswered(faultAt, routed);
  const backAt = firstAnswered(recoveredAt, back);
  const during = sent.filter((entry) => entry.sentAt >= faultAt && entry.sentAt < recoveredAt);
  const failed = sent.filter((entry) => entry.failed !== undefined);
  if (failed.length > 0) throw new Error(`outage (${fault.name}): admissions failed: ${failed[0]?.failed}`);
  // Anything patched must be the mirror's copy of the exact digest, before, during and after the fault alike.
  const wrongDigest = sent.filter((entry) =>
    [...patchedImages(entry.admitted?.response ?? { uid: '', allowed: true })].some(
      ([path, image]) => expected.get(path) !== image,
    ),
  ).length;
  return {
    name: fault.name,
    windowMs: routedAt === null ? null : routedAt - faultAt,
    toFailingSource: during.filter(
      (entry) => entry.admitted && patchedImages(entry.admitted.response).size < sites,
    ).length,
    pods: during.length,
    backMs: backAt === null ? null : backAt - recoveredAt,
    wrongDigest,
    sourceAttemptsPerSecond: attempts === null ? null : attempts / ((recoveredAt - faultAt) / 1000),
    faultMs: recoveredAt - faultAt,
  };
}
