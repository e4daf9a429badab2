// deploy/chart: `helm lint --strict` and `helm template` over a matrix of values, every object validated against its
// schema and every role's grants checked (Secrets by their configured names only, the webhook exactly what the parts
// turned on use), the values schema refusing what it should, and the default render and each optional part equal
// to the kustomize install with its component object by object, with each intended difference named below.
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
import {
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
} from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parse as parseYaml } from 'yaml';
import { VALUES_SCHEMA_FILE, valuesSchemaText } from '../../../scripts/chart-schema.js';
import { serviceDnsNames } from '../../../src/certs/generate.js';
import { certsCommand } from '../../../src/cli/certs.js';
import { parseConfigText } from '../../../src/config/load.js';
import { byId, idOf, type KubeObject, renderKustomization } from '../../helpers/kustomize.js';
import { chartDir, helmLint, helmTemplate, helmTemplateRun, NAMESPACE } from './helm.js';
import { all, assertValid, configInPod, configMapOf, deployDir, envOf, one } from './manifests.js';

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
  'cluster parts on': {
    cluster: { enabled: true },
    resources: { requests: { memory: '192Mi' }, limits: { memory: '384Mi' } },
  },
  'cluster parts and admission events on': {
    cluster: { enabled: true },
    admissionEvents: { enabled: true },
    resources: { requests: { memory: '192Mi' }, limits: { memory: '384Mi' } },
  },
  'learning alone, per namespace': {
    cluster: {
      enabled: true,
      warm: false,
      repair: false,
      clusterWide: false,
      namespaces: ['team-a', 'team-b'],
    },
    resources: { requests: { memory: '192Mi' }, limits: { memory: '384Mi' } },
  },
  'every part with API access, repair per namespace, with the example config': {
    config: exampleConfig,
    pullSecretSync: {
      enabled: true,
      names: ['extra-cred'],
      clusterWideCopies: false,
      copyNamespaces: ['team-a'],
    },
    admissionEvents: { enabled: true },
    cluster: { enabled: true, warm: false, clusterWide: false, namespaces: ['team-a'] },
    resources: { requests: { memory: '192Mi' }, limits: { memory: '384Mi' } },
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

interface MatrixValues {
  dashboard?: { namespace?: string };
  pullSecretSync?: { copyNamespaces?: string[] };
  cluster?: { namespaces?: string[] };
}

/**
 * Where a namespaced object belongs: the release namespace, but for the dashboard and the per-namespace bindings of
 * the pull-secret copies and the cluster parts, which belong to one of the namespaces the values name.
 */
function namespaceOf(object: KubeObject, values: MatrixValues): string | undefined {
  if (object.metadata.name === 'regroute-dashboard') return values.dashboard?.namespace || NAMESPACE;
  if (object.kind !== 'RoleBinding') return NAMESPACE;
  const listed =
    object.metadata.name === 'regroute-pull-secret-copies'
      ? values.pullSecretSync?.copyNamespaces
      : ['regroute-cluster-pods', 'regroute-warm', 'regroute-repair'].includes(object.metadata.name)
        ? values.cluster?.namespaces
        : undefined;
  const namespace = object.metadata.namespace ?? '';
  return listed?.includes(namespace) ? namespace : NAMESPACE;
}

/**
 * "scope apiGroup/resource verb [names]" for every rule of every role bound to the service account: scope is
 * "cluster" for a ClusterRoleBinding, the namespace for a RoleBinding (a ClusterRole bound there grants there only).
 */
function grants(objects: KubeObject[], account: string, namespace = NAMESPACE): string[] {
  const roles = [...all(objects, Role), ...all(objects, ClusterRole)];
  const granted = new Set<string>();
  for (const binding of [...all(objects, RoleBinding), ...all(objects, ClusterRoleBinding)]) {
    const bound = binding.subjects?.some(
      (s) => s.kind === 'ServiceAccount' && s.name === account && s.namespace === namespace,
    );
    if (!bound) continue;
    const role = roles.find(
      (r) =>
        r.kind === binding.roleRef.kind &&
        r.metadata?.name === binding.roleRef.name &&
        (r.kind === 'ClusterRole' || r.metadata?.namespace === binding.metadata?.namespace),
    );
    assert.ok(role, `${binding.metadata?.name} binds an existing ${binding.roleRef.kind}`);
    const scope = binding.kind === 'RoleBinding' ? binding.metadata?.namespace : 'cluster';
    for (const rule of role.rules ?? []) {
      assert.equal(rule.nonResourceURLs, undefined);
      const names = rule.resourceNames ? ` [${rule.resourceNames.join(',')}]` : '';
      for (const group of rule.apiGroups ?? [])
        for (const resource of rule.resources ?? [])
          for (const verb of rule.verbs) granted.add(`${scope} ${group}/${resource} ${verb}${names}`);
    }
  }
  return [...granted].sort();
}

const decode = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString('utf8');

interface RbacValues {
  config?: Record<string, unknown>;
  pullSecretSync?: { enabled?: boolean; names?: string[] };
  admissionEvents?: { enabled?: boolean };
  cluster?: {
    enabled?: boolean;
    warm?: boolean;
    repair?: boolean;
    clusterWide?: boolean;
    namespaces?: string[];
  };
}

/** The pull-secret names the values configure: every registries.<host>.pullSecret of the config, and names. */
function configuredPullSecrets(values: RbacValues): string[] {
  const registries = (values.config?.registries ?? {}) as Record<string, { pullSecret?: string } | null>;
  const names = Object.values(registries).flatMap((r) => (r?.pullSecret ? [r.pullSecret] : []));
  return [...new Set([...names, ...(values.pullSecretSync?.names ?? [])])].sort();
}

/** What the webhook's own service account should be granted: the API calls of the parts the values turn on. */
function webhookGrants(values: RbacValues): string[] {
  const granted: string[] = [];
  if (values.admissionEvents?.enabled) granted.push('cluster /events create');
  const cluster = values.cluster;
  if (cluster?.enabled) {
    // Every API call src/kube and src/cluster make, by part: learning and every part (cluster-pods.ts: opted-in
    // namespaces, their pods, one read again), warm-up (workload-api.ts), repair (pod-api.ts: the JSON patch,
    // Events on pods).
    granted.push('cluster /namespaces list', 'cluster /namespaces watch');
    const scopes = cluster.clusterWide === false ? (cluster.namespaces ?? []) : ['cluster'];
    for (const scope of scopes) {
      granted.push(`${scope} /pods get`, `${scope} /pods list`, `${scope} /pods watch`);
      if (cluster.warm !== false)
        for (const resource of [
          'apps/deployments',
          'apps/statefulsets',
          'apps/daemonsets',
          'batch/jobs',
          'batch/cronjobs',
        ])
          granted.push(`${scope} ${resource} list`);
      if (cluster.repair !== false) granted.push(`${scope} /pods patch`, `${scope} /events create`);
    }
  }
  return [...new Set(granted)].sort();
}

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

  it('grants nothing on Secrets beyond the configured names but create, no wildcard, and the webhook only what its parts use', () => {
    for (const [name, values] of Object.entries(MATRIX) as [string, RbacValues][]) {
      const objects = helmTemplate(values);
      const names = configuredPullSecrets(values);
      for (const role of [...all(objects, Role), ...all(objects, ClusterRole)]) {
        const where = `${name}: ${role.kind} ${role.metadata?.name}`;
        for (const rule of role.rules ?? []) {
          const words = [
            ...(rule.apiGroups ?? []),
            ...(rule.resources ?? []),
            ...(rule.resourceNames ?? []),
            ...rule.verbs,
          ];
          for (const word of words) assert.ok(!word.includes('*'), `${where}: ${word}`);
          if (!rule.resources?.includes('secrets')) continue;
          // A name RBAC cannot know at create time: create alone goes without resourceNames.
          if (rule.resourceNames === undefined) assert.deepEqual(rule.verbs, ['create'], where);
          else assert.deepEqual([...rule.resourceNames].sort(), names, where);
        }
      }
      assert.deepEqual(grants(objects, 'regroute'), webhookGrants(values), `${name}: the webhook's grants`);
      const token = Boolean(values.admissionEvents?.enabled || values.cluster?.enabled);
      assert.equal(one(objects, ServiceAccount, 'regroute').automountServiceAccountToken, token, name);
      const pod = one(objects, Deployment, 'regroute').spec?.template.spec;
      assert.equal(pod?.automountServiceAccountToken, token, name);
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
    [
      'a cluster part that has no role of its own',
      { cluster: { enabled: true, learn: false } },
      /additional properties 'learn' not allowed/,
    ],
    [
      'a binding namespace that is no namespace name',
      { cluster: { enabled: true, clusterWide: false, namespaces: ['Team_A'] } },
      /cluster\/namespaces/,
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
      'the cluster parts in the config, which has no API token or RBAC without cluster.enabled',
      { config: { cluster: { enabled: true } } },
      /config.cluster.enabled \(true\) contradicts cluster.enabled \(false\): set cluster.enabled alone/,
    ],
    [
      'the cluster parts granted and then turned off in the config',
      { cluster: { enabled: true }, config: { cluster: { enabled: false } } },
      /config.cluster.enabled \(false\) contradicts cluster.enabled \(true\)/,
    ],
    [
      'repair turned off in the config with its role granted',
      { cluster: { enabled: true }, config: { cluster: { repair: { enabled: false } } } },
      /config.cluster.repair.enabled \(false\) contradicts cluster.repair \(true\): set cluster.repair alone/,
    ],
    [
      'warm-up turned on in the config without its role',
      { cluster: { enabled: true, warm: false }, config: { cluster: { warm: { enabled: true } } } },
      /config.cluster.warm.enabled \(true\) contradicts cluster.warm \(false\)/,
    ],
    [
      'per-namespace cluster bindings with no namespace',
      { cluster: { enabled: true, clusterWide: false } },
      /cluster.clusterWide false needs cluster.namespaces/,
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
      '--max-old-space-size=160 --max-semi-space-size=8',
    );
    const tuned = helmTemplate(MATRIX['production tuning'] ?? {});
    assert.equal(environmentOf(tuned).NODE_OPTIONS, '--max-old-space-size=768 --max-semi-space-size=8');
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

/** A strategic-merge patch deleting one cluster-scoped object. */
const deletion = (kind: string, name: string) =>
  [
    'apiVersion: rbac.authorization.k8s.io/v1',
    `kind: ${kind}`,
    'metadata:',
    `  name: ${name}`,
    '$patch: delete',
    '',
  ].join('\n');

describe('deploy/chart with cluster on against deploy/components/repair', () => {
  let copy: string;
  const memory = { resources: { requests: { memory: '192Mi' }, limits: { memory: '384Mi' } } };
  const chartWith = (cluster: object, values: object = {}) =>
    helmTemplate({
      certificates: { mode: 'cert-manager' },
      ...memory,
      cluster: { enabled: true, ...cluster },
      ...values,
    });

  /** The install with the components, and the lines and files given, as an overlay of one's own. */
  const overlay = async (
    name: string,
    components: string[],
    lines: string[] = [],
    files: Record<string, string> = {},
  ) => {
    const dir = join(copy, name);
    await mkdir(dir);
    for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
    await writeFile(
      join(dir, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources: [../deploy/overlays/cert-manager]',
        `components: [${components.map((c) => `../deploy/components/${c}`).join(', ')}]`,
        ...lines,
        '',
      ].join('\n'),
    );
    return renderKustomization(dir);
  };

  /**
   * Parts left out as components/repair/kustomization.yaml says: the binding deleted and the part off in
   * config.yaml (the config the chart renders by default, with that). The chart leaves the unbound ClusterRole out
   * too, so the overlay deletes it as well.
   */
  const leftOut = (parts: string[]) =>
    overlay(
      `without-${parts.join('-')}`,
      ['repair'],
      [
        'configMapGenerator:',
        '  - { name: regroute-config, namespace: regroute-system, behavior: replace, files: [config.yaml] }',
        'patches:',
        ...parts.flatMap((part) => [`  - path: no-${part}-role.yaml`, `  - path: no-${part}-binding.yaml`]),
      ],
      {
        'config.yaml': JSON.stringify({
          ...chartValues.config,
          cluster: Object.fromEntries(parts.map((part) => [part, { enabled: false }])),
        }),
        ...Object.fromEntries(
          parts.flatMap((part) => [
            [`no-${part}-role.yaml`, deletion('ClusterRole', `regroute-${part}`)],
            [`no-${part}-binding.yaml`, deletion('ClusterRoleBinding', `regroute-${part}`)],
          ]),
        ),
      },
    );

  before(async () => {
    copy = await mkdtemp(join(tmpdir(), 'regroute-chart-cluster-'));
    await cp(deployDir, join(copy, 'deploy'), { recursive: true, filter: (src) => !src.includes('/certs') });
  });
  after(() => rm(copy, { recursive: true, force: true }));

  /** The config the webhook's container reads: the mounted file with the container's environment. */
  const configOfPod = (objects: KubeObject[]) => {
    const deployment = one(objects, Deployment, 'regroute');
    const env = envOf(deployment.spec?.template.spec?.containers[0], objects, deployment.metadata?.namespace);
    return configInPod(configMapOf(objects).data?.['config.yaml'] ?? '', env, 'the chart');
  };
  const parts = (objects: KubeObject[]) => {
    const { cluster, admission } = configOfPod(objects);
    return {
      cluster: cluster.enabled,
      learn: cluster.learn.enabled,
      warm: cluster.warm.enabled,
      repair: cluster.repair.enabled,
      events: admission.events.enabled,
    };
  };

  it('renders the objects of the kustomize install with the component, given the memory values.yaml asks for', async () => {
    assertSameObjects(chartWith({}), await overlay('with-repair', ['repair']));
  });

  it('goes with admissionEvents as the two components go together: one token, one memory, both grants', async () => {
    assertSameObjects(
      chartWith({}, { admissionEvents: { enabled: true } }),
      await overlay('with-both', ['admission-events', 'repair']),
    );
  });

  for (const left of [['repair'], ['warm'], ['warm', 'repair']]) {
    it(`leaves ${left.join(' and ')} out as the component's overlay does: no role, no binding, the config saying so`, async () => {
      const values = Object.fromEntries(left.map((part) => [part, false]));
      assertSameObjects(chartWith(values), await leftOut(left));
    });
  }

  it('turns config.cluster on through REGROUTE_CLUSTER, and each part as its value says', () => {
    const off = { cluster: false, learn: true, warm: true, repair: true, events: false };
    assert.deepEqual(parts(helmTemplate({})), off);
    assert.deepEqual(parts(chartWith({})), { ...off, cluster: true });
    assert.deepEqual(parts(chartWith({ repair: false })), { ...off, cluster: true, repair: false });
    assert.deepEqual(parts(chartWith({ warm: false, repair: false })), {
      ...off,
      cluster: true,
      warm: false,
      repair: false,
    });
    assert.deepEqual(parts(chartWith({}, { admissionEvents: { enabled: true } })), {
      ...off,
      cluster: true,
      events: true,
    });
    // Learning has no role of its own: the config turns it off, the roles stay.
    const withoutLearning = chartWith({}, { config: { cluster: { learn: { enabled: false } } } });
    assert.deepEqual(parts(withoutLearning), { ...off, cluster: true, learn: false });
    // The rest of a part's settings stay the config's.
    const slower = chartWith({ repair: false }, { config: { cluster: { repair: { ratePerMinute: 5 } } } });
    assert.deepEqual(configOfPod(slower).cluster.repair, { enabled: false, ratePerMinute: 5 });
  });

  it('renders nothing of it, and the config as it is, while cluster.enabled is off, whatever the parts say', () => {
    const defaults = helmTemplate({});
    assert.equal([...all(defaults, ClusterRole), ...all(defaults, Role)].length, 0, 'no role');
    assert.equal(
      [...all(defaults, ClusterRoleBinding), ...all(defaults, RoleBinding)].length,
      0,
      'no binding',
    );
    assert.equal(one(defaults, ServiceAccount, 'regroute').automountServiceAccountToken, false);
    assert.equal(
      one(defaults, Deployment, 'regroute').spec?.template.spec?.automountServiceAccountToken,
      false,
    );
    assert.equal(one(defaults, ConfigMap, 'regroute-environment').data?.REGROUTE_CLUSTER, undefined);
    const parted = helmTemplate({ cluster: { warm: false, repair: false, clusterWide: false } });
    assert.deepEqual(normalised(parted), normalised(defaults));
  });

  it('names its objects after the release, as every other, and binds the release’s own service account', () => {
    const objects = helmTemplate(
      { fullnameOverride: 'acme', cluster: { enabled: true }, admissionEvents: { enabled: true } },
      'platform-webhooks',
    );
    const expected = ['acme-admission-events', 'acme-cluster-pods', 'acme-repair', 'acme-warm'];
    assert.deepEqual(
      all(objects, ClusterRole)
        .map((o) => o.metadata?.name)
        .sort(),
      expected,
    );
    assert.deepEqual(
      all(objects, ClusterRoleBinding)
        .map((o) => o.metadata?.name)
        .sort(),
      expected,
    );
    assert.deepEqual(
      grants(objects, 'acme', 'platform-webhooks'),
      webhookGrants({ cluster: { enabled: true }, admissionEvents: { enabled: true } }),
    );
  });

  it('binds pods, workloads and Events in cluster.namespaces only with clusterWide off; namespaces stay cluster-wide', () => {
    const objects = chartWith({ clusterWide: false, namespaces: ['team-a', 'team-b'] });
    for (const object of objects) assertValid(object);
    assert.deepEqual(
      all(objects, ClusterRoleBinding).map((b) => b.metadata?.name),
      ['regroute-cluster-namespaces'],
    );
    const bindings = all(objects, RoleBinding).map(
      (b) => `${b.metadata?.namespace} ${b.roleRef.kind} ${b.roleRef.name}`,
    );
    assert.deepEqual(bindings.sort(), [
      'team-a ClusterRole regroute-cluster-pods',
      'team-a ClusterRole regroute-repair',
      'team-a ClusterRole regroute-warm',
      'team-b ClusterRole regroute-cluster-pods',
      'team-b ClusterRole regroute-repair',
      'team-b ClusterRole regroute-warm',
    ]);
    assert.deepEqual(
      grants(objects, 'regroute'),
      webhookGrants({ cluster: { enabled: true, clusterWide: false, namespaces: ['team-a', 'team-b'] } }),
    );
    assert.ok(
      !grants(objects, 'regroute').some((g) => g.startsWith('cluster /pods')),
      'no pods cluster-wide',
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
