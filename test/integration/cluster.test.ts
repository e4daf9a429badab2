// No pod left behind, against real registries (distribution 2.8 on loopback) and hand-written Kubernetes API answers
// replayed by a loopback stand-in for the API server: what regroute learns from running pods when it starts during an
// outage, the stuck pods it repairs, the ones it cannot help, and the pull-through cache its warm-up fills.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { mutate } from '../../src/admission/mutate.js';
import { type AdmissionRequest, decodeReview } from '../../src/admission/review.js';
import { type ClusterRuntime, startCluster } from '../../src/cluster/start.js';
import { Config, type ConfigInput } from '../../src/config/schema.js';
import { createStateHandle, type LiveStateHandle } from '../../src/state/create.js';
import {
  ACCEPT_ALL_MANIFESTS,
  type FaultProxy,
  type Harness,
  type PushedIndex,
  pushImage,
  pushIndex,
  pushIndexToAll,
  type Registry,
  registryRequest,
  startHarness,
} from '../harness/index.js';
import { fixture as admissionFixture } from '../helpers/fixtures.js';
import { type ApiRequest, created, FakeApiserver, fixture, patchable } from '../unit/kube/fake-apiserver.js';

const NAMESPACES = '/api/v1/namespaces';
const PODS = '/api/v1/namespaces/team-a/pods';
const EVENTS = '/api/v1/namespaces/team-a/events';
const DEPLOYMENTS = '/apis/apps/v1/namespaces/team-a/deployments';
const is = (method: string, path: string) => (r: ApiRequest) => r.method === method && r.path === path;
const noBackoff = { baseMs: 1, maxMs: 4, attempts: 2, random: () => 0.5, sleep: async () => {} };

/** The hand-written pods, naming the harness's registries. */
function runningPod(name: string, image: string, imageID: string) {
  const pod = fixture('pod-team-a-web-running.json');
  pod.metadata.name = name;
  pod.spec.containers[0].image = image;
  const web = pod.status.containerStatuses.find((s: { name: string }) => s.name === 'web');
  web.image = image;
  web.imageID = imageID;
  return pod;
}

function stuckPod(name: string, image: string, edit: (pod: ReturnType<typeof fixture>) => void = () => {}) {
  const pod = fixture('pod-team-a-web-stuck.json');
  pod.metadata.name = name;
  pod.spec.containers[0].image = image;
  pod.status.containerStatuses.find((s: { name: string }) => s.name === 'web').image = image;
  edit(pod);
  return pod;
}

const podList = (...pods: unknown[]) => ({
  status: 200,
  body: {
    ...fixture('pod-list-empty.json'),
    items: pods.map((pod) => {
      const { kind: _k, apiVersion: _a, ...item } = pod as Record<string, unknown>;
      return item;
    }),
  },
});

