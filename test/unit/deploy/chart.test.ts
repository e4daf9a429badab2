// deploy/chart: `helm lint --strict` and `helm template` over a matrix of values, every object validated against its
// schema, the values schema refusing what it should, and the default render equal to the kustomize install object by
// object, with each intended difference named below.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import {
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import {
  MutatingWebhookConfiguration,
  ValidatingAdmissionPolicy,
} from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ClusterRole, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { parse as parseYaml } from 'yaml';
import { VALUES_SCHEMA_FILE, valuesSchemaText } from '../../../scripts/chart-schema.js';
import { serviceDnsNames } from '../../../src/certs/generate.js';
import { certsCommand } from '../../../src/cli/certs.js';
import { parseConfigText } from '../../../src/config/load.js';
import { byId, idOf, type KubeObject, renderKustomization } from '../../helpers/kustomize.js';
import { chartDir, helmLint, helmTemplate, helmTemplateRun, NAMESPACE } from './helm.js';
import { all, assertValid, configInPod, configMapOf, deployDir, one } from './manifests.js';

const CLUSTER_SCOPED = [
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'PriorityClass',
];

const exampleConfig = parseYaml(await readFile(join(deployDir, 'examples', 'config.yaml'), 'utf8')) as Record<
  string,
  unknown
>;
const chartValues = parseYaml(await readFile(join(chartDir, 'values.yaml'), 'utf8')) as {
  config: Record<string, unknown>;
};
/** The example config as the chart renders it: the example's settings over the chart's server block. */
const exampleAsChartConfig = { ...chartValues.config, ...exampleConfig };

/** The values matrix: each case is linted, rendered and validated. */
const MATRIX: Record<string, object> = {
  defaults: {},
  'cert-manager': { certificates: { mode: 'cert-manager' } },
  'cert-manager with an issuer of your own': {
    certificates: {
      mode: 'cert-manager',
      certManager: { issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } },
    },
  },
  'self-signed, short-lived': { certificates: { mode: 'self-signed', selfSigned: { validityDays: 30 } } },
  'an existing Secret': {
    certificates: { mode: 'existing-secret', existingSecret: { name: 'corp-tls', caCert: 'PEM' } },
  },
  'the pull-secret sync with the example config': {
    config: exampleConfig,
    pullSecretSync: { enabled: true, names: ['extra-cred'] },
  },
  'the pull-secret sync with per-namespace copies': {
    config: exampleConfig,
    pullSecretSync: { enabled: true, clusterWideCopies: false, copyNamespaces: ['team-a', 'team-b'] },
  },
  'monitoring on': {
    serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
    prometheusRule: { enabled: true },
    dashboard: { enabled: true, namespace: 'monitoring' },
  },
  'production tuning': {
    image: { repository: 'registry.example.com/platform/regroute', digest: `sha256:${'a'.repeat(64)}` },
    replicas: 3,
    priorityClassName: 'system-cluster-critical',
    podDisruptionBudget: { minAvailable: 2 },
    topologySpread: { whenUnsatisfiable: 'DoNotSchedule' },
    config: { admission: { deadlineMs: 4000 } },
    webhook: {
      timeoutSeconds: 6,
      namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] },
    },
    extraVolumes: [{ name: 'ocir', secret: { secretName: 'ocir-pull' } }],
    extraVolumeMounts: [{ name: 'ocir', mountPath: '/secrets/ocir', readOnly: true }],
    resources: { requests: { memory: '512Mi' }, limits: { memory: '1Gi' } },
    maxOldSpaceSizeMiB: 768,
    priorityClass: { create: false },
  },
  'a server block of its own': {
    config: { server: { port: 9443, healthPort: 9081, metricsPort: 9091, shutdownDelaySeconds: 20 } },
  },
  'admission events on': {
    admissionEvents: { enabled: true },
    resources: { requests: { memory: '192Mi' }, limits: { memory: '384Mi' } },
  },
  'a network policy with the example config': {
    config: exampleConfig,
    networkPolicy: { enabled: true, extraEgressPorts: [6443] },
  },
};

