// What the /mutate fuzz tests share: an app whose routes cover every fixture image and whose registry state makes
// it rewrite most of them (so patches are built and proven under fuzzing), mutations of AdmissionReview JSON, and
// the one check every answer must pass.
import assert from 'node:assert/strict';
import type { SecureContextOptions } from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { pino } from 'pino';
import { Metrics } from '../../src/audit/metrics.js';
import { parseConfig } from '../../src/config/load.js';
import { buildApp } from '../../src/server/app.js';
import type { Presence, RegistryState, RepositoryLocation, TagAnswer } from '../../src/state/state.js';
import { locationKey } from '../../src/state/state.js';
import { digestOf } from './digests.js';
import { admissionReviews } from './fixtures.js';
import { assertStrictlyValidPod } from './strict-schema.js';

export const MIRROR = 'mirror.local:5000';
/** A registry that never answers: lookups there end only by the admission deadline. */
export const HUNG = 'ghcr.io';

export const fuzzConfig = parseConfig(
  {
    // The shortest deadline the schema allows: reviews that wait on the hung registry stay cheap.
    admission: { deadlineMs: 10, unverifiedTags: 'allow' },
    registries: { [MIRROR]: { pullSecret: 'mirror-pull' } },
    routes: [
      ...['docker.io', 'quay.io', 'fra.ocir.io/tenancy', 'registry.local:5000/team', 'k8s.gcr.io', HUNG].map(
        (prefix) => ({ prefix, registries: [prefix, `${MIRROR}/${prefix.replaceAll(/[.:]/g, '-')}`] }),
      ),
      { prefix: '*.amazonaws.com', registries: [`${MIRROR}/ecr`] },
      { prefix: '*.pkg.dev', registries: [`${MIRROR}/gar`] },
    ],
  },
  'fuzz',
);

/** Every source is down and the mirror holds everything: each routed image is rewritten, with its pull secret. */
export class MirroredState implements RegistryState {
  health(registry: string) {
    if (registry === MIRROR) return 'healthy' as const;
    return registry === HUNG ? ('healthy' as const) : ('unhealthy' as const);
  }
  resolveTag(location: RepositoryLocation, tag: string): Promise<TagAnswer> {
    if (location.registry === HUNG) return new Promise(() => {});
    return Promise.resolve({
      kind: 'digest',
      digest: digestOf(`${locationKey(location)}:${tag}`),
      from: 'last-known',
    });
  }
  hasManifest(location: RepositoryLocation): Promise<Presence> {
    if (location.registry === HUNG) return new Promise(() => {});
    return Promise.resolve(location.registry === MIRROR ? 'present' : 'unknown');
  }
  knownPresence(): Presence {
    return 'unknown';
  }
}

export interface FuzzApp {
  readonly app: ReturnType<typeof buildApp>;
  readonly metrics: Metrics;
  /** Log lines written so far; each was checked to be one JSON object, then dropped. */
  readonly logLines: () => number;
}

/** The webhook app over MirroredState, logging at info into a sink that keeps nothing (memory is measured). */
export function fuzzApp(https?: SecureContextOptions): FuzzApp {
  let lines = 0;
  const log = pino(
    { level: 'info' },
    {
      write(line: string) {
        lines++;
        JSON.parse(line);
      },
    },
  );
  const metrics = new Metrics({ defaultMetrics: false });
  const deps = { config: fuzzConfig, state: new MirroredState() };
  const app = buildApp({ mutateDeps: () => deps, metrics, log, isReady: () => true }, https ? { https } : {});
  return { app, metrics, logLines: () => lines };
}

export const fixtures = admissionReviews();

/** The review every bad one is followed by: it must still be answered, patched, with its own uid. */
export const goodReview = fixtures.find(({ name }) => name === 'pod-create-replicaset.json')
  ?.review as Record<string, unknown>;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `depth` arrays, each the only element of the one around it: JSON.parse copes, recursive code does not. */
export const nestedArrays = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

