// The pods of opted-in namespaces, listed and watched against hand-written Kubernetes API answers on loopback.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { V1Namespace } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { Backoff } from '../../../src/kube/backoff.js';
import { coreApi } from '../../../src/kube/client.js';
import { type ClusterPods, watchClusterPods } from '../../../src/kube/cluster-pods.js';
import type { PodRecord } from '../../../src/kube/pod-record.js';
import { type ApiRequest, answer, FakeApiserver, fixture, type Reply } from './fake-apiserver.js';

const NAMESPACES = '/api/v1/namespaces';
const PODS = '/api/v1/namespaces/team-a/pods';
const watching = (r: ApiRequest) => r.query.get('watch') === 'true';
const listing = (path: string) => (r: ApiRequest) => r.path === path && !watching(r);

const namespaceList = (...names: string[]): Reply => {
  const list = fixture('namespace-list.json');
  return {
    status: 200,
    body: { ...list, items: list.items.filter((n: V1Namespace) => names.includes(n.metadata?.name ?? '')) },
  };
};

/** A watch event for the stuck pod as the API server would send it, at resourceVersion `rv`. */
const stuckEvent = (type: string, rv: string, edit: (pod: ReturnType<typeof fixture>) => void = () => {}) => {
  const pod = fixture('pod-team-a-web-stuck.json');
  pod.metadata.resourceVersion = rv;
  edit(pod);
  return { type, object: pod };
};

let fake: FakeApiserver;
let pods: ClusterPods | undefined;
let changes: string[];

const backoff: Backoff = { baseMs: 1, maxMs: 4, attempts: 3, random: () => 0.5, sleep: (ms) => delay(ms) };

function start(): ClusterPods {
  const kubeConfig = fake.kubeConfig();
  const stopping = new AbortController();
  pods = watchClusterPods({
    kubeConfig,
    core: coreApi(kubeConfig, 5000, stopping.signal),
    log: pino({ level: 'silent' }),
    backoff,
    onChange: (kind, pod: PodRecord) => changes.push(`${kind} ${pod.name} ${pod.resourceVersion}`),
  });
  return pods;
}

/** Resolves once `ready` holds, checking after each event-loop turn; the API server stand-in drives the changes. */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 5000; turn++) {
    if (ready()) return;
    await delay(2);
  }
  assert.fail(`never saw ${what}; changes: ${changes.join(', ')}`);
}

