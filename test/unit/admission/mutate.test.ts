import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_IMAGES_PER_REVIEW,
  MAX_WARNINGS,
  type MutateDeps,
  mutate,
} from '../../../src/admission/mutate.js';
import { ORIGINAL_IMAGES_ANNOTATION } from '../../../src/admission/patch.js';
import { type AdmissionRequest, decodeReview } from '../../../src/admission/review.js';
import { auditRecords } from '../../../src/audit/audit.js';
import { parseConfig } from '../../../src/config/load.js';
import { parseReference } from '../../../src/reference/index.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { applyResponse, assertValidPod, patchOf } from '../../helpers/apiserver.js';
import { digestOf } from '../../helpers/digests.js';
import { admissionReviews, fixture } from '../../helpers/fixtures.js';

const config = parseConfig(
  {
    registries: {
      'mirror.local:5000': { pullSecret: 'mirror-pull' },
      'ams.ocir.io': { pullSecret: 'amsregcred' },
    },
    routes: [
      { prefix: 'docker.io', registries: ['docker.io', 'mirror.local:5000/hub'] },
      { prefix: 'quay.io', registries: ['quay.io', 'mirror.local:5000/quay'] },
      { prefix: 'ghcr.io', registries: ['ghcr.io', 'mirror.local:5000/ghcr'] },
      { prefix: 'fra.ocir.io/tenancy', registries: ['fra.ocir.io/tenancy', 'ams.ocir.io/tenancy'] },
      {
        prefix: 'registry.local:5000/team',
        registries: ['registry.local:5000/team', 'mirror.local:5000/team'],
      },
    ],
  },
  'test',
);

const SOURCES = ['docker.io', 'quay.io', 'ghcr.io', 'fra.ocir.io', 'registry.local:5000'];

/** A world where every image exists at its source and on every mirror; `down` registries do not answer. */
function world(down: string[] = [], reviews = admissionReviews()): MemoryState {
  const state = new MemoryState();
  for (const source of SOURCES) state.setHealth(source, down.includes(source) ? 'unhealthy' : 'healthy');
  state.setHealth('mirror.local:5000', 'healthy').setHealth('ams.ocir.io', 'healthy');
  for (const { review } of reviews) {
    const spec =
      ((review.request as Record<string, unknown>).object as { spec?: Record<string, unknown> })?.spec ?? {};
    const volumes = ((spec.volumes as { image?: { reference?: string } }[] | undefined) ?? []).map((v) => ({
      image: v.image?.reference,
    }));
    for (const kind of ['containers', 'initContainers', 'ephemeralContainers', 'volumes']) {
      const sites = kind === 'volumes' ? volumes : ((spec[kind] as { image?: string }[] | undefined) ?? []);
      for (const container of sites) {
        const parsed = parseReference(container.image ?? '');
        if (!parsed.ok) continue;
        const { registry, repository, tag, digest } = parsed.reference;
        const content = digest ?? digestOf(`${registry}/${repository}:${tag ?? 'latest'}`);
        const mirrorRepo = (mirror: string) => ({
          registry: 'mirror.local:5000',
          repository: `${mirror}/${repository}`,
        });
        const own = { registry, repository };
        state.putTag(own, tag ?? 'latest', content);
        state.putManifest(own, content);
        for (const mirror of ['hub', 'quay', 'ghcr']) state.putManifest(mirrorRepo(mirror), content);
        state.putManifest({ registry: 'mirror.local:5000', repository }, content);
        state.putManifest({ registry: 'ams.ocir.io', repository }, content);
      }
    }
  }
  return state;
}

const request = (name: string): AdmissionRequest => {
  const decoded = decodeReview(fixture(`admission/${name}`));
  assert.ok(decoded.ok, 'fixture decodes');
  return decoded.review.request;
};
const deps = (state: MemoryState): MutateDeps => ({ config, state });
const noDeadline = () => new AbortController().signal;

describe('mutate on every AdmissionReview fixture', () => {
  for (const { name } of admissionReviews()) {
    it(`${name}: answers with the request uid and a patch that applies and yields a valid Pod`, async () => {
      const req = request(name);
      for (const down of [[], SOURCES]) {
        const outcome = await mutate(req, deps(world(down)), noDeadline());
        assert.equal(outcome.response.uid, req.uid);
        assert.equal(outcome.response.allowed, true);
        if (req.kind.kind !== 'Pod') continue;
        const patched = applyResponse(req.object, outcome.response);
        assertValidPod(patched);
      }
    });
  }
});

