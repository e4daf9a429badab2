import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_UNCONFIGURED_REGISTRY_LABELS,
  Metrics,
  RegistryLabels,
  statusLabel,
} from '../../../src/audit/metrics.js';
import { parseConfig } from '../../../src/config/load.js';
import { buildMetricsApp } from '../../../src/server/app.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { testApp } from '../../helpers/app.js';
import { digestOf } from '../../helpers/digests.js';
import { fixture } from '../../helpers/fixtures.js';

async function scrape(metrics: Metrics): Promise<string> {
  const app = buildMetricsApp(metrics);
  try {
    const res = await app.inject({ url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    return res.body;
  } finally {
    await app.close();
  }
}

describe('label values', () => {
  it('gives an HTTP status its code, no answer "none", and nonsense "other"', () => {
    assert.equal(statusLabel(200), '200');
    assert.equal(statusLabel(429), '429');
    assert.equal(statusLabel(undefined), 'none');
    assert.equal(statusLabel(999), 'other');
  });

  it('keeps configured registries, a few others, and folds the rest into "other"', () => {
    const labels = new RegistryLabels(2);
    labels.configure(['a.io']);
    assert.equal(labels.of('x1.example.com'), 'x1.example.com');
    assert.equal(labels.of('x2.example.com'), 'x2.example.com');
    assert.equal(labels.of('x3.example.com'), 'other');
    assert.equal(labels.of('x1.example.com'), 'x1.example.com');
    assert.equal(labels.of('a.io'), 'a.io');
    assert.ok(MAX_UNCONFIGURED_REGISTRY_LABELS >= 8);
  });

  it(`keeps exactly ${MAX_UNCONFIGURED_REGISTRY_LABELS} unconfigured hosts by default, and series of requests with them`, async () => {
    assert.equal(MAX_UNCONFIGURED_REGISTRY_LABELS, 32);
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.configureRegistries(['mirror.local:5000']);
    const hosts = Array.from({ length: 40 }, (_, i) => `team-${i}.example.com`);
    for (const registry of ['mirror.local:5000', ...hosts]) {
      metrics.recordRegistryRequest({
        registry,
        operation: 'manifest',
        kind: 'lookup',
        method: 'HEAD',
        status: 200,
        outcome: 'available',
        durationMs: 1,
      });
    }
    const labelled = [
      ...(await scrape(metrics)).matchAll(/^regroute_registry_requests_total\{registry="([^"]+)"/gm),
    ].map((m) => m[1]);
    assert.deepEqual(labelled, ['mirror.local:5000', ...hosts.slice(0, 32), 'other']);
    // The 32nd keeps its own label, the 33rd is the first folded into "other"; the configured one is always kept.
    assert.equal(metrics.registryLabels.of('team-31.example.com'), 'team-31.example.com');
    assert.equal(metrics.registryLabels.of('team-32.example.com'), 'other');
    assert.equal(metrics.registryLabels.of('another.example.com'), 'other');
    assert.equal(metrics.registryLabels.of('mirror.local:5000'), 'mirror.local:5000');
  });
});

describe('/metrics after admission reviews', () => {
  const config = parseConfig(
    { routes: [{ prefix: 'docker.io', registries: ['docker.io', 'mirror.local:5000/hub'] }] },
    'test',
  );
  const nginx = digestOf('nginx');
  const state = new MemoryState()
    .setHealth('docker.io', 'unhealthy')
    .setHealth('mirror.local:5000', 'healthy')
    .putLastKnownTag({ registry: 'docker.io', repository: 'library/nginx' }, '1.27', nginx)
    .putManifest({ registry: 'mirror.local:5000', repository: 'hub/library/nginx' }, nginx);

  it('counts answers and times them by result, decisions by reason, rewrites by registries and reason', async () => {
    const { app, metrics } = testApp(config, state);
    try {
      const post = (payload: unknown) =>
        app.inject({
          method: 'POST',
          url: '/mutate',
          payload: payload as string,
          headers: { 'content-type': 'application/json' },
        });
      assert.ok((await post(fixture('admission/pod-create-replicaset.json'))).json().response.patch);
      await post(fixture('admission/pod-create-skip-label.json'));
      await post({ kind: 'AdmissionReview' });

      const text = await scrape(metrics);
      assert.match(text, /^regroute_admission_requests_total\{result="patched"\} 1$/m);
      assert.match(text, /^regroute_admission_requests_total\{result="skipped"\} 1$/m);
      assert.match(text, /^regroute_admission_requests_total\{result="invalid"\} 1$/m);
      assert.match(text, /^regroute_admission_duration_seconds_count\{result="patched"\} 1$/m);
      assert.match(text, /^regroute_admission_duration_seconds_bucket\{le="\+Inf",result="patched"\} 1$/m);
      assert.match(text, /^regroute_image_decisions_total\{reason="source-unhealthy"\} 1$/m);
      assert.match(
        text,
        /^regroute_rewrites_total\{from="docker\.io",to="mirror\.local:5000",reason="source-unhealthy"\} 1$/m,
      );
      // Neither images nor digests become label values.
      assert.ok(!text.includes('nginx'));
      assert.ok(!text.includes('sha256'));
    } finally {
      await app.close();
    }
  });

  it('counts every decision of a pod, those sharing a reason or a rewrite series included', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.configureRegistries(['mirror.local:5000', 'cache.local:5000']);
    const candidate = (registry: string) => ({
      registry,
      repository: 'team/app',
      location: registry,
      isOwn: false,
    });
    const reference = { registry: 'docker.io', repository: 'team/app', tag: 'v1' } as never;
    const rewrite = (registry: string, reason: 'source-unhealthy' | 'preferred-candidate') => ({
      site: { kind: 'containers' as const, index: 0, name: 'c', image: 'team/app:v1' },
      reference,
      decision: {
        reason,
        target: `${registry}/team/app:v1`,
        digest: null,
        candidate: candidate(registry),
        verdicts: [],
      },
    });
    metrics.recordOutcome(
      {
        response: { uid: 'u', allowed: true, patch: 'W10=' },
        skipped: null,
        decisions: [
          rewrite('mirror.local:5000', 'source-unhealthy'),
          rewrite('cache.local:5000', 'source-unhealthy'),
          rewrite('mirror.local:5000', 'source-unhealthy'),
          rewrite('mirror.local:5000', 'preferred-candidate'),
          {
            site: { kind: 'containers', index: 4, name: 'e', image: 'x' },
            decision: { reason: 'no-route', target: null, digest: null, candidate: null, verdicts: [] },
          },
        ],
      },
      0.001,
    );
    const text = await scrape(metrics);
    assert.match(text, /^regroute_image_decisions_total\{reason="source-unhealthy"\} 3$/m);
    assert.match(text, /^regroute_image_decisions_total\{reason="preferred-candidate"\} 1$/m);
    assert.match(text, /^regroute_image_decisions_total\{reason="no-route"\} 1$/m);
    const rewrites = (to: string, reason: string) =>
      new RegExp(
        `^regroute_rewrites_total\\{from="docker\\.io",to="${to.replaceAll('.', '\\.')}",reason="${reason}"\\} (\\d+)$`,
        'm',
      ).exec(text)?.[1];
    assert.equal(rewrites('mirror.local:5000', 'source-unhealthy'), '2');
    assert.equal(rewrites('cache.local:5000', 'source-unhealthy'), '1');
    assert.equal(rewrites('mirror.local:5000', 'preferred-candidate'), '1');
  });

  it('counts a review that changes nothing as result="unchanged", apart from skipped ones', async () => {
    const healthy = new MemoryState()
      .setHealth('docker.io', 'healthy')
      .setHealth('mirror.local:5000', 'healthy')
      .putTag({ registry: 'docker.io', repository: 'library/nginx' }, '1.27', nginx);
    const { app, metrics } = testApp(config, healthy);
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/mutate',
        payload: fixture('admission/pod-create-replicaset.json') as never,
      });
      assert.equal(res.json().response.patch, undefined);
      const text = await scrape(metrics);
      assert.match(text, /^regroute_admission_requests_total\{result="unchanged"\} 1$/m);
      assert.match(text, /^regroute_admission_duration_seconds_count\{result="unchanged"\} 1$/m);
      assert.match(text, /^regroute_image_decisions_total\{reason="source-healthy"\} 1$/m);
      assert.doesNotMatch(text, /result="(patched|skipped|error)"/);
    } finally {
      await app.close();
    }
  });
});

describe('/metrics of reloads and registries', () => {
  it('tells reloads applied and refused apart, and whether the files are in force', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.recordFilesValid('config', true);
    metrics.recordReload('config', true);
    metrics.recordReload('config', false);
    metrics.recordFilesValid('config', false);
    const text = await scrape(metrics);
    assert.match(text, /^regroute_config_reloads_total 1$/m);
    assert.match(text, /^regroute_config_reload_errors_total 1$/m);
    assert.match(text, /^regroute_config_last_reload_successful 0$/m);
  });

  it('drops the up series of a registry no longer configured', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.recordProbe({ registry: 'a.io', ok: true, latencyMs: 3, error: null });
    metrics.recordProbe({ registry: 'b.io', ok: false, latencyMs: 3, error: 'down' });
    metrics.forgetRegistry('b.io');
    const text = await scrape(metrics);
    assert.match(text, /^regroute_registry_up\{registry="a\.io"\} 1$/m);
    assert.ok(!/regroute_registry_up\{registry="b\.io"\}/.test(text));
  });

  it('includes process metrics unless asked not to', async () => {
    assert.match(await scrape(new Metrics()), /^process_cpu_user_seconds_total /m);
  });
});
