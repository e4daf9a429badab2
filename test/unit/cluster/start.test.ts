// The cluster parts' lifecycle against hand-written Kubernetes API answers on loopback: readiness after the first
// lists (bounded), the settings that turn each part on and off, and a clean stop.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { type ClusterRuntime, startCluster } from '../../../src/cluster/start.js';
import { Config, type ConfigInput } from '../../../src/config/schema.js';
import { createStateHandle, type LiveStateHandle } from '../../../src/state/create.js';
import { type ApiRequest, answer, FakeApiserver, fixture } from '../kube/fake-apiserver.js';

const NAMESPACES = '/api/v1/namespaces';
const PODS = '/api/v1/namespaces/team-a/pods';
const listing = (path: string) => (r: ApiRequest) => r.path === path && r.query.get('watch') !== 'true';

let fake: FakeApiserver;
let handle: LiveStateHandle;
let runtime: ClusterRuntime | undefined;

function configOf(cluster: ConfigInput['cluster'] = {}): Config {
  return Config.parse({
    routes: [{ prefix: 'registry.example.com/team', registries: ['registry.example.com/team'] }],
    cluster: { enabled: true, warm: { enabled: false }, ...cluster },
  });
}

/** A list answer held back until `release()`: the API server is slow to list. */
function heldBack(reply: ReturnType<typeof answer>) {
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let calls = 0;
  return {
    release,
    /** The backoff's sleep: the first retry waits for release(). */
    sleep: async () => {
      if (calls++ === 0) await released;
    },
    reply,
  };
}

function start(config: Config, kubeConfig = fake.kubeConfig(), sleep = async () => {}): ClusterRuntime {
  handle = createStateHandle(config, pino({ level: 'silent' }), { probe: false });
  runtime = startCluster({
    kubeConfig,
    settings: config.cluster,
    current: () => ({ config, handle }),
    log: pino({ level: 'silent' }),
    backoff: { baseMs: 1, maxMs: 1, attempts: 1, random: () => 0, sleep },
    repairTickMs: 3_600_000,
    relearnMs: 3_600_000,
  });
  return runtime;
}

describe('the cluster parts, against hand-written Kubernetes API answers', () => {
  beforeEach(async () => {
    fake = await FakeApiserver.start();
    const list = fixture('namespace-list.json');
    fake.on('GET', NAMESPACES, { status: 200, body: { ...list, items: [list.items[0]] } });
    fake.on('GET', PODS, answer(200, 'pod-list-team-a.json'));
  });

  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
    await handle?.close();
    await fake.close();
  });

  it('is not ready until the pods of opted-in namespaces have been listed', async () => {
    // The first pod list fails (500); its retry waits until the test lets it go.
    const held = heldBack(answer(500, 'status-internalerror.json'));
    fake.on('GET', PODS, held.reply, answer(200, 'pod-list-team-a.json'));
    const cluster = start(configOf({ readyTimeoutSeconds: 600 }), fake.kubeConfig(), held.sleep);
    await fake.waitFor(listing(PODS));
    assert.equal(cluster.ready(), false);
    held.release();
    await cluster.whenReady;
    assert.equal(cluster.ready(), true);
    assert.equal(cluster.pods.size, 2);
    assert.equal(fake.requests.filter(listing(PODS)).length, 2);
  });

  it('is ready after readyTimeoutSeconds when the API server cannot be reached', async () => {
    const unreachable = new KubeConfig();
    unreachable.loadFromOptions({
      clusters: [{ name: 'gone', server: 'http://127.0.0.1:9', skipTLSVerify: true }],
      users: [{ name: 'regroute' }],
      contexts: [{ name: 'gone', cluster: 'gone', user: 'regroute' }],
      currentContext: 'gone',
    });
    const cluster = start(configOf({ readyTimeoutSeconds: 0.05 }), unreachable);
    await cluster.whenReady;
    assert.equal(cluster.ready(), true);
    assert.equal(cluster.pods.synced(), false);
  });

  it('watches pods but neither patches nor lists workloads with repair and warm-up off', async () => {
    const cluster = start(configOf({ repair: { enabled: false }, warm: { enabled: false } }));
    await cluster.whenReady;
    await cluster.repairNow();
    assert.equal(await cluster.warmNow(), undefined);
    assert.deepEqual([...new Set(fake.requests.map((r) => `${r.method} ${r.path}`))].sort(), [
      `GET ${NAMESPACES}`,
      `GET ${PODS}`,
    ]);
  });

  it('stops its watches', async () => {
    const cluster = start(configOf());
    await cluster.whenReady;
    const watch = await fake.waitForWatch(PODS);
    await cluster.stop();
    runtime = undefined;
    await watch.closed;
  });
});

describe('cluster settings', () => {
  it('are off by default, so that a run outside a cluster contacts no API server', () => {
    const before = process.env.REGROUTE_CLUSTER;
    delete process.env.REGROUTE_CLUSTER;
    try {
      const { cluster } = Config.parse({});
      assert.equal(cluster.enabled, false);
      assert.deepEqual(
        [cluster.learn.enabled, cluster.warm.enabled, cluster.repair.enabled],
        [true, true, true],
        'each part on once the cluster parts are',
      );
    } finally {
      if (before !== undefined) process.env.REGROUTE_CLUSTER = before;
    }
  });

  it('are turned on by REGROUTE_CLUSTER=true, and off again by the config file', () => {
    const before = process.env.REGROUTE_CLUSTER;
    process.env.REGROUTE_CLUSTER = 'true';
    try {
      assert.equal(Config.parse({}).cluster.enabled, true);
      assert.equal(Config.parse({ cluster: { enabled: false } }).cluster.enabled, false);
    } finally {
      if (before === undefined) delete process.env.REGROUTE_CLUSTER;
      else process.env.REGROUTE_CLUSTER = before;
    }
  });

  it('refuse unknown fields and rates that are not positive', () => {
    assert.throws(() => Config.parse({ cluster: { repair: { ratePerMinut: 5 } } }), /ratePerMinut/);
    assert.throws(() => Config.parse({ cluster: { warm: { ratePerSecond: 0 } } }));
    assert.equal(
      Config.parse({ registries: { 'cache.example.com': { pullThroughCache: true } } }).registries[
        'cache.example.com'
      ]?.pullThroughCache,
      true,
    );
  });
});
