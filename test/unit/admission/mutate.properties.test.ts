// Properties of the whole admission pipeline over generated pods and registry worlds: the patch always applies as
// the apiserver applies it, leaves a valid Pod, changes nothing but what regroute owns, and a second invocation
// finds nothing left to do.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import fastJsonPatch from 'fast-json-patch';
import { type MutateOutcome, mutate } from '../../../src/admission/mutate.js';
import { ORIGINAL_IMAGES_ANNOTATION, VOLUMES_RECORD_KEY } from '../../../src/admission/patch.js';
import { CONTAINER_KINDS } from '../../../src/admission/pod.js';
import type { AdmissionRequest } from '../../../src/admission/review.js';
import { parseReference } from '../../../src/reference/index.js';
import { REASONS } from '../../../src/routing/decision.js';
import { matchRoute, type RouteMatch } from '../../../src/routing/route.js';
import { assertValidPod, patchOf } from '../../helpers/apiserver.js';
import { type Container, type GeneratedPod, pod } from '../../helpers/generated-pods.js';
import {
  config,
  deadlineAfterAnswers,
  heardInTime,
  image,
  type RoutingConfig,
  servesDigest,
  WaitingState,
  type World,
  WorldState,
  wantedDigest,
  world,
  worldLiveState,
} from '../../helpers/routing-world.js';
import { checkProperty } from '../../helpers/runs.js';

type Operation = 'CREATE' | 'ephemeral-update';

interface Scenario {
  readonly cfg: RoutingConfig;
  readonly pod: GeneratedPod;
  readonly world: World;
  /** A world an earlier invocation saw: its patch is applied before this one runs. */
  readonly earlier: World | null;
  readonly operation: Operation;
  /** For an ephemeral update: how many of the pod's ephemeral containers existed before it. */
  readonly existingEphemeral: number;
}

const scenario = (maxPerKind: number): fc.Arbitrary<Scenario> =>
  config.chain((cfg) =>
    fc
      .record({
        cfg: fc.constant(cfg),
        pod: pod(image(cfg.routes), { maxPerKind }),
        world,
        earlier: fc.option(world, { nil: null }),
        operation: fc.constantFrom<Operation>('CREATE', 'CREATE', 'CREATE', 'ephemeral-update'),
        existingEphemeral: fc.nat(2),
      })
      .map((s) =>
        // Counterexamples print what matters, not every default of the config.
        Object.assign(s, {
          [fc.toStringMethod]: () =>
            [
              `${s.operation}${s.operation === 'ephemeral-update' ? ` (${s.existingEphemeral} existed)` : ''}`,
              `routes=${JSON.stringify(s.cfg.routes)}`,
              `secrets=${JSON.stringify(Object.fromEntries(Object.entries(s.cfg.registries).map(([h, r]) => [h, r.pullSecret])))}`,
              `unverifiedTags=${s.cfg.admission.unverifiedTags}`,
              `pod=${JSON.stringify({ metadata: s.pod.metadata, spec: s.pod.spec })}`,
              `world=${fc.stringify(s.world)}`,
              `earlier=${s.earlier ? fc.stringify(s.earlier) : 'none'}`,
            ].join('\n'),
        }),
      ),
  );

const uid = 'b2d4c0a8-7f5e-4a61-9c3e-0d1f2e3a4b5c';

function createRequest(object: unknown): AdmissionRequest {
  return {
    uid,
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: 'shop',
    operation: 'CREATE',
    object,
  };
}

function ephemeralRequest(object: GeneratedPod, oldObject: GeneratedPod): AdmissionRequest {
  return {
    ...createRequest(object),
    operation: 'UPDATE',
    subResource: 'ephemeralcontainers',
    oldObject,
  };
}

/** Applies a patch exactly as the apiserver does (RFC 6902, every operation validated) to a copy. */
function applied<T>(object: T, outcome: MutateOutcome): T {
  const ops = patchOf(outcome.response);
  return fastJsonPatch.applyPatch(structuredClone(object), ops, true, false).newDocument as T;
}

interface Record2 {
  containers: Record<string, string>;
  volumes: Record<string, string>;
}

const strings = (value: unknown): Record<string, string> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v === 'string'))
    : {};

/**
 * The record regroute reads back: container name → original image at the top level, image volume name → original
 * reference under VOLUMES_RECORD_KEY, whatever else the annotation held.
 */
