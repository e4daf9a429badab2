// The repair controller against hand-written Kubernetes API answers on loopback and registry state set by hand.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { type RepairContext, Repairer, type RepairerOptions } from '../../../src/cluster/repair.js';
import { Config, type ConfigInput } from '../../../src/config/schema.js';
import { coreApi } from '../../../src/kube/client.js';
import { podApi } from '../../../src/kube/pod-api.js';
import { Interner, type PodRecord, podRecord } from '../../../src/kube/pod-record.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import {
  type ApiRequest,
  answer,
  created,
  FakeApiserver,
  fixture,
  patchable,
} from '../kube/fake-apiserver.js';

const DIGEST = `sha256:${'d'.repeat(64)}`;
const SOURCE = { registry: 'registry.example.com', repository: 'team/web' };
const MIRROR = { registry: 'mirror.example.com', repository: 'team/web' };
const BACKUP = { registry: 'backup.example.com', repository: 'team/web' };
const POD = '/api/v1/namespaces/team-a/pods/web-6d9f7c5b8-k9m2p';
const EVENTS = '/api/v1/namespaces/team-a/events';

const is = (method: string, path: string) => (r: ApiRequest) => r.method === method && r.path === path;
const noBackoff = { baseMs: 1, maxMs: 1, attempts: 2, random: () => 0, sleep: async () => {} };

function configOf(extra: Partial<ConfigInput> = {}): Config {
  return Config.parse({
    routes: [
      {
        prefix: 'registry.example.com/team',
        registries: ['registry.example.com/team', 'mirror.example.com/team', 'backup.example.com/team'],
      },
    ],
    ...extra,
  });
}

let fake: FakeApiserver;
let state: MemoryState;
let logs: Record<string, unknown>[];
let interner: Interner;

function repairer(config: Config, options: Partial<RepairerOptions> = {}): Repairer {
  const context: RepairContext = {
    config,
    handle: { state, tracker: { registries: () => ['registry.example.com', 'mirror.example.com'] } },
  };
  return new Repairer({
    current: () => context,
    api: podApi(coreApi(fake.kubeConfig(), 5000, new AbortController().signal), noBackoff),
    log: pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) }),
    ratePerMinute: 60,
    interner,
    instance: 'regroute-5f7d9c-abcde',
    ...options,
  });
}

function stuckPod(edit: (pod: ReturnType<typeof fixture>) => void = () => {}) {
  const raw = fixture('pod-team-a-web-stuck.json');
  edit(raw);
  const record = podRecord(raw, interner);
  assert.ok(record);
  return { raw, record };
}

const signal = () => AbortSignal.timeout(30_000);

