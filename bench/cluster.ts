// The cluster parts' figures: memory per watched pod (10,000 pods), API requests per pod event, and the time from a
// registry being marked down to a stuck pod's patch. Real registries (the integration-test harness) and the
// loopback stand-in for the API server the tests use, all in this process.
//
//   node --expose-gc --import tsx bench/cluster.ts [--pods 10000] [--rounds 5]
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { type ClusterRuntime, startCluster } from '../src/cluster/start.js';
import { Config } from '../src/config/schema.js';
import { coreApi } from '../src/kube/client.js';
import { watchClusterPods } from '../src/kube/cluster-pods.js';
import { Interner, podRecord } from '../src/kube/pod-record.js';
import { createStateHandle } from '../src/state/create.js';
import { pushIndexToAll, startHarness } from '../test/harness/index.js';
import { type ApiRequest, FakeApiserver, fixture, patchable } from '../test/unit/kube/fake-apiserver.js';

const { values } = parseArgs({
  options: { pods: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '5' } },
});
const POD_COUNT = Number(values.pods);
const ROUNDS = Number(values.rounds);
const silent = pino({ level: 'silent' });
const noBackoff = { baseMs: 1, maxMs: 4, attempts: 2, random: () => 0.5, sleep: (ms: number) => delay(ms) };

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
async function heapUsed(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc?.();
    await delay(20);
  }
  return process.memoryUsage().heapUsed;
}

/** A realistic pod of a fleet: 50 workloads, each of 3 containers (an init container, the app, a sidecar). */
function fleetPod(i: number, registry = 'registry.example.com') {
  const pod = fixture('pod-team-a-web-running.json');
  const workload = `app-${i % 50}`;
  const hex = i.toString(16).padStart(8, '0');
  pod.metadata.name = `${workload}-6d9f7c5b8-${hex}`;
  pod.metadata.generateName = `${workload}-6d9f7c5b8-`;
  pod.metadata.uid = `${hex}-3c4a-4e7f-9b0d-1a2c3e4f5a6b`;
  pod.metadata.resourceVersion = String(100_000 + i);
  pod.metadata.labels.app = workload;
  pod.metadata.ownerReferences[0].name = `${workload}-6d9f7c5b8`;
  pod.spec.containers[0].image = `${registry}/team/${workload}:1.${i % 4}`;
  pod.spec.initContainers[0].image = `${registry}/team/${workload}-migrate:7`;
  const web = pod.status.containerStatuses.find((s: { name: string }) => s.name === 'web');
  web.image = pod.spec.containers[0].image;
  web.imageID = `${registry}/team/${workload}@sha256:${(i % 200).toString(16).padStart(64, 'a')}`;
  pod.status.initContainerStatuses[0].imageID = `${registry}/team/${workload}-migrate@sha256:${'7'.repeat(64)}`;
  pod.status.podIP = `10.244.${(i >> 8) & 255}.${i & 255}`;
  return pod;
}

const item = (pod: Record<string, unknown>) => {
  const { kind: _k, apiVersion: _a, ...rest } = pod;
  return rest;
};

/** Bytes of heap per pod kept, measured twice: records alone, and the whole list + watch path. */
async function memoryPerPod(): Promise<{ recordBytes: number; watchedBytes: number; jsonBytes: number }> {
  const jsonBytes = JSON.stringify(fleetPod(1)).length;
  const interner = new Interner();
  const kept = new Map<string, unknown>();
  const before = await heapUsed();
  for (let i = 0; i < POD_COUNT; i++) {
    const record = podRecord(fleetPod(i), interner);
    if (record) kept.set(`${record.namespace}/${record.name}`, record);
  }
  const recordBytes = ((await heapUsed()) - before) / POD_COUNT;
  kept.clear();

  const fake = await FakeApiserver.start();
  const pageSize = 500;
  const list = fixture('namespace-list.json');
  fake.on('GET', '/api/v1/namespaces', { status: 200, body: { ...list, items: [list.items[0]] } });
  // Pages made on demand, so that the stand-in holds no pod while the heap is measured.
  fake.on('GET', '/api/v1/namespaces/team-a/pods', (request) => {
    const start = Number(request.query.get('continue') ?? '0');
    const end = Math.min(POD_COUNT, start + pageSize);
    const items = Array.from({ length: end - start }, (_, k) => item(fleetPod(start + k)));
    return {
      status: 200,
      body: {
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: { resourceVersion: '200000', ...(end < POD_COUNT ? { continue: String(end) } : {}) },
        items,
      },
    };
  });
  const stopping = new AbortController();
  const baseline = await heapUsed();
  const pods = watchClusterPods({
    kubeConfig: fake.kubeConfig(),
    core: coreApi(fake.kubeConfig(), 30_000, stopping.signal),
    log: silent,
    backoff: noBackoff,
    onChange: () => {},
  });
  await pods.whenSynced(AbortSignal.timeout(120_000));
  fake.requests.length = 0;
  const watchedBytes = ((await heapUsed()) - baseline) / pods.size;
  await pods.stop();
  await fake.close();
  return { recordBytes, watchedBytes, jsonBytes };
}

