import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Metrics } from '../../../src/audit/metrics.js';
import { parseConfig } from '../../../src/config/load.js';
import { buildApp } from '../../../src/server/app.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { applyResponse, assertValidPod } from '../../helpers/apiserver.js';
import { testApp } from '../../helpers/app.js';
import { digestOf } from '../../helpers/digests.js';
import { admissionReviews, fixture } from '../../helpers/fixtures.js';

const config = parseConfig(
  {
    registries: { 'mirror.local:5000': { pullSecret: 'mirror-pull' } },
    routes: [{ prefix: 'docker.io', registries: ['docker.io', 'mirror.local:5000/hub'] }],
  },
  'test',
);
const nginx = digestOf('nginx');
const hub = { registry: 'docker.io', repository: 'library/nginx' };
const mirror = { registry: 'mirror.local:5000', repository: 'hub/library/nginx' };
const state = new MemoryState()
  .setHealth('docker.io', 'unhealthy')
  .setHealth('mirror.local:5000', 'healthy')
  .putLastKnownTag(hub, '1.27', nginx)
  .putManifest(mirror, nginx);
const { app, logs, ready, metrics } = testApp(config, state);
after(() => app.close());

const post = (payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: '/mutate',
    payload: payload as string,
    headers: { 'content-type': 'application/json', ...headers },
  });

describe('POST /mutate', () => {
  for (const { name, review } of admissionReviews()) {
    it(`${name}: answers an AdmissionReview v1 with the same uid, allowed`, async () => {
      const res = await post(review);
      assert.equal(res.statusCode, 200);
      const body = res.json();
      assert.equal(body.apiVersion, 'admission.k8s.io/v1');
      assert.equal(body.kind, 'AdmissionReview');
      assert.equal(body.response.uid, (review.request as { uid: string }).uid);
      assert.equal(body.response.allowed, true);
      const object = (review.request as { object: unknown }).object;
      if ((review.request as { kind: { kind: string } }).kind.kind === 'Pod')
        assertValidPod(applyResponse(object, body.response));
    });
  }

  it('writes one audit line per rerouted image with the fields an operator needs', async () => {
    logs.length = 0;
    const review = fixture<{ request: { uid: string } }>('admission/pod-create-replicaset.json');
    const res = await post(review);
    assert.ok(res.json().response.patch);
    const audits = logs
      .filter((line) => line.msg === 'image rerouted')
      .map((line) => line.audit as Record<string, unknown>);
    assert.equal(audits.length, 1);
    const [audit] = audits;
    assert.equal(audit?.uid, review.request.uid);
    assert.equal(audit?.namespace, 'shop');
    assert.equal(audit?.pod, 'web-7d4b9c8f6-*');
    assert.equal(audit?.owner, 'ReplicaSet/web-7d4b9c8f6');
    assert.equal(audit?.container, 'web');
    assert.equal(audit?.from, 'nginx:1.27');
    assert.equal(audit?.to, `mirror.local:5000/hub/library/nginx:1.27@${nginx}`);
    assert.equal(audit?.digest, nginx);
    assert.equal(audit?.reason, 'source-unhealthy');
    assert.equal(audit?.dryRun, false);
  });

  it('marks a dry run in the audit log', async () => {
    logs.length = 0;
    const res = await post(fixture('admission/pod-create-dryrun.json'));
    assert.equal(res.statusCode, 200);
    const audits = logs.filter((line) => line.audit).map((line) => line.audit as { dryRun: boolean });
    assert.ok(audits.length > 0 && audits.every((a) => a.dryRun === true));
  });

  it('counts answers by result in the metrics', async () => {
    const counted = async () => {
      const text = await metrics.registry.metrics();
      const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
      return {
        patched: value(/regroute_admission_requests_total\{result="patched"\} (\d+)/),
        rewrites: value(
          /regroute_rewrites_total\{from="docker.io",to="mirror.local:5000",reason="source-unhealthy"\} (\d+)/,
        ),
      };
    };
    const before = await counted();
    assert.ok((await post(fixture('admission/pod-create-replicaset.json'))).json().response.patch);
    assert.deepEqual(await counted(), { patched: before.patched + 1, rewrites: before.rewrites + 1 });
  });
});

// controller-runtime's HTTP edge cases, with their expected bodies, run in public-fixtures.test.ts.
describe('POST /mutate with what is not a usable AdmissionReview', () => {
  it('answers 413 to a body over 7 MiB', async () => {
    const res = await post(`{"x":"${'a'.repeat(7 * 1024 * 1024)}"}`);
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().response.status.code, 413);
  });

  it('refuses AdmissionReview v1beta1 and keeps the uid in the answer', async () => {
    const review = fixture<{ apiVersion: string; request: { uid: string } }>(
      'admission/pod-create-replicaset.json',
    );
    review.apiVersion = 'admission.k8s.io/v1beta1';
    const res = await post(review);
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().response.uid, review.request.uid);
    assert.match(res.json().response.status.message, /admission\.k8s\.io\/v1/);
  });

  it('refuses a review without a uid', async () => {
    const review = fixture<{ request: { uid?: string } }>('admission/pod-create-replicaset.json');
    delete review.request.uid;
    assert.equal((await post(review)).statusCode, 400);
  });
});

describe('GET /healthz and /readyz', () => {
  it('is live at once', async () => {
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
  });

  it('is ready only once registry state can be trusted', async () => {
    ready.value = false;
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 503);
    ready.value = true;
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
  });
});

describe('after the answer', () => {
  const build = (answered: NonNullable<Parameters<typeof buildApp>[0]['answered']>) => {
    const logs: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
    const deps = { config, state };
    const built = buildApp({
      mutateDeps: () => deps,
      metrics: new Metrics({ defaultMetrics: false }),
      log,
      isReady: () => true,
      answered,
    });
    return { app: built, logs };
  };

  it('tells the outcome of each review to whoever waits for it (the Events), once answered', async () => {
    const told: [string, string | undefined][] = [];
    const t = build((request, outcome) =>
      told.push([request.uid, outcome.decisions.find((d) => d.site.name === 'web')?.decision.reason]),
    );
    try {
      const review = fixture<{ request: { uid: string } }>('admission/pod-create-replicaset.json');
      const res = await t.app.inject({ method: 'POST', url: '/mutate', payload: review });
      assert.ok(res.json().response.patch);
      assert.deepEqual(told, [[review.request.uid, 'source-unhealthy']]);
    } finally {
      await t.app.close();
    }
  });

  it('answers the review as it would have when what it tells throws', async () => {
    const t = build(() => {
      throw new Error('listener exploded');
    });
    try {
      const res = await t.app.inject({
        method: 'POST',
        url: '/mutate',
        payload: fixture('admission/pod-create-replicaset.json'),
      });
      assert.equal(res.statusCode, 200);
      assert.ok(res.json().response.patch, 'the patch is sent all the same');
      assert.equal(res.json().response.auditAnnotations.decision, 'rewritten');
      assert.ok(t.logs.some((l) => l.msg === 'after an admission'));
    } finally {
      await t.app.close();
    }
  });
});
