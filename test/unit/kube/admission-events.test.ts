// Events on pods rerouted at admission: what each says and is attached to, built from the corpus reviews, and the
// posting against hand-written Kubernetes API answers replayed by a loopback server, off the admission path.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { type MutateOutcome, mutate } from '../../../src/admission/mutate.js';
import { imageSites } from '../../../src/admission/pod.js';
import { type AdmissionRequest, decodeReview } from '../../../src/admission/review.js';
import { parseConfig } from '../../../src/config/load.js';
import {
  admissionEvent,
  MAX_MESSAGE_CHARS,
  REROUTED_AT_ADMISSION,
} from '../../../src/kube/admission-event.js';
import { AdmissionEvents, EventMetrics, startAdmissionEvents } from '../../../src/kube/admission-events.js';
import { parseReference } from '../../../src/reference/index.js';
import { matchRoute } from '../../../src/routing/route.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { digestOf } from '../../helpers/digests.js';
import { fixture as admissionFixture } from '../../helpers/fixtures.js';
import { answer, created, FakeApiserver } from './fake-apiserver.js';

const MIRROR = 'mirror.local:5000';
const HOSTS = ['docker.io', 'quay.io', 'ghcr.io', 'fra.ocir.io', 'registry.local:5000'];
const config = parseConfig(
  {
    routes: HOSTS.map((prefix) => ({
      prefix,
      registries: [prefix, `${MIRROR}/${prefix.replace(':', '-')}`],
    })),
  },
  'test',
);
const EVENTS = '/api/v1/namespaces/shop/events';
const NOW = new Date('2026-12-01T10:00:00Z');
const INSTANCE = 'regroute-5f7d9c-abcde';

const request = (name: string): AdmissionRequest => {
  const decoded = decodeReview(admissionFixture(`admission/${name}`));
  assert.ok(decoded.ok, name);
  return decoded.review.request;
};

/**
 * The review's outcome in a world where `down` registries are down and the mirror holds every image of the pod:
 * each of their images is rerouted (source-unhealthy); with nothing down, the pod stays as it is.
 */
async function outcomeOf(req: AdmissionRequest, down: readonly string[] = HOSTS): Promise<MutateOutcome> {
  const state = new MemoryState().setHealth(MIRROR, 'healthy');
  for (const host of HOSTS) state.setHealth(host, down.includes(host) ? 'unhealthy' : 'healthy');
  for (const site of imageSites(req.object)) {
    const parsed = parseReference(String(site.image));
    if (!parsed.ok) continue;
    const match = matchRoute(parsed.reference, config.routes);
    if (!match) continue;
    const { tag, digest } = parsed.reference;
    const content = digest ?? digestOf(`${parsed.reference.registry}/${parsed.reference.repository}:${tag}`);
    state
      .putTag(match.source, tag ?? 'latest', content)
      .putLastKnownTag(match.source, tag ?? 'latest', content);
    state.putManifest(match.source, content);
    for (const candidate of match.candidates) state.putManifest(candidate, content);
  }
  return mutate(req, { config, state }, new AbortController().signal);
}

const context = { now: NOW, instance: INSTANCE };

