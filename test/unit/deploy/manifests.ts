// The deploy/ tests' view of rendered manifests: where they live, schema validation, and typed look-ups by kind.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Certificate, Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import {
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import {
  MutatingWebhookConfiguration,
  ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding,
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
import { PriorityClass } from 'kubernetes-models/scheduling.k8s.io/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { idOf, type KubeObject } from '../../helpers/kustomize.js';
import { unknownFields, type Validatable } from '../../helpers/strict-schema.js';

// The strict check moved to test/helpers, where the admission tests use it for Pods too.
export { unknownFields };

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const deployDir = fileURLToPath(new URL('../../../deploy/', import.meta.url));

/** A kubernetes-models class: constructs a typed object, validates it, and recognises its apiVersion and kind. */
interface ModelClass<T extends Validatable> {
  new (data: never): T;
  readonly apiVersion: string;
  readonly kind: string;
  is(value: unknown): boolean;
}

const models: ModelClass<Validatable>[] = [
  Namespace,
  ServiceAccount,
  ConfigMap,
  Secret,
  Service,
  Deployment,
  PodDisruptionBudget,
  PriorityClass,
  NetworkPolicy,
  Role,
  RoleBinding,
  ClusterRole,
  ClusterRoleBinding,
  MutatingWebhookConfiguration,
  ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding,
  Issuer,
  Certificate,
  ServiceMonitor,
  PrometheusRule,
];

/**
 * The object as the apiserver reads it. kustomize wraps a Secret's base64 data over lines of 70 characters; Go's
 * base64 decoder skips newlines, while the schema's "byte" format does not.
 */
function asDecoded(object: KubeObject): KubeObject {
  if (object.kind !== 'Secret' || typeof object.data !== 'object' || object.data === null) return object;
  const data = Object.entries(object.data).map(([key, value]) => [key, String(value).replace(/\n/g, '')]);
  return { ...object, data: Object.fromEntries(data) };
}

/** Throws with the schema's message, or with the unknown fields, unless the object is a valid object of its kind. */
export function assertValid(object: KubeObject): void {
  const Model = models.find((m) => m.is(object));
  assert.ok(Model, `${idOf(object)}: no schema for ${object.apiVersion} ${object.kind}`);
  const model = new Model(asDecoded(object) as never);
  model.validate();
  assert.deepEqual(unknownFields(model), [], `${idOf(object)}: fields outside the ${object.kind} schema`);
}

/** Every object of the class's kind, typed. */
export function all<T extends Validatable>(objects: KubeObject[], Model: ModelClass<T>): T[] {
  return objects.filter((o) => Model.is(o)).map((o) => new Model(o as never));
}

/** The one object of the class's kind (with that name, when given). */
export function one<T extends Validatable & { metadata?: { name?: string } }>(
  objects: KubeObject[],
  Model: ModelClass<T>,
  name?: string,
): T {
  const found = all(objects, Model).filter((o) => name === undefined || o.metadata?.name === name);
  assert.equal(found.length, 1, `exactly one ${Model.kind}${name === undefined ? '' : ` named ${name}`}`);
  return found[0] as T;
}

interface EnvSource {
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name?: string } }[];
}

/**
 * A container's environment as its process sees it: the ConfigMaps it takes whole (envFrom, looked up among the
 * rendered objects of its namespace), then its literal env entries over them. valueFrom entries need a cluster and
 * are left out.
 */
export function envOf(container: EnvSource | undefined, objects: KubeObject[], namespace?: string) {
  const fromConfigMaps = (container?.envFrom ?? []).map((source) => {
    const name = source.configMapRef?.name;
    const configMap = objects.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === name && o.metadata.namespace === namespace,
    );
    assert.ok(configMap, `the ConfigMap ${name} the container takes its environment from`);
    return (configMap.data ?? {}) as Record<string, string>;
  });
  const literal = (container?.env ?? []).flatMap((e) =>
    e.value === undefined ? [] : [[e.name, e.value] as const],
  );
  return Object.assign({}, ...fromConfigMaps, Object.fromEntries(literal)) as Record<string, string>;
}

/** The config file as the container's process reads it: parsed with the container's environment in force. */
export function configInPod(text: string, env: Record<string, string>, origin: string): Config {
  const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
  Object.assign(process.env, env);
  try {
    return parseConfigText(text, origin);
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

/** The regroute-config ConfigMap among the rendered objects (kustomize suffixes its name with a content hash). */
export function configMapOf(objects: KubeObject[]): ConfigMap {
  const found = all(objects, ConfigMap).filter((c) =>
    /^regroute-config(-[a-z0-9]+)?$/.test(c.metadata?.name ?? ''),
  );
  assert.equal(found.length, 1, 'exactly one regroute-config ConfigMap');
  return found[0] as ConfigMap;
}
