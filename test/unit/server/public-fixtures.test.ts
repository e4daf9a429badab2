// Every public fixture in test/fixtures/admission-cases and test/fixtures/pods, run through the real POST /mutate
// handler against its expected outcome. Where regroute means to differ from the project a case comes from, the
// departure is written next to the case and asserted as it is, so no case passes by being skipped.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Operation } from 'fast-json-patch';
import { parseConfig } from '../../../src/config/load.js';
import type { ConfigInput } from '../../../src/config/schema.js';
import { parseReference, type Reference } from '../../../src/reference/index.js';
import { matchRoute } from '../../../src/routing/route.js';
import { BODY_LIMIT_BYTES } from '../../../src/server/app.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { applyResponse, assertValidPod, patchOf } from '../../helpers/apiserver.js';
import { testApp } from '../../helpers/app.js';
import { digestOf } from '../../helpers/digests.js';
import { fixture, fixtureNames } from '../../helpers/fixtures.js';

// biome-ignore lint/suspicious/noExplicitAny: fixtures are Kubernetes objects of many shapes, read field by field.
type Any = any;

const MIRROR = 'mirror.local:5000';
const ORIGINAL_IMAGES = 'regroute.io/original-images';

/** Cases run per fixture file, checked against the cases each file holds at the end. */
const ran = new Map<string, number>();
const count = (file: string, n = 1) => ran.set(file, (ran.get(file) ?? 0) + n);

interface Answer {
  status: number;
  body: { apiVersion?: string; kind?: string; response: Any };
}

/** One review through a fresh app over `state`, as the apiserver sends it. */
async function admit(
  config: ReturnType<typeof parseConfig>,
  state: MemoryState,
  payload: unknown,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<Answer> {
  const { app } = testApp(config, state);
  try {
    const res = await app.inject({ method: 'POST', url: '/mutate', payload: payload as string, headers });
    return { status: res.statusCode, body: res.json() };
  } finally {
    await app.close();
  }
}

const parsed = (image: string): Reference => {
  const result = parseReference(image);
  assert.ok(result.ok, `${image} parses`);
  return result.reference;
};

/** The content a reference names in these worlds: its own digest, or one derived from its name and tag. */
const contentOf = (r: Reference): string =>
  r.digest ?? digestOf(`${r.registry}/${r.repository}:${r.tag ?? 'latest'}`);

/**
 * Registry state in which every routed image's own registry is down, its last known digest is remembered, and
 * every other candidate of its route is up and holds that digest: each routed image must move.
 */
function sourcesDown(config: ReturnType<typeof parseConfig>, images: readonly string[]): MemoryState {
  const state = new MemoryState();
  for (const image of images) {
    const reference = parsed(image);
    const match = matchRoute(reference, config.routes);
    if (!match) continue;
    const digest = contentOf(reference);
    state.setHealth(reference.registry, 'unhealthy');
    state.putLastKnownTag(match.source, reference.tag ?? 'latest', digest);
    for (const candidate of match.candidates) {
      if (candidate.isOwn) continue;
      state.setHealth(candidate.registry, 'healthy');
      state.putManifest(candidate, digest);
    }
  }
  return state;
}

const CONTAINER_KINDS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

/** Every image of a pod spec, containers' and image volumes', with the JSON pointer to it. */
function imagesOf(spec: Any): { path: string; image: string; name: string; volume: boolean }[] {
  return [
    ...CONTAINER_KINDS.flatMap((kind) =>
      ((spec?.[kind] ?? []) as Any[]).map((container, index) => ({
        path: `/spec/${kind}/${index}/image`,
        image: container.image as string,
        name: container.name as string,
        volume: false,
      })),
    ),
    ...((spec?.volumes ?? []) as Any[]).flatMap((volume, index) =>
      volume.image
        ? [
            {
              path: `/spec/volumes/${index}/image/reference`,
              image: volume.image.reference as string,
              name: volume.name as string,
              volume: true,
            },
          ]
        : [],
    ),
  ];
}

/** The value at a JSON pointer of `doc` (no escapes: the fixtures' paths hold none). */
const at = (doc: Any, path: string): unknown =>
  path
    .split('/')
    .slice(1)
    .reduce((node, segment) => node?.[segment], doc);

const podReview = (uid: string, object: unknown, namespace = 'default') => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid,
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace,
    operation: 'CREATE',
    object,
  },
});