/** Values of the wrong type, or the right type and hostile. */
const wrongValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 1e308, '', 'x', [], {}, [1, 'a', null], {
    a: { b: [] },
  }),
  fc.constantFrom<Json>('\u0000', '\ud800', '\u202e', 'a'.repeat(10_000), '../../etc', '~1/~0'),
  fc.constantFrom<Json>('nginx', 'Upper/Case', 'docker.io/library/nginx:-bad', `x@sha256:${'0'.repeat(64)}`),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
);

/** Where a mutation lands: anywhere, or (more often) where regroute reads. */
const INTERESTING =
  /^(apiVersion|kind|request(\.(uid|kind|resource|operation|subResource|object|oldObject|dryRun))?(\.(spec|metadata)(\.(containers|initContainers|ephemeralContainers|volumes|imagePullSecrets|annotations|labels)(\.\d+(\.(name|image(\.reference)?))?)?)?)?)$/;

export type Mutation =
  | { op: 'replace'; at: number; interesting: boolean; value: Json }
  | { op: 'delete'; at: number; interesting: boolean }
  | { op: 'duplicate'; at: number; interesting: boolean }
  | { op: 'deep'; at: number; interesting: boolean; depth: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('replace' as const),
      at: fc.nat(),
      interesting: fc.boolean(),
      value: wrongValue,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat(), interesting: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), interesting: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('deep' as const),
      at: fc.nat(),
      interesting: fc.boolean(),
      // Deep enough to hurt recursive code, shallow enough for this test to stringify (the 100 000 case is apart).
      depth: fc.constantFrom(10, 100, 1000),
    }),
  },
);

/** Every node's path, down to a depth that holds all a review's fields (nested arrays past it are not walked). */
function paths(root: Json): string[][] {
  const out: string[][] = [];
  const pending: [Json, string[]][] = [[root, []]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [node, path] = next;
    out.push(path);
    if (path.length >= 24 || node === null || typeof node !== 'object') continue;
    const children: [string, Json][] = Array.isArray(node)
      ? node.map((child, i) => [String(i), child])
      : Object.entries(node);
    for (const [key, child] of children) pending.push([child, [...path, key]]);
  }
  return out;
}

/** Applies mutations to a copy of a review; paths are read fresh after each one. */
export function mutateReview(review: Record<string, unknown>, mutations: readonly Mutation[]): Json {
  let doc = structuredClone(review) as Json;
  for (const m of mutations) {
    const all = paths(doc).filter((p) => p.length > 0);
    const interesting = all.filter((p) => INTERESTING.test(p.join('.')));
    const pool = m.interesting && interesting.length > 0 ? interesting : all;
    if (pool.length === 0) {
      doc = m.op === 'replace' ? m.value : doc;
      continue;
    }
    const path = pool[m.at % pool.length] as string[];
    const key = path[path.length - 1] as string;
    let parent = doc as Record<string, Json> | Json[];
    for (const segment of path.slice(0, -1))
      parent = (parent as Record<string, Json>)[segment] as typeof parent;
    const value =
      m.op === 'replace'
        ? m.value
        : m.op === 'deep'
          ? (JSON.parse(nestedArrays(m.depth)) as Json)
          : undefined;
    if (Array.isArray(parent)) {
      const index = Number(key);
      if (m.op === 'delete') parent.splice(index, 1);
      else if (m.op === 'duplicate') parent.splice(index, 0, structuredClone(parent[index] as Json));
      else parent[index] = value as Json;
    } else if (m.op === 'delete') {
      delete parent[key];
    } else if (m.op === 'duplicate') {
      parent[`${key}-copy`] = structuredClone(parent[key] as Json);
    } else {
      parent[key] = value as Json;
    }
  }
  return doc;
}

export interface Answer {
  readonly status: number;
  readonly body: string;
}

export type Outcome = 'patched' | 'allowed' | 'rejected';