describe('the Event of a pod rerouted at admission', () => {
  it('names a named pod by namespace and name (it has no uid yet), its controller as the related object', async () => {
    const req = request('pod-create-sidecar.json');
    const made = admissionEvent(req, await outcomeOf(req), context);
    assert.ok(made && typeof made === 'object');
    assert.equal(made.namespace, 'shop');
    const { event } = made;
    assert.deepEqual(event.involvedObject, {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'api-0',
      namespace: 'shop',
    });
    assert.deepEqual(event.related, {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      name: 'api',
      uid: '6c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f',
      namespace: 'shop',
    });
    assert.equal(event.reason, REROUTED_AT_ADMISSION);
    assert.equal(event.type, 'Warning', 'the sources were down');
    assert.match(event.metadata?.name ?? '', /^api-0\.regroute-[0-9a-f]{8}$/);
    assert.match(event.message ?? '', /^regroute rerouted 4 images of pod api-0 at admission: /);
    assert.match(
      event.message ?? '',
      /containers\/cache docker\.io\/library\/redis:7\.4 -> mirror\.local:5000\/docker\.io\/library\/redis:7\.4@sha256:[0-9a-f]{64} \(source-unhealthy\)/,
    );
    assert.equal(event.reportingInstance, INSTANCE);
  });

  it('attaches a pod made from generateName to its controller, which kubectl describe lists it under', async () => {
    const req = request('pod-create-replicaset.json');
    const made = admissionEvent(req, await outcomeOf(req, ['docker.io']), context);
    assert.ok(made && typeof made === 'object');
    assert.equal(made.event.involvedObject.kind, 'ReplicaSet');
    assert.equal(made.event.involvedObject.name, 'web-7d4b9c8f6');
    assert.ok(made.event.involvedObject.uid, 'with its uid, so that describe finds it');
    assert.equal(made.event.related, undefined);
    assert.match(
      made.event.message ?? '',
      /^regroute rerouted 2 images of pod web-7d4b9c8f6-\* at admission: /,
    );
  });

  it('names the pod of a new ephemeral container with its uid, which it has by then', async () => {
    const req = request('pod-ephemeral-update.json');
    const object = req.object as { spec: Record<string, unknown> };
    object.spec.imagePullSecrets = [{ name: 'mirror-pull' }];
    const made = admissionEvent(req, await outcomeOf(req), context);
    assert.ok(made && typeof made === 'object');
    assert.deepEqual(made.event.involvedObject, {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'api-0',
      namespace: 'shop',
      uid: '11111111-2222-4333-8444-555555555555',
    });
  });

  it('is Normal when the pod moved to a preferred mirror with its source up', async () => {
    const preferred = parseConfig(
      { routes: [{ prefix: 'docker.io', registries: [`${MIRROR}/hub`, 'docker.io'] }] },
      'test',
    );
    const req = request('pod-create-replicaset.json');
    const state = new MemoryState().setHealth('docker.io', 'healthy').setHealth(MIRROR, 'healthy');
    for (const [repository, tag] of [
      ['library/nginx', '1.27'],
      ['library/busybox', 'latest'],
    ] as const) {
      const content = digestOf(repository);
      state.putTag({ registry: 'docker.io', repository }, tag, content);
      state.putManifest({ registry: MIRROR, repository: `hub/${repository}` }, content);
    }
    const outcome = await mutate(req, { config: preferred, state }, new AbortController().signal);
    const made = admissionEvent(req, outcome, context);
    assert.ok(made && typeof made === 'object');
    assert.equal(made.event.type, 'Normal');
    assert.match(made.event.message ?? '', /\(preferred-candidate\)/);
  });

  it('is never made for a dry run, nor for a pod nothing was rewritten in', async () => {
    const dry = request('pod-create-dryrun.json');
    assert.equal(admissionEvent(dry, await outcomeOf(dry), context), 'dry-run');
    const healthy = request('pod-create-replicaset.json');
    assert.equal(admissionEvent(healthy, await outcomeOf(healthy, []), context), null);
  });

  it('is skipped for a pod with neither a name nor a controller to attach it to', async () => {
    const req = request('pod-create-replicaset.json');
    delete (req.object as { metadata: Record<string, unknown> }).metadata.ownerReferences;
    assert.equal(admissionEvent(req, await outcomeOf(req), context), 'unnamed');
  });

  it('keeps its message under the bound for a pod of hundreds of images, counting those left out', async () => {
    const req = request('pod-create-sidecar.json');
    const object = req.object as { spec: { containers: { name: string; image: string }[] } };
    object.spec.containers = Array.from({ length: 200 }, (_, i) => ({
      name: `c${i}`,
      image: `quay.io/team/app${i}:v1`,
    }));
    const made = admissionEvent(req, await outcomeOf(req), context);
    assert.ok(made && typeof made === 'object');
    const message = made.event.message ?? '';
    assert.ok(message.length <= MAX_MESSAGE_CHARS, `${message.length}`);
    assert.match(message, /; … \d+ more in regroute's audit log$/);
  });
});

describe('posting Events, against a loopback replay of the Kubernetes API', () => {
  let fake: FakeApiserver;
  let registry: Registry;
  let logs: Record<string, unknown>[];
  const log = () => pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const counted = async (outcome: string) => {
    const metric = await registry.getSingleMetric('regroute_admission_events_total')?.get();
    return metric?.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  };

  beforeEach(async () => {
    fake = await FakeApiserver.start();
    registry = new Registry();
    logs = [];
  });
  afterEach(() => fake.close());

  it('posts a core/v1 Event in the pod’s namespace after the answer, and counts it posted', async () => {
    fake.on('POST', EVENTS, created);
    const events = startAdmissionEvents({
      kubeConfig: fake.kubeConfig(),
      log: log(),
      registry,
      instance: INSTANCE,
    });
    const req = request('pod-create-sidecar.json');
    events.offer(req, await outcomeOf(req));
    assert.equal(fake.requests.length, 0, 'offer returns before anything is sent');
    await events.idle();
    const posted = await fake.waitFor((r) => r.method === 'POST' && r.path === EVENTS);
    assert.equal(posted.body.kind, 'Event');
    assert.equal(posted.body.reason, 'Rerouted');
    assert.deepEqual(posted.body.involvedObject, {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'api-0',
      namespace: 'shop',
    });
    assert.equal(await counted('posted'), 1);
    await events.stop();
  });

  it('tries a failing apiserver a few times, then gives the Event up, counted failed and logged', async () => {
    fake.on('POST', EVENTS, answer(500, 'status-internalerror.json'));
    const events = startAdmissionEvents({ kubeConfig: fake.kubeConfig(), log: log(), registry });
    const req = request('pod-create-sidecar.json');
    events.offer(req, await outcomeOf(req));
    await events.idle();
    assert.equal(fake.requests.filter((r) => r.path === EVENTS).length, 3, 'three tries, no more');
    assert.equal(await counted('failed'), 1);
    assert.ok(logs.some((l) => l.msg === 'could not post the Event of a rerouted pod' && l.status === 500));
    await events.stop();
  });

  it('takes a 409 AlreadyExists (the same Event posted before) as done', async () => {
    fake.on('POST', EVENTS, answer(409, 'status-alreadyexists.json'));
    const events = startAdmissionEvents({ kubeConfig: fake.kubeConfig(), log: log(), registry });
    const req = request('pod-create-sidecar.json');
    events.offer(req, await outcomeOf(req));
    await events.idle();
    assert.equal(await counted('posted'), 1);
    await events.stop();
  });

  it('counts a dry run skipped and posts nothing', async () => {
    fake.on('POST', EVENTS, created);
    const events = startAdmissionEvents({ kubeConfig: fake.kubeConfig(), log: log(), registry });
    const req = request('pod-create-dryrun.json');
    events.offer(req, await outcomeOf(req));
    await events.idle();
    assert.equal(fake.requests.length, 0);
    assert.equal(await counted('skipped'), 1);
    await events.stop();
  });
});

describe('the Event queue', () => {
  it('never waits on the apiserver: past its capacity it drops and counts, and stop() drops what waits', async () => {
    const registry = new Registry();
    const metrics = new EventMetrics(registry);
    const hung: (() => void)[] = [];
    let aborted = false;
    const events = new AdmissionEvents({
      post: () =>
        new Promise((resolve) => {
          hung.push(() => resolve({ ok: false, failure: { reason: 'AbortError' } }));
        }),
      log: pino({ level: 'silent' }),
      capacity: 3,
      concurrency: 1,
      metrics,
      abort: () => {
        aborted = true;
        for (const end of hung) end();
      },
    });
    const req = request('pod-create-sidecar.json');
    const outcome = await outcomeOf(req);
    const started = performance.now();
    for (let i = 0; i < 10; i++) events.offer(req, outcome);
    assert.ok(performance.now() - started < 50, 'ten offers return at once');
    const value = async (outcome: string) =>
      (await metrics.events.get()).values.find((v) => v.labels.outcome === outcome)?.value;
    assert.equal(events.pending, 4, 'one being posted, three waiting');
    assert.equal(await value('dropped'), 6);
    assert.equal((await metrics.queued.get()).values[0]?.value, 3);
    await events.stop();
    assert.ok(aborted, 'the post under way is cut short');
    assert.equal(await value('dropped'), 9, 'those waiting are dropped at stop');
    assert.equal(await value('failed'), 1);
    events.offer(req, outcome);
    assert.equal(await value('dropped'), 10, 'nothing is taken once stopped');
  });

  it('gives the Events still waiting at stop a grace to go out, and drops none that made it', async () => {
    const registry = new Registry();
    const metrics = new EventMetrics(registry);
    const events = new AdmissionEvents({
      post: () => new Promise((resolve) => setTimeout(() => resolve({ ok: true, value: undefined }), 20)),
      log: pino({ level: 'silent' }),
      concurrency: 1,
      metrics,
    });
    const req = request('pod-create-sidecar.json');
    const outcome = await outcomeOf(req);
    for (let i = 0; i < 3; i++) events.offer(req, outcome);
    await events.stop(5_000);
    const value = async (outcome: string) =>
      (await metrics.events.get()).values.find((v) => v.labels.outcome === outcome)?.value;
    assert.equal(await value('posted'), 3);
    assert.equal(await value('dropped'), 0);
  });

  it('survives a post that throws, and a review it cannot read', async () => {
    const registry = new Registry();
    const metrics = new EventMetrics(registry);
    const events = new AdmissionEvents({
      post: () => Promise.reject(new Error('boom')),
      log: pino({ level: 'silent' }),
      metrics,
    });
    const req = request('pod-create-sidecar.json');
    events.offer(req, await outcomeOf(req));
    events.offer(req, {
      response: { uid: 'x', allowed: true, patch: 'W10=' },
      skipped: null,
    } as unknown as MutateOutcome);
    await events.idle();
    assert.equal((await metrics.events.get()).values.find((v) => v.labels.outcome === 'failed')?.value, 1);
  });
});
