// Fuzzing POST /mutate in process (fastify inject): mutated fixtures, random and broken bodies, wrong versions and
// content types, huge and deeply nested pods, bodies over the limit. Every answer is a well-formed AdmissionReview
// or a 4xx, never a 5xx; a good review is answered after every bad one; the heap does not grow with the cases.
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { MAX_IMAGES_PER_REVIEW } from '../../src/admission/mutate.js';
import { BODY_LIMIT_BYTES } from '../../src/server/app.js';
import {
  type Answer,
  assertWellFormed,
  fixtures,
  fuzzApp,
  goodReview,
  heapAfterGc,
  type Mutation,
  mutateReview,
  mutation,
  nestedArrays,
  type Outcome,
  Tally,
} from '../helpers/admission-fuzz.js';
import { explained, fuzzCases, SEED } from '../helpers/runs.js';

const { app, metrics, logLines } = fuzzApp();
// The admission deadline is an unref'd timer and inject opens no socket: without this, a review waiting on the
// hung registry would leave the event loop empty and end the test process early.
const keepAlive = setInterval(() => {}, 60_000);
after(async () => {
  clearInterval(keepAlive);
  await app.close();
});

async function post(body: string | Buffer, contentType: string | null = 'application/json'): Promise<Answer> {
  const res = await app.inject({
    method: 'POST',
    url: '/mutate',
    payload: body,
    headers: contentType === null ? {} : { 'content-type': contentType },
  });
  return { status: res.statusCode, body: res.body };
}

/**
 * The body as the server reads it, or undefined when it reads none: not JSON, or JSON that fastify refuses for
 * prototype poisoning (a `__proto__` key, a `constructor` with a `prototype`) before any uid is read from it.
 */
function sentAs(body: string | Buffer): unknown {
  const text = body.toString();
  try {
    if (!/"(__proto__|constructor)"\s*:/.test(text)) return JSON.parse(text);
    let poisoned = false;
    const value: unknown = JSON.parse(text, (key, v: unknown) => {
      if (key === '__proto__') poisoned = true;
      if (key === 'constructor' && typeof v === 'object' && v !== null && Object.hasOwn(v, 'prototype'))
        poisoned = true;
      return v;
    });
    return poisoned ? undefined : value;
  } catch {
    return undefined;
  }
}

const good = JSON.stringify(goodReview);
let goodAnswer: string | undefined;

/**
 * The server still answers a good review correctly: called after every bad one. Registry state does not change
 * here, so every answer must be the very first one, byte for byte, and that one was checked in full.
 */
async function assertStillServing(): Promise<void> {
  const answer = await post(good);
  assert.equal(answer.status, 200);
  if (goodAnswer === undefined) {
    assert.equal(assertWellFormed(answer, goodReview), 'patched');
    goodAnswer = answer.body;
  }
  assert.equal(answer.body, goodAnswer);
}

/** Sends one case, checks its answer and the good review after it, and tallies the outcome. */
async function fuzzOne(tally: Tally, body: string | Buffer, contentType: string | null = 'application/json') {
  const answer = await post(body, contentType);
  const outcome: Outcome = assertWellFormed(answer, contentType === null ? undefined : sentAs(body));
  tally.add(`${outcome} ${answer.status}`);
  await assertStillServing();
  return answer;
}

/** Runs a generated family from the shared seed (or one next to it) and reports its case count and outcomes. */
async function family<T>(
  t: TestContext,
  arbitrary: fc.Arbitrary<T>,
  cases: number,
  send: (value: T, tally: Tally) => Promise<unknown>,
  seed = SEED,
) {
  const tally = new Tally();
  try {
    await fc.assert(
      fc.asyncProperty(arbitrary, (value) => send(value, tally).then(() => undefined)),
      // Shrinking a large review takes long and says little: the first failing case is reported as it is.
      { seed, numRuns: cases, endOnFailure: true },
    );
  } catch (error) {
    throw explained(error);
  }
  t.diagnostic(`${tally.total} cases, seed ${seed} — ${tally}`);
}