function recorded(p: GeneratedPod): Record2 {
  try {
    const parsed: unknown = JSON.parse(p.metadata.annotations?.[ORIGINAL_IMAGES_ANNOTATION] ?? '');
    const volumes = (parsed as Record<string, unknown> | null)?.[VOLUMES_RECORD_KEY];
    return { containers: strings(parsed), volumes: strings(volumes) };
  } catch {
    return { containers: {}, volumes: {} };
  }
}

/** Every place of the pod naming an image: containers of each kind, then image volumes. */
function sitesOf(p: GeneratedPod) {
  return [
    ...CONTAINER_KINDS.flatMap((kind) =>
      (p.spec[kind] ?? []).map((c: Container, index) => ({ kind, index, name: c.name, image: c.image })),
    ),
    ...(p.spec.volumes ?? []).flatMap((v, index) =>
      v.image ? [{ kind: 'volumes' as const, index, name: v.name, image: v.image.reference }] : [],
    ),
  ];
}

/** The pod with what regroute may change taken out: images, pull secrets and its own annotation. */
function withoutRegrouteFields(p: GeneratedPod): unknown {
  const copy = structuredClone(p) as GeneratedPod;
  for (const kind of CONTAINER_KINDS) for (const c of copy.spec[kind] ?? []) delete c.image;
  for (const v of copy.spec.volumes ?? []) delete v.image?.reference;
  delete copy.spec.imagePullSecrets;
  if (copy.metadata.annotations) {
    delete copy.metadata.annotations[ORIGINAL_IMAGES_ANNOTATION];
    if (Object.keys(copy.metadata.annotations).length === 0) delete copy.metadata.annotations;
  }
  return copy;
}

/** The scenario's request for the pod as it is `before` this invocation. */
function requestOf(s: Scenario, before: GeneratedPod): AdmissionRequest {
  if (s.operation === 'CREATE') return createRequest(before);
  const old = structuredClone(before);
  if (old.spec.ephemeralContainers) {
    old.spec.ephemeralContainers = old.spec.ephemeralContainers.slice(0, s.existingEphemeral);
  }
  return ephemeralRequest(before, old);
}

/** Runs the scenario: the pod as an earlier invocation left it, the request, and this invocation's outcome. */
async function admit(s: Scenario) {
  let before = s.pod;
  assertValidPod(before);
  if (s.earlier) {
    const first = await mutate(
      createRequest(before),
      { config: s.cfg, state: new WorldState(s.earlier) },
      deadlineAfterAnswers(),
    );
    before = applied(before, first);
  }
  const request = requestOf(s, before);
  const state = new WorldState(s.world);
  const outcome = await mutate(request, { config: s.cfg, state }, deadlineAfterAnswers());
  const after = applied(before, outcome);
  return { before, request, outcome, after, state };
}

const label = (outcome: MutateOutcome, operation: Operation) =>
  outcome.skipped ??
  `${operation}: ${outcome.response.patch ? `patched (${outcome.decisions.filter((d) => d.decision.target).length <= 3 ? 'few' : 'many'} rewrites)` : 'unchanged'}`;