describe('controller-runtime http cases (admission-cases/controller-runtime--http-cases.json)', () => {
  const FILE = 'admission-cases/controller-runtime--http-cases.json';
  const { cases } = fixture<{
    cases: {
      name: string;
      request: { contentType: string | null; body: string | null };
      handler: string | null;
      expectedBody: string;
    }[];
  }>(FILE);
  const config = parseConfig({}, 'test');

  /**
   * What regroute answers instead, case by case, and why. Every answer, as in controller-runtime, is an
   * AdmissionReview whose response names the request (here none: uid "") and says why in status.message.
   * On every case the wording of the message is controller-runtime's own (its semantics block says a different
   * server needs only the same shape), and its `status.metadata: {}` is Go's empty ObjectMeta, which regroute
   * does not send; regroute's answers also carry apiVersion and kind, which controller-runtime omits on errors.
   */
  const departures: Record<string, { status: number; allowed: boolean; why: string }> = {
    'wrong content-type': {
      status: 415,
      allowed: false,
      why: 'fastify refuses a media type it has no parser for with 415 before the handler runs; still a 4xx',
    },
    'infinite body': {
      status: 413,
      allowed: false,
      why: 'the same 413 at the same 7 MiB limit; the body sent is one byte over the limit, not endless',
    },
    'no apiVersion/kind: response defaults to v1': {
      status: 400,
      allowed: false,
      why: 'controller-runtime hands `request: {}` to a handler that allows it; regroute refuses a review with no uid, kind, resource or operation, which failurePolicy Ignore admits',
    },
    'v1 request -> v1 response': {
      status: 400,
      allowed: false,
      why: 'as above: `request: {}` has no uid, kind, resource or operation',
    },
    'v1beta1 request -> v1beta1 response': {
      status: 400,
      allowed: false,
      why: 'regroute serves admission.k8s.io/v1 only (the webhook is registered with admissionReviewVersions [v1]) and answers in v1',
    },
  };

  for (const c of cases) {
    const expected = JSON.parse(c.expectedBody) as { apiVersion?: string; response: Any };
    const departure = departures[c.name];
    it(`${c.name}: ${departure ? `departs: ${departure.why}` : `answers ${expected.response.status.code} as controller-runtime does`}`, async () => {
      const body =
        c.request.body === '(endless random bytes)'
          ? `{"x":"${'a'.repeat(BODY_LIMIT_BYTES)}"}`
          : (c.request.body ?? '');
      const answer = await admit(
        config,
        new MemoryState(),
        body,
        c.request.contentType ? { 'content-type': c.request.contentType } : {},
      );
      const status = departure?.status ?? expected.response.status.code;
      const allowed = departure?.allowed ?? expected.response.allowed;
      assert.equal(answer.status, status);
      assert.equal(answer.body.apiVersion, 'admission.k8s.io/v1', 'answers are v1, as the v1 cases expect');
      assert.equal(answer.body.kind, 'AdmissionReview');
      assert.equal(answer.body.response.uid, expected.response.uid);
      assert.equal(answer.body.response.allowed, allowed);
      assert.equal(answer.body.response.status.code, status);
      assert.ok(answer.body.response.status.message.length > 0, 'the answer says why');
      assert.equal(answer.body.response.patch, undefined);
      count(FILE);
    });
  }

  it('has a departure only for cases the file holds', () => {
    for (const name of Object.keys(departures))
      assert.ok(
        cases.some((c) => c.name === name),
        name,
      );
  });
});

