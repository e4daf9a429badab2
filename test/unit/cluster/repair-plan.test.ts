// Which containers repair may touch, what it routes them by, and the patch and Events it sends.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fastJsonPatch from 'fast-json-patch';
import {
  canPullFrom,
  podEvent,
  repairPatch,
  repairSubject,
  stuckContainers,
  whyNotRerouted,
} from '../../../src/cluster/repair-plan.js';
import { Config } from '../../../src/config/schema.js';
import { Interner, originalImages, type PodRecord, podRecord } from '../../../src/kube/pod-record.js';
import { unchanged } from '../../../src/routing/decision.js';
import { fixture } from '../kube/fake-apiserver.js';

const D1 = `sha256:${'1'.repeat(64)}`;

const config = Config.parse({
  registries: { 'mirror.example.com': { pullSecret: 'mirrorcred' } },
  routes: [
    {
      prefix: 'registry.example.com/team',
      registries: ['registry.example.com/team', 'mirror.example.com/team', 'backup.example.com/team'],
    },
  ],
});

function stuckPod(edit: (pod: ReturnType<typeof fixture>) => void = () => {}): {
  raw: ReturnType<typeof fixture>;
  pod: PodRecord;
} {
  const raw = fixture('pod-team-a-web-stuck.json');
  edit(raw);
  const pod = podRecord(raw, new Interner());
  assert.ok(pod);
  return { raw, pod };
}

describe('stuckContainers', () => {
  it('finds the container waiting in ImagePullBackOff, and not the running sidecar nor the finished init container', () => {
    assert.deepEqual(
      stuckContainers(stuckPod().pod).map((c) => c.name),
      ['web'],
    );
  });

  it('finds init containers and ErrImagePull too', () => {
    const { pod } = stuckPod((p) => {
      p.status.initContainerStatuses[0].state = { waiting: { reason: 'ErrImagePull' } };
    });
    assert.deepEqual(
      stuckContainers(pod).map((c) => `${c.kind}/${c.name}`),
      ['initContainers/migrate', 'containers/web'],
    );
  });

  it('leaves other waiting reasons alone', () => {
    const { pod } = stuckPod((p) => {
      p.status.containerStatuses[1].state = { waiting: { reason: 'CrashLoopBackOff' } };
    });
    assert.deepEqual(stuckContainers(pod), []);
  });

  it('leaves skip-labelled, static and finished pods alone', () => {
    for (const edit of [
      (p: ReturnType<typeof fixture>) => (p.metadata.labels['regroute.io/skip'] = 'true'),
      (p: ReturnType<typeof fixture>) => (p.metadata.annotations['kubernetes.io/config.mirror'] = 'x'),
      (p: ReturnType<typeof fixture>) => (p.metadata.deletionTimestamp = '2025-03-10T09:40:00Z'),
    ]) {
      assert.deepEqual(stuckContainers(stuckPod(edit).pod), []);
    }
  });
});

describe('repairSubject', () => {
  it("routes a container by its own image's route, its own location marked", () => {
    const { pod } = stuckPod();
    const [web] = stuckContainers(pod);
    assert.ok(web);
    const subject = repairSubject(web, {}, config.routes);
    assert.equal(subject?.original, 'registry.example.com/team/web:1.4.2');
    assert.deepEqual(
      subject?.match.candidates.map((c) => `${c.registry}/${c.repository}${c.isOwn ? ' (own)' : ''}`),
      ['registry.example.com/team/web (own)', 'mirror.example.com/team/web', 'backup.example.com/team/web'],
    );
  });

  it('routes a container regroute rewrote by its original route, pinned to its digest, where it points now marked', () => {
    const { pod } = stuckPod((p) => {
      p.spec.containers[0].image = `mirror.example.com/team/web:1.4.2@${D1}`;
      p.metadata.annotations['regroute.io/original-images'] = '{"web":"registry.example.com/team/web:1.4.2"}';
    });
    const [web] = stuckContainers(pod);
    assert.ok(web);
    const subject = repairSubject(web, originalImages(pod), config.routes);
    assert.equal(subject?.reference.digest, D1);
    assert.equal(subject?.original, 'registry.example.com/team/web:1.4.2');
    assert.deepEqual(
      subject?.match.candidates.map((c) => c.isOwn),
      [false, true, false],
    );
  });

  it('is undefined for an image no route takes', () => {
    const { pod } = stuckPod();
    const proxy = pod.containers.find((c) => c.name === 'proxy');
    assert.ok(proxy);
    assert.equal(repairSubject(proxy, {}, config.routes), undefined);
  });
});

describe('canPullFrom', () => {
  const mirror = {
    registry: 'mirror.example.com',
    repository: 'team/web',
    location: 'mirror.example.com/team',
    isOwn: false,
  };
  it('needs the pull secret the registry is configured with among the pod’s own', () => {
    assert.equal(canPullFrom({ pullSecrets: [] }, config.registries, mirror), false);
    assert.equal(canPullFrom({ pullSecrets: ['other', 'mirrorcred'] }, config.registries, mirror), true);
    assert.equal(
      canPullFrom({ pullSecrets: [] }, config.registries, { ...mirror, registry: 'backup.example.com' }),
      true,
    );
  });
});