/** Registries, API server and a cluster runtime with the default probe settings, as a replica runs them. */
async function outageRig() {
  const harness = await startHarness();
  const origin = await harness.startRegistry({ name: 'source' });
  const source = await harness.startFaultProxy(origin);
  const mirror = await harness.startRegistry({ name: 'mirror' });
  const image = await pushIndexToAll([source, mirror], 'team/web', 'v1');
  const config = Config.parse({
    registries: { [source.host]: { caFile: harness.caFile }, [mirror.host]: { caFile: harness.caFile } },
    routes: [{ prefix: `${source.host}/team`, registries: [`${source.host}/team`, `${mirror.host}/team`] }],
    cluster: { enabled: true, warm: { enabled: false }, repair: { ratePerMinute: 6000 } },
  });
  const handle = createStateHandle(config, silent);
  const fake = await FakeApiserver.start();
  const list = fixture('namespace-list.json');
  const running = Array.from({ length: 100 }, (_, i) => fleetPod(i, source.host));
  fake
    .on('GET', '/api/v1/namespaces', { status: 200, body: { ...list, items: [list.items[0]] } })
    .on('GET', '/api/v1/namespaces/team-a/pods', {
      status: 200,
      body: {
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: { resourceVersion: '200000' },
        items: running.map(item),
      },
    })
    .on('POST', '/api/v1/namespaces/team-a/events', (request) => ({ status: 201, body: request.body }));
  const cluster: ClusterRuntime = startCluster({
    kubeConfig: fake.kubeConfig(),
    settings: config.cluster,
    current: () => ({ config, handle }),
    log: silent,
    backoff: noBackoff,
  });
  await cluster.whenReady;
  const stop = async () => {
    await cluster.stop();
    await handle.close();
    await fake.close();
    await harness.stop();
  };
  return {
    source,
    fake,
    handle,
    cluster,
    running,
    image: `${source.host}/team/web:v1`,
    digest: image.digest,
    stop,
  };
}

const apiCalls = (requests: ApiRequest[]) => requests.filter((r) => r.query.get('watch') !== 'true');

async function main() {
  const memory = await memoryPerPod();
  const rig = await outageRig();
  const { fake, source, handle } = rig;
  const watch = await fake.waitForWatch('/api/v1/namespaces/team-a/pods');

  // API requests per pod event: status changes of running pods, as the kubelet sends them all day.
  fake.requests.length = 0;
  const EVENTS = 1000;
  for (let i = 0; i < EVENTS; i++) {
    const pod = rig.running[i % rig.running.length];
    pod.metadata.resourceVersion = String(300_000 + i);
    watch.send({ type: 'MODIFIED', object: pod });
  }
  while (
    rig.cluster.pods.get(`team-a/${rig.running[(EVENTS - 1) % 100].metadata.name}`)?.resourceVersion !==
    String(300_000 + EVENTS - 1)
  )
    await delay(5);
  await rig.cluster.repairNow();
  const perRoutineEvent = apiCalls(fake.requests).length / EVENTS;

  // Time from the source being marked down to a stuck pod's patch, over rounds.
  const markedToPatch: number[] = [];
  const faultToPatch: number[] = [];
  let perStuckPod = 0;
  for (let round = 0; round < ROUNDS; round++) {
    await source.setMode('pass');
    while (handle.tracker.health(source.host) !== 'healthy') await delay(5);
    const name = `web-6d9f7c5b8-r${round}`;
    const stuck = fixture('pod-team-a-web-stuck.json');
    stuck.metadata.name = name;
    stuck.metadata.resourceVersion = String(400_000 + round);
    stuck.spec.containers[0].image = rig.image;
    const pod = patchable(stuck);
    const path = `/api/v1/namespaces/team-a/pods/${name}`;
    fake.on('PATCH', path, pod.respond);
    watch.send({ type: 'ADDED', object: stuck });
    while (!rig.cluster.pods.get(`team-a/${name}`)) await delay(5);
    // Looked at while the source is up: nothing to do, and the source's digest for the tag is known.
    await rig.cluster.repairNow();
    fake.requests.length = 0;
    const faultAt = performance.now();
    await source.setMode('refuse');
    while (handle.tracker.health(source.host) !== 'unhealthy') await delay(2);
    const markedAt = performance.now();
    await fake.waitFor((r) => r.method === 'PATCH' && r.path === path);
    const patchedAt = performance.now();
    markedToPatch.push(patchedAt - markedAt);
    faultToPatch.push(patchedAt - faultAt);
    await fake.waitFor((r) => r.method === 'POST' && r.path.endsWith('/events'));
    perStuckPod = apiCalls(fake.requests).length;
    watch.send({ type: 'DELETED', object: pod.current() });
  }
  await rig.stop();

  const ms = (values: number[]) => values.map((v) => Math.round(v));
  const max = (values: number[]) => Math.round(Math.max(...values));
  const figures = {
    podsMeasured: POD_COUNT,
    bytesPerPodRecord: Math.round(memory.recordBytes),
    bytesPerWatchedPod: Math.round(memory.watchedBytes),
    mbPer10000WatchedPods: Math.round((memory.watchedBytes * 10_000) / 1e5) / 10,
    podJsonBytes: memory.jsonBytes,
    apiRequestsPerRoutinePodEvent: perRoutineEvent,
    apiRequestsPerRepairedPod: perStuckPod,
    markedDownToPatchMs: ms(markedToPatch),
    markedDownToPatchMaxMs: max(markedToPatch),
    faultToPatchMs: ms(faultToPatch),
    faultToPatchMaxMs: max(faultToPatch),
    rssMb: Math.round(process.memoryUsage().rss / 1e6),
  };
  for (const [name, value] of Object.entries(figures))
    console.log(`${name.padEnd(32)} ${JSON.stringify(value)}`);
  console.log(JSON.stringify(figures));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