describe('no pod left behind, against real registries and hand-written API answers', () => {
  let harness: Harness;
  let source: FaultProxy;
  let good: Registry;
  let cache: Registry;
  /** What the siblings run: pushed to the source and the good mirror, whose tag has moved on since. */
  let siblings: PushedIndex;
  let fake: FakeApiserver;
  const handles: LiveStateHandle[] = [];
  const clusters: ClusterRuntime[] = [];

  before(async () => {
    harness = await startHarness();
    const origin = await harness.startRegistry({ name: 'source' });
    source = await harness.startFaultProxy(origin);
    good = await harness.startRegistry({ name: 'good' });
    // A pull-through cache of the source, through the fault proxy: when the source is down, so is its upstream.
    cache = await harness.startRegistry({ name: 'cache', proxyOf: source });
    siblings = await pushIndexToAll([source, good], 'team/app', 'v1');
    // The mirror's tag now names other content; it still holds the siblings' index by digest.
    await pushImage(good, 'team/app', 'v1');
  });

  after(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
    await Promise.all(handles.map((h) => h.close()));
    await harness?.stop();
  });

  afterEach(async () => {
    await Promise.all(clusters.splice(0).map((c) => c.stop()));
    await fake?.close();
    await source.setMode('pass');
  });

  function config(extra: Partial<ConfigInput> = {}, mirrors: string[] = [good.host]): Config {
    return Config.parse({
      admission: { deadlineMs: 1500, unverifiedTags: 'allow' },
      probe: { timeoutMs: 1000, failureThreshold: 1, successThreshold: 1 },
      registries: Object.fromEntries(
        [source.host, ...mirrors].map((host) => [host, { caFile: harness.caFile }]),
      ),
      routes: [
        {
          prefix: `${source.host}/team`,
          registries: [`${source.host}/team`, ...mirrors.map((m) => `${m}/team`)],
        },
      ],
      cluster: { enabled: true, readyTimeoutSeconds: 60, warm: { enabled: false } },
      ...extra,
    });
  }

  /** A new replica: no cache, no history; probed until each registry has its first verdict. */
  async function replica(cfg: Config): Promise<LiveStateHandle> {
    const handle = createStateHandle(cfg, pino({ level: 'silent' }), { probe: false });
    handles.push(handle);
    for (let round = 0; round < 3; round++) await handle.prober.probeAll();
    return handle;
  }

  async function apiserver(...pods: unknown[]): Promise<FakeApiserver> {
    fake = await FakeApiserver.start();
    const list = fixture('namespace-list.json');
    fake
      .on('GET', NAMESPACES, { status: 200, body: { ...list, items: [list.items[0]] } })
      .on('GET', PODS, podList(...pods))
      .on('POST', EVENTS, created);
    return fake;
  }

  function cluster(cfg: Config, handle: LiveStateHandle): ClusterRuntime {
    const started = startCluster({
      kubeConfig: fake.kubeConfig(),
      settings: cfg.cluster,
      current: () => ({ config: cfg, handle }),
      log: pino({ level: 'silent' }),
      backoff: noBackoff,
      // Ticks and passes are asked for by the tests.
      repairTickMs: 3_600_000,
      relearnMs: 3_600_000,
    });
    clusters.push(started);
    return started;
  }

  function admission(image: string): AdmissionRequest {
    const review = admissionFixture<{
      request: { object: { spec: { containers: unknown[]; initContainers?: unknown } } };
    }>('admission/pod-create-replicaset.json');
    review.request.object.spec.containers = [{ name: 'app', image }];
    delete review.request.object.spec.initContainers;
    const decoded = decodeReview(review);
    assert.ok(decoded.ok);
    return decoded.review.request;
  }

  async function admit(cfg: Config, handle: LiveStateHandle, image: string) {
    const outcome = await mutate(
      admission(image),
      { config: cfg, state: handle.state },
      AbortSignal.timeout(1500),
    );
    return outcome.decisions[0]?.decision;
  }

  it('routes a tag image to the exact digest its siblings run when it restarts during an outage', async () => {
    await source.setMode('refuse');
    const image = `${source.host}/team/app:v1`;
    const cfg = config({
      cluster: {
        enabled: true,
        readyTimeoutSeconds: 60,
        warm: { enabled: false },
        repair: { enabled: false },
      },
    });

    // Without the cluster's word, the mirror's tag speaks, and it names other content than the siblings run.
    const blind = await admit(cfg, await replica(cfg), image);
    assert.equal(blind?.reason, 'unverified-tag');
    assert.notEqual(blind?.digest, siblings.digest);

    // containerd reports the digest the tag resolved to, the index, in imageID.
    await apiserver(
      runningPod('web-6d9f7c5b8-x2x7q', image, `${source.host}/team/app@${siblings.digest}`),
      runningPod('web-6d9f7c5b8-z8p3n', image, `${source.host}/team/app@${siblings.digest}`),
    );
    const handle = await replica(cfg);
    const started = cluster(cfg, handle);
    assert.equal(started.ready(), false);
    await started.whenReady;
    assert.equal(started.ready(), true);
    assert.equal(started.pods.size, 2);

    const decision = await admit(cfg, handle, image);
    assert.equal(decision?.target, `${good.host}/team/app:v1@${siblings.digest}`, JSON.stringify(decision));
    assert.equal(decision?.reason, 'source-unhealthy');
    assert.notEqual(
      decision?.lastKnownAgeMs,
      undefined,
      'pinned to the last-known digest, learned from the cluster',
    );
  });

  it('learns the index, not the one platform manifest CRI-O may report in imageID, when a mirror’s tag names it', async () => {
    const crio = await pushIndexToAll([source, good], 'team/crio', 'v1');
    const [amd64] = crio.images;
    assert.ok(amd64);
    await source.setMode('refuse');
    const image = `${source.host}/team/crio:v1`;
    const cfg = config({
      cluster: {
        enabled: true,
        readyTimeoutSeconds: 60,
        warm: { enabled: false },
        repair: { enabled: false },
      },
    });
    await apiserver(runningPod('web-6d9f7c5b8-x2x7q', image, `${source.host}/team/crio@${amd64.digest}`));
    const handle = await replica(cfg);
    const started = cluster(cfg, handle);
    await started.whenReady;
    const decision = await admit(cfg, handle, image);
    assert.equal(decision?.target, `${good.host}/team/crio:v1@${crio.digest}`, JSON.stringify(decision));
    assert.equal(decision?.reason, 'source-unhealthy');
  });

  it('does not learn a digest that neither the source nor a candidate holds', async () => {
    await source.setMode('refuse');
    const image = `${source.host}/team/app:v1`;
    const cfg = config({
      cluster: {
        enabled: true,
        readyTimeoutSeconds: 60,
        warm: { enabled: false },
        repair: { enabled: false },
      },
    });
    const unknown = `sha256:${'e'.repeat(64)}`;
    await apiserver(runningPod('web-6d9f7c5b8-x2x7q', image, `${source.host}/team/app@${unknown}`));
    const handle = await replica(cfg);
    const started = cluster(cfg, handle);
    await started.whenReady;
    const decision = await admit(cfg, handle, image);
    assert.notEqual(decision?.digest, unknown);
    assert.equal(decision?.reason, 'unverified-tag', 'routed as a replica that knows nothing');
  });

  describe('repair', () => {
    let web: PushedIndex;
    before(async () => {
      web = await pushIndexToAll([source, good], 'team/web', 'v1');
    });

    it('patches a stuck pod once its registry is down and a mirror holds the digest, and records an Event', async () => {
      const image = `${source.host}/team/web:v1`;
      const raw = stuckPod('web-6d9f7c5b8-k9m2p', image);
      const pod = patchable(raw);
      await apiserver(raw);
      fake.on('PATCH', `${PODS}/web-6d9f7c5b8-k9m2p`, pod.respond);
      const cfg = config();
      const handle = await replica(cfg);
      const started = cluster(cfg, handle);
      await started.whenReady;

      // The source is up: the pull failed for another reason, and the source's answer for the tag is kept.
      await started.repairNow();
      assert.equal(fake.requests.filter((r) => r.method === 'PATCH').length, 0);

      await source.setMode('refuse');
      await handle.prober.probeAll();
      assert.equal(handle.tracker.health(source.host), 'unhealthy');
      await started.repairNow();
      const patch = await fake.waitFor(is('PATCH', `${PODS}/web-6d9f7c5b8-k9m2p`));
      assert.deepEqual(patch.body[0], { op: 'replace', path: '/metadata/resourceVersion', value: '71044' });
      assert.equal(pod.current().spec.containers[0].image, `${good.host}/team/web:v1@${web.digest}`);
      assert.equal(pod.current().spec.containers[1].image, raw.spec.containers[1].image);
      assert.deepEqual(JSON.parse(pod.current().metadata.annotations['regroute.io/original-images']), {
        web: image,
      });
      const event = (await fake.waitFor(is('POST', EVENTS))).body;
      assert.equal(event.reason, 'ImageRerouted');
      assert.equal(event.involvedObject.name, 'web-6d9f7c5b8-k9m2p');
    });

    it('records an Event saying why on a stuck pod lacking the pull secret of the mirror that holds the digest', async () => {
      const image = `${source.host}/team/web:v1`;
      await apiserver(stuckPod('web-6d9f7c5b8-k9m2p', image));
      const cfg = config({
        registries: {
          [source.host]: { caFile: harness.caFile },
          [good.host]: { caFile: harness.caFile, pullSecret: 'goodcred' },
        },
      });
      const handle = await replica(cfg);
      const started = cluster(cfg, handle);
      await started.whenReady;
      await started.repairNow(); // learns the source's digest for the tag while it is up
      await source.setMode('refuse');
      await handle.prober.probeAll();
      await started.repairNow();
      const event = (await fake.waitFor(is('POST', EVENTS))).body;
      assert.equal(event.type, 'Warning');
      assert.equal(event.reason, 'ImageNotRerouted');
      assert.match(event.message, /pull secret "goodcred", which the pod does not name/);
      assert.equal(fake.requests.filter((r) => r.method === 'PATCH').length, 0);
    });
  });

  it('fills a pull-through cache with the manifests of a workload’s image, which it then serves with its source down', async () => {
    const cached = await pushIndex(source, 'team/cached', 'v1');
    const image = `${source.host}/team/cached:v1`;
    await apiserver();
    const deployments = fixture('deployment-list-team-a.json');
    deployments.items[0].spec.template.spec.containers[0].image = image;
    fake.on('GET', DEPLOYMENTS, { status: 200, body: deployments });
    const cfg = config({
      registries: {
        [source.host]: { caFile: harness.caFile },
        [cache.host]: { caFile: harness.caFile, pullThroughCache: true },
      },
      routes: [{ prefix: `${source.host}/team`, registries: [`${source.host}/team`, `${cache.host}/team`] }],
      cluster: {
        enabled: true,
        readyTimeoutSeconds: 60,
        warm: { enabled: true, ratePerSecond: 100 },
        repair: { enabled: false },
      },
    });
    const handle = await replica(cfg);
    const started = cluster(cfg, handle);
    await started.whenReady;
    const result = await started.warmNow();
    assert.ok(result);
    assert.equal(result.fills, 1 + cached.images.length, JSON.stringify(result));
    assert.equal(result.fillFailures, 0);

    await source.setMode('refuse');
    for (const digest of [cached.digest, ...cached.images.map((i) => i.digest)]) {
      const served = await registryRequest(cache, 'GET', `/v2/team/cached/manifests/${digest}`, {
        headers: { accept: ACCEPT_ALL_MANIFESTS },
      });
      assert.equal(served.statusCode, 200, `the cache serves ${digest} without its upstream`);
    }
    // Deployments were listed; the other kinds answered 404 here, which the pass counts and goes on.
    assert.ok(fake.requests.some(is('GET', DEPLOYMENTS)));
    assert.ok(result.listFailures > 0);
    assert.ok(fake.requests.every((r) => r.path !== DEPLOYMENTS || r.query.get('limit') === '500'));
  });
});