describe('the documented AdmissionReview shapes (admission-cases/k8s-docs--admissionreview-examples.json)', () => {
  const FILE = 'admission-cases/k8s-docs--admissionreview-examples.json';
  const docs = fixture<{ request: Any; responses: Record<string, Any>; patchEncoding: Any }>(FILE);
  const keys = (o: object) => Object.keys(o).sort();
  const nginx = digestOf('docker.io/library/nginx:1.27');
  const config = parseConfig(
    {
      registries: { [MIRROR]: { pullSecret: 'mirror-pull' } },
      routes: [{ prefix: 'docker.io', registries: ['docker.io', `${MIRROR}/hub`] }],
    },
    'test',
  );
  const state = () =>
    new MemoryState()
      .setHealth('docker.io', 'unhealthy')
      .setHealth(MIRROR, 'healthy')
      .putLastKnownTag({ registry: 'docker.io', repository: 'library/nginx' }, '1.27', nginx)
      .putManifest({ registry: MIRROR, repository: 'hub/library/nginx' }, nginx);

  it('the documented request (an UPDATE of deployments/scale) gets the documented "allow" answer, exactly', async () => {
    const answer = await admit(config, state(), docs.request);
    assert.equal(answer.status, 200);
    const allow = structuredClone(docs.responses.allow);
    allow.response.uid = docs.request.request.uid;
    assert.deepEqual(answer.body, allow);
    count(FILE);
  });

  it('a patch answer has the documented "patch" shape (plus warnings and auditAnnotations), its patch encoded as documented', async () => {
    const encoded = docs.patchEncoding;
    assert.deepEqual(
      patchOf({ uid: '', allowed: true, patchType: 'JSONPatch', patch: encoded.base64 }),
      [JSON.parse(encoded.json)].flat(),
    );
    const review = fixture<Any>('admission/pod-create-replicaset.json');
    const answer = await admit(config, state(), review);
    const { response } = answer.body;
    const documented = docs.responses.patch.response;
    assert.deepEqual(keys(answer.body), keys(docs.responses.patch));
    // Departure, asserted: the documented example carries no auditAnnotations, an AdmissionResponse field regroute
    // fills with its decision (the apiserver puts the webhook's name before each key).
    assert.deepEqual(keys(response), [...keys(documented), 'auditAnnotations', 'warnings'].sort());
    assert.equal(response.auditAnnotations.decision, 'rewritten');
    assert.equal(response.patchType, documented.patchType);
    assert.ok(Array.isArray(JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'))));
    count(FILE);
  });

  it('warnings have the documented "warnings" shape, each under the 256 characters past which they may be cut', async (t) => {
    const answer = await admit(config, state(), fixture('admission/pod-create-replicaset.json'));
    const { warnings } = answer.body.response;
    assert.ok(Array.isArray(warnings) && warnings.length > 0);
    for (const warning of warnings) {
      assert.equal(typeof warning, 'string');
      assert.ok(warning.length <= 256, warning);
      if (warning.length > 120) t.diagnostic(`over the 120 characters the docs suggest: ${warning.length}`);
    }
    assert.deepEqual(keys(docs.responses.warnings.response), ['allowed', 'uid', 'warnings']);
    count(FILE);
  });

  it('a refusal has the documented "forbidWithStatus" shape; the minimal "forbid" departs: regroute never denies a review it could read', async () => {
    const review = fixture<Any>('admission/pod-create-replicaset.json');
    review.apiVersion = 'admission.k8s.io/v1beta1';
    const answer = await admit(config, state(), review);
    const documented = docs.responses.forbidWithStatus.response;
    assert.equal(answer.status, 400);
    assert.deepEqual(keys(answer.body.response), keys(documented));
    assert.deepEqual(keys(answer.body.response.status), keys(documented.status));
    assert.equal(answer.body.response.allowed, false);
    assert.equal(answer.body.response.uid, review.request.uid);
    count(FILE, 2);
  });
});

describe('k8s-image-swapper’s expected patches (admission-cases/k8s-image-swapper--expected-patches.json)', () => {
  const FILE = 'admission-cases/k8s-image-swapper--expected-patches.json';
  const { cases } = fixture<{ cases: { input: string; target: string; expectedPatch: Operation[] }[] }>(FILE);

  /**
   * Departures, asserted below: regroute pins what it rewrites, so a tag reference gets `@<digest>` added and a
   * tag + digest reference keeps its tag next to the digest (k8s-image-swapper keeps only the digest); and it
   * records the original images in one more operation, an annotation. Images already under the target are left
   * alone by both: regroute has no route for them.
   */
  const asSwapperWrites = (value: string, reference: Reference, digest: string): string =>
    reference.digest ? value.replace(`:${reference.tag}@`, '@') : value.replace(`@${digest}`, '');

  for (const c of cases) {
    it(`${c.input.split('/').pop()} to ${c.target}: rewrites the same images to the same names`, async () => {
      const review = fixture<Any>(c.input.replace('../', ''));
      const sites = imagesOf(review.request.object.spec);
      const targetHost = c.target.split('/')[0] as string;
      // A route per source host, the target under that host's name as its one mirror.
      const hosts = [...new Set(sites.map((s) => parsed(s.image).registry))].filter((h) => h !== targetHost);
      const config = parseConfig(
        { routes: hosts.map((host) => ({ prefix: host, registries: [host, `${c.target}/${host}`] })) },
        'test',
      );
      const answer = await admit(
        config,
        sourcesDown(
          config,
          sites.map((s) => s.image),
        ),
        review,
      );
      assert.equal(answer.status, 200);
      const ops = patchOf(answer.body.response);
      const imageOps = ops.filter((op) => op.path.endsWith('/image'));
      assert.deepEqual(
        imageOps.map((op) => op.path),
        c.expectedPatch.map((op) => op.path),
        'the same containers, in the same order',
      );
      for (const [i, op] of imageOps.entries()) {
        const site = sites.find((s) => s.path === op.path);
        assert.ok(site && op.op === 'replace');
        const reference = parsed(site.image);
        const value = String((op as { value: unknown }).value);
        assert.ok(value.endsWith(`@${contentOf(reference)}`), `${value} is pinned to the digest`);
        assert.equal(
          asSwapperWrites(value, reference, contentOf(reference)),
          (c.expectedPatch[i] as Any).value,
        );
      }
      const others = ops.filter((op) => !op.path.endsWith('/image'));
      assert.equal(others.length, 1, 'one more operation: the original images');
      assert.match(others[0]?.path ?? '', /^\/metadata\/annotations(\/regroute\.io~1original-images)?$/);
      assertValidPod(applyResponse(review.request.object, answer.body.response));
      count(FILE);
    });
  }
});

describe('kubewarden verify-image-signatures (admission-cases/kubewarden--*.json)', () => {
  const FILE = 'admission-cases/kubewarden--expected.json';
  const expected = fixture<{ cases: { input: string; settings: string; expected: Any }[] }>(FILE);
  const SIGNED = 'ghcr.io/kubewarden/test-verify-image-signatures';
  /** kwctl takes bare AdmissionRequests; the apiserver sends them in an AdmissionReview, as here. */
  const wrapped = (name: string) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: fixture<Any>(`admission-cases/${name}`),
  });
  const routed = parseConfig(
    {
      registries: { [MIRROR]: { pullSecret: 'mirror-pull' } },
      routes: ['ghcr.io', 'docker.io'].map((host) => ({
        prefix: host,
        registries: [host, `${MIRROR}/${host}`],
      })),
    },
    'test',
  );

  const mutating = expected.cases.find((c) => c.settings === 'mutation enabled');
  const disabled = expected.cases.find((c) => c.settings === 'mutation disabled');

  it('mutation enabled: the tag is pinned by appending the digest, tag kept; regroute does so where it reroutes to', async () => {
    assert.ok(mutating);
    const pinned = String(mutating.expected.patchContains);
    const digest = pinned.slice(pinned.indexOf('@') + 1);
    const state = new MemoryState()
      .setHealth('ghcr.io', 'unhealthy')
      .setHealth(MIRROR, 'healthy')
      .putLastKnownTag({ registry: 'ghcr.io', repository: SIGNED.slice('ghcr.io/'.length) }, 'signed', digest)
      .putManifest({ registry: MIRROR, repository: SIGNED }, digest);
    const answer = await admit(routed, state, wrapped(mutating.input));
    assert.equal(answer.body.response.allowed, mutating.expected.allowed);
    const [op] = patchOf(answer.body.response);
    assert.deepEqual(op, { op: 'replace', path: '/spec/containers/0/image', value: `${MIRROR}/${pinned}` });
    assert.ok(Buffer.from(answer.body.response.patch, 'base64').toString().includes(pinned));

    // Departure: kubewarden pins in place; regroute leaves an image whose own registry serves it as it is.
    const healthy = new MemoryState()
      .setHealth('ghcr.io', 'healthy')
      .putTag({ registry: 'ghcr.io', repository: SIGNED.slice('ghcr.io/'.length) }, 'signed', digest);
    const unchanged = await admit(routed, healthy, wrapped(mutating.input));
    assert.equal(unchanged.body.response.patch, undefined);
    count(FILE);
  });

  it('mutation disabled: allowed, no patch (regroute with no route for the image)', async () => {
    assert.ok(disabled);
    const answer = await admit(parseConfig({}, 'test'), new MemoryState(), wrapped(disabled.input));
    assert.equal(answer.status, 200);
    assert.equal(answer.body.response.allowed, disabled.expected.allowed);
    assert.equal(answer.body.response.patch ?? null, disabled.expected.patch);
    count(FILE);
  });

  // The two requests the source asserts nothing about: regroute's own expectations.
  it('pod_creation_with_digest: a tag + digest reference moves to the mirror with its tag and digest', async () => {
    const review = wrapped('kubewarden--pod_creation_with_digest.request.json');
    const image = review.request.object.spec.containers[0].image as string;
    const answer = await admit(routed, sourcesDown(routed, [image]), review);
    const reference = parsed(image);
    assert.equal(
      patchOf(answer.body.response)[0]?.path === '/spec/containers/0/image' &&
        (patchOf(answer.body.response)[0] as Any).value,
      `${MIRROR}/docker.io/library/nginx:v1.26@${reference.digest}`,
    );
    assertValidPod(applyResponse(review.request.object, answer.body.response));
    count('admission-cases/kubewarden--pod_creation_with_digest.request.json');
  });

  it('pod_creation_with_init_container: the init container moves too', async () => {
    const review = wrapped('kubewarden--pod_creation_with_init_container.request.json');
    const sites = imagesOf(review.request.object.spec);
    const answer = await admit(
      routed,
      sourcesDown(
        routed,
        sites.map((s) => s.image),
      ),
      review,
    );
    const pod = applyResponse(review.request.object, answer.body.response) as Any;
    assert.equal(
      pod.spec.initContainers[0].image,
      `${MIRROR}/docker.io/library/init:latest@${contentOf(parsed('init'))}`,
    );
    assert.equal(
      pod.spec.containers[0].image,
      `${MIRROR}/docker.io/library/nginx:latest@${contentOf(parsed('nginx'))}`,
    );
    assert.deepEqual(pod.spec.imagePullSecrets, [{ name: 'mirror-pull' }]);
    assertValidPod(pod);
    count('admission-cases/kubewarden--pod_creation_with_init_container.request.json');
    // The signed request is the input of both cases above.
    count('admission-cases/kubewarden--pod_creation_signed.request.json');
  });
});