describe('mutate', () => {
  it('leaves every image alone while the sources are healthy', async () => {
    const outcome = await mutate(request('pod-create-replicaset.json'), deps(world()), noDeadline());
    assert.equal(outcome.response.patch, undefined);
    assert.deepEqual(
      outcome.decisions.map((d) => d.decision.reason),
      ['source-healthy', 'source-healthy', 'source-healthy', 'source-healthy'],
    );
  });

  it('rewrites images of a down registry to a mirror, adds its pull secret once, and records the originals', async () => {
    const req = request('pod-create-replicaset.json');
    const outcome = await mutate(req, deps(world(['docker.io'])), noDeadline());
    const pod = applyResponse(req.object, outcome.response) as {
      spec: {
        containers: { name: string; image: string }[];
        initContainers: { image: string }[];
        imagePullSecrets: { name: string }[];
      };
      metadata: { annotations: Record<string, string> };
    };
    const nginx = digestOf('docker.io/library/nginx:1.27');
    assert.equal(pod.spec.containers[0]?.image, `mirror.local:5000/hub/library/nginx:1.27@${nginx}`);
    assert.equal(pod.spec.containers[1]?.image, 'quay.io/prometheus/node-exporter:v1.8.2');
    assert.match(
      pod.spec.initContainers[0]?.image ?? '',
      /^mirror\.local:5000\/hub\/library\/busybox:latest@sha256:/,
    );
    assert.deepEqual(pod.spec.imagePullSecrets, [{ name: 'fraregcred' }, { name: 'mirror-pull' }]);
    assert.deepEqual(JSON.parse(pod.metadata.annotations[ORIGINAL_IMAGES_ANNOTATION] ?? '{}'), {
      web: 'nginx:1.27',
      migrate: 'busybox',
    });
    // Existing annotations stay.
    assert.equal(pod.metadata.annotations['kubectl.kubernetes.io/restartedAt'], '2026-11-01T10:00:00Z');
    assert.equal(outcome.response.warnings?.length, 2);
    assert.match(
      outcome.response.warnings?.[0] ?? '',
      /rerouted to mirror\.local:5000\/hub\/library\/(busybox|nginx).*source-unhealthy/,
    );
  });

  it('routes image volumes like containers: reference rewritten, pull secret added, original recorded apart', async () => {
    const req = request('pod-create-image-volume.json');
    const outcome = await mutate(req, deps(world(['docker.io', 'registry.local:5000'])), noDeadline());
    assert.deepEqual(
      outcome.decisions.map((d) => [d.site.kind, d.site.name, d.decision.reason]),
      [
        ['containers', 'server', 'source-unhealthy'],
        ['volumes', 'models', 'source-unhealthy'],
        ['volumes', 'tools', 'source-unhealthy'],
      ],
    );
    assert.deepEqual(
      patchOf(outcome.response)
        .map((op) => op.path)
        .filter((path) => path.startsWith('/spec/volumes')),
      ['/spec/volumes/0/image/reference', '/spec/volumes/1/image/reference'],
    );
    type Volume = { name: string; image?: { reference: string; pullPolicy: string }; configMap?: unknown };
    const pod = applyResponse(req.object, outcome.response) as {
      spec: { volumes: Volume[]; imagePullSecrets: { name: string }[] };
      metadata: { annotations: Record<string, string> };
    };
    assertValidPod(pod);
    const models = digestOf('registry.local:5000/team/models:v3');
    assert.deepEqual(pod.spec.volumes[0]?.image, {
      reference: `mirror.local:5000/team/models:v3@${models}`,
      pullPolicy: 'IfNotPresent',
    });
    assert.match(
      pod.spec.volumes[1]?.image?.reference ?? '',
      /^mirror\.local:5000\/hub\/library\/busybox:1\.36@/,
    );
    // Other volume sources are not images: left as they were.
    assert.deepEqual(pod.spec.volumes.slice(2), (req.object as typeof pod).spec.volumes.slice(2));
    assert.deepEqual(pod.spec.imagePullSecrets, [{ name: 'teamregcred' }, { name: 'mirror-pull' }]);
    assert.deepEqual(JSON.parse(pod.metadata.annotations[ORIGINAL_IMAGES_ANNOTATION] ?? '{}'), {
      server: 'docker.io/library/python:3.12',
      'spec.volumes': {
        models: 'registry.local:5000/team/models:v3',
        tools: 'docker.io/library/busybox:1.36',
      },
    });
    assert.ok(
      outcome.response.warnings?.some((w) => w.startsWith('regroute: volumes "models" image registry.local')),
      String(outcome.response.warnings),
    );
    const audit = auditRecords(req, outcome, 1).find((r) => r.container === 'models');
    assert.equal(audit?.containerKind, 'volumes');
    assert.equal(audit?.to, `mirror.local:5000/team/models:v3@${models}`);

    // Invoked again on the pod it patched: every image, volumes included, is taken as rewritten.
    const again = await mutate(
      { ...req, object: pod },
      deps(world(['docker.io', 'registry.local:5000'])),
      noDeadline(),
    );
    assert.equal(again.response.patch, undefined);
    assert.ok(again.decisions.every((d) => d.decision.reason === 'already-rewritten'));
  });

  it('writes a record an older regroute reads as it always did: containers only, no volume taken for a renamed container', async () => {
    const req = request('pod-create-image-volume.json');
    const outcome = await mutate(req, deps(world(['registry.local:5000'])), noDeadline());
    const pod = applyResponse(req.object, outcome.response) as {
      metadata: { annotations: Record<string, string> };
    };
    const raw = JSON.parse(pod.metadata.annotations[ORIGINAL_IMAGES_ANNOTATION] ?? '{}') as Record<
      string,
      unknown
    >;
    // What every earlier version kept of it: the string entries, each a container name of the pod.
    const olderReading = Object.entries(raw).filter(([, value]) => typeof value === 'string');
    assert.deepEqual(olderReading, []);
    assert.deepEqual(raw, { 'spec.volumes': { models: 'registry.local:5000/team/models:v3' } });
  });

  it('reads a record an older regroute wrote (containers only) and one it cannot use, routing the volumes anyway', async () => {
    for (const recorded of [
      '{"server":"docker.io/library/python:3.12"}',
      '{"spec.volumes":"x"}',
      'not json',
    ]) {
      const req = request('pod-create-image-volume.json');
      const object = req.object as { metadata: Record<string, unknown> };
      object.metadata.annotations = { [ORIGINAL_IMAGES_ANNOTATION]: recorded };
      const outcome = await mutate(req, deps(world(['registry.local:5000'])), noDeadline());
      const models = outcome.decisions.find((d) => d.site.name === 'models');
      assert.equal(models?.decision.reason, 'source-unhealthy', recorded);
      const pod = applyResponse(req.object, outcome.response) as {
        metadata: { annotations: Record<string, string> };
      };
      const record = JSON.parse(pod.metadata.annotations[ORIGINAL_IMAGES_ANNOTATION] ?? '{}');
      assert.deepEqual(record['spec.volumes'], { models: 'registry.local:5000/team/models:v3' }, recorded);
    }
  });

  it('counts image volumes toward the image cap, after every container', async () => {
    const req = request('pod-create-image-volume.json');
    const object = req.object as { spec: { containers: { name: string; image: string }[] } };
    object.spec.containers = Array.from({ length: MAX_IMAGES_PER_REVIEW - 1 }, (_, i) => ({
      name: `c${i}`,
      image: 'docker.io/library/python:3.12',
    }));
    const outcome = await mutate(req, deps(world(['registry.local:5000'])), noDeadline());
    const volumes = outcome.decisions.filter((d) => d.site.kind === 'volumes');
    assert.deepEqual(
      volumes.map((d) => [d.site.name, d.decision.reason]),
      [
        ['models', 'source-unhealthy'],
        ['tools', 'image-cap'],
      ],
    );
  });

  it('leaves a volume without a reference, or with one that is not a string, as it is', async () => {
    const req = request('pod-create-image-volume.json');
    const object = req.object as { spec: { volumes: Record<string, unknown>[] } };
    object.spec.volumes[0] = { name: 'models', image: { pullPolicy: 'Always' } };
    object.spec.volumes[1] = { name: 'tools', image: { reference: 7 } };
    const outcome = await mutate(req, deps(world(SOURCES)), noDeadline());
    const volumes = outcome.decisions.filter((d) => d.site.kind === 'volumes');
    assert.deepEqual(
      volumes.map((d) => [d.site.name, d.decision.reason, d.error]),
      [
        ['models', 'invalid-reference', 'image is not a string'],
        ['tools', 'invalid-reference', 'image is not a string'],
      ],
    );
    assert.ok(!patchOf(outcome.response).some((op) => op.path.startsWith('/spec/volumes')));
  });

  it('is idempotent on reinvocation: rewritten containers stay, new ones are handled', async () => {
    const req = request('pod-create-replicaset.json');
    const state = world(['docker.io']);
    const first = await mutate(req, deps(state), noDeadline());
    const once = applyResponse(req.object, first.response);
    const second = await mutate({ ...req, object: once }, deps(state), noDeadline());
    assert.equal(second.response.patch, undefined);
    assert.ok(
      second.decisions
        .filter((d) => d.site.name === 'web' || d.site.name === 'migrate')
        .every((d) => d.decision.reason === 'already-rewritten'),
    );

    const withSidecar = structuredClone(once) as { spec: { containers: { name: string; image: string }[] } };
    withSidecar.spec.containers.push({ name: 'sidecar', image: 'docker.io/library/nginx:1.27' });
    const third = await mutate({ ...req, object: withSidecar }, deps(state), noDeadline());
    const pod = applyResponse(withSidecar, third.response) as {
      spec: { containers: { image: string }[]; imagePullSecrets: { name: string }[] };
      metadata: { annotations: Record<string, string> };
    };
    assert.match(pod.spec.containers[3]?.image ?? '', /^mirror\.local:5000\/hub\/library\/nginx:1\.27@/);
    assert.deepEqual(
      Object.keys(JSON.parse(pod.metadata.annotations[ORIGINAL_IMAGES_ANNOTATION] ?? '{}')).sort(),
      ['migrate', 'sidecar', 'web'],
    );
    // The pull secret is not added twice.
    assert.equal(pod.spec.imagePullSecrets.filter((s) => s.name === 'mirror-pull').length, 1);
  });

  it('takes a rewritten container another webhook renamed as rewritten: not moved again, no second pull secret', async () => {
    const chained = parseConfig(
      {
        registries: {
          'mirror.local:5000': { pullSecret: 'mirror-pull' },
          'ams.ocir.io': { pullSecret: 'amsregcred' },
        },
        routes: [
          { prefix: 'docker.io', registries: ['docker.io', 'mirror.local:5000/hub'] },
          { prefix: 'mirror.local:5000/hub', registries: ['mirror.local:5000/hub', 'ams.ocir.io/hub'] },
        ],
      },
      'test',
    );
    const digest = digestOf('chained');
    const state = new MemoryState()
      .setHealth('docker.io', 'unhealthy')
      .setHealth('mirror.local:5000', 'healthy')
      .setHealth('ams.ocir.io', 'healthy')
      .putLastKnownTag({ registry: 'docker.io', repository: 'library/nginx' }, '1.27', digest)
      .putManifest({ registry: 'mirror.local:5000', repository: 'hub/library/nginx' }, digest)
      .putManifest({ registry: 'ams.ocir.io', repository: 'hub/library/nginx' }, digest);
    const req = request('pod-create-replicaset.json');
    const pod = req.object as {
      spec: { containers: { name: string; image: string }[]; initContainers?: unknown };
    };
    pod.spec.containers = [{ name: 'web', image: 'nginx:1.27' }];
    delete pod.spec.initContainers;
    const first = await mutate(req, { config: chained, state }, noDeadline());
    const once = applyResponse(req.object, first.response) as typeof pod;
    assert.match(once.spec.containers[0]?.image ?? '', /^mirror\.local:5000\/hub\/library\/nginx:1\.27@/);
    // Another webhook renames the container; then the mirror goes down and regroute is invoked again.
    const renamed = structuredClone(once);
    (renamed.spec.containers[0] as { name: string }).name = 'web-main';
    state.setHealth('mirror.local:5000', 'unhealthy');
    const again = await mutate({ ...req, object: renamed }, { config: chained, state }, noDeadline());
    assert.equal(again.decisions[0]?.decision.reason, 'already-rewritten');
    assert.equal(again.response.patch, undefined);
  });

  for (const [name, skipped] of [
    ['pod-create-skip-label.json', 'skip-label'],
    ['pod-create-mirror.json', 'mirror-pod'],
    ['deployment-create.json', 'not-a-pod'],
  ] as const) {
    it(`never changes ${name} (${skipped})`, async () => {
      const outcome = await mutate(request(name), deps(world(SOURCES)), noDeadline());
      assert.equal(outcome.skipped, skipped);
      assert.equal(outcome.response.patch, undefined);
    });
  }

  it('computes the same decisions and the same patch for a dry run as for the real request', async () => {
    const req = request('pod-create-dryrun.json');
    assert.equal(req.dryRun, true);
    const dry = await mutate(req, deps(world(SOURCES)), noDeadline());
    const real = await mutate({ ...req, dryRun: false }, deps(world(SOURCES)), noDeadline());
    assert.ok(dry.response.patch, 'the dry run is rerouted too');
    assert.deepEqual(patchOf(dry.response), patchOf(real.response));
    assert.deepEqual(dry.response.warnings, real.response.warnings);
    assert.deepEqual(
      dry.decisions.map((d) => [d.site.name, d.decision.reason, d.decision.target]),
      real.decisions.map((d) => [d.site.name, d.decision.reason, d.decision.target]),
    );
  });

  it('leaves image volumes alone on the ephemeral containers subresource', async () => {
    const req = request('pod-ephemeral-update.json');
    const withVolume = structuredClone(req) as AdmissionRequest & {
      object: { spec: Record<string, unknown> };
      oldObject: { spec: Record<string, unknown> };
    };
    const volumes = [{ name: 'models', image: { reference: 'docker.io/library/busybox:1.36' } }];
    withVolume.object.spec.volumes = volumes;
    withVolume.oldObject.spec.volumes = volumes;
    withVolume.object.spec.imagePullSecrets = [{ name: 'mirror-pull' }];
    const outcome = await mutate(withVolume, deps(world(['docker.io'])), noDeadline());
    assert.deepEqual(
      outcome.decisions.map((d) => d.site.kind),
      ['ephemeralContainers'],
    );
    assert.ok(!patchOf(outcome.response).some((op) => op.path.startsWith('/spec/volumes')));
  });

  it('routes only new ephemeral containers on their subresource, without touching pull secrets or annotations', async () => {
    const req = request('pod-ephemeral-update.json');
    const outcome = await mutate(req, deps(world(['docker.io'])), noDeadline());
    assert.deepEqual(
      outcome.decisions.map((d) => d.site.name),
      ['debugger-x2k9'],
    );
    // The only mirror needs a pull secret the pod lacks, and the subresource cannot add one.
    assert.equal(outcome.response.patch, undefined);
    assert.equal(outcome.decisions[0]?.decision.verdicts[1]?.verdict, 'pull-secret-unavailable');

    const withSecret = structuredClone(req) as AdmissionRequest & {
      object: { spec: Record<string, unknown> };
    };
    withSecret.object.spec.imagePullSecrets = [{ name: 'mirror-pull' }];
    const routed = await mutate(withSecret, deps(world(['docker.io'])), noDeadline());
    const ops = patchOf(routed.response);
    assert.deepEqual(
      ops.map((op) => op.path),
      ['/spec/ephemeralContainers/0/image'],
    );
  });

  it('leaves an invalid image untouched and still routes the others', async () => {
    const req = request('pod-create-replicaset.json');
    const object = structuredClone(req.object) as { spec: { containers: { image: unknown }[] } };
    object.spec.containers[1] = { ...object.spec.containers[1], image: 'Quay.io/UPPER:case' };
    object.spec.containers[2] = { ...object.spec.containers[2], image: 42 };
    const outcome = await mutate({ ...req, object }, deps(world(['docker.io'])), noDeadline());
    const reasons = Object.fromEntries(outcome.decisions.map((d) => [d.site.name, d.decision.reason]));
    assert.equal(reasons.exporter, 'invalid-reference');
    assert.equal(reasons.app, 'invalid-reference');
    assert.equal(reasons.web, 'source-unhealthy');
    assertValidPod(
      applyResponse(
        {
          ...object,
          spec: {
            ...object.spec,
            containers: object.spec.containers.map((c, i) => (i === 2 ? { ...c, image: 'x' } : c)),
          },
        },
        outcome.response,
      ),
    );
  });

  it('creates the annotations map on a pod that has none', async () => {
    const req = request('pod-create-replicaset.json');
    const object = structuredClone(req.object) as { metadata: Record<string, unknown> };
    delete object.metadata.annotations;
    const outcome = await mutate({ ...req, object }, deps(world(['docker.io'])), noDeadline());
    const pod = applyResponse(object, outcome.response) as {
      metadata: { annotations: Record<string, string> };
    };
    assert.ok(pod.metadata.annotations[ORIGINAL_IMAGES_ANNOTATION]);
  });

  it('answers by the deadline when a registry hangs, leaving the image as it is', async () => {
    const req = request('pod-create-replicaset.json');
    const state = new MemoryState().setDelay('docker.io', 60_000).setDelay('mirror.local:5000', 60_000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const outcome = await mutate(req, { config, state }, controller.signal);
    assert.equal(outcome.response.patch, undefined);
    const web = outcome.decisions.find((d) => d.site.name === 'web');
    assert.equal(web?.decision.reason, 'deadline');
  });

  it('handles the 30-container pod, observing each distinct image once', async () => {
    const req = request('pod-create-30-containers.json');
    const state = world(SOURCES);
    const outcome = await mutate(req, deps(state), noDeadline());
    const distinctImages = new Set(outcome.decisions.map((d) => d.site.image)).size;
    const tagLookups = state.lookups.filter((l) => l.startsWith('tag ')).length;
    assert.ok(
      tagLookups <= distinctImages,
      `${tagLookups} tag lookups for ${distinctImages} distinct images`,
    );
    assertValidPod(applyResponse(req.object, outcome.response));
  });
});

describe('mutate() on reviews naming very many images', () => {
  /** A pod of `count` distinct quay.io images, quay.io down, each held by the mirror under its digest. */
  function manyImages(count: number, name = (i: number) => `c${i}`) {
    const state = new MemoryState()
      .setHealth('quay.io', 'unhealthy')
      .setHealth('mirror.local:5000', 'healthy');
    const containers = Array.from({ length: count }, (_, i) => {
      const digest = digestOf(`many ${i}`);
      state.putManifest({ registry: 'mirror.local:5000', repository: `quay/team/app${i}` }, digest);
      return { name: name(i), image: `quay.io/team/app${i}@${digest}` };
    });
    const request = {
      uid: 'many',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'default',
      object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'many' }, spec: { containers } },
    } as unknown as AdmissionRequest;
    return { state, request };
  }

  it(`routes the first ${MAX_IMAGES_PER_REVIEW} images and leaves the rest (image-cap), asking nothing about them`, async () => {
    const { state, request } = manyImages(MAX_IMAGES_PER_REVIEW + 40);
    const outcome = await mutate(request, { config, state }, new AbortController().signal);
    const reasons = outcome.decisions.map((d) => d.decision.reason);
    assert.equal(reasons.filter((r) => r === 'source-unhealthy').length, MAX_IMAGES_PER_REVIEW);
    assert.equal(reasons.filter((r) => r === 'image-cap').length, 40);
    assert.ok(!state.lookups.some((l) => l.includes(`app${MAX_IMAGES_PER_REVIEW + 1}@`)));
    const records = auditRecords(request, outcome, 1);
    const cut = records.filter((r) => r.reason === 'image-cap');
    assert.equal(cut.length, 1, 'one audit line for all the images cut');
    assert.match(cut[0]?.from ?? '', /^40 images past the first 256/);
  });

  it(`keeps at most ${MAX_WARNINGS} warnings, the last counting the rest`, async () => {
    const { state, request } = manyImages(30);
    const outcome = await mutate(request, { config, state }, new AbortController().signal);
    const warnings = outcome.response.warnings ?? [];
    assert.equal(warnings.length, MAX_WARNINGS);
    assert.match(warnings.at(-1) ?? '', /21 more images/);
  });

  it('prints no control character of a container name in a warning', async () => {
    const { state, request } = manyImages(1, () => 'evil\u001b[2J\u0007name');
    const outcome = await mutate(request, { config, state }, new AbortController().signal);
    const [warning] = outcome.response.warnings ?? [];
    assert.ok(warning?.includes('evil?[2J?name'), warning);
    assert.ok(![...(warning ?? '')].some((c) => (c.codePointAt(0) ?? 0) < 0x20));
  });
});
