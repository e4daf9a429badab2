// Cold path and registry load, in one fresh webhook process. Cold path: admissions whose image no cache has seen,
// answered from the loopback registries (three candidates, one behind token auth); the first admission after start
// is reported on its own. Registry load: many pods sharing a few images, and the registry requests they cost.
import { Pool } from 'undici';
import { Config } from '../../src/config/schema.js';
import {
  ACCEPT_ALL_MANIFESTS,
  basicAuthorization,
  fetchToken,
  type Registry,
} from '../../test/harness/index.js';
import { AdmissionClient, type Admitted, expectAllRouted } from '../admit.js';
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
import { startWebhook, type Webhook } from '../servers.js';
import { type Summary, summarize } from '../stats.js';
import { configFor, type ImageName, location, pushImages } from '../topology.js';
import { inPool, progress } from '../util.js';

/** Connection warm-up: admissions after the first, not measured, that open registry connections and fetch tokens. */
const WARMUP_ADMISSIONS = 5;
/** The pod's `app` container: the one a rollout changes, so the one whose image is new in every cold admission. */
const NEW_IMAGE_CONTAINER = 'app';

export interface ColdResult {
  /**
   * The first admission after the webhook turned ready (`readyMs` after it started: modules loaded, listeners up,
   * first probe round done): every image unseen, no repository token yet.
   */
  readonly first: { readonly clientMs: number; readonly serverMs: number; readonly readyMs: number };
  readonly client: Summary;
  readonly server: Summary;
  readonly admissions: number;
  /** Registry requests per measured admission (probes excluded): a HEAD at the source, one at each mirror. */
  readonly registryRequestsPerAdmission: number;
  /** The reference: one manifest HEAD on each registry, straight from the orchestrator (see registryHead). */
  readonly registryHead: { readonly source: Summary; readonly cache: Summary; readonly mirror: Summary };
}

export interface LoadRun {
  readonly pods: number;
  readonly images: number;
  readonly concurrency: number;
  /** Registry requests made on the pods' behalf (manifest HEADs and token fetches); probes are excluded. */
  readonly registryRequests: number;
  readonly byOperation: Record<string, number>;
  readonly seconds: number;
}

export interface ColdAndLoadResult {
  readonly cold: ColdResult;
  readonly load: LoadRun[];
  /** Candidates consulted per image on a miss: the source for the tag, each mirror before it for the digest. */
  readonly locationsPerImage: number;
  readonly tagTtlSeconds: number;
}

const sum = (totals: Record<string, number>, skip: string) =>
  Object.entries(totals).reduce(
    (total, [operation, count]) => (operation === skip ? total : total + count),
    0,
  );

function difference(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - (before[key] ?? 0)]));
}

/** What a request to each registry needs: nothing, Basic credentials, or a bearer token fetched once beforehand. */
async function authorizationFor(registry: Registry, repository: string): Promise<Record<string, string>> {
  if (registry.auth === 'htpasswd' && registry.credentials) {
    return { authorization: basicAuthorization(registry.credentials) };
  }
  if (registry.auth === 'token' && registry.realm) {
    const token = await fetchToken(registry, registry.realm, {
      service: registry.service,
      scope: `repository:${repository}:pull`,
    });
    return { authorization: `Bearer ${token}` };
  }
  return {};
}

/**
 * The reference for a cache miss: manifest HEADs straight from the orchestrator to one registry, one at a time on
 * a warm keep-alive connection, already authorized. A miss asks the source and the mirrors listed before it at once.
 */
async function registryHead(context: BenchContext, registry: Registry, image: ImageName, count: number) {
  const headers = { accept: ACCEPT_ALL_MANIFESTS, ...(await authorizationFor(registry, image.repository)) };
  const pool = new Pool(registry.url, {
    connect: { ca: context.topology.harness.ca.certPem },
    connections: 1,
  });
  try {
    const times: number[] = [];
    for (let i = 0; i < count + 5; i++) {
      const started = performance.now();
      const answer = await pool.request({
        method: 'HEAD',
        path: `/v2/${image.repository}/manifests/${image.tag}`,
        headers,
        signal: AbortSignal.timeout(10_000),
      });
      await answer.body.dump();
      if (answer.statusCode !== 200) {
        throw new Error(`HEAD ${image.repository}:${image.tag} on ${registry.name}: ${answer.statusCode}`);
      }
      // The first five open the connection and warm both ends up.
      if (i >= 5) times.push(performance.now() - started);
    }
    return summarize(times);
  } finally {
    await pool.close();
  }
}