/** The uid an answer must carry: the request's when it is a string, else none. */
function sentUid(sent: unknown): string {
  const request = (sent as { request?: unknown } | null | undefined)?.request;
  const uid = (request as { uid?: unknown } | null | undefined)?.uid;
  return typeof request === 'object' && request !== null && typeof uid === 'string' ? uid : '';
}

/** Valid against the Pod schema, with no field the schema lacks. */
const isValidPod = (object: unknown): boolean => {
  try {
    assertStrictlyValidPod(object);
    return true;
  } catch {
    return false;
  }
};

/**
 * What every answer to POST /mutate must be: 200 with an AdmissionReview v1 that allows the pod, names the request,
 * and carries a patch only when it applies to the request's object (keeping a valid Pod valid); or a 4xx whose body
 * is an AdmissionReview saying why. Never a 5xx: the webhook fails open. `sent` is the body as JSON, when it was.
 */
export function assertWellFormed(answer: Answer, sent: unknown): Outcome {
  assert.ok(
    answer.status === 200 || (answer.status >= 400 && answer.status < 500),
    `status ${answer.status}: ${answer.body.slice(0, 300)}`,
  );
  const review = JSON.parse(answer.body) as {
    apiVersion: unknown;
    kind: unknown;
    response: {
      uid: unknown;
      allowed: unknown;
      patch?: unknown;
      patchType?: unknown;
      status?: { code: unknown; message: unknown };
    };
  };
  assert.equal(review.apiVersion, 'admission.k8s.io/v1');
  assert.equal(review.kind, 'AdmissionReview');
  assert.equal(typeof review.response, 'object');
  assert.equal(review.response.uid, sentUid(sent), 'the answer names the request it answers');
  assert.equal(typeof review.response.allowed, 'boolean');
  if (answer.status !== 200) {
    assert.equal(review.response.allowed, false);
    assert.equal(review.response.status?.code, answer.status);
    assert.ok(
      typeof review.response.status?.message === 'string' && review.response.status.message.length > 0,
    );
    assert.equal(review.response.patch, undefined);
    return 'rejected';
  }
  assert.equal(review.response.allowed, true, 'regroute never denies a pod');
  if (review.response.patch === undefined) {
    assert.equal(review.response.patchType, undefined);
    return 'allowed';
  }
  assert.equal(review.response.patchType, 'JSONPatch');
  assert.equal(typeof review.response.patch, 'string');
  const ops = JSON.parse(
    Buffer.from(review.response.patch as string, 'base64').toString('utf8'),
  ) as Operation[];
  assert.ok(Array.isArray(ops) && ops.length > 0);
  const object = (sent as { request: { object: unknown } }).request.object;
  const wasValid = isValidPod(object);
  const patched = fastJsonPatch.applyPatch(copyToPatch(object), ops, true, true).newDocument;
  if (wasValid) assert.ok(isValidPod(patched), 'a valid Pod stays valid');
  return 'patched';
}

/**
 * A copy to apply a patch to. A body nested 100,000 deep is too deep for structuredClone's recursion, while
 * regroute proves its patch on copies of the touched paths only and so does answer with one: then the sent object
 * itself, parsed for this one check, is patched.
 */
function copyToPatch(object: unknown): unknown {
  try {
    return structuredClone(object);
  } catch (error) {
    if (error instanceof RangeError) return object;
    throw error;
  }
}

/** Node's gc(), reachable without starting node with --expose-gc. */
export const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** Heap in use after a full collection, in bytes. */
export function heapAfterGc(): number {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

/** Tallies outcomes per fuzz family for the test's diagnostics. */
export class Tally {
  readonly #counts = new Map<string, number>();
  add(label: string): void {
    this.#counts.set(label, (this.#counts.get(label) ?? 0) + 1);
  }
  get total(): number {
    return [...this.#counts.values()].reduce((a, b) => a + b, 0);
  }
  toString(): string {
    return [...this.#counts]
      .sort((a, b) => b[1] - a[1])
      .map(([label, n]) => `${label} ${n}`)
      .join(', ');
  }
}