describe('repairPatch', () => {
  it('applies to the stored pod: the waiting image moved, the original recorded, the resourceVersion as read', () => {
    const { raw, pod } = stuckPod();
    const [web] = stuckContainers(pod);
    assert.ok(web);
    const target = `mirror.example.com/team/web:1.4.2@${D1}`;
    const ops = repairPatch(pod, {}, [{ container: web, target, original: web.image }]);
    assert.deepEqual(ops[0], { op: 'replace', path: '/metadata/resourceVersion', value: '71044' });
    const patched = fastJsonPatch.applyPatch(structuredClone(raw), ops, true, false).newDocument;
    assert.equal(patched.spec.containers[0].image, target);
    assert.equal(
      patched.spec.containers[1].image,
      raw.spec.containers[1].image,
      'the running sidecar is untouched',
    );
    assert.equal(patched.spec.initContainers[0].image, raw.spec.initContainers[0].image);
    assert.deepEqual(JSON.parse(patched.metadata.annotations['regroute.io/original-images']), {
      web: 'registry.example.com/team/web:1.4.2',
    });
    assert.equal(
      patched.metadata.annotations['kubectl.kubernetes.io/restartedAt'],
      raw.metadata.annotations['kubectl.kubernetes.io/restartedAt'],
    );
    assert.deepEqual(
      patched.spec.imagePullSecrets,
      raw.spec.imagePullSecrets,
      'imagePullSecrets cannot change',
    );
  });

  it('adds the annotations map to a pod without one, and keeps what an earlier rewrite recorded', () => {
    const { raw, pod } = stuckPod((p) => {
      delete p.metadata.annotations;
      p.status.initContainerStatuses[0].state = { waiting: { reason: 'ImagePullBackOff' } };
    });
    const [migrate] = stuckContainers(pod);
    assert.ok(migrate);
    const ops = repairPatch(pod, { web: 'registry.example.com/team/web:1.4.2' }, [
      { container: migrate, target: `mirror.example.com/team/migrate:7@${D1}`, original: migrate.image },
    ]);
    const patched = fastJsonPatch.applyPatch(structuredClone(raw), ops, true, false).newDocument;
    assert.equal(patched.spec.initContainers[0].image, `mirror.example.com/team/migrate:7@${D1}`);
    assert.deepEqual(JSON.parse(patched.metadata.annotations['regroute.io/original-images']), {
      web: 'registry.example.com/team/web:1.4.2',
      migrate: 'registry.example.com/team/migrate:7',
    });
  });
  it('keeps what admission recorded of image volumes, which an older reading of the record would drop', () => {
    const volumes = { models: 'registry.example.com/team/models:v3' };
    const { raw, pod } = stuckPod((p) => {
      p.metadata.annotations['regroute.io/original-images'] = JSON.stringify({ 'spec.volumes': volumes });
    });
    assert.deepEqual(originalImages(pod), {}, 'no container recorded');
    const [web] = stuckContainers(pod);
    assert.ok(web);
    const ops = repairPatch(pod, originalImages(pod), [
      { container: web, target: `mirror.example.com/team/web:1.4.2@${D1}`, original: web.image },
    ]);
    const patched = fastJsonPatch.applyPatch(structuredClone(raw), ops, true, false).newDocument;
    assert.deepEqual(JSON.parse(patched.metadata.annotations['regroute.io/original-images']), {
      web: 'registry.example.com/team/web:1.4.2',
      'spec.volumes': volumes,
    });
  });
});

describe('Events', () => {
  it('names the container by fieldPath, as the kubelet does, and is named the same for the same message', () => {
    const { pod } = stuckPod();
    const [web] = stuckContainers(pod);
    assert.ok(web);
    const input = {
      pod,
      container: web,
      type: 'Warning' as const,
      reason: 'ImageNotRerouted',
      message: 'why',
      now: new Date('2025-03-10T09:35:00Z'),
      instance: 'regroute-5f7d9c-abcde',
    };
    const event = podEvent(input);
    assert.deepEqual(event.involvedObject, {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'web-6d9f7c5b8-k9m2p',
      namespace: 'team-a',
      uid: '8a4e2c6f-0b1d-4a3e-9c5f-7d2b4e6a8c0e',
      resourceVersion: '71044',
      fieldPath: 'spec.containers{web}',
    });
    assert.equal(event.metadata?.namespace, 'team-a');
    assert.match(event.metadata?.name ?? '', /^web-6d9f7c5b8-k9m2p\.regroute-[0-9a-f]{8}$/);
    assert.equal(podEvent({ ...input, now: new Date() }).metadata?.name, event.metadata?.name);
    assert.notEqual(podEvent({ ...input, message: 'other' }).metadata?.name, event.metadata?.name);
  });

  it('says which pull secret the pod lacks, and that imagePullSecrets cannot change', () => {
    const { pod } = stuckPod();
    const [web] = stuckContainers(pod);
    assert.ok(web);
    const subject = repairSubject(web, {}, config.routes);
    assert.ok(subject);
    const decision = unchanged('no-candidate', [
      { location: 'registry.example.com/team/web', verdict: 'unhealthy' },
      { location: 'mirror.example.com/team/web', verdict: 'pull-secret-unavailable' },
      { location: 'backup.example.com/team/web', verdict: 'absent' },
    ]);
    const message = whyNotRerouted(decision, subject, config.registries);
    assert.match(message, /mirror\.example\.com\/team\/web, which holds its digest/);
    assert.match(message, /pull secret "mirrorcred", which the pod does not name/);
    assert.match(message, /imagePullSecrets cannot change/);
  });

  it('says why no candidate could take the image otherwise', () => {
    const { pod } = stuckPod();
    const [web] = stuckContainers(pod);
    assert.ok(web);
    const subject = repairSubject(web, {}, config.routes);
    assert.ok(subject);
    const message = whyNotRerouted(
      unchanged('no-candidate', [{ location: 'registry.example.com/team/web', verdict: 'unhealthy' }]),
      subject,
      config.registries,
    );
    assert.match(
      message,
      /no healthy candidate holds its digest\. Candidates: registry\.example\.com\/team\/web=unhealthy/,
    );
  });
});
