// deploy/base: every object valid, and the properties the install depends on, from webhook rules to API access.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { PriorityClass } from 'kubernetes-models/scheduling.k8s.io/v1';
import { Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { loadConfigFile } from '../../../src/config/load.js';
import {
  byId,
  idOf,
  type KubeObject,
  renderKustomization,
  renderWithKubectl,
} from '../../helpers/kustomize.js';
import { assertValid, configInPod, configMapOf, deployDir, envOf, one } from './manifests.js';

const baseDir = join(deployDir, 'base');
const objects = renderKustomization(baseDir);

const deployment = one(objects, Deployment, 'regroute');
const podSpec = deployment.spec?.template.spec;
const container = podSpec?.containers.find((c) => c.name === 'regroute');
const configMap = configMapOf(objects);
const configText = configMap.data?.['config.yaml'] ?? '';
const env = envOf(container, objects, deployment.metadata?.namespace);
/** The config as the container reads it: the ConfigMap's file, with the Deployment's environment. */
const config = configInPod(configText, env, 'the regroute-config ConfigMap');
const service = one(objects, Service, 'regroute');
const webhookConfiguration = one(objects, MutatingWebhookConfiguration, 'regroute');
const webhook = webhookConfiguration.webhooks?.[0];

function mountOf(volumeName: string): string | undefined {
  return container?.volumeMounts?.find((m) => m.name === volumeName)?.mountPath;
}

function containerPort(name: string | number | undefined): number | undefined {
  return typeof name === 'number' ? name : container?.ports?.find((p) => p.name === name)?.containerPort;
}

describe('deploy/base', () => {
  it('renders the same objects as kubectl kustomize', () => {
    assert.deepEqual(byId(objects), byId(renderWithKubectl(baseDir)));
  });

  it('holds only objects that validate against their Kubernetes schema, with no unknown fields', () => {
    assert.ok(objects.length >= 7);
    for (const object of objects) assertValid(object);
  });

  it('puts every namespaced object in regroute-system', () => {
    const clusterScoped = [
      'Namespace',
      'ClusterRole',
      'ClusterRoleBinding',
      'MutatingWebhookConfiguration',
      'PriorityClass',
    ];
    for (const object of objects.filter((o: KubeObject) => !clusterScoped.includes(o.kind))) {
      assert.equal(object.metadata.namespace, 'regroute-system', `${object.kind} ${object.metadata.name}`);
    }
  });
});

describe('deploy/base config.yaml', () => {
  it('is the ConfigMap the Deployment mounts, and the project loader accepts it', async () => {
    assert.equal(configText, await readFile(join(baseDir, 'config.yaml'), 'utf8'));
    await loadConfigFile(join(baseDir, 'config.yaml'));
    const volume = podSpec?.volumes?.find((v) => v.configMap?.name === configMap.metadata?.name);
    assert.ok(volume, 'a volume of the rendered ConfigMap');
    assert.deepEqual(container?.args, ['serve', '--config', join(mountOf(volume.name) ?? '', 'config.yaml')]);
  });

  it('names no registry and no route, so a fresh install changes no pod', () => {
    assert.deepEqual(config.routes, []);
    assert.deepEqual(config.registries, {});
  });

  it('leaves the in-process pull-secret sync off: the webhook pods have no API credentials for it', () => {
    assert.equal(config.pullSecretSync.enabled, false);
  });

  it('has no server block: the Deployment passes its ports and mount paths in the environment', () => {
    assert.doesNotMatch(configText, /^server:/m);
    for (const name of ['REGROUTE_PORT', 'REGROUTE_HEALTH_PORT', 'REGROUTE_METRICS_PORT']) {
      assert.match(env[name] ?? '', /^[0-9]+$/, name);
    }
  });

  it('reads the serving certificate and key from the mounted TLS Secret', () => {
    const volume = podSpec?.volumes?.find((v) => v.secret?.secretName === 'regroute-tls');
    assert.ok(volume, 'a volume of the regroute-tls Secret');
    const mountPath = mountOf(volume.name);
    assert.equal(dirname(config.server.tlsCert), mountPath);
    assert.equal(dirname(config.server.tlsKey), mountPath);
    assert.equal(config.server.tlsCert.slice((mountPath ?? '').length + 1), 'tls.crt');
    assert.equal(config.server.tlsKey.slice((mountPath ?? '').length + 1), 'tls.key');
  });

  it('serves on the container ports the Deployment declares', () => {
    assert.equal(containerPort('https'), config.server.port);
    assert.equal(containerPort('health'), config.server.healthPort);
    assert.equal(containerPort('metrics'), config.server.metricsPort);
  });

  it('serves the webhook on 10250, the port private GKE control planes may reach besides 443', () => {
    assert.equal(config.server.port, 10250);
  });
});

describe('deploy/base MutatingWebhookConfiguration', () => {
  it('registers one webhook, for pod creation and for ephemeral containers added to a pod', () => {
    assert.equal(webhookConfiguration.webhooks?.length, 1);
    assert.deepEqual(webhook?.rules, [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['UPDATE'],
        resources: ['pods/ephemeralcontainers'],
        scope: 'Namespaced',
      },
    ]);
  });

  it('sees pods only in namespaces labelled regroute.io/enabled=true, never in kube-system or its own', () => {
    assert.deepEqual(webhook?.namespaceSelector, {
      matchLabels: { 'regroute.io/enabled': 'true' },
      matchExpressions: [
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: ['kube-system', deployment.metadata?.namespace ?? ''],
        },
      ],
    });
  });

  it('never sees a pod labelled regroute.io/skip=true', () => {
    assert.deepEqual(webhook?.objectSelector, {
      matchExpressions: [{ key: 'regroute.io/skip', operator: 'NotIn', values: ['true'] }],
    });
  });

  it('fails open, has no side effects and speaks AdmissionReview v1', () => {
    assert.equal(webhook?.failurePolicy, 'Ignore');
    assert.equal(webhook?.sideEffects, 'None');
    assert.deepEqual(webhook?.admissionReviewVersions, ['v1']);
  });

  it('gives the apiserver a timeout at least a second above the admission deadline in the config', () => {
    const timeoutMs = (webhook?.timeoutSeconds ?? 10) * 1000;
    assert.ok(
      timeoutMs >= config.admission.deadlineMs + 1000,
      `timeoutSeconds ${webhook?.timeoutSeconds} vs deadlineMs ${config.admission.deadlineMs}`,
    );
  });

  it('asks to be called again when a later webhook changes the pod', () => {
    assert.equal(webhook?.reinvocationPolicy, 'IfNeeded');
  });

  it('calls /mutate through the Service port that leads to the container HTTPS port', () => {
    const target = webhook?.clientConfig.service;
    assert.equal(target?.name, service.metadata?.name);
    assert.equal(target?.namespace, service.metadata?.namespace);
    assert.equal(target?.path, '/mutate');
    assert.equal(target?.port, 443);
    const port = service.spec?.ports?.find((p) => p.port === target?.port);
    assert.equal(containerPort(port?.targetPort), config.server.port);
    assert.equal(webhook?.clientConfig.caBundle, undefined, 'the overlays provide the CA');
  });
});

