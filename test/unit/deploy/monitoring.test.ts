// deploy/chart's alerts and dashboard against a running webhook: `regroute serve` as its own process, with real
// registries, a dead port and a slow proxy, scraped over /metrics in the states that should fire each alert and in
// those that should not. The expressions are the ones `helm template` renders, evaluated by ./promql.ts (a subset
// of PromQL on Prometheus' own grammar; no PromQL engine exists for Node); `for:` durations are not waited out.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { pino } from 'pino';
import { parse as parseYaml, stringify } from 'yaml';
import { DASHBOARD_FILE, dashboardText } from '../../../scripts/dashboard.js';
import { Metrics } from '../../../src/audit/metrics.js';
import { certSetPaths, writeCertSet } from '../../../src/certs/files.js';
import { createCA, createServingCert } from '../../../src/certs/generate.js';
import { defaultConfig } from '../../../src/config/load.js';
import { startServer } from '../../../src/server/run.js';
import { createStateHandle } from '../../../src/state/create.js';
import { makeTempDir, removeTempDir } from '../../harness/children.js';
import { freePort, type Harness, pushImage, startHarness } from '../../harness/index.js';
import { fixture } from '../../helpers/fixtures.js';
import { type ServeProcess, serveCerts, startServe } from '../../helpers/serve-process.js';
import { helmTemplate } from './helm.js';
import { configMapOf, one } from './manifests.js';
import { evaluate, firing, metricNames, parseExposition, type Sample, type Scrape } from './promql.js';

/** The alert expressions as the chart renders them, by alert name. */
function alertRules(prometheusRule: object = {}): Map<string, string> {
  const rule = one(helmTemplate({ prometheusRule: { enabled: true, ...prometheusRule } }), PrometheusRule);
  return new Map(
    (rule.spec.groups ?? []).flatMap((g) =>
      (g.rules ?? []).map((r) => [r.alert ?? '', String(r.expr)] as const),
    ),
  );
}
const rules = alertRules();
const expr = (alert: string, from = rules): string => {
  const found = from.get(alert);
  assert.ok(found, `the chart has ${alert}`);
  return found;
};

/** Every metric the webhook exports, histograms with their series' suffixes. */
async function exportedMetrics(): Promise<Set<string>> {
  const metrics = await new Metrics().registry.getMetricsAsJSON();
  return new Set(
    metrics.flatMap((m) =>
      String(m.type) === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name],
    ),
  );
}

