// admission.mode report: every corpus review decided, audited, counted and warned about as enforce does it, and
// answered without a patch; the mode follows the config file on reload.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../../src/audit/metrics.js';
import { parseConfig, parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { parseReference } from '../../../src/reference/index.js';
import { matchRoute } from '../../../src/routing/route.js';
import { startServer } from '../../../src/server/run.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { testApp } from '../../helpers/app.js';
import { digestOf } from '../../helpers/digests.js';
import { admissionReviews, fixture } from '../../helpers/fixtures.js';
import { type CertDir, captureLog, certDir, handleOf, keepAliveAgent, postReview } from './support.js';

// biome-ignore lint/suspicious/noExplicitAny: fixtures are Kubernetes objects of many shapes, read field by field.
type Any = any;

const MIRROR = 'mirror.local:5000';
const mirrorOf = (host: string) => `${MIRROR}/${host.replace(/[[\]:]/g, '-')}`;

/** Every image string of a review's pod: containers of each kind and image volumes. */
function imagesOf(review: Any): string[] {
  const spec = review?.request?.object?.spec ?? {};
  return [
    ...['initContainers', 'containers', 'ephemeralContainers'].flatMap((kind) =>
      ((spec[kind] ?? []) as Any[]).map((c) => c.image),
    ),
    ...((spec.volumes ?? []) as Any[]).flatMap((v) => (v.image ? [v.image.reference] : [])),
  ].filter((image): image is string => typeof image === 'string');
}

/**
 * A config routing every registry the review names to a mirror, and registry state in which each source is down,
 * its tag's last digest known, and the mirror up and holding it: every routed image moves.
 */
function world(review: Any, mode: 'enforce' | 'report'): { config: Config; state: MemoryState } {
  const references = imagesOf(review).flatMap((image) => {
    const parsed = parseReference(image);
    return parsed.ok ? [parsed.reference] : [];
  });
  const hosts = [...new Set(references.map((r) => r.registry))];
  const config = parseConfig(
    {
      admission: { mode },
      registries: { [MIRROR]: { pullSecret: 'mirror-pull' } },
      routes: hosts.map((host) => ({ prefix: host, registries: [host, mirrorOf(host)] })),
    },
    'test',
  );
  const state = new MemoryState();
  for (const reference of references) {
    const match = matchRoute(reference, config.routes);
    if (!match) continue;
    const digest = reference.digest ?? digestOf(`${reference.registry}/${reference.repository}`);
    state.setHealth(reference.registry, 'unhealthy');
    state.putLastKnownTag(match.source, reference.tag ?? 'latest', digest);
    for (const candidate of match.candidates) {
      if (candidate.isOwn) continue;
      state.setHealth(candidate.registry, 'healthy');
      state.putManifest(candidate, digest);
    }
  }
  return { config, state };
}

/** One review through a fresh app: the response, the audit lines and the metrics it left. */
async function answer(review: Any, mode: 'enforce' | 'report') {
  const { config, state } = world(review, mode);
  const { app, logs, metrics } = testApp(config, state);
  try {
    const res = await app.inject({ method: 'POST', url: '/mutate', payload: review });
    assert.equal(res.statusCode, 200);
    return {
      response: res.json().response,
      audit: logs.filter((l) => l.audit).map((l) => ({ msg: l.msg, level: l.level, audit: l.audit as Any })),
      metrics: await metrics.registry.metrics(),
    };
  } finally {
    await app.close();
  }
}

/** A counter's samples whose name matches, as `labels value` lines. */
const samples = (text: string, name: string) =>
  text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`))
    .map((line) => line.slice(name.length));

/** What enforce's warning says, told as what would be done, and cut where every warning is cut (300 characters). */
const wouldSay = (warning: string) =>
  warning
    .replace(/ rerouted to /, ' would reroute to ')
    .replace(/more images rerouted or left unchanged/, 'more images that would reroute or stay unchanged')
    .slice(0, 300);

describe('admission.mode report over every corpus review', () => {
  const reviews = admissionReviews();
  let patchedSomewhere = 0;

  for (const { name, review } of reviews) {
    it(`${name}: the same decisions, audit and warnings as enforce, and no patch`, async () => {
      const enforce = await answer(structuredClone(review), 'enforce');
      const report = await answer(structuredClone(review), 'report');
      const { patch, patchType, warnings, auditAnnotations, ...rest } = enforce.response;
      if (patch) patchedSomewhere++;

      // The answer: allowed, without a patch.
      assert.equal(report.response.patch, undefined);
      assert.equal(report.response.patchType, undefined);
      const {
        warnings: reportWarnings,
        auditAnnotations: reportAnnotations,
        ...reportRest
      } = report.response;
      assert.deepEqual(reportRest, rest);
      assert.equal(report.response.allowed, true);

      // The warnings: enforce's, each rewrite told as one that would be made.
      assert.deepEqual(reportWarnings, warnings?.map(wouldSay));
      if (patch) assert.ok(reportWarnings.some((w: string) => w.includes(' would reroute to ')));
      assert.ok(!(reportWarnings ?? []).some((w: string) => / rerouted to /.test(w)));

      // The audit lines: enforce's decisions, each marked report, the rerouted ones told as would-be.
      assert.deepEqual(
        report.audit.map(({ msg, level, audit }) => ({ msg, level, audit: { ...audit, decisionMs: 0 } })),
        enforce.audit.map(({ msg, level, audit }) => ({
          msg: msg === 'image rerouted' ? 'image would be rerouted' : msg,
          level,
          audit: { ...audit, decisionMs: 0, mode: 'report' },
        })),
      );

      // The apiserver's audit annotations: the pod reported, not rewritten, its would-be rewrites counted, the targets
      // marked not applied.
      if (auditAnnotations) {
        if (patch) {
          assert.equal(reportAnnotations.decision, 'reported');
          assert.equal(reportAnnotations.rewrites, auditAnnotations.rewrites);
          assert.equal(reportAnnotations.reasons, auditAnnotations.reasons);
          assert.match(reportAnnotations.images, / \(not applied\)/);
        } else assert.deepEqual(reportAnnotations, auditAnnotations);
      }

      // The metrics: the same decisions; a review that would have been patched counted as reported, its rewrites
      // apart from the ones made.
      const decisions = (text: string) => samples(text, 'regroute_image_decisions_total');
      assert.deepEqual(decisions(report.metrics), decisions(enforce.metrics));
      const results = (text: string) => samples(text, 'regroute_admission_requests_total');
      assert.deepEqual(
        results(report.metrics),
        results(enforce.metrics).map((line) => line.replace('result="patched"', 'result="reported"')),
      );
      assert.deepEqual(samples(report.metrics, 'regroute_rewrites_total'), []);
      assert.deepEqual(
        samples(report.metrics, 'regroute_reported_rewrites_total'),
        samples(enforce.metrics, 'regroute_rewrites_total'),
      );
    });
  }

  it('meets reviews that enforce patches (the corpus is not all no-ops)', () => {
    assert.ok(patchedSomewhere >= 5, `${patchedSomewhere} of ${reviews.length} reviews patched`);
  });
});

describe('admission.mode on reload', () => {
  let certs: CertDir;
  before(async () => {
    certs = await certDir();
    await certs.install(certs.issue());
  });
  after(() => certs.dispose());

  it('switches between report and enforce for the next review, keeping registry state', async () => {
    const review = fixture('admission/pod-create-replicaset.json');
    const { config, state } = world(review, 'enforce');
    const file = join(certs.dir, 'mode.yaml');
    // JSON is YAML: the world's routes and registries, the mode as the test sets it.
    const text = (mode: string) =>
      JSON.stringify({
        server: { tlsCert: certs.certFile, tlsKey: certs.keyFile },
        admission: { mode },
        registries: config.registries,
        routes: config.routes,
      });
    await writeFile(file, text('enforce'));
    const metrics = new Metrics({ defaultMetrics: false });
    const server = await startServer({
      config: parseConfigText(text('enforce'), file),
      state: handleOf(state),
      configFile: file,
      createState: () => assert.fail('a change of mode rebuilds no registry state'),
      log: captureLog().log,
      metrics,
      port: 0,
      metricsPort: 0,
      host: '127.0.0.1',
      reloadIntervalMs: 3_600_000,
    });
    const agent = keepAliveAgent();
    const patched = async () =>
      (await postReview(server.port, review, agent)).body.response.patch !== undefined;
    try {
      assert.equal(await patched(), true);
      await writeFile(file, text('report'));
      assert.equal(await server.reloadConfig(), 'applied');
      assert.equal(server.config.admission.mode, 'report');
      assert.equal(await patched(), false);
      await writeFile(file, text('enforce'));
      assert.equal(await server.reloadConfig(), 'applied');
      assert.equal(await patched(), true);
      assert.match(
        await metrics.registry.metrics(),
        /^regroute_admission_requests_total\{result="reported"\} 1$/m,
      );
      assert.match(
        await metrics.registry.metrics(),
        /^regroute_admission_requests_total\{result="patched"\} 2$/m,
      );
    } finally {
      await agent.close();
      await server.close();
    }
  });
});