describe('pods of opted-in namespaces, against hand-written Kubernetes API answers', () => {
  beforeEach(async () => {
    fake = await FakeApiserver.start();
    changes = [];
    fake.on('GET', NAMESPACES, namespaceList('team-a'));
    fake.on('GET', PODS, answer(200, 'pod-list-team-a.json'));
  });

  afterEach(async () => {
    await pods?.stop();
    pods = undefined;
    await fake.close();
  });

  it('lists namespaces by label, then each one’s pods, and watches them from the list’s resourceVersion with bookmarks', async () => {
    const watched = start();
    await watched.whenSynced(AbortSignal.timeout(30_000));
    assert.equal(watched.synced(), true);
    assert.equal(
      (await fake.waitFor(listing(NAMESPACES))).query.get('labelSelector'),
      'regroute.io/enabled=true',
    );
    assert.equal((await fake.waitFor(listing(PODS))).query.get('limit'), '500');
    const watch = await fake.waitForWatch(PODS);
    assert.equal(watch.request.query.get('resourceVersion'), '71102');
    assert.equal(watch.request.query.get('allowWatchBookmarks'), 'true');
    assert.deepEqual(watched.namespaces(), ['team-a']);
    assert.equal(watched.size, 2);
    assert.equal(watched.get('team-a/web-6d9f7c5b8-k9m2p')?.containers[1]?.waiting, 'ImagePullBackOff');
  });

  it('follows continue tokens page by page', async () => {
    fake.on('GET', PODS, (request) =>
      request.query.get('continue')
        ? answer(200, 'pod-list-team-a-page-2.json')
        : answer(200, 'pod-list-team-a-page-1.json'),
    );
    const watched = start();
    await watched.whenSynced(AbortSignal.timeout(30_000));
    const second = await fake.waitFor(listing(PODS), 2);
    assert.equal(second.query.get('continue'), fixture('pod-list-team-a-page-1.json').metadata.continue);
    assert.equal(watched.size, 2);
  });

  it('applies added, modified and deleted pods from the watch, and watches again from the last bookmark', async () => {
    const watched = start();
    await watched.whenSynced(AbortSignal.timeout(30_000));
    const watch = await fake.waitForWatch(PODS);
    watch.send(fixture('watch-pod-web-stuck-modified.json'));
    watch.send(fixture('watch-pod-web-running-deleted.json'));
    const added = stuckEvent('ADDED', '71300', (p) => {
      p.metadata.name = 'web-6d9f7c5b8-q4r8t';
    });
    watch.send(added);
    watch.send(fixture('watch-bookmark-pod.json'));
    await until(() => watched.get('team-a/web-6d9f7c5b8-q4r8t') !== undefined, 'the added pod');
    assert.equal(watched.get('team-a/web-6d9f7c5b8-k9m2p')?.containers[1]?.waiting, 'ErrImagePull');
    assert.equal(watched.get('team-a/web-6d9f7c5b8-x2x7q'), undefined);
    assert.deepEqual(changes.slice(2), [
      'update web-6d9f7c5b8-k9m2p 71190',
      'delete web-6d9f7c5b8-x2x7q 70811',
      'add web-6d9f7c5b8-q4r8t 71300',
    ]);
    // The API server ends the watch (its timeoutSeconds): the next starts at the bookmark, without a list.
    watch.end();
    const next = await fake.waitForWatch(PODS, 2);
    assert.equal(next.request.query.get('resourceVersion'), '71350');
    assert.equal(fake.requests.filter(listing(PODS)).length, 1);
  });

  it('lists again after an ERROR event with 410 Expired, and drops the pods the new list lacks', async () => {
    const watched = start();
    await watched.whenSynced(AbortSignal.timeout(30_000));
    fake.on('GET', PODS, {
      status: 200,
      body: { ...fixture('pod-list-team-a.json'), items: [fixture('pod-list-team-a.json').items[1]] },
    });
    const watch = await fake.waitForWatch(PODS);
    watch.send(fixture('watch-error-expired.json'));
    await fake.waitFor(listing(PODS), 2);
    await until(() => watched.size === 1, 'the pod missing from the new list dropped');
    assert.ok(changes.includes('delete web-6d9f7c5b8-x2x7q 70811'));
    await fake.waitForWatch(PODS, 2);
  });

  it('lists again after a watch answered 410 Gone', async () => {
    fake.failWatch(PODS, answer(410, 'status-gone.json'));
    const watched = start();
    await watched.whenSynced(AbortSignal.timeout(30_000));
    await fake.waitFor(listing(PODS), 2);
    await fake.waitForWatch(PODS);
  });

  it('retries a list the API server failed (500), with backoff, and is synced once it succeeds', async () => {
    fake.on('GET', PODS, answer(500, 'status-internalerror.json'), answer(200, 'pod-list-team-a.json'));
    const watched = start();
    await watched.whenSynced(AbortSignal.timeout(30_000));
    assert.equal(fake.requests.filter(listing(PODS)).length, 2);
    assert.equal(watched.size, 2);
  });

  it('forgets the pods of a namespace that loses the label, and stops watching it', async () => {
    const watched = start();
    await watched.whenSynced(AbortSignal.timeout(30_000));
    const podWatch = await fake.waitForWatch(PODS);
    const nsWatch = await fake.waitForWatch(NAMESPACES);
    const namespace = fixture('namespace-list.json').items[0];
    nsWatch.send({ type: 'DELETED', object: { kind: 'Namespace', apiVersion: 'v1', ...namespace } });
    await until(() => watched.size === 0, 'the namespace’s pods forgotten');
    await podWatch.closed;
    assert.deepEqual(watched.namespaces(), []);
    assert.deepEqual(changes.slice(2).sort(), [
      'delete web-6d9f7c5b8-k9m2p 71044',
      'delete web-6d9f7c5b8-x2x7q 70811',
    ]);
  });

  it('is synced at once when no namespace is opted in', async () => {
    fake.on('GET', NAMESPACES, answer(200, 'namespace-list-empty.json'));
    const watched = start();
    await watched.whenSynced(AbortSignal.timeout(30_000));
    assert.equal(watched.size, 0);
    assert.equal(fake.requests.filter(listing(PODS)).length, 0);
  });
});