async function scrape(metricsPort: number): Promise<Scrape> {
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, {
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(response.status, 200);
  return parseExposition(await response.text(), Date.now() / 1000);
}

/** Scrapes until `accept` holds for a sample of `name`: probes and file checks report on their own clock. */
async function scrapeUntil(
  metricsPort: number,
  accept: (samples: Sample[]) => boolean,
  what: string,
  boundMs = 20_000,
): Promise<Scrape> {
  const until = Date.now() + boundMs;
  for (;;) {
    const taken = await scrape(metricsPort);
    if (accept([...taken.samples])) return taken;
    if (Date.now() > until) assert.fail(`not within ${boundMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const sampleValue = (
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined =>
  samples.find(
    (s) =>
      s.labels.__name__ === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
  )?.value;

/** The alerts among `names` that fire over the scrapes, with the labels of each firing sample. */
function fired(names: readonly string[], scrapes: Scrape[], from = rules): Record<string, Sample[]> {
  return Object.fromEntries(
    names.map((name) => [name, firing(expr(name, from), scrapes)] as const).filter(([, s]) => s.length > 0),
  );
}

const ALERTS = [...rules.keys()];

/** A pod-creation review naming `images`, as the apiserver sends it. */
function review(images: string[]) {
  const base = fixture<{
    request: {
      uid: string;
      object: { spec: { containers: { name: string; image: string }[]; initContainers?: unknown } };
    };
  }>('admission/pod-create-replicaset.json');
  base.request.uid = randomUUID();
  const template = base.request.object.spec.containers[0];
  base.request.object.spec.containers = images.map((image, i) => ({ ...template, name: `c${i}`, image }));
  delete base.request.object.spec.initContainers;
  return base;
}

describe('alerts against a webhook whose registries fail', () => {
  let harness: Harness;
  let serve: ServeProcess;
  let metricsPort: number;
  let dead: string;
  let otherDead: string;
  let mirrorHost: string;
  let slowHost: string;
  let digest: string;

  before(async () => {
    harness = await startHarness();
    const mirror = await harness.startRegistry();
    mirrorHost = mirror.host;
    digest = (await pushImage(mirror, 'team/app', 'v1')).digest;
    await pushImage(mirror, 'slow/app', 'v1');
    // Manifests answered after 20 s, the /v2/ ping at once: probes find it up, tag lookups outlast the deadline.
    const slow = await harness.startFaultProxy(mirror, {
      mode: 'slow',
      options: { delayMs: 20_000, paths: /\/manifests\// },
    });
    slowHost = slow.host;
    // Ports nothing listens on: a registry that is down.
    dead = `127.0.0.1:${await freePort()}`;
    otherDead = `127.0.0.1:${await freePort()}`;
    metricsPort = await freePort();
    const certs = await serveCerts(harness.dir);
    const config = {
      server: { host: '127.0.0.1', metricsPort, tlsCert: certs.tlsCert, tlsKey: certs.tlsKey },
      admission: { deadlineMs: 400 },
      probe: { intervalSeconds: 0.2, timeoutMs: 1000, failureThreshold: 1, successThreshold: 1 },
      registries: { [mirror.host]: { caFile: harness.caFile }, [slow.host]: { caFile: harness.caFile } },
      routes: [
        // Its source is down and the mirror holds the digest: rerouted (the outage window).
        { prefix: `${dead}/team`, registries: [`${dead}/team`, `${mirror.host}/team`] },
        // Every candidate is down: left as it is (no healthy candidate).
        { prefix: `${dead}/lost`, registries: [`${dead}/lost`, `${otherDead}/lost`] },
        // Its source is up, but its manifests come too late for the deadline: slow admissions.
        { prefix: `${slow.host}/slow`, registries: [`${slow.host}/slow`] },
      ],
    };
    const configFile = join(harness.dir, 'regroute.yaml');
    await writeFile(configFile, stringify(config));
    serve = await startServe(configFile, certs.caCert);
    await scrapeUntil(
      metricsPort,
      (s) =>
        sampleValue(s, 'regroute_registry_up', { registry: dead }) === 0 &&
        sampleValue(s, 'regroute_registry_up', { registry: otherDead }) === 0 &&
        sampleValue(s, 'regroute_registry_up', { registry: mirror.host }) === 1,
      'the probes find the dead ports down and the mirror up',
    );
  });
  after(async () => {
    await serve?.stop();
    await harness?.stop();
  });

  it('RegrouteRegistryDown fires for each dead registry and not for the healthy ones', async () => {
    const down = firing(expr('RegrouteRegistryDown'), [await scrape(metricsPort)]);
    assert.deepEqual(down.map((s) => s.labels.registry).sort(), [dead, otherDead].sort());
    assert.ok(!down.some((s) => [mirrorHost, slowHost].includes(s.labels.registry ?? '')));
  });

  it('RegrouteOutageWindowOpen fires once an image is routed away from its failing source, and only then', async () => {
    const before = await scrape(metricsPort);
    const { response } = await serve.mutate(review([`${dead}/team/app@${digest}`]));
    assert.ok(response.patch, 'the image is rerouted to the mirror');
    const after = await scrape(metricsPort);
    assert.equal(
      sampleValue([...after.samples], 'regroute_image_decisions_total', { reason: 'source-unhealthy' }),
      1,
    );
    assert.deepEqual(fired(['RegrouteOutageWindowOpen', 'RegrouteNoHealthyCandidate'], [before, after]), {
      RegrouteOutageWindowOpen: [{ labels: {}, value: 1 }],
    });
    assert.deepEqual(firing(expr('RegrouteOutageWindowOpen'), [before]), [], 'not before the rewrite');
  });

  it('RegrouteNoHealthyCandidate fires when an image is left because no candidate of its route is up', async () => {
    const before = await scrape(metricsPort);
    const { response } = await serve.mutate(review([`${dead}/lost/app@${digest}`]));
    assert.equal(response.patch, undefined, 'the image stays as it is');
    const after = await scrape(metricsPort);
    assert.equal(
      sampleValue([...after.samples], 'regroute_image_decisions_total', { reason: 'no-candidate' }),
      1,
    );
    assert.deepEqual(firing(expr('RegrouteNoHealthyCandidate'), [before, after]), [{ labels: {}, value: 1 }]);
    assert.deepEqual(
      firing(expr('RegrouteOutageWindowOpen'), [after]),
      [],
      'a single scrape has no increase',
    );
  });

  it('RegrouteAdmissionSlow fires when admissions wait out the deadline, above its threshold only', async () => {
    // An image no route names is answered at once, unchanged: the histogram's series exist before the first scrape.
    await serve.mutate(review(['docker.io/library/busybox:1.36']));
    const before = await scrape(metricsPort);
    assert.ok(sampleValue([...before.samples], 'regroute_admission_duration_seconds_bucket', { le: '+Inf' }));
    // Three at once, all waiting on the same slow source until the deadline.
    const held = await Promise.all([1, 2, 3].map(() => serve.mutate(review([`${slowHost}/slow/app:v1`]))));
    for (const { elapsedMs } of held)
      assert.ok(elapsedMs >= 380, `held until the deadline, not ${elapsedMs} ms`);
    const after = await scrape(metricsPort);
    const tight = alertRules({ admissionLatencySeconds: 0.25 });
    const [slow] = firing(expr('RegrouteAdmissionSlow', tight), [before, after]);
    assert.ok(
      slow && slow.value > 0.25 && slow.value <= 0.5,
      `p99 ${slow?.value} s, in the deadline's bucket`,
    );
    assert.deepEqual(firing(expr('RegrouteAdmissionSlow'), [before, after]), [], 'under the default 1 s');
  });

  it('RegrouteWebhookErrors fires when reviews keep failing, not on valid ones', async () => {
    const valid = review([`${mirrorHost}/team/app@${digest}`]);
    const first = await scrape(metricsPort);
    await serve.mutate(valid);
    const second = await scrape(metricsPort);
    assert.deepEqual(firing(expr('RegrouteWebhookErrors'), [first, second]), [], 'valid reviews only');
    const bad = async () => {
      await serve.mutate(valid);
      for (let i = 0; i < 3; i++) {
        const { statusCode } = await serve.mutate({
          kind: 'AdmissionReview',
          request: { uid: randomUUID() },
        });
        assert.equal(statusCode, 400);
      }
    };
    await bad();
    const third = await scrape(metricsPort);
    await bad();
    const fourth = await scrape(metricsPort);
    const [ratio] = firing(expr('RegrouteWebhookErrors'), [first, second, third, fourth]);
    assert.ok(ratio && ratio.value > 0.05, `error ratio ${ratio?.value}`);
  });

  it('fires none of the certificate and file alerts: its certificate is a year away and its files are good', async () => {
    const now = await scrape(metricsPort);
    const quiet = [
      'RegrouteCertificateExpiringSoon',
      'RegrouteConfigReloadFailing',
      'RegrouteTlsReloadFailing',
    ];
    assert.deepEqual(fired(quiet, [now]), {});
    assert.equal(sampleValue([...now.samples], 'regroute_config_last_reload_successful'), 1);
  });

  it('serves every metric the alerts and the dashboard query, and every dashboard query evaluates', async () => {
    const exported = await exportedMetrics();
    for (const [alert, expression] of rules) {
      for (const name of metricNames(expression))
        assert.ok(exported.has(name), `${alert}: ${name} is exported`);
    }
    const scrapes = [await scrape(metricsPort), await scrape(metricsPort)];
    for (const query of dashboardQueries()) {
      for (const name of metricNames(query)) assert.ok(exported.has(name), `dashboard: ${name} is exported`);
      assert.doesNotThrow(() => evaluate(query, scrapes), query);
    }
    const registriesDown = dashboardQueries().find((q) => q.startsWith('count(max by (registry)'));
    assert.deepEqual(
      firing(registriesDown ?? '', scrapes).map((s) => s.value),
      [2],
      'the "Registries down" panel counts the two dead ports',
    );
  });
});