const HELM_LABELS = [
  'app.kubernetes.io/instance',
  'app.kubernetes.io/managed-by',
  'app.kubernetes.io/version',
  'helm.sh/chart',
];

/** Removes Helm's own labels from every label map and selector: kustomize has no release to fill them in. */
function withoutHelmLabels<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withoutHelmLabels) as T;
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !HELM_LABELS.includes(key))
      .map(([key, child]) => [key, withoutHelmLabels(child)]),
  ) as T;
}

/** The fields of rendered objects that normalised() touches. */
type Rendered = KubeObject & {
  data?: Record<string, unknown>;
  type?: string;
  spec?: {
    template?: {
      metadata?: { annotations?: Record<string, string> };
      spec?: { volumes?: { configMap?: { name?: string } }[] };
    };
  };
  webhooks?: { clientConfig: { caBundle?: string } }[];
};

/**
 * What may differ between a chart render and the kustomize render, and nothing else:
 * - Helm's labels (above), on objects and in selectors;
 * - the ConfigMap's name: kustomize appends a hash of the content, the chart rolls the pods with a checksum
 *   annotation instead (removed here); its config.yaml is compared as YAML data (kustomize keeps the file's comments);
 * - generated certificates: the Secret's data and the caBundle, checked on their own below; the chart's Secret also
 *   keeps ca.crt, so that an upgrade can reuse the certificate and its caBundle.
 */
function normalised(objects: KubeObject[]): KubeObject[] {
  return objects.map((original) => {
    const o = withoutHelmLabels(structuredClone(original)) as Rendered;
    if (o.kind === 'ConfigMap' && o.metadata.name.startsWith('regroute-config')) {
      o.metadata.name = 'regroute-config';
      o.data = { 'config.yaml': parseYaml(String(o.data?.['config.yaml'])) };
    }
    const template = o.kind === 'Deployment' ? o.spec?.template : undefined;
    if (template?.metadata) {
      delete template.metadata.annotations?.['checksum/config'];
      if (Object.keys(template.metadata.annotations ?? {}).length === 0) delete template.metadata.annotations;
      for (const volume of template.spec?.volumes ?? []) {
        if (volume.configMap?.name?.startsWith('regroute-config')) volume.configMap.name = 'regroute-config';
      }
    }
    if (o.kind === 'Secret' && o.type === 'kubernetes.io/tls') {
      o.data = { 'tls.crt': 'CERTIFICATE', 'tls.key': 'KEY' };
    }
    if (o.kind === 'MutatingWebhookConfiguration') {
      for (const webhook of o.webhooks ?? [])
        if (webhook.clientConfig.caBundle) webhook.clientConfig.caBundle = 'CA';
    }
    return o;
  });
}

/** Both renders, normalised, with the Namespace set aside: the chart installs into one (`--create-namespace`). */
function assertSameObjects(chart: KubeObject[], kustomize: KubeObject[]): void {
  const expected = new Map(byId(normalised(kustomize.filter((o) => o.kind !== 'Namespace'))));
  const actual = byId(normalised(chart));
  assert.deepEqual(
    actual.map(([id]) => id),
    [...expected.keys()],
    'the same objects',
  );
  for (const [id, object] of actual) assert.deepEqual(object, expected.get(id), id);
}

/** Where a namespaced object belongs: the release namespace, but for the dashboard and the per-namespace copies. */
function namespaceOf(object: KubeObject, values: { dashboard?: { namespace?: string } }): string | undefined {
  if (object.metadata.name === 'regroute-dashboard') return values.dashboard?.namespace || NAMESPACE;
  const copies = object.kind === 'RoleBinding' && object.metadata.name === 'regroute-pull-secret-copies';
  return copies ? object.metadata.namespace : NAMESPACE;
}

const decode = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString('utf8');