describe('public Pods and Deployments (pods/*.json)', () => {
  const files = fixtureNames('pods');

  /** Where a route sends a host's images: under the mirror, at a path named after the host. */
  const mirrorOf = (host: string) => `${MIRROR}/${host.replace(':', '-')}`;

  /** The Pod a Deployment's ReplicaSet creates from its template, as it reaches the webhook. */
  const podFromTemplate = (deployment: Any) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...deployment.spec.template.metadata,
      generateName: `${deployment.metadata.name}-`,
      namespace: deployment.metadata.namespace ?? 'default',
    },
    spec: deployment.spec.template.spec,
  });

  for (const file of files) {
    const doc = fixture<{ objects: Any[] }>(`pods/${file}`);
    doc.objects.forEach((entry, index) => {
      const object = entry.object ?? entry;
      const name = `${file} #${index} (${object.kind} ${object.metadata?.name})`;
      it(`${name}: every image of every container kind and image volume moves to the mirror, pinned`, async () => {
        const pod = object.kind === 'Deployment' ? podFromTemplate(object) : object;
        assertValidPod(pod);
        const sites = imagesOf(pod.spec);
        assert.ok(sites.length > 0);
        const hosts = [...new Set(sites.map((s) => parsed(s.image).registry))];
        const config = parseConfig(
          {
            registries: { [MIRROR]: { pullSecret: 'mirror-pull' } },
            routes: hosts.map((host) => ({ prefix: host, registries: [host, mirrorOf(host)] })),
          } satisfies ConfigInput,
          'test',
        );
        const review = podReview(`uid-${file}-${index}`, pod);
        const answer = await admit(
          config,
          sourcesDown(
            config,
            sites.map((s) => s.image),
          ),
          review,
        );
        assert.equal(answer.status, 200);
        const patched = applyResponse(pod, answer.body.response) as Any;
        assertValidPod(patched);
        for (const site of sites) {
          const r = parsed(site.image);
          const tag = r.digest ? r.tag : (r.tag ?? 'latest');
          const want = `${mirrorOf(r.registry)}/${r.repository}${tag ? `:${tag}` : ''}@${contentOf(r)}`;
          assert.equal(at(patched, site.path), want, site.path);
        }
        // An image volume keeps everything but its reference (pullPolicy among it).
        for (const [i, volume] of ((pod.spec.volumes ?? []) as Any[]).entries()) {
          const { reference: _, ...rest } = volume.image ?? {};
          const { reference: __, ...patchedRest } = patched.spec.volumes[i].image ?? {};
          assert.deepEqual(patchedRest, rest);
        }
        const secrets = (patched.spec.imagePullSecrets as { name: string }[]).map((s) => s.name);
        assert.deepEqual(secrets, [
          ...(pod.spec.imagePullSecrets ?? []).map((s: Any) => s.name),
          'mirror-pull',
        ]);
        // Keyed by container name: a name some samples reuse across kinds (which the apiserver would refuse)
        // keeps one of its images. Image volumes by volume name, under their own key.
        const annotation = JSON.parse(patched.metadata.annotations[ORIGINAL_IMAGES]);
        for (const site of sites) {
          const recorded = site.volume ? annotation['spec.volumes'] : annotation;
          const alike = sites.filter((s) => s.volume === site.volume && s.name === site.name);
          if (alike.length === 1) assert.equal(recorded[site.name], site.image);
          else assert.ok(alike.some((s) => s.image === recorded[site.name]));
        }
        count(`pods/${file}`);
      });

      if (object.kind === 'Deployment') {
        it(`${name}: as itself, a Deployment is not a Pod, allowed unchanged`, async () => {
          const review = {
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            request: {
              uid: `uid-${file}-${index}-deployment`,
              kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
              resource: { group: 'apps', version: 'v1', resource: 'deployments' },
              operation: 'CREATE',
              object,
            },
          };
          const answer = await admit(parseConfig({}, 'test'), new MemoryState(), review);
          assert.deepEqual(answer.body.response, { uid: review.request.uid, allowed: true });
        });
      }
    });
  }
});