describe('repair of stuck pods, against hand-written Kubernetes API answers', () => {
  beforeEach(async () => {
    fake = await FakeApiserver.start();
    fake.on('POST', EVENTS, created);
    logs = [];
    interner = new Interner();
    // The source is down; its digest for the tag is known (a sibling taught it); the mirror holds it.
    state = new MemoryState()
      .setHealth('registry.example.com', 'unhealthy')
      .setHealth('mirror.example.com', 'healthy')
      .setHealth('backup.example.com', 'healthy')
      .putLastKnownTag(SOURCE, '1.4.2', DIGEST)
      .putManifest(MIRROR, DIGEST)
      .putManifest(BACKUP, DIGEST);
  });

  afterEach(() => fake.close());

  it('patches the waiting image to the first healthy candidate holding the digest, with a precondition, an Event and an audit line', async () => {
    const { raw, record } = stuckPod();
    const pod = patchable(raw);
    fake.on('PATCH', POD, pod.respond);
    assert.equal(await repairer(configOf()).repair(record, signal()), 'repaired');

    const patch = await fake.waitFor(is('PATCH', POD));
    assert.equal(patch.headers['content-type'], 'application/json-patch+json');
    assert.equal(patch.query.get('fieldManager'), 'regroute');
    assert.deepEqual(patch.body, [
      { op: 'replace', path: '/metadata/resourceVersion', value: '71044' },
      {
        op: 'replace',
        path: '/spec/containers/0/image',
        value: `mirror.example.com/team/web:1.4.2@${DIGEST}`,
      },
      {
        op: 'add',
        path: '/metadata/annotations/regroute.io~1original-images',
        value: '{"web":"registry.example.com/team/web:1.4.2"}',
      },
    ]);
    assert.equal(
      pod.current().spec.containers[1].image,
      raw.spec.containers[1].image,
      'the running sidecar is as it was',
    );

    const event = (await fake.waitFor(is('POST', EVENTS))).body;
    assert.equal(event.type, 'Normal');
    assert.equal(event.reason, 'ImageRerouted');
    assert.equal(event.involvedObject.fieldPath, 'spec.containers{web}');
    assert.match(
      event.message,
      /moved web from registry\.example\.com\/team\/web:1\.4\.2 to mirror\.example\.com/,
    );
    assert.equal(event.reportingInstance, 'regroute-5f7d9c-abcde');

    const audit = logs.find((l) => l.msg === 'stuck image rerouted')?.audit as Record<string, unknown>;
    assert.deepEqual(
      [audit.action, audit.pod, audit.container, audit.from, audit.to, audit.reason],
      [
        'repair',
        'web-6d9f7c5b8-k9m2p',
        'web',
        'registry.example.com/team/web:1.4.2',
        `mirror.example.com/team/web:1.4.2@${DIGEST}`,
        'source-unhealthy',
      ],
    );
  });

  it('in report mode tells the repair it would make, and patches nothing and posts no Event', async () => {
    const { record } = stuckPod();
    const outcomes: string[] = [];
    const config = configOf({ admission: { mode: 'report' } });
    assert.equal(
      await repairer(config, { onOutcome: (o) => outcomes.push(o) }).repair(record, signal()),
      'reported',
    );
    assert.deepEqual(outcomes, ['reported']);
    assert.equal(fake.requests.filter((r) => r.method !== 'GET').length, 0, 'no patch, no Event');
    const audit = logs.find((l) => l.msg === 'stuck image would be rerouted')?.audit as Record<
      string,
      unknown
    >;
    assert.deepEqual(
      [audit.action, audit.mode, audit.container, audit.to],
      ['repair', 'report', 'web', `mirror.example.com/team/web:1.4.2@${DIGEST}`],
    );
    assert.ok(!logs.some((l) => l.msg === 'stuck image rerouted'));
  });

  it('leaves a pod whose registry is healthy and holds the image: its pull fails for another reason', async () => {
    state.setHealth('registry.example.com', 'healthy').putTag(SOURCE, '1.4.2', DIGEST);
    const { record } = stuckPod();
    assert.equal(await repairer(configOf()).repair(record, signal()), undefined);
    assert.deepEqual(fake.requests, []);
  });

  it('reads the pod again after 409 Conflict and patches it at its new resourceVersion', async () => {
    const { raw, record } = stuckPod();
    const pod = patchable(raw);
    // Another writer (the kubelet's status update) changed the pod after the watch delivered it.
    pod.change((p) => {
      p.metadata.labels.team = 'a';
    });
    const changedAt = pod.current().metadata.resourceVersion;
    fake.on('PATCH', POD, pod.respond).on('GET', POD, () => ({ status: 200, body: pod.current() }));
    const outcomes: string[] = [];
    assert.equal(
      await repairer(configOf(), { onOutcome: (o) => outcomes.push(o) }).repair(record, signal()),
      'repaired',
    );
    assert.deepEqual(
      fake.requests.filter((r) => r.path === POD).map((r) => `${r.method} ${r.body?.[0]?.value ?? ''}`),
      ['PATCH 71044', 'GET ', `PATCH ${changedAt}`],
    );
    assert.deepEqual(outcomes, ['conflict', 'repaired']);
    assert.equal(pod.current().spec.containers[0].image, `mirror.example.com/team/web:1.4.2@${DIGEST}`);
    assert.equal(pod.current().metadata.labels.team, 'a', 'the other change is kept');
  });

  it('counts a pod deleted meanwhile (404) as gone, and records no Event', async () => {
    fake.on('PATCH', POD, answer(404, 'status-notfound-pod.json'));
    const { record } = stuckPod();
    assert.equal(await repairer(configOf()).repair(record, signal()), 'gone');
    assert.equal(fake.requests.filter(is('POST', EVENTS)).length, 0);
  });

  it('records an Event instead when the only candidate holding the digest needs a pull secret the pod lacks', async () => {
    state.putLastKnownTag(SOURCE, '1.4.2', DIGEST);
    const config = configOf({
      routes: [
        {
          prefix: 'registry.example.com/team',
          registries: ['registry.example.com/team', 'mirror.example.com/team'],
        },
      ],
      registries: { 'mirror.example.com': { pullSecret: 'mirrorcred' } },
    });
    const { record } = stuckPod();
    const repair = repairer(config);
    assert.equal(await repair.repair(record, signal()), 'unrepairable');
    const event = (await fake.waitFor(is('POST', EVENTS))).body;
    assert.equal(event.type, 'Warning');
    assert.equal(event.reason, 'ImageNotRerouted');
    assert.match(event.message, /pull secret "mirrorcred", which the pod does not name/);
    assert.equal(fake.requests.filter((r) => r.method === 'PATCH').length, 0);
    // Looked at again, it is not told twice.
    assert.equal(await repair.repair(record, signal()), 'unrepairable');
    assert.equal(fake.requests.filter(is('POST', EVENTS)).length, 1);
  });

  it('moves a pod that already names the pull secret', async () => {
    const config = configOf({ registries: { 'mirror.example.com': { pullSecret: 'mirrorcred' } } });
    const { raw, record } = stuckPod((p) => {
      p.spec.imagePullSecrets = [{ name: 'mirrorcred' }];
    });
    fake.on('PATCH', POD, patchable(raw).respond);
    assert.equal(await repairer(config).repair(record, signal()), 'repaired');
  });

  it('moves a pod regroute rewrote at admission off its mirror when that goes down, keeping the original recorded', async () => {
    state.setHealth('mirror.example.com', 'unhealthy');
    const { raw, record } = stuckPod((p) => {
      p.spec.containers[0].image = `mirror.example.com/team/web:1.4.2@${DIGEST}`;
      p.metadata.annotations['regroute.io/original-images'] = '{"web":"registry.example.com/team/web:1.4.2"}';
    });
    const pod = patchable(raw);
    fake.on('PATCH', POD, pod.respond);
    assert.equal(await repairer(configOf()).repair(record, signal()), 'repaired');
    assert.equal(pod.current().spec.containers[0].image, `backup.example.com/team/web:1.4.2@${DIGEST}`);
    assert.equal(
      pod.current().metadata.annotations['regroute.io/original-images'],
      '{"web":"registry.example.com/team/web:1.4.2"}',
    );
  });

  it('defers pods past the rate, and patches them once the rate allows', async () => {
    let now = 0;
    const repair = repairer(configOf(), { ratePerMinute: 1, now: () => now });
    const first = stuckPod();
    const second = stuckPod((p) => {
      p.metadata.name = 'web-6d9f7c5b8-q4r8t';
    });
    fake.on('PATCH', POD, patchable(first.raw).respond);
    fake.on('PATCH', '/api/v1/namespaces/team-a/pods/web-6d9f7c5b8-q4r8t', patchable(second.raw).respond);
    assert.equal(await repair.repair(first.record, signal()), 'repaired');
    assert.equal(await repair.repair(second.record, signal()), 'deferred');
    now += 60_000;
    assert.equal(await repair.repair(second.record, signal()), 'repaired');
  });

  it('looks at stuck pods on a tick, and again when a registry’s health changes', async () => {
    state.setHealth('registry.example.com', 'healthy').putTag(SOURCE, '1.4.2', DIGEST);
    const { raw, record } = stuckPod();
    const pods = new Map<string, PodRecord>([['team-a/web-6d9f7c5b8-k9m2p', record]]);
    fake.on('PATCH', POD, patchable(raw).respond);
    const repair = repairer(configOf());
    repair.notice(record);
    assert.equal(repair.stuck, 1);
    await repair.tick((key) => pods.get(key), signal());
    assert.equal(fake.requests.length, 0, 'nothing to do while its registry is up');
    state.setHealth('registry.example.com', 'unhealthy');
    await repair.tick((key) => pods.get(key), signal());
    assert.equal(fake.requests.filter((r) => r.method === 'PATCH').length, 1);
  });

  it('never looks at skip-labelled or static pods', async () => {
    const repair = repairer(configOf());
    for (const edit of [
      (p: ReturnType<typeof fixture>) => (p.metadata.labels['regroute.io/skip'] = 'true'),
      (p: ReturnType<typeof fixture>) => (p.metadata.annotations['kubernetes.io/config.mirror'] = '3b1f5c0e'),
    ]) {
      const { record } = stuckPod(edit);
      repair.notice(record);
      assert.equal(await repair.repair(record, signal()), undefined);
    }
    assert.equal(repair.stuck, 0);
    assert.deepEqual(fake.requests, []);
  });
});