/** Every query of every panel, with Grafana's variables as a query would see them. */
function dashboardQueries(): string[] {
  const dashboard = JSON.parse(dashboardText()) as { panels: { targets?: { expr: string }[] }[] };
  return dashboard.panels
    .flatMap((panel) => panel.targets ?? [])
    .map((target) => target.expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', '.*'));
}

describe("alerts against a webhook on the chart's default config, then with broken files", () => {
  const dir = makeTempDir('regroute-monitoring-');
  let serve: ServeProcess;
  let metricsPort: number;
  let configFile: string;
  let goodConfig: string;
  const tls = { crt: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), ca: join(dir, 'ca.crt') };

  before(async () => {
    // A serving certificate three days from expiry, as a failed renewal leaves it.
    const ca = createCA('regroute test CA');
    const serving = createServingCert(ca, {
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validityDays: 3,
    });
    await writeFile(tls.ca, ca.certPem);
    await writeFile(tls.crt, serving.certPem);
    await writeFile(tls.key, serving.keyPem, { mode: 0o600 });
    // The config file the chart renders by default, with the paths and ports of this machine.
    const chartConfig = parseYaml(configMapOf(helmTemplate({})).data?.['config.yaml'] ?? '') as {
      server: Record<string, unknown>;
    };
    metricsPort = await freePort();
    chartConfig.server = {
      ...chartConfig.server,
      host: '127.0.0.1',
      metricsPort,
      tlsCert: tls.crt,
      tlsKey: tls.key,
    };
    configFile = join(dir, 'config.yaml');
    goodConfig = stringify(chartConfig);
    await writeFile(configFile, goodConfig);
    serve = await startServe(configFile, tls.ca, { reloadIntervalMs: 100 });
  });
  after(async () => {
    await serve?.stop();
    removeTempDir(dir);
  });

  it('reports regroute_config_last_reload_successful 1, and fires no alert of traffic or files', async () => {
    const first = await scrape(metricsPort);
    await serve.mutate(review(['docker.io/library/nginx:1.27']));
    const second = await scrape(metricsPort);
    assert.equal(sampleValue([...second.samples], 'regroute_config_last_reload_successful'), 1);
    assert.equal(sampleValue([...second.samples], 'regroute_tls_last_reload_successful'), 1);
    assert.deepEqual(
      Object.keys(fired(ALERTS, [first, second])),
      ['RegrouteCertificateExpiringSoon'],
      'only the certificate, made to expire in three days',
    );
  });

  it('RegrouteCertificateExpiringSoon fires with the time left on the certificate in use', async () => {
    const [expiring] = firing(expr('RegrouteCertificateExpiringSoon'), [await scrape(metricsPort)]);
    const days = (expiring?.value ?? 0) / 86_400;
    assert.ok(days > 2.9 && days <= 3, `${days} days left`);
    const relaxed = alertRules({ certificateExpiryDays: 2 });
    assert.deepEqual(
      firing(expr('RegrouteCertificateExpiringSoon', relaxed), [await scrape(metricsPort)]),
      [],
    );
  });

  it('RegrouteConfigReloadFailing fires while the config file is refused, and stops once it is fixed', async () => {
    await writeFile(configFile, `${goodConfig}\nadmission: { deadlineMs: soon }\n`);
    const refused = await scrapeUntil(
      metricsPort,
      (s) => sampleValue(s, 'regroute_config_last_reload_successful') === 0,
      'the reload is refused',
    );
    assert.deepEqual(firing(expr('RegrouteConfigReloadFailing'), [refused]).length, 1);
    await writeFile(configFile, `${goodConfig}# fixed\n`);
    const fixed = await scrapeUntil(
      metricsPort,
      (s) => sampleValue(s, 'regroute_config_last_reload_successful') === 1,
      'the fixed file is taken',
    );
    assert.deepEqual(firing(expr('RegrouteConfigReloadFailing'), [fixed]), []);
  });

  it('RegrouteTlsReloadFailing fires while the certificate file is refused', async () => {
    const good = await readFile(tls.crt, 'utf8');
    await writeFile(tls.crt, 'not a certificate\n');
    const refused = await scrapeUntil(
      metricsPort,
      (s) => sampleValue(s, 'regroute_tls_last_reload_successful') === 0,
      'the certificate is refused',
    );
    assert.equal(firing(expr('RegrouteTlsReloadFailing'), [refused]).length, 1);
    await writeFile(tls.crt, good);
    await scrapeUntil(
      metricsPort,
      (s) => sampleValue(s, 'regroute_tls_last_reload_successful') === 1,
      'restored',
    );
  });
});