describe('deploy/chart', () => {
  it('passes helm lint --strict with its defaults and with every case of the values matrix', () => {
    for (const [name, values] of Object.entries(MATRIX)) {
      const lint = helmLint(values);
      assert.equal(lint.status, 0, `${name}: ${lint.stdout}${lint.stderr}`);
      assert.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('renders only objects that validate against their schema, prometheus-operator ones included', () => {
    for (const [name, values] of Object.entries(MATRIX)) {
      const objects = helmTemplate(values);
      assert.ok(objects.length >= 6, name);
      for (const object of objects) assertValid(object);
      for (const object of objects.filter((o) => !CLUSTER_SCOPED.includes(o.kind))) {
        assert.equal(object.metadata.namespace, namespaceOf(object, values), `${name}: ${idOf(object)}`);
      }
      for (const object of objects.filter((o) => CLUSTER_SCOPED.includes(o.kind))) {
        assert.equal(object.metadata.namespace, undefined, `${name}: ${idOf(object)} is cluster-scoped`);
      }
    }
  });

  it('follows the release namespace in every reference: Service, DNS names, match condition, admission policy', () => {
    const objects = helmTemplate({ pullSecretSync: { enabled: true, names: ['a'] } }, 'platform-webhooks');
    const webhook = one(objects, MutatingWebhookConfiguration).webhooks?.[0];
    assert.equal(webhook?.clientConfig.service?.namespace, 'platform-webhooks');
    assert.match(
      webhook?.matchConditions?.[0]?.expression ?? '',
      /request\.namespace == 'platform-webhooks'/,
    );
    const policy = one(objects, ValidatingAdmissionPolicy);
    assert.match(
      policy.spec?.matchConditions?.[0]?.expression ?? '',
      /'system:serviceaccount:platform-webhooks:regroute-pull-secret-sync'/,
    );
    const serving = new X509Certificate(decode(one(objects, Secret).data?.['tls.crt']));
    assert.ok(serving.checkHost('regroute.platform-webhooks.svc'));
  });

  it('has a values.schema.json that scripts/chart-schema.ts regenerates as it is', async () => {
    assert.deepEqual(
      JSON.parse(await readFile(VALUES_SCHEMA_FILE, 'utf8')),
      JSON.parse(valuesSchemaText()),
      'values.schema.json is behind the config schema: run npx tsx scripts/chart-schema.ts',
    );
  });
});

describe('deploy/chart refuses values', () => {
  const refused: [string, object, RegExp][] = [
    ['an unknown top-level value', { replica: 2 }, /additional properties 'replica' not allowed/],
    [
      'an unknown config field',
      { config: { admission: { deadline: 5 } } },
      /additional properties 'deadline'/,
    ],
    [
      'an invalid route prefix',
      { config: { routes: [{ prefix: 'Docker.io', registries: ['x'] }] } },
      /pattern/,
    ],
    [
      'a route without candidates',
      { config: { routes: [{ prefix: 'docker.io', registries: [] }] } },
      /minItems/,
    ],
    ['fewer than one replica', { replicas: 0 }, /minimum/],
    ['an unknown certificate mode', { certificates: { mode: 'letsencrypt' } }, /certificates\/mode/],
    ['a failure policy other than Ignore or Fail', { webhook: { failurePolicy: 'Retry' } }, /failurePolicy/],
    ['a digest that is not sha256', { image: { digest: 'md5:abc' } }, /image\/digest/],
    [
      'a priority among the system classes',
      { priorityClass: { value: 2_000_000_000 } },
      /priorityClass\/value/,
    ],
  ];
  // Checks across values run in the templates: helm template and helm install stop on them; helm 4's lint only logs
  // them (it renders fail() as a message), so they are asserted on helm template alone.
  const failedByTemplate: [string, object, RegExp][] = [
    [
      'a webhook timeout not a second above the deadline',
      { config: { admission: { deadlineMs: 4500 } } },
      /webhook.timeoutSeconds \(5\) must be at least a second above config.admission.deadlineMs \(4500 ms\)/,
    ],
    [
      'the certificate moved away from the mounted Secret',
      { config: { server: { tlsCert: 'certs/tls.crt' } } },
      /config.server.tlsCert must be \/etc\/regroute\/tls\/tls.crt/,
    ],
    [
      'the in-process sync, which has no API credentials in the webhook pods',
      { config: { pullSecretSync: { enabled: true } } },
      /set pullSecretSync.enabled instead/,
    ],
    [
      'the sync with no pull secret to copy',
      { pullSecretSync: { enabled: true } },
      /needs a pull secret to copy/,
    ],
    [
      'per-namespace copies with no namespace',
      { pullSecretSync: { enabled: true, names: ['a'], clusterWideCopies: false } },
      /needs pullSecretSync.copyNamespaces/,
    ],
    [
      'an existing Secret without its CA',
      { certificates: { mode: 'existing-secret', existingSecret: { name: 'tls' } } },
      /needs certificates.existingSecret.name and certificates.existingSecret.caCert/,
    ],
    [
      'the health port off, which the probes use',
      { config: { server: { healthPort: 0 } } },
      /config.server.healthPort must not be 0/,
    ],
    [
      'a heap that leaves too little of the memory limit',
      { maxOldSpaceSizeMiB: 200 },
      /maxOldSpaceSizeMiB \(200\) must stay 144 MiB below resources.limits.memory \(320Mi\)/,
    ],
    [
      'monitoring without the metrics listener',
      { config: { server: { metricsPort: 0 } }, serviceMonitor: { enabled: true } },
      /config.server.metricsPort must not be 0/,
    ],
  ];
  for (const [name, values, message] of refused) {
    it(`refuses ${name} by the values schema, in helm template and helm lint --strict`, () => {
      const rendered = helmTemplateRun(values);
      assert.notEqual(rendered.status, 0, 'helm template refuses');
      assert.match(rendered.stderr, message);
      const lint = helmLint(values);
      assert.notEqual(lint.status, 0, 'helm lint refuses');
      assert.match(`${lint.stdout}${lint.stderr}`, message);
    });
  }
  for (const [name, values, message] of failedByTemplate) {
    it(`refuses ${name} when rendering, with the reason`, () => {
      const rendered = helmTemplateRun(values);
      assert.notEqual(rendered.status, 0, 'helm template refuses');
      assert.match(rendered.stderr, message);
    });
  }
});

describe('deploy/chart defaults against deploy/overlays/self-signed', () => {
  let copy: string;
  let kustomize: KubeObject[];
  const chart = helmTemplate({});

  before(async () => {
    copy = await mkdtemp(join(tmpdir(), 'regroute-chart-'));
    const certsInTree = join(deployDir, 'overlays', 'self-signed', 'certs');
    await cp(deployDir, join(copy, 'deploy'), {
      recursive: true,
      filter: (src) => !src.startsWith(certsInTree),
    });
    const overlay = join(copy, 'deploy', 'overlays', 'self-signed');
    const io = { out: () => {}, err: () => {} };
    assert.equal(await certsCommand(['--out', join(overlay, 'certs'), '--kustomize'], io), 0);
    kustomize = renderKustomization(overlay);
  });
  after(() => rm(copy, { recursive: true, force: true }));

  it('renders the objects of the kustomize install but its Namespace, equal but for the named differences', () => {
    assertSameObjects(chart, kustomize);
  });

  it('renders the same config file as deploy/base/config.yaml, which the project loader accepts', async () => {
    const text = configMapOf(chart).data?.['config.yaml'] ?? '';
    const base = await readFile(join(deployDir, 'base', 'config.yaml'), 'utf8');
    assert.deepEqual(parseConfigText(text, 'the chart'), parseConfigText(base, 'deploy/base'));
  });

  it('makes a serving certificate for the Service, signed by the CA it puts in the webhook caBundle', () => {
    const secret = one(chart, Secret, 'regroute-tls');
    const webhook = one(chart, MutatingWebhookConfiguration).webhooks?.[0];
    assert.equal(webhook?.clientConfig.caBundle, secret.data?.['ca.crt']);
    const ca = new X509Certificate(decode(secret.data?.['ca.crt']));
    const serving = new X509Certificate(decode(secret.data?.['tls.crt']));
    assert.ok(ca.ca && serving.checkIssued(ca) && serving.verify(ca.publicKey));
    for (const name of serviceDnsNames('regroute', NAMESPACE)) assert.ok(serving.checkHost(name), name);
    const days = (Date.parse(serving.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 360 && days <= 366, `valid for a year, not ${days} days`);
  });

  it('keeps the CA private key out of the cluster', () => {
    const secret = one(chart, Secret, 'regroute-tls');
    assert.deepEqual(Object.keys(secret.data ?? {}).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
    assert.match(decode(secret.data?.['tls.key']), /PRIVATE KEY/);
    assert.equal(all(chart, Secret).length, 1);
  });

  it('rolls the pods when the config changes, and only then', () => {
    const checksum = (objects: KubeObject[]) =>
      one(objects, Deployment).spec?.template.metadata?.annotations?.['checksum/config'];
    assert.match(checksum(chart) ?? '', /^[0-9a-f]{64}$/);
    assert.equal(checksum(helmTemplate({ replicas: 3 })), checksum(chart));
    assert.notEqual(checksum(helmTemplate({ config: { admission: { deadlineMs: 1500 } } })), checksum(chart));
  });
});

describe('deploy/chart with certificates.mode cert-manager against deploy/overlays/cert-manager', () => {
  const chart = helmTemplate({ certificates: { mode: 'cert-manager' } });

  it('renders the objects of the kustomize install but its Namespace, equal but for the named differences', () => {
    assertSameObjects(chart, renderKustomization(join(deployDir, 'overlays', 'cert-manager')));
  });

  it('uses an issuer of your own instead of its CA when certManager.issuerRef names one', () => {
    const objects = helmTemplate(MATRIX['cert-manager with an issuer of your own'] ?? {});
    const certificates = all(objects, Certificate);
    assert.deepEqual(
      certificates.map((c) => c.metadata?.name),
      ['regroute-serving'],
    );
    assert.deepEqual(certificates[0]?.spec?.issuerRef, { name: 'corp-ca', kind: 'ClusterIssuer' });
    assert.equal(objects.filter((o) => o.kind === 'Issuer').length, 0);
    const annotations = one(objects, MutatingWebhookConfiguration).metadata?.annotations;
    assert.equal(annotations?.['cert-manager.io/inject-ca-from'], `${NAMESPACE}/regroute-serving`);
  });
});

describe('deploy/chart with certificates.mode existing-secret', () => {
  const objects = helmTemplate(MATRIX['an existing Secret'] ?? {});

  it('mounts the named Secret, makes none, and puts the given CA in the caBundle', () => {
    assert.equal(all(objects, Secret).length, 0);
    const volumes = one(objects, Deployment).spec?.template.spec?.volumes ?? [];
    assert.deepEqual(volumes.find((v) => v.name === 'tls')?.secret, { secretName: 'corp-tls' });
    const webhook = one(objects, MutatingWebhookConfiguration).webhooks?.[0];
    assert.equal(decode(webhook?.clientConfig.caBundle), 'PEM');
  });
});

describe('deploy/chart with the pull-secret sync against deploy/components/pull-secret-sync', () => {
  let copy: string;
  let kustomize: KubeObject[];
  const chart = helmTemplate({
    certificates: { mode: 'cert-manager' },
    config: exampleAsChartConfig,
    pullSecretSync: { enabled: true },
  });

  before(async () => {
    // The overlay deploy/README.md describes, with the config the chart renders and the names patch.
    copy = await mkdtemp(join(tmpdir(), 'regroute-chart-sync-'));
    await cp(deployDir, join(copy, 'deploy'), { recursive: true, filter: (src) => !src.includes('/certs') });
    const mine = join(copy, 'mine');
    await mkdir(mine);
    await writeFile(join(mine, 'config.yaml'), JSON.stringify(exampleAsChartConfig));
    await writeFile(
      join(mine, 'pull-secret-names.yaml'),
      '- op: replace\n  path: /rules/0/resourceNames\n  value: [amsregcred, localregcred]\n',
    );
    await writeFile(
      join(mine, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources: [../deploy/overlays/cert-manager]',
        'components: [../deploy/components/pull-secret-sync]',
        'configMapGenerator:',
        '  - { name: regroute-config, namespace: regroute-system, behavior: replace, files: [config.yaml] }',
        'patches:',
        '  - { path: pull-secret-names.yaml, target: { labelSelector: regroute.io/pull-secret-names } }',
        '',
      ].join('\n'),
    );
    kustomize = renderKustomization(mine);
  });
  after(() => rm(copy, { recursive: true, force: true }));

  it('renders the objects of the kustomize install with the component, equal but for the named differences', () => {
    assertSameObjects(chart, kustomize);
  });

  it("takes the RBAC's resourceNames from the config's pull secrets, and pullSecretSync.names", () => {
    const names = (objects: KubeObject[]) =>
      [...all(objects, Role), ...all(objects, ClusterRole)]
        .filter((r) => r.metadata?.labels?.['regroute.io/pull-secret-names'])
        .map((r) => r.rules?.[0]?.resourceNames);
    assert.deepEqual(names(chart), [
      ['amsregcred', 'localregcred'],
      ['amsregcred', 'localregcred'],
    ]);
    const withExtra = helmTemplate(MATRIX['the pull-secret sync with the example config'] ?? {});
    assert.deepEqual(names(withExtra)[0], ['amsregcred', 'extra-cred', 'localregcred']);
  });

  it('binds the copies in the listed namespaces only when clusterWideCopies is off', () => {
    const objects = helmTemplate(MATRIX['the pull-secret sync with per-namespace copies'] ?? {});
    assert.equal(objects.filter((o) => o.kind === 'ClusterRoleBinding').length, 1, 'namespaces only');
    const copies = all(objects, RoleBinding).filter((b) => b.roleRef.name === 'regroute-pull-secret-copies');
    assert.deepEqual(copies.map((b) => b.metadata?.namespace).sort(), ['team-a', 'team-b']);
    for (const binding of copies) assert.equal(binding.roleRef.kind, 'ClusterRole');
  });

  it('gives the webhook no RBAC and no token with the sync on, as without it', () => {
    const webhook = one(chart, Deployment, 'regroute').spec?.template.spec;
    assert.equal(webhook?.automountServiceAccountToken, false);
    for (const binding of chart.filter(
      (o) => o.kind.endsWith('Binding') && o.kind !== 'ValidatingAdmissionPolicyBinding',
    )) {
      const subjects = (binding as { subjects?: { name: string }[] }).subjects ?? [];
      assert.deepEqual(
        subjects.map((s) => s.name),
        ['regroute-pull-secret-sync'],
        idOf(binding),
      );
    }
  });
});

describe('deploy/chart with monitoring on', () => {
  const objects = helmTemplate(MATRIX['monitoring on'] ?? {});
  const service = one(objects, Service);

  it('has a ServiceMonitor that selects the webhook Service and scrapes its metrics port', () => {
    const monitor = one(objects, ServiceMonitor);
    assert.equal(monitor.metadata?.labels?.release, 'kube-prometheus-stack');
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels ?? {})) {
      assert.equal(service.metadata?.labels?.[key], value, key);
    }
    assert.deepEqual(monitor.spec.namespaceSelector?.matchNames, [NAMESPACE]);
    const endpoint = monitor.spec.endpoints?.[0];
    assert.ok(service.spec?.ports?.some((p) => p.name === endpoint?.port));
    assert.equal(endpoint?.path, '/metrics');
  });

  it('has a PrometheusRule with an alert for each failure operators act on', () => {
    const rule = one(objects, PrometheusRule);
    const alerts = rule.spec.groups?.flatMap((g) => g.rules?.map((r) => r.alert) ?? []);
    assert.deepEqual(alerts, [
      'RegrouteRegistryDown',
      'RegrouteNoHealthyCandidate',
      'RegrouteOutageWindowOpen',
      'RegrouteWebhookErrors',
      'RegrouteAdmissionSlow',
      'RegrouteCertificateExpiringSoon',
      'RegrouteConfigReloadFailing',
      'RegrouteTlsReloadFailing',
    ]);
    for (const r of rule.spec.groups?.flatMap((g) => g.rules ?? []) ?? []) {
      assert.ok(r.labels?.severity, `${r.alert} has a severity`);
      assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert} says what happened`);
    }
  });

  it('puts the thresholds of the values into the expressions', () => {
    const exprs = (values: object) =>
      one(helmTemplate({ prometheusRule: { enabled: true, ...values } }), PrometheusRule)
        .spec.groups?.flatMap((g) => g.rules ?? [])
        .map((r) => String(r.expr).replace(/\s+/g, ' '))
        .join('\n') ?? '';
    const tuned = exprs({ admissionLatencySeconds: 0.5, errorRatio: 0.2, certificateExpiryDays: 14 });
    assert.match(tuned, /\) > 0\.5$/m);
    assert.match(tuned, /\[5m\]\)\) > 0\.2$/m);
    assert.match(tuned, /< 14 \* 86400$/m);
  });

  it('carries the checked-in dashboard in a ConfigMap labelled for the Grafana sidecar', async () => {
    const dashboard = one(objects, ConfigMap, 'regroute-dashboard');
    assert.equal(dashboard.metadata?.labels?.grafana_dashboard, '1');
    const file = await readFile(join(chartDir, 'dashboards', 'regroute.json'), 'utf8');
    assert.deepEqual(JSON.parse(dashboard.data?.['regroute.json'] ?? ''), JSON.parse(file));
  });

  it('renders none of them by default', () => {
    const kinds = helmTemplate({}).map((o) => o.kind);
    assert.ok(!kinds.includes('ServiceMonitor') && !kinds.includes('PrometheusRule'));
    assert.ok(!helmTemplate({}).some((o) => o.metadata.name === 'regroute-dashboard'));
  });
});

describe('deploy/chart server settings, priority and disruption budget', () => {
  const deploymentOf = (values: object) => one(helmTemplate(values), Deployment, 'regroute');
  const environmentOf = (objects: KubeObject[]) => one(objects, ConfigMap, 'regroute-environment').data ?? {};

  it('puts a server block of the values into the ConfigMap, the environment, the container ports and the grace period', () => {
    const objects = helmTemplate(MATRIX['a server block of its own'] ?? {});
    const deployment = one(objects, Deployment, 'regroute');
    const pod = deployment.spec?.template.spec;
    const container = pod?.containers[0];
    const ports = Object.fromEntries((container?.ports ?? []).map((p) => [p.name, p.containerPort]));
    assert.deepEqual(ports, { https: 9443, health: 9081, metrics: 9091 });
    const env = environmentOf(objects);
    assert.deepEqual(
      [env.REGROUTE_PORT, env.REGROUTE_HEALTH_PORT, env.REGROUTE_METRICS_PORT],
      ['9443', '9081', '9091'],
    );
    const config = configInPod(configMapOf(objects).data?.['config.yaml'] ?? '', env, 'the chart');
    assert.deepEqual(
      [config.server.port, config.server.healthPort, config.server.metricsPort],
      [9443, 9081, 9091],
    );
    assert.equal(pod?.terminationGracePeriodSeconds, 45, 'the 20 s delay and 25 s for the drain');
    const service = one(objects, Service);
    assert.deepEqual(
      service.spec?.ports?.map((p) => [p.name, p.port, p.targetPort]),
      [
        ['https', 443, 'https'],
        ['metrics', 9091, 'metrics'],
      ],
    );
  });

  it('caps the heap from maxOldSpaceSizeMiB', () => {
    assert.equal(
      environmentOf(helmTemplate({})).NODE_OPTIONS,
      '--max-old-space-size=160 --max-semi-space-size=16',
    );
    const tuned = helmTemplate(MATRIX['production tuning'] ?? {});
    assert.equal(environmentOf(tuned).NODE_OPTIONS, '--max-old-space-size=768 --max-semi-space-size=16');
  });

  it('runs at its own priority class, or at the one named, without making its own when told', () => {
    assert.equal(deploymentOf({}).spec?.template.spec?.priorityClassName, 'regroute');
    const tuned = helmTemplate(MATRIX['production tuning'] ?? {});
    assert.equal(
      one(tuned, Deployment, 'regroute').spec?.template.spec?.priorityClassName,
      'system-cluster-critical',
    );
    assert.ok(!tuned.some((o) => o.kind === 'PriorityClass'));
    const none = deploymentOf({ priorityClass: { create: false } });
    assert.equal(none.spec?.template.spec?.priorityClassName, undefined);
  });

  it('budgets disruptions with maxUnavailable, or with minAvailable when that is set', () => {
    const budget = (values: object) => one(helmTemplate(values), PodDisruptionBudget).spec;
    assert.deepEqual([budget({})?.maxUnavailable, budget({})?.minAvailable], [1, undefined]);
    const kept = budget({ podDisruptionBudget: { minAvailable: 2 } });
    assert.deepEqual([kept?.maxUnavailable, kept?.minAvailable], [undefined, 2]);
  });

  it("excludes kube-system and the release namespace from the webhook's namespaces, beside the values' selector", () => {
    const objects = helmTemplate(MATRIX['production tuning'] ?? {}, 'platform-webhooks');
    const selector = one(objects, MutatingWebhookConfiguration).webhooks?.[0]?.namespaceSelector;
    // helm merges the values' selector into the default one: its matchLabels stay.
    assert.deepEqual(selector, {
      matchLabels: { 'regroute.io/enabled': 'true' },
      matchExpressions: [
        { key: 'team', operator: 'Exists' },
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: ['kube-system', 'platform-webhooks'],
        },
      ],
    });
  });
});

describe('deploy/chart with admissionEvents on against deploy/components/admission-events', () => {
  let copy: string;
  let kustomize: KubeObject[];

  before(async () => {
    copy = await mkdtemp(join(tmpdir(), 'regroute-chart-events-'));
    await cp(deployDir, join(copy, 'deploy'), { recursive: true, filter: (src) => !src.includes('/certs') });
    const mine = join(copy, 'mine');
    await mkdir(mine);
    await writeFile(
      join(mine, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources: [../deploy/overlays/cert-manager]',
        'components: [../deploy/components/admission-events]',
        '',
      ].join('\n'),
    );
    kustomize = renderKustomization(mine);
  });
  after(() => rm(copy, { recursive: true, force: true }));

  it('renders the objects of the kustomize install with the component, given the memory values.yaml asks for', () => {
    assertSameObjects(
      helmTemplate({ certificates: { mode: 'cert-manager' }, ...MATRIX['admission events on'] }),
      kustomize,
    );
  });
});

describe('deploy/chart with networkPolicy on against deploy/components/network-policy', () => {
  let copy: string;
  let kustomize: KubeObject[];

  before(async () => {
    copy = await mkdtemp(join(tmpdir(), 'regroute-chart-netpol-'));
    await cp(deployDir, join(copy, 'deploy'), { recursive: true, filter: (src) => !src.includes('/certs') });
    const mine = join(copy, 'mine');
    await mkdir(mine);
    await writeFile(
      join(mine, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources: [../deploy/overlays/cert-manager]',
        'components: [../deploy/components/network-policy]',
        '',
      ].join('\n'),
    );
    kustomize = renderKustomization(mine);
  });
  after(() => rm(copy, { recursive: true, force: true }));

  it('renders the objects of the kustomize install with the component, equal but for the named differences', () => {
    assertSameObjects(
      helmTemplate({ certificates: { mode: 'cert-manager' }, networkPolicy: { enabled: true } }),
      kustomize,
    );
  });

  it("lets the pods reach 443, every port the config's registries and routes name, and the extra ports", () => {
    const policy = one(helmTemplate(MATRIX['a network policy with the example config'] ?? {}), NetworkPolicy);
    const [dns, registries] = policy.spec?.egress ?? [];
    assert.deepEqual(
      dns?.ports?.map((p) => [p.port, p.protocol]),
      [
        [53, 'UDP'],
        [53, 'TCP'],
      ],
    );
    assert.equal(registries?.to, undefined, 'wherever the registries are');
    assert.deepEqual(
      registries?.ports?.map((p) => p.port),
      [443, 5000, 6443],
    );
  });

  it('renders no policy by default', () => {
    assert.ok(!helmTemplate({}).some((o) => o.kind === 'NetworkPolicy'));
  });
});