const mutatedFixture = fc.record({
  fixture: fc.nat(fixtures.length - 1),
  mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }),
});

describe('POST /mutate under fuzzing (in process)', () => {
  it('answers every mutated fixture with a well-formed review or a 4xx, and the heap stays flat', async (t) => {
    const send = async ({ fixture, mutations }: { fixture: number; mutations: Mutation[] }, tally: Tally) => {
      const review = (fixtures[fixture] as (typeof fixtures)[number]).review;
      await fuzzOne(tally, JSON.stringify(mutateReview(review, mutations)));
    };
    // A first round warms up every code path and cache, so that the second measures only what cases leave behind.
    const warmUp = Math.min(200, fuzzCases(800));
    await family(t, mutatedFixture, warmUp, send, SEED + 1);
    const before = heapAfterGc();
    await family(t, mutatedFixture, fuzzCases(800), send);
    const grown = heapAfterGc() - before;
    t.diagnostic(
      `heap after GC grew by ${(grown / 2 ** 20).toFixed(1)} MiB; ${logLines()} log lines written`,
    );
    assert.ok(grown < 24 * 2 ** 20, `heap grew by ${grown} bytes`);
  });

  it('answers random JSON bodies and random AdmissionReview-shaped bodies', async (t) => {
    const request = {
      uid: fc.oneof(fc.uuid(), fc.jsonValue({ maxDepth: 1 })),
      kind: fc.oneof(fc.constant({ group: '', version: 'v1', kind: 'Pod' }), fc.jsonValue({ maxDepth: 2 })),
      resource: fc.oneof(
        fc.constant({ group: '', version: 'v1', resource: 'pods' }),
        fc.jsonValue({ maxDepth: 2 }),
      ),
      operation: fc.oneof(
        fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT'),
        fc.jsonValue({ maxDepth: 1 }),
      ),
      subResource: fc.oneof(fc.constant('ephemeralcontainers'), fc.string()),
      object: fc.jsonValue({ maxDepth: 4 }),
      oldObject: fc.jsonValue({ maxDepth: 4 }),
    };
    // Fields missing at random, or all there with values of any type: both get past different checks.
    const shaped = fc.record(
      {
        apiVersion: fc.oneof(fc.constant('admission.k8s.io/v1'), fc.jsonValue({ maxDepth: 1 })),
        kind: fc.oneof(fc.constant('AdmissionReview'), fc.jsonValue({ maxDepth: 1 })),
        request: fc.oneof(fc.record(request, { requiredKeys: [] }), fc.record(request)),
      },
      { requiredKeys: ['request'] },
    );
    await family(t, fc.oneof(fc.jsonValue({ maxDepth: 5 }), shaped), fuzzCases(300), (value, tally) =>
      fuzzOne(tally, JSON.stringify(value) ?? 'null'),
    );
  });

  it('answers random bytes, truncated fixtures and fixtures with flipped bytes (invalid UTF-8 included)', async (t) => {
    const texts = fixtures.map(({ review }) => Buffer.from(JSON.stringify(review)));
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
      fc.record({ text: fc.nat(texts.length - 1), at: fc.nat() }).map(({ text, at }) => {
        const whole = texts[text] as Buffer;
        return whole.subarray(0, at % whole.length);
      }),
      fc
        .record({
          text: fc.nat(texts.length - 1),
          flips: fc.array(
            fc.record({
              at: fc.nat(),
              byte: fc.constantFrom(0xff, 0xfe, 0xc0, 0x80, 0xed, 0x00, 0x22, 0x5c),
            }),
            { minLength: 1, maxLength: 4 },
          ),
        })
        .map(({ text, flips }) => {
          const copy = Buffer.from(texts[text] as Buffer);
          for (const { at, byte } of flips) copy[at % copy.length] = byte;
          return copy;
        }),
    );
    await family(t, bytes, fuzzCases(300), (body, tally) => fuzzOne(tally, body));
  });

  it('refuses every apiVersion and kind but admission.k8s.io/v1 AdmissionReview with a 400 that names the uid', async (t) => {
    const tally = new Tally();
    const versions = [
      'admission.k8s.io/v1beta1',
      'admission.k8s.io/v2',
      'v1',
      '',
      'ADMISSION.K8S.IO/V1',
      'admission.k8s.io/v1 ',
    ];
    const kinds = ['AdmissionRequest', 'AdmissionResponse', 'Pod', 'admissionreview', ''];
    for (const { review } of fixtures) {
      const uid = (review.request as { uid: string }).uid;
      for (const [field, values] of [
        ['apiVersion', versions],
        ['kind', kinds],
      ] as const) {
        for (const value of values) {
          const answer = await fuzzOne(tally, JSON.stringify({ ...review, [field]: value }));
          assert.equal(answer.status, 400, `${field} ${JSON.stringify(value)}`);
          const response = JSON.parse(answer.body).response;
          assert.equal(response.uid, uid);
          if (field === 'apiVersion') assert.match(response.status.message, /admission\.k8s\.io\/v1/);
        }
        const { [field]: _, ...without } = review;
        assert.equal((await fuzzOne(tally, JSON.stringify(without))).status, 400, `no ${field}`);
      }
    }
    t.diagnostic(`${tally.total} cases — ${tally}`);
  });

  it('answers empty, non-JSON and prototype-polluting bodies, and any content type, with a 4xx or a review', async (t) => {
    const tally = new Tally();
    const bodies = [
      '',
      ' ',
      '{',
      '}',
      'null',
      '[]',
      '"review"',
      'nul',
      '{"a":1}{"b":2}',
      good.slice(0, -1),
      `${good}x`,
    ];
    for (const body of bodies) assert.ok((await fuzzOne(tally, body)).status >= 400, JSON.stringify(body));
    const polluting = [
      '{"__proto__":{"allowed":true}}',
      '{"request":{"uid":"u","__proto__":{"x":1}}}',
      '{"constructor":{"prototype":{"allowed":true}}}',
      good.replace('"request":{', '"request":{"__proto__":{"uid":"x"},'),
    ];
    // Refused before it is parsed, so no uid is read from it.
    for (const body of polluting) {
      const answer = await post(body);
      assert.equal(answer.status, 400, body);
      tally.add(`${assertWellFormed(answer, undefined)} ${answer.status}`);
      await assertStillServing();
    }
    const types = [
      null,
      'application/json; charset=utf-8',
      'application/json;charset=UTF-8',
      'APPLICATION/JSON',
      'application/json; charset=utf-16',
      'application/json-patch+json',
      'application/merge-patch+json',
      'application/yaml',
      'text/plain',
      'text/html',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
      '',
      'application/json, text/plain',
      ';;;',
    ];
    for (const type of types) {
      const answer = await post(good, type);
      // A body not read as JSON has no uid the server could have read.
      tally.add(
        `${assertWellFormed(answer, answer.status === 200 ? goodReview : undefined)} ${answer.status}`,
      );
      await assertStillServing();
      // A JSON body is read as JSON whatever the parameters; anything else is refused, never served as a review.
      if (type?.split(';')[0]?.trim().toLowerCase() === 'application/json')
        assert.equal(answer.status, 200, String(type));
    }
    t.diagnostic(`${tally.total} cases — ${tally}`);
  });

  it('answers pods with hundreds of containers, patching every image up to the cap, each once', async (t) => {
    const tally = new Tally();
    const big = fixtures.find(({ name }) => name === 'pod-create-30-containers.json')?.review as Record<
      string,
      unknown
    >;
    /** Seconds the server spent answering patched reviews so far, from its own histogram. */
    const serverSeconds = async () => {
      const metric = (await metrics.admissionDuration.get()).values.find(
        (v) => v.metricName === 'regroute_admission_duration_seconds_sum' && v.labels.result === 'patched',
      );
      return metric?.value ?? 0;
    };
    for (const count of [250, 500, 1000]) {
      const review = structuredClone(big) as {
        request: { object: { spec: { containers: { name: string }[]; initContainers?: unknown[] } } };
      };
      const [first] = review.request.object.spec.containers;
      review.request.object.spec.containers = Array.from({ length: count }, (_, i) => ({
        ...structuredClone(first as { name: string }),
        name: `worker-${i}`,
        image: `quay.io/example/worker-${i % 50}:v${i % 7}`,
      }));
      const before = await serverSeconds();
      const answer = await fuzzOne(tally, JSON.stringify(review));
      const ops = JSON.parse(Buffer.from(JSON.parse(answer.body).response.patch, 'base64').toString()) as {
        path: string;
      }[];
      // Init containers come first and count towards the cap; containers past it stay (image-cap).
      const routed = Math.min(
        count,
        MAX_IMAGES_PER_REVIEW - (review.request.object.spec.initContainers?.length ?? 0),
      );
      const rewritten = ops.filter((op) => op.path.startsWith('/spec/containers/')).map((op) => op.path);
      assert.deepEqual(
        rewritten,
        Array.from({ length: routed }, (_, i) => `/spec/containers/${i}/image`),
        'every container image up to the cap, each once, in order',
      );
      // Time is reported, not asserted: the server's own figure, free of the client's share.
      const ms = ((await serverSeconds()) - before) * 1000;
      t.diagnostic(`${count} containers: ${answer.body.length} bytes, ${ms.toFixed(0)} ms server-side`);
    }
  });

  it('answers 100 000 nested arrays anywhere in the body without overflowing the stack', async (t) => {
    const tally = new Tally();
    const deep = nestedArrays(100_000);
    const placements: [string, string][] = [
      ['the whole body', deep],
      ['the request', good.replace(/"request":\{/, `"request":${deep},"ignored":{`)],
      ['the uid', good.replace(/"uid":"[^"]*"/, `"uid":${deep}`)],
      ['the object', good.replace(/"object":\{/, `"object":${deep},"ignored":{`)],
      ['a container image', good.replace(/"image":"nginx:1.27"/, `"image":${deep}`)],
      ['a label of a pod that is rewritten', good.replace(/"labels":\{/, `"labels":{"deep":${deep},`)],
      ['the oldObject', good.replace(/"request":\{/, `"request":{"oldObject":${deep},`)],
    ];
    for (const [where, body] of placements) {
      const answer = await post(body);
      assert.ok(answer.status === 200 || answer.status === 400, `${where}: ${answer.status}`);
      const outcome = assertWellFormed(
        answer,
        answer.status === 200 ? sentAs(body) : JSON.parse(body.replace(deep, '[]')),
      );
      tally.add(`${outcome} ${answer.status}`);
      await assertStillServing();
      t.diagnostic(`${where}: ${answer.status} ${outcome}`);
    }
  });

  it('answers 413 to bodies over 7 MiB', async (t) => {
    const tally = new Tally();
    const padding = 'a'.repeat(BODY_LIMIT_BYTES);
    const bodies = [
      `{"x":"${padding}"}`,
      good.replace('"request":{', `"request":{"padding":"${padding}",`),
      Buffer.alloc(BODY_LIMIT_BYTES + 1, 0x5b),
    ];
    for (const body of bodies) {
      const answer = await post(body);
      assert.equal(answer.status, 413);
      tally.add(`${assertWellFormed(answer, undefined)} ${answer.status}`);
      await assertStillServing();
    }
    t.diagnostic(`${tally.total} cases — ${tally}`);
  });

  it('keeps metric series bounded whatever registries the fuzzed images name', async () => {
    const text = await metrics.registry.metrics();
    const series = text.split('\n').filter((line) => line.startsWith('regroute_rewrites_total{')).length;
    assert.ok(series < 100, `${series} rewrite series`);
  });
});