describe('regroute_config_last_reload_successful under the embedded default config', () => {
  it('is 1 when the webhook runs without a config file', async () => {
    const dir = makeTempDir('regroute-default-config-');
    const paths = certSetPaths(dir);
    await writeCertSet(paths, { service: 'regroute', namespace: 'regroute-system' });
    const embedded = defaultConfig();
    const config = {
      ...embedded,
      server: { ...embedded.server, tlsCert: paths.tlsCert, tlsKey: paths.tlsKey },
    };
    const log = pino({ level: 'silent' });
    const metrics = new Metrics({ defaultMetrics: false });
    const server = await startServer({
      config,
      state: createStateHandle(config, log, { metrics }),
      log,
      metrics,
      port: 0,
      metricsPort: 0,
      host: '127.0.0.1',
    });
    try {
      const samples = [...(await scrape(server.metricsPort)).samples];
      assert.equal(sampleValue(samples, 'regroute_config_last_reload_successful'), 1);
      assert.deepEqual(firing(expr('RegrouteConfigReloadFailing'), [await scrape(server.metricsPort)]), []);
    } finally {
      await server.close();
      removeTempDir(dir);
    }
  });
});

describe('the Grafana dashboard', () => {
  it('is the file scripts/dashboard.ts writes (npx tsx scripts/dashboard.ts regenerates it)', async () => {
    assert.deepEqual(JSON.parse(await readFile(DASHBOARD_FILE, 'utf8')), JSON.parse(dashboardText()));
  });

  it('queries only metrics the webhook exports, each panel through the data source variable', async () => {
    const exported = await exportedMetrics();
    const dashboard = JSON.parse(dashboardText()) as {
      panels: { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
    };
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    assert.ok(panels.length >= 12);
    for (const panel of panels) {
      assert.equal(panel.datasource?.uid, '$' + '{datasource}', panel.title);
      assert.ok((panel.targets ?? []).length > 0, `${panel.title} has a query`);
      for (const target of panel.targets ?? []) {
        const names = metricNames(target.expr.replaceAll('$__rate_interval', '1m'));
        assert.ok(names.length > 0, target.expr);
        for (const name of names) assert.ok(exported.has(name), `${panel.title}: ${name} is exported`);
      }
    }
  });
});
