// Specification of the pull-secret controller, run against hand-written Kubernetes API answers on loopback.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { V1Namespace } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { Backoff } from '../../../src/kube/backoff.js';
import {
  type PullSecretSync,
  type PullSecretSyncOptions,
  type SyncResult,
  startPullSecretSync,
} from '../../../src/kube/pull-secret-sync.js';
import { type ApiRequest, answer, created, FakeApiserver, fixture, replaced } from './fake-apiserver.js';

const NAMESPACES = '/api/v1/namespaces';
const SOURCES = '/api/v1/namespaces/regroute-system/secrets';
const target = (namespace: string) => `/api/v1/namespaces/${namespace}/secrets/amsregcred`;
const collection = (namespace: string) => `/api/v1/namespaces/${namespace}/secrets`;

const SOURCE_DATA = fixture('secret-list-amsregcred.json').items[0].data;
const MODIFIED = fixture('watch-secret-amsregcred-modified.json');

const is = (method: string, path: string) => (r: ApiRequest) => r.method === method && r.path === path;
const watching = (r: ApiRequest) => r.query.get('watch') === 'true';

/** Only the namespaces named, from the hand-written NamespaceList. */
const namespaceList = (...names: string[]) => {
  const list = fixture('namespace-list.json');
  return {
    status: 200,
    body: { ...list, items: list.items.filter((n: V1Namespace) => names.includes(n.metadata?.name ?? '')) },
  };
};

let fake: FakeApiserver;
let sync: PullSecretSync | undefined;
let logs: string[];
let passes: SyncResult[];
let slept: number[];
let passWaiters: Array<() => void>;

/** Resolves after the next pass ends. */
const nextPass = () => new Promise<void>((resolve) => passWaiters.push(resolve));

function start(options: Partial<PullSecretSyncOptions> = {}): Promise<PullSecretSync> {
  const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(line) });
  // Real but tiny waits: a watch that fails at once must not restart in a busy loop.
  const backoff: Backoff = {
    baseMs: 1,
    maxMs: 4,
    attempts: 3,
    random: () => 0.5,
    sleep: (ms) => {
      slept.push(ms);
      return delay(ms);
    },
  };
  return startPullSecretSync({
    kubeConfig: fake.kubeConfig(),
    namespace: 'regroute-system',
    secretNames: ['amsregcred'],
    log,
    backoff,
    resyncSeconds: 3600,
    onPass: (result) => {
      passes.push(result);
      for (const resolve of passWaiters.splice(0)) resolve();
    },
    ...options,
  }).then((started) => {
    sync = started;
    return started;
  });
}

const total = (field: Exclude<keyof SyncResult, 'missingSources'>) =>
  passes.reduce((sum, pass) => sum + pass[field], 0);

const warnings = () => logs.map((line) => JSON.parse(line)).filter((line) => line.level === 40);