describe('mutate() over generated pods and registry worlds', () => {
  const RUNS = 150;
  const pods = scenario(40);

  it('answers allowed with the request uid, and a patch that applies and leaves a valid Pod', async (t) => {
    await checkProperty(
      t,
      pods,
      async (s) => {
        const { outcome, after } = await admit(s);
        assert.equal(outcome.response.uid, uid);
        assert.equal(outcome.response.allowed, true);
        assert.equal(outcome.patchError, undefined, 'every patch for a valid pod can be proven');
        if (outcome.response.patch !== undefined) assert.equal(outcome.response.patchType, 'JSONPatch');
        assertValidPod(after);
        for (const { decision } of outcome.decisions) assert.ok(REASONS.includes(decision.reason));
        return label(outcome, s.operation);
      },
      RUNS,
    );
  });

  it('changes nothing but rewritten images, added pull secrets and its own annotation', async (t) => {
    await checkProperty(
      t,
      pods,
      async (s) => {
        const { before, outcome, after } = await admit(s);
        assert.deepEqual(withoutRegrouteFields(after), withoutRegrouteFields(before));
        const targets = new Map(
          outcome.decisions.flatMap(({ site, decision }) =>
            decision.target ? [[`${site.kind}/${site.index}`, decision.target]] : [],
          ),
        );
        const was = new Map(sitesOf(before).map((site) => [`${site.kind}/${site.index}`, site.image]));
        for (const { kind, index, name, image } of sitesOf(after)) {
          const key = `${kind}/${index}`;
          assert.equal(image, targets.get(key) ?? was.get(key), `${kind}[${index}] "${name}"`);
        }
        if (s.operation === 'ephemeral-update') {
          assert.deepEqual(after.metadata, before.metadata, 'the subresource changes no metadata');
          assert.deepEqual(after.spec.imagePullSecrets, before.spec.imagePullSecrets);
          for (const key of targets.keys()) {
            const [kind, index] = key.split('/');
            assert.equal(kind, 'ephemeralContainers');
            assert.ok(Number(index) >= s.existingEphemeral, 'only new ephemeral containers change');
          }
        }
        return label(outcome, s.operation);
      },
      RUNS,
    );
  });

  it('rewrites only to a candidate that answered and holds the digest the image now pins', async (t) => {
    await checkProperty(
      t,
      pods,
      async (s) => {
        const { outcome, before } = await admit(s);
        for (const { reference, decision } of outcome.decisions) {
          if (!decision.target || !decision.candidate || !reference) continue;
          const parsed = parseReference(decision.target);
          assert.ok(parsed.ok);
          assert.equal(parsed.reference.registry, decision.candidate.registry);
          assert.equal(parsed.reference.repository, decision.candidate.repository);
          assert.equal(parsed.reference.digest, decision.digest);
          if (decision.reason === 'unverified-tag') continue;
          const match = matchRoute(reference, s.cfg.routes) as RouteMatch;
          assert.equal(
            decision.digest,
            wantedDigest(s.world, reference, match),
            'the digest the pod asked for',
          );
          assert.ok(heardInTime(s.world, decision.candidate), 'the candidate answered');
          assert.ok(servesDigest(s.world, decision.candidate, decision.digest as string), 'it holds it');
          if (s.operation === 'ephemeral-update') {
            // A new ephemeral container cannot bring a pull secret: only a candidate the pod can already pull from.
            const secret = s.cfg.registries[decision.candidate.registry]?.pullSecret;
            const has = (before.spec.imagePullSecrets ?? []).some((p) => p.name === secret);
            assert.ok(secret === undefined || has, `pull secret ${secret} is the pod's`);
          }
        }
        return label(outcome, s.operation);
      },
      RUNS,
    );
  });

  it('adds each pull secret once, and only those of the candidates it chose', async (t) => {
    await checkProperty(
      t,
      pods,
      async (s) => {
        const { before, outcome, after } = await admit(s);
        const names = (after.spec.imagePullSecrets ?? []).map((p) => p.name);
        assert.equal(new Set(names).size, names.length, `no duplicates in ${JSON.stringify(names)}`);
        const had = (before.spec.imagePullSecrets ?? []).map((p) => p.name);
        assert.deepEqual(names.slice(0, had.length), had, 'existing pull secrets stay, in order');
        const chosen = new Set(
          outcome.decisions.flatMap(({ decision }) => {
            const secret = decision.candidate && s.cfg.registries[decision.candidate.registry]?.pullSecret;
            return secret ? [secret] : [];
          }),
        );
        for (const added of names.slice(had.length)) assert.ok(chosen.has(added), `${added} was needed`);
        if (s.operation === 'CREATE') for (const secret of chosen) assert.ok(names.includes(secret));
        return `${names.length - had.length} added`;
      },
      RUNS,
    );
  });

  it('records the original image of exactly the containers and image volumes it rewrote, keeping earlier records', async (t) => {
    await checkProperty(
      t,
      pods,
      async (s) => {
        const { before, outcome, after } = await admit(s);
        const rewritten = outcome.decisions.filter((d) => d.decision.target);
        if (rewritten.length === 0 || s.operation === 'ephemeral-update') {
          assert.deepEqual(after.metadata, before.metadata);
          return 'no record written';
        }
        const earlier = recorded(before);
        const record = recorded(after);
        // Built from entries, so that a container named __proto__ is an entry like any other.
        const expected = (volumes: boolean, had: Record<string, string>) =>
          Object.fromEntries([
            ...Object.entries(had),
            ...rewritten
              .filter(({ site }) => (site.kind === 'volumes') === volumes)
              .map(({ site }) => [site.name, site.image]),
          ]);
        assert.deepEqual(record, {
          containers: expected(false, earlier.containers),
          volumes: expected(true, earlier.volumes),
        });
        const volumes = rewritten.filter(({ site }) => site.kind === 'volumes').length;
        return `${rewritten.length} recorded${volumes > 0 ? ', image volumes among them' : ''}`;
      },
      RUNS,
    );
  });

  it('treats a container or image volume as rewritten earlier only when the record names it with another image', async (t) => {
    await checkProperty(
      t,
      pods,
      async (s) => {
        const { before, outcome } = await admit(s);
        const earlier = recorded(before);
        // A recorded container or volume missing from a created pod was renamed since: a digest-pinned image not in
        // the record is then taken as rewritten too.
        const sites = sitesOf(before);
        const missing = (record: Record<string, string>, volumes: boolean) => {
          const names = new Set(sites.filter((x) => (x.kind === 'volumes') === volumes).map((x) => x.name));
          return Object.keys(record).some((name) => !names.has(name));
        };
        const renamed =
          s.operation === 'CREATE' && (missing(earlier.containers, false) || missing(earlier.volumes, true));
        for (const { site, decision } of outcome.decisions) {
          const image = typeof site.image === 'string' ? parseReference(site.image) : null;
          const record = site.kind === 'volumes' ? earlier.volumes : earlier.containers;
          const claimed =
            typeof site.image === 'string' &&
            (Object.hasOwn(record, site.name)
              ? record[site.name] !== site.image
              : renamed && image?.ok === true && image.reference.digest !== null);
          assert.equal(decision.reason === 'already-rewritten', claimed, `${site.kind} "${site.name}"`);
        }
        return label(outcome, s.operation);
      },
      RUNS,
    );
  });

  it('decides a pod from the cache at once exactly as when waiting for every answer, with a patch that applies', async (t) => {
    await checkProperty(
      t,
      // The same pod admitted before fills the caches: none (every answer needs a registry), one or two times.
      fc.tuple(pods, fc.nat(2)),
      async ([s, admittedBefore]) => {
        const request = requestOf(s, s.pod);
        // Twin states of the same world with the same history: one answers from its cache at once, the other is
        // waited for on every answer, as the admission path did before it had a synchronous path.
        const direct = worldLiveState(s.world);
        const twin = worldLiveState(s.world);
        for (let i = 0; i < admittedBefore; i++) {
          for (const state of [direct, twin]) {
            await mutate(request, { config: s.cfg, state }, deadlineAfterAnswers());
          }
        }
        const waiting = new WaitingState(twin);
        const atOnce = await mutate(request, { config: s.cfg, state: direct }, deadlineAfterAnswers());
        const waited = await mutate(request, { config: s.cfg, state: waiting }, deadlineAfterAnswers());
        assert.deepEqual(atOnce, waited);
        assert.equal(atOnce.patchError, undefined, 'every patch for a valid pod can be proven');
        assertValidPod(applied(s.pod, atOnce));
        return `${waiting.neededMore ? 'waited' : 'all cached'}: ${label(atOnce, s.operation)}`;
      },
      RUNS,
    );
  });

  it('finds nothing left to do when invoked again on the pod it patched', async (t) => {
    await checkProperty(
      t,
      pods,
      async (s) => {
        const { request, outcome, after } = await admit(s);
        const again = await mutate(
          { ...request, object: after },
          { config: s.cfg, state: new WorldState(s.world) },
          deadlineAfterAnswers(),
        );
        const rerouted = again.decisions.filter((d) => d.decision.target);
        if (s.operation === 'CREATE') {
          // The record of original images makes a second CREATE invocation leave every rewritten image alone.
          assert.deepEqual(
            rerouted.map((d) => [d.site.image, d.decision.target]),
            [],
          );
          assert.equal(again.response.patch, undefined);
          return label(outcome, s.operation);
        }
        // The ephemeral-containers subresource cannot carry that record. A rewritten image is routed again only when
        // another route covers the location it was rewritten to (routes chained in the config), and then only to
        // the same content.
        for (const { site, decision } of rerouted) {
          const first = outcome.decisions.find(
            (d) => d.site.kind === site.kind && d.site.index === site.index,
          );
          assert.ok(
            first?.decision.target,
            `only a container rewritten the first time: ${String(site.image)}`,
          );
          const rewritten = parseReference(first.decision.target);
          assert.ok(
            rewritten.ok && matchRoute(rewritten.reference, s.cfg.routes),
            'a route covers the rewrite',
          );
          assert.equal(decision.digest, first.decision.digest, 'the same content');
        }
        return rerouted.length > 0
          ? 'ephemeral-update: routed again (chained routes)'
          : label(outcome, s.operation);
      },
      RUNS,
    );
  });
});
