// What regroute keeps of a pod, read from hand-written API server answers (test/fixtures/kube).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { coreApi } from '../../../src/kube/client.js';
import { Interner, originalImages, podKey, podRecord } from '../../../src/kube/pod-record.js';
import { answer, FakeApiserver, fixture } from './fake-apiserver.js';

describe('podRecord', () => {
  it('keeps images, imageIDs, waiting reasons and the controller of a pod from a watch event', () => {
    const pod = podRecord(fixture('pod-team-a-web-stuck.json'), new Interner());
    assert.ok(pod);
    assert.equal(podKey(pod), 'team-a/web-6d9f7c5b8-k9m2p');
    assert.equal(pod.uid, '8a4e2c6f-0b1d-4a3e-9c5f-7d2b4e6a8c0e');
    assert.equal(pod.resourceVersion, '71044');
    assert.equal(pod.owner, 'ReplicaSet/web-6d9f7c5b8');
    assert.deepEqual(pod.pullSecrets, []);
    assert.equal(pod.hasAnnotations, true);
    assert.deepEqual(
      pod.containers.map((c) => [c.kind, c.index, c.name, c.image, c.waiting, c.running]),
      [
        ['initContainers', 0, 'migrate', 'registry.example.com/team/migrate:7', undefined, false],
        ['containers', 0, 'web', 'registry.example.com/team/web:1.4.2', 'ImagePullBackOff', false],
        ['containers', 1, 'proxy', 'docker.io/envoyproxy/envoy:v1.31.2', undefined, true],
      ],
    );
    // The kubelet reports an empty imageID for a container that never started.
    assert.equal(pod.containers[1]?.imageID, undefined);
    assert.match(pod.containers[2]?.imageID ?? '', /^docker\.io\/envoyproxy\/envoy@sha256:/);
    assert.equal(pod.containers[2]?.startedAt, Date.parse('2025-03-10T09:30:49Z'));
  });

  it('reads a pod client-node has deserialized (Dates instead of strings) as it reads a watch event', async () => {
    const fake = await FakeApiserver.start();
    const path = '/api/v1/namespaces/team-a/pods/web-6d9f7c5b8-x2x7q';
    fake.on('GET', path, answer(200, 'pod-team-a-web-running.json'));
    try {
      const core = coreApi(fake.kubeConfig(), 5000, new AbortController().signal);
      const typed = await core.readNamespacedPod({ namespace: 'team-a', name: 'web-6d9f7c5b8-x2x7q' });
      assert.ok(typed.status?.containerStatuses?.[0]?.state?.running?.startedAt instanceof Date);
      const interner = new Interner();
      assert.deepEqual(
        podRecord(typed, interner),
        podRecord(fixture('pod-team-a-web-running.json'), interner),
      );
    } finally {
      await fake.close();
    }
  });

  it('shares the strings many pods repeat', () => {
    const interner = new Interner();
    const a = podRecord(fixture('pod-team-a-web-running.json'), interner);
    const b = podRecord(fixture('pod-team-a-web-stuck.json'), interner);
    assert.ok(a && b);
    // Equal strings from different parses are the same string once interned: Object.is cannot tell, so the
    // lists are compared by identity.
    assert.equal(a.pullSecrets, b.pullSecrets);
    const withSecrets = (name: string) => {
      const pod = fixture('pod-team-a-web-running.json');
      pod.metadata.name = name;
      pod.spec.imagePullSecrets = [{ name: 'amsregcred' }];
      return podRecord(pod, interner);
    };
    assert.equal(withSecrets('one')?.pullSecrets, withSecrets('two')?.pullSecrets);
    assert.deepEqual(withSecrets('three')?.pullSecrets, ['amsregcred']);
  });

  it('marks skip-labelled, static (mirror) and finished or deleted pods', () => {
    const interner = new Interner();
    const with_ = (edit: (pod: ReturnType<typeof fixture>) => void) => {
      const pod = fixture('pod-team-a-web-stuck.json');
      edit(pod);
      return podRecord(pod, interner);
    };
    assert.equal(with_((p) => (p.metadata.labels['regroute.io/skip'] = 'true'))?.skip, true);
    assert.equal(
      with_((p) => (p.metadata.annotations['kubernetes.io/config.mirror'] = '3b1f5c0e7a2d'))?.mirror,
      true,
    );
    assert.equal(with_((p) => (p.metadata.deletionTimestamp = '2025-03-10T09:40:00Z'))?.done, true);
    assert.equal(with_((p) => (p.status.phase = 'Failed'))?.done, true);
    const plain = with_(() => {});
    assert.deepEqual([plain?.skip, plain?.mirror, plain?.done], [false, false, false]);
  });

  it('reads the original-images annotation regroute writes, and ignores anything else found there', () => {
    const interner = new Interner();
    const pod = fixture('pod-team-a-web-running.json');
    pod.metadata.annotations['regroute.io/original-images'] = '{"web":"registry.example.com/team/web:1.4.2"}';
    const record = podRecord(pod, interner);
    assert.ok(record);
    assert.deepEqual(originalImages(record), { web: 'registry.example.com/team/web:1.4.2' });
    assert.deepEqual(originalImages({ originals: 'not json' }), {});
    assert.deepEqual(originalImages({ originals: '{"web":7}' }), {});
  });

  it('is undefined for objects that are not pods it can read', () => {
    const interner = new Interner();
    assert.equal(podRecord(null, interner), undefined);
    assert.equal(podRecord({ metadata: { name: 'x' } }, interner), undefined);
    assert.equal(podRecord(fixture('status-gone.json'), interner), undefined);
  });
});