async function coldPath(context: BenchContext, webhook: Webhook, template: Review): Promise<ColdResult> {
  const { plan, caPem } = context;
  const total = 1 + WARMUP_ADMISSIONS + plan.coldAdmissions;
  const appIndex = containersOf(template).findIndex((container) => container.name === NEW_IMAGE_CONTAINER);
  const pods = Array.from({ length: total }, (_, pod) =>
    withImages(template, (image, index) =>
      index === appIndex ? image.replace(/:[^:/]+$/, `:release-${pod}`) : image,
    ),
  );
  const images = [
    ...new Map(
      pods.flatMap(imagesToPush).map((image) => [`${image.repository}:${image.tag}`, image]),
    ).values(),
  ];
  progress(`cold path: pushing ${images.length} images to 3 registries`);
  await pushImages([context.topology.source, context.topology.cache, context.topology.mirror], images);

  const client = new AdmissionClient(webhook.port, caPem);
  try {
    // The apiserver's connection to the webhook is open already; what is measured is regroute's own work.
    await client.connect();
    const sites = containersOf(template).length;
    const admit = async (pod: Review, what: string): Promise<Admitted> => {
      const admitted = await client.admit(withFreshUid(pod));
      expectAllRouted(admitted.response, sites, what);
      return admitted;
    };
    progress(
      `cold path: first admission after start, ${WARMUP_ADMISSIONS} warm-up, ${plan.coldAdmissions} measured`,
    );
    await webhook.process.call('decisionTimes', { reset: true }, 10_000);
    const first = await admit(pods[0] as Review, 'first cold admission');
    const firstServer = await webhook.process.call('decisionTimes', { reset: true }, 10_000);
    for (const pod of pods.slice(1, 1 + WARMUP_ADMISSIONS)) await admit(pod, 'cold warm-up admission');
    await webhook.process.call('decisionTimes', { reset: true }, 10_000);
    const before = await webhook.process.call('registryRequests', null, 10_000);
    const times: number[] = [];
    for (const pod of pods.slice(1 + WARMUP_ADMISSIONS)) times.push((await admit(pod, 'cold admission')).ms);
    const server = await webhook.process.call('decisionTimes', { reset: true }, 10_000);
    const requests = difference(await webhook.process.call('registryRequests', null, 10_000), before);
    const last = images.at(-1) as ImageName;
    const { source, cache, mirror } = context.topology;
    const heads = Math.min(plan.coldAdmissions, 100);
    return {
      registryHead: {
        source: await registryHead(context, source, last, heads),
        cache: await registryHead(context, cache, last, heads),
        mirror: await registryHead(context, mirror, last, heads),
      },
      first: { clientMs: first.ms, serverMs: firstServer.summary.max, readyMs: webhook.readyMs },
      client: summarize(times),
      server: server.summary,
      admissions: times.length,
      registryRequestsPerAdmission: sum(requests, 'ping') / Math.max(1, times.length),
    };
  } finally {
    await client.close();
  }
}

async function registryLoad(
  context: BenchContext,
  webhook: Webhook,
  template: Review,
  pods: number,
  set: number,
) {
  const { plan, caPem, topology } = context;
  // Each run has its own K images, so that it starts with cold caches as the first did.
  const repositoryOf = (k: number) => `load/set-${set}/img-${k}`;
  const images = Array.from({ length: plan.loadImages }, (_, k) => ({
    repository: repositoryOf(k),
    tag: 'v1',
  }));
  await pushImages([topology.source, topology.cache, topology.mirror], images);
  // Pod p's container s runs image (7p + 3s) mod K: every pod mixes several of the K images. Built one by one
  // as they are sent, so that ten thousand pods never sit in memory at once.
  const podOf = (pod: number) =>
    withImages(
      template,
      (_image, site) => `${topology.source.host}/${repositoryOf((7 * pod + 3 * site) % plan.loadImages)}:v1`,
    );

  progress(
    `registry load: ${pods} pods sharing ${plan.loadImages} images, ${plan.loadConcurrency} at a time`,
  );
  const client = new AdmissionClient(webhook.port, caPem, plan.loadConcurrency);
  try {
    await client.connect(plan.loadConcurrency);
    const sites = containersOf(template).length;
    const before = await webhook.process.call('registryRequests', null, 10_000);
    const started = performance.now();
    const indices = Array.from({ length: pods }, (_, pod) => pod);
    await inPool(indices, plan.loadConcurrency, async (pod) => {
      const { response } = await client.admit(withFreshUid(podOf(pod)));
      expectAllRouted(response, sites, 'registry load admission');
    });
    const seconds = (performance.now() - started) / 1000;
    const byOperation = difference(await webhook.process.call('registryRequests', null, 10_000), before);
    return {
      pods,
      images: plan.loadImages,
      concurrency: plan.loadConcurrency,
      registryRequests: sum(byOperation, 'ping'),
      byOperation,
      seconds,
    };
  } finally {
    await client.close();
  }
}

export async function coldPathAndRegistryLoad(context: BenchContext): Promise<ColdAndLoadResult> {
  const { topology } = context;
  // The 12 KB pod, its images under the cold route. Probes every 60 s: none falls inside a measured stretch,
  // so every registry request counted is one the admissions caused.
  const template = grownTo(
    withImages(loadReview(SMALL_FIXTURE), (image) => relocate(image, location(topology.source, 'cold'))),
    12_000,
  );
  const config = await configFor(topology, ['cold', 'load'], { probe: { intervalSeconds: 60 } });
  const { cache, routes } = Config.parse(config);
  const webhook = await startWebhook('webhook (cold path)', config, context);
  try {
    await webhook.waitHealthy([topology.source.host, topology.cache.host, topology.mirror.host]);
    const cold = await coldPath(context, webhook, template);
    const load: LoadRun[] = [];
    for (const [set, pods] of context.plan.loadPods.entries()) {
      load.push(await registryLoad(context, webhook, template, pods, set));
    }
    return {
      cold,
      load,
      locationsPerImage: routes[0]?.registries.length ?? 0,
      tagTtlSeconds: cache.tagTtlSeconds,
    };
  } finally {
    await webhook.stop();
  }
}