describe('pull secret sync against hand-written Kubernetes API answers', () => {
  beforeEach(async () => {
    fake = await FakeApiserver.start();
    logs = [];
    passes = [];
    slept = [];
    passWaiters = [];
    fake
      .on('GET', NAMESPACES, namespaceList('team-a', 'team-b'))
      .on('GET', SOURCES, answer(200, 'secret-list-amsregcred.json'))
      .on('GET', target('team-a'), answer(404, 'status-notfound.json'))
      .on('GET', target('team-b'), answer(404, 'status-notfound.json'))
      .on('POST', collection('team-a'), created)
      .on('POST', collection('team-b'), created)
      .on('PUT', target('team-a'), replaced);
  });

  afterEach(async () => {
    await sync?.stop();
    sync = undefined;
    await fake.close();
  });

  it('lists and watches opted-in namespaces by label and each source by name', async () => {
    await (await start()).settled();
    const nsList = await fake.waitFor((r) => r.path === NAMESPACES && !watching(r));
    assert.equal(nsList.query.get('labelSelector'), 'regroute.io/enabled=true');
    const nsWatch = await fake.waitForWatch(NAMESPACES);
    assert.equal(nsWatch.request.query.get('labelSelector'), 'regroute.io/enabled=true');
    assert.equal(nsWatch.request.query.get('resourceVersion'), '48213', 'watch starts where the list ended');
    const sourceList = await fake.waitFor((r) => r.path === SOURCES && !watching(r));
    assert.equal(sourceList.query.get('fieldSelector'), 'metadata.name=amsregcred');
    const sourceWatch = await fake.waitForWatch(SOURCES);
    assert.equal(sourceWatch.request.query.get('fieldSelector'), 'metadata.name=amsregcred');
  });

  it('copies the source into every opted-in namespace that lacks it (404 NotFound)', async () => {
    await (await start()).settled();
    assert.deepEqual(fake.targetCalls(), [
      `GET ${target('team-a')}`,
      `POST ${collection('team-a')}`,
      `GET ${target('team-b')}`,
      `POST ${collection('team-b')}`,
    ]);
    assert.equal(total('created'), 2);
  });

  it('sends only type and data, labelled as managed by regroute and annotated with the source', async () => {
    await (await start()).settled();
    const post = await fake.waitFor(is('POST', collection('team-a')));
    assert.deepEqual(post.body, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'amsregcred',
        namespace: 'team-a',
        labels: { 'app.kubernetes.io/managed-by': 'regroute' },
        annotations: { 'regroute.io/copied-from': 'regroute-system/amsregcred' },
      },
      type: 'kubernetes.io/dockerconfigjson',
      data: SOURCE_DATA,
    });
    assert.equal(post.query.get('fieldManager'), 'regroute');
  });

  it('never writes secret data to the log', async () => {
    await (await start()).settled();
    const secretValue = SOURCE_DATA['.dockerconfigjson'];
    const decoded = Buffer.from(secretValue, 'base64').toString();
    assert.ok(logs.length > 0);
    for (const line of logs) {
      assert.ok(!line.includes(secretValue), line);
      assert.ok(!line.includes('s3cr3t'), line);
      assert.ok(!line.includes(decoded), line);
    }
  });

  it('updates a managed copy whose data differs, with the resourceVersion it read', async () => {
    fake.on('GET', target('team-a'), answer(200, 'secret-team-a-amsregcred-managed-stale.json'));
    await (await start()).settled();
    const put = await fake.waitFor(is('PUT', target('team-a')));
    assert.deepEqual(put.body.data, SOURCE_DATA);
    assert.equal(put.body.metadata.resourceVersion, '2201');
    assert.equal(put.body.metadata.uid, '71b3c9e5-4d2a-4f80-b6e1-2c8d5a0f9e37');
    assert.equal(put.body.metadata.managedFields, undefined);
    assert.equal(put.body.metadata.labels['app.kubernetes.io/managed-by'], 'regroute');
    assert.equal(put.query.get('fieldManager'), 'regroute');
    assert.equal(total('updated'), 1);
  });

  it('leaves a managed copy whose data matches', async () => {
    fake.on('GET', target('team-a'), answer(200, 'secret-team-a-amsregcred-managed-current.json'));
    await (await start()).settled();
    assert.deepEqual(
      fake.targetCalls().filter((call) => call.includes('/team-a/')),
      [`GET ${target('team-a')}`],
    );
    assert.equal(total('unchanged'), 1);
  });

  it('never overwrites a Secret regroute does not manage, warns, and counts it', async () => {
    fake.on('GET', target('team-a'), answer(200, 'secret-team-a-amsregcred-unmanaged.json'));
    await (await start()).settled();
    assert.ok(!fake.requests.some((r) => r.path.startsWith(collection('team-a')) && r.method !== 'GET'));
    assert.equal(total('skippedUnmanaged'), 1);
    assert.equal(total('created'), 1, 'team-b still gets its copy');
    assert.ok(warnings().some((w) => w.namespace === 'team-a' && /not managed by regroute/.test(w.msg)));
  });

  it('on 409 AlreadyExists reads the Secret again, and leaves it when it is not regroute’s', async () => {
    fake
      .on(
        'GET',
        target('team-a'),
        answer(404, 'status-notfound.json'),
        answer(200, 'secret-team-a-amsregcred-unmanaged.json'),
      )
      .on('POST', collection('team-a'), answer(409, 'status-alreadyexists.json'));
    await (await start()).settled();
    assert.deepEqual(
      fake.targetCalls().filter((call) => call.includes('/team-a/')),
      [`GET ${target('team-a')}`, `POST ${collection('team-a')}`, `GET ${target('team-a')}`],
    );
    assert.equal(total('skippedUnmanaged'), 1);
    assert.equal(total('failed'), 0);
  });

  it('on 409 Conflict reads the copy again and replaces it with the newer resourceVersion', async () => {
    const newer = fixture('secret-team-a-amsregcred-managed-stale.json');
    newer.metadata.resourceVersion = '2290';
    fake
      .on('GET', target('team-a'), answer(200, 'secret-team-a-amsregcred-managed-stale.json'), {
        status: 200,
        body: newer,
      })
      .on('PUT', target('team-a'), answer(409, 'status-conflict.json'), replaced);
    await (await start()).settled();
    const puts = fake.requests.filter(is('PUT', target('team-a')));
    assert.deepEqual(
      puts.map((p) => p.body.metadata.resourceVersion),
      ['2201', '2290'],
    );
    assert.equal(total('updated'), 1);
    assert.equal(total('failed'), 0);
  });

  it('retries a read answered 500 InternalError, after a backoff, then copies', async () => {
    fake.on(
      'GET',
      target('team-a'),
      answer(500, 'status-internalerror.json'),
      answer(404, 'status-notfound.json'),
    );
    await (await start()).settled();
    assert.equal(fake.requests.filter(is('GET', target('team-a'))).length, 2);
    assert.deepEqual(slept, [0], 'one wait, a random point below the first ceiling');
    assert.equal(total('created'), 2);
  });

  it('counts a namespace as failed when its copy cannot be read after every try, and goes on', async () => {
    fake.on('GET', target('team-a'), answer(500, 'status-internalerror.json'));
    await (await start()).settled();
    assert.equal(fake.requests.filter(is('GET', target('team-a'))).length, 3);
    assert.ok(!fake.requests.some(is('POST', collection('team-a'))));
    assert.equal(total('failed'), 1);
    assert.equal(total('created'), 1);
    assert.ok(
      warnings().some((w) => w.namespace === 'team-a' && w.status === 500 && w.reason === 'InternalError'),
    );
  });

  it('copies at once into a namespace newly labelled, arriving on the watch as ADDED', async () => {
    fake
      .on('GET', target('team-c'), answer(404, 'status-notfound.json'))
      .on('POST', collection('team-c'), created);
    await (await start()).settled();
    const watch = await fake.waitForWatch(NAMESPACES);
    watch.send(fixture('watch-namespace-team-c-added.json'));
    const post = await fake.waitFor(is('POST', collection('team-c')));
    assert.equal(post.body.metadata.namespace, 'team-c');
    assert.deepEqual(post.body.data, SOURCE_DATA);
    await sync?.settled();
    assert.ok(
      !fake.requests.slice(fake.requests.indexOf(post)).some((r) => r.path.includes('/team-a/')),
      'only the new namespace is synced',
    );
  });

  it('updates every copy when the source is MODIFIED on the watch', async () => {
    fake
      .on('GET', NAMESPACES, namespaceList('team-a'))
      .on('GET', target('team-a'), answer(200, 'secret-team-a-amsregcred-managed-current.json'));
    await (await start()).settled();
    assert.ok(!fake.requests.some(is('PUT', target('team-a'))));
    (await fake.waitForWatch(SOURCES)).send(MODIFIED);
    const put = await fake.waitFor(is('PUT', target('team-a')));
    assert.deepEqual(put.body.data, MODIFIED.object.data);
    assert.notDeepEqual(put.body.data, SOURCE_DATA);
  });

  it('leaves every copy in place when the source is DELETED', async () => {
    fake
      .on('GET', target('team-c'), answer(404, 'status-notfound.json'))
      .on('POST', collection('team-c'), created);
    await (await start()).settled();
    (await fake.waitForWatch(SOURCES)).send(fixture('watch-secret-amsregcred-deleted.json'));
    // A namespace event forces a pass that sees the source gone.
    const pass = nextPass();
    (await fake.waitForWatch(NAMESPACES)).send(fixture('watch-namespace-team-c-added.json'));
    await pass;
    assert.ok(!fake.requests.some((r) => r.method === 'DELETE'));
    assert.ok(!fake.requests.some((r) => r.path.includes('/team-c/')));
    assert.deepEqual(passes.at(-1)?.missingSources, ['amsregcred']);
  });

  it('checks every namespace again on each resync, recreating a copy deleted by hand', async () => {
    await start({ resyncSeconds: 0.05 });
    await fake.waitFor(is('POST', collection('team-a')));
    const again = await fake.waitFor(is('POST', collection('team-a')), 2);
    assert.deepEqual(again.body.data, SOURCE_DATA);
    await fake.waitFor(is('POST', collection('team-b')), 2);
  });

  it('relists after a watch ERROR event with 410 Expired and syncs what the new list holds', async () => {
    const relisted = namespaceList('team-a', 'team-b');
    const withTeamC = fixture('namespace-list.json');
    withTeamC.metadata.resourceVersion = '48290';
    withTeamC.items.push(fixture('watch-namespace-team-c-added.json').object);
    fake
      .on('GET', NAMESPACES, relisted, { status: 200, body: withTeamC })
      .on('GET', target('team-c'), answer(404, 'status-notfound.json'))
      .on('POST', collection('team-c'), created);
    await (await start()).settled();
    const watch = await fake.waitForWatch(NAMESPACES);
    watch.send(fixture('watch-error-expired.json'));
    watch.end();
    await fake.waitFor(is('POST', collection('team-c')));
    const lists = fake.requests.filter((r) => r.path === NAMESPACES && !watching(r));
    assert.equal(lists.length, 2);
    const rewatch = await fake.waitForWatch(NAMESPACES, 2);
    assert.equal(rewatch.request.query.get('resourceVersion'), '48290');
  });

  it('relists when a watch request is answered 410 Gone', async () => {
    fake.failWatch(NAMESPACES, answer(410, 'status-gone.json'));
    await (await start()).settled();
    const watch = await fake.waitForWatch(NAMESPACES);
    const lists = fake.requests.filter((r) => r.path === NAMESPACES && !watching(r));
    assert.equal(lists.length, 2);
    assert.equal(watch.request.query.get('resourceVersion'), '48213');
  });

  it('restarts a watch that fails with 500, after a backoff, and warns without the response body', async () => {
    fake.failWatch(SOURCES, answer(500, 'status-internalerror.json'));
    await start();
    const watch = await fake.waitForWatch(SOURCES);
    assert.ok(watch.request.query.get('resourceVersion'));
    assert.ok(slept.length >= 1);
    const warning = warnings().find((w) => w.path === SOURCES);
    assert.equal(warning?.status, 500);
    assert.ok(!JSON.stringify(warning).includes('etcdserver'));
    await sync?.settled();
  });

  it('closes every watch when stopped and makes no request afterwards', async () => {
    await (await start()).settled();
    const open = [await fake.waitForWatch(NAMESPACES), await fake.waitForWatch(SOURCES)];
    await sync?.stop();
    sync = undefined;
    await Promise.all(open.map((w) => w.closed));
    const seen = fake.requests.length;
    // Not a synchronisation: a window in which a loop still running (resync every hour here, backoff of 1–4 ms)
    // would have asked again.
    await delay(20);
    assert.equal(fake.requests.length, seen);
  });

  it('copies nothing while no namespace has opted in (an empty NamespaceList)', async () => {
    fake.on('GET', NAMESPACES, answer(200, 'namespace-list-empty.json'));
    await (await start()).settled();
    assert.deepEqual(fake.targetCalls(), []);
    assert.equal(total('created') + total('updated') + total('unchanged'), 0);
    const watch = await fake.waitForWatch(NAMESPACES);
    assert.equal(watch.request.query.get('resourceVersion'), '48213', 'and watches from the empty list on');
  });

  it('names a source the source namespace does not hold (an empty SecretList), and copies nothing', async () => {
    fake.on('GET', SOURCES, answer(200, 'secret-list-empty.json'));
    await (await start()).settled();
    assert.ok(!fake.requests.some((r) => r.method === 'POST' || r.method === 'PUT'));
    assert.deepEqual(passes.at(-1)?.missingSources, ['amsregcred']);
  });

  it('contacts no API server when no pull secret is configured', async () => {
    await (await start({ secretNames: [] })).settled();
    assert.deepEqual(fake.requests, []);
  });
});