describe("deploy/base: regroute's own pods do not depend on regroute", () => {
  const labels = deployment.spec?.template.metadata?.labels ?? {};
  const namespace = one(objects, Namespace, 'regroute-system');

  it('keeps its own namespace out of the namespace selector', () => {
    assert.equal(namespace.metadata?.labels?.['regroute.io/enabled'], undefined);
  });

  it('labels its own pods regroute.io/skip=true', () => {
    assert.equal(labels['regroute.io/skip'], 'true');
  });

  it('excludes its own pods with a matchCondition that tolerates pods without labels', () => {
    const conditions = webhook?.matchConditions ?? [];
    assert.equal(conditions.length, 1);
    const expression = conditions[0]?.expression.replace(/\s+/g, ' ') ?? '';
    assert.match(expression, /^!\(/, 'the condition excludes what it describes');
    assert.ok(expression.includes(`request.namespace == '${deployment.metadata?.namespace}'`), expression);
    const key = 'app.kubernetes.io/name';
    const guards = ['has(object.metadata.labels)', `'${key}' in object.metadata.labels`];
    const lookup = `object.metadata.labels['${key}'] == '${labels[key]}'`;
    for (const part of [...guards, lookup]) assert.ok(expression.includes(part), `${part} in ${expression}`);
    for (const guard of guards)
      assert.ok(expression.indexOf(guard) < expression.indexOf(lookup), 'guards first');
  });
});

describe('deploy/base Deployment', () => {
  it('runs at least two replicas that keep serving through a rollout', () => {
    assert.ok((deployment.spec?.replicas ?? 1) >= 2);
    assert.equal(deployment.spec?.strategy?.rollingUpdate?.maxUnavailable, 0);
  });

  it('spreads its pods over nodes and zones', () => {
    const constraints = podSpec?.topologySpreadConstraints ?? [];
    assert.deepEqual(constraints.map((c) => c.topologyKey).sort(), [
      'kubernetes.io/hostname',
      'topology.kubernetes.io/zone',
    ]);
    for (const constraint of constraints) {
      for (const [key, value] of Object.entries(constraint.labelSelector?.matchLabels ?? {})) {
        assert.equal(deployment.spec?.template.metadata?.labels?.[key], value);
      }
    }
  });

  it('has a disruption budget that lets drains take one pod at a time, whatever the replica count', () => {
    const pdb = one(objects, PodDisruptionBudget);
    assert.deepEqual(pdb.spec?.selector?.matchLabels, deployment.spec?.selector.matchLabels);
    assert.equal(pdb.spec?.maxUnavailable, 1);
    assert.equal(pdb.spec?.minAvailable, undefined);
  });

  it('runs at a priority class of its own, above the default and below the system classes', () => {
    const priority = one(objects, PriorityClass);
    assert.equal(podSpec?.priorityClassName, priority.metadata?.name);
    assert.ok((priority.value ?? 0) > 0 && (priority.value ?? 0) < 1_000_000_000, `${priority.value}`);
    assert.equal(priority.globalDefault, false);
  });

  it('runs under the restricted security context', () => {
    const pod = podSpec?.securityContext;
    const own = container?.securityContext;
    assert.equal(own?.runAsNonRoot ?? pod?.runAsNonRoot, true);
    assert.ok((own?.runAsUser ?? pod?.runAsUser ?? 0) > 0, 'a numeric non-root user');
    assert.equal(own?.readOnlyRootFilesystem, true);
    assert.equal(own?.allowPrivilegeEscalation, false);
    assert.deepEqual(own?.capabilities?.drop, ['ALL']);
    assert.equal(own?.capabilities?.add, undefined);
    assert.equal((own?.seccompProfile ?? pod?.seccompProfile)?.type, 'RuntimeDefault');
    const namespace = one(objects, Namespace, 'regroute-system');
    assert.equal(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  it('probes startup and liveness on GET /healthz and readiness on GET /readyz, over HTTP on the health port', () => {
    for (const [probe, path] of [
      [container?.startupProbe, '/healthz'],
      [container?.readinessProbe, '/readyz'],
      [container?.livenessProbe, '/healthz'],
    ] as const) {
      assert.equal(probe?.httpGet?.path, path);
      assert.equal(probe?.httpGet?.scheme ?? 'HTTP', 'HTTP');
      assert.equal(containerPort(probe?.httpGet?.port), config.server.healthPort);
      assert.notEqual(config.server.healthPort, config.server.port);
    }
  });

  it('stops in process, with no exec hook, within a grace period covering the delay and the drain', () => {
    assert.equal(container?.lifecycle, undefined, 'no preStop: the image needs no shell or sleep');
    // The drain after the delay: a request in flight is bounded by the 10 s request timeout (src/server/app.ts).
    const drainSeconds = 10;
    const grace = podSpec?.terminationGracePeriodSeconds ?? 30;
    assert.ok(config.server.shutdownDelaySeconds >= 2, 'the delay covers the endpoint removal (about 1 s)');
    assert.ok(
      grace >= config.server.shutdownDelaySeconds + drainSeconds + 5,
      `grace ${grace} s vs delay ${config.server.shutdownDelaySeconds} s and drain ${drainSeconds} s`,
    );
  });

  it('sizes memory from the benchmark and caps the heap below the limit', () => {
    const mebibytes = (quantity: unknown) => {
      const match = /^([0-9]+)Mi$/.exec(String(quantity));
      assert.ok(match, `${quantity} in Mi`);
      return Number(match[1]);
    };
    const request = mebibytes(container?.resources?.requests?.memory);
    const limit = mebibytes(container?.resources?.limits?.memory);
    assert.ok(container?.resources?.requests?.cpu);
    // docs/performance.md: RSS 128 MB with both caches full, 148 MB at the peak of the warm path.
    assert.ok(request * 1.048576 >= 128, `request ${request} Mi covers full caches`);
    assert.ok(limit * 1.048576 >= 148 * 1.5, `limit ${limit} Mi leaves room above the peak`);
    // The heap limit V8 takes from NODE_OPTIONS, read from a node started with it; beside the heap RSS holds
    // about 80 MB (99 MB idle with 20 MB of heap), counted here as 96 MiB.
    const started = spawnSync(
      process.execPath,
      ['-e', 'process.stdout.write(String(require("v8").getHeapStatistics().heap_size_limit))'],
      { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: env.NODE_OPTIONS ?? '' } },
    );
    assert.equal(started.status, 0, started.stderr);
    const heapMiB = Number(started.stdout) / 2 ** 20;
    assert.match(env.NODE_OPTIONS ?? '', /--max-old-space-size=[0-9]+/);
    assert.ok(heapMiB + 96 <= limit, `heap limit ${heapMiB} MiB + 96 MiB within ${limit} Mi`);
    assert.ok(heapMiB >= 4 * 40, `heap limit ${heapMiB} MiB at least 4x the 40 MB full caches use`);
  });

  it('runs as the regroute service account', () => {
    assert.equal(podSpec?.serviceAccountName, one(objects, ServiceAccount).metadata?.name);
  });
});

describe('deploy/base Service', () => {
  it('selects the Deployment pods', () => {
    assert.deepEqual(service.spec?.selector, deployment.spec?.selector.matchLabels);
  });

  it('exposes 443 on the container HTTPS port and the metrics port under the name metrics', () => {
    const https = service.spec?.ports?.find((p) => p.port === 443);
    assert.equal(containerPort(https?.targetPort), config.server.port);
    const metrics = service.spec?.ports?.find((p) => p.name === 'metrics');
    assert.equal(metrics?.port, config.server.metricsPort);
    assert.equal(containerPort(metrics?.targetPort), config.server.metricsPort);
  });
});

describe('deploy/base API access', () => {
  const account = one(objects, ServiceAccount);

  it('has no role and no binding: admission needs no API access', () => {
    const rbac = ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding'];
    assert.deepEqual(objects.filter((o) => rbac.includes(o.kind)).map(idOf), []);
  });

  it('mounts no service account token into the webhook pods, by the service account and by the pod', () => {
    assert.equal(account.automountServiceAccountToken, false);
    assert.equal(podSpec?.automountServiceAccountToken, false);
    assert.ok(
      !container?.volumeMounts?.some((m) => m.mountPath.startsWith('/var/run/secrets/kubernetes.io')),
    );
  });
});