describe('every public fixture', () => {
  it('ran, case by case: none is left unread', (t) => {
    const expected: Record<string, number> = {
      'admission-cases/controller-runtime--http-cases.json': fixture<{ cases: unknown[] }>(
        'admission-cases/controller-runtime--http-cases.json',
      ).cases.length,
      // The five documented responses; the request comes with the first.
      'admission-cases/k8s-docs--admissionreview-examples.json': 5,
      'admission-cases/k8s-image-swapper--expected-patches.json': fixture<{ cases: unknown[] }>(
        'admission-cases/k8s-image-swapper--expected-patches.json',
      ).cases.length,
      'admission-cases/kubewarden--expected.json': fixture<{ cases: unknown[] }>(
        'admission-cases/kubewarden--expected.json',
      ).cases.length,
      'admission-cases/kubewarden--pod_creation_signed.request.json': 1,
      'admission-cases/kubewarden--pod_creation_with_digest.request.json': 1,
      'admission-cases/kubewarden--pod_creation_with_init_container.request.json': 1,
      ...Object.fromEntries(
        fixtureNames('pods').map((file) => [
          `pods/${file}`,
          fixture<{ objects: unknown[] }>(`pods/${file}`).objects.length,
        ]),
      ),
    };
    assert.deepEqual(
      [...ran.keys()].sort(),
      [
        ...fixtureNames('admission-cases').map((f) => `admission-cases/${f}`),
        ...fixtureNames('pods').map((f) => `pods/${f}`),
      ].sort(),
      'every file ran',
    );
    assert.deepEqual(Object.fromEntries(ran), expected);
    const total = [...ran.values()].reduce((a, b) => a + b, 0);
    t.diagnostic(`${total} cases from ${ran.size} files`);
  });
});
