// The chart's values.schema.json: the values written out here, and `config` taken from the config's zod schema, so
// that helm refuses at install what regroute would refuse at start. `npx tsx scripts/chart-schema.ts` rewrites it;
// test/unit/deploy/chart.test.ts fails when the file and this differ.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { Config } from '../src/config/schema.js';

export const VALUES_SCHEMA_FILE = fileURLToPath(
  new URL('../deploy/chart/values.schema.json', import.meta.url),
);

type Schema = Record<string, unknown>;

/** An object with exactly these properties, all optional: values a user leaves out keep values.yaml's. */
const object = (properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  properties,
  additionalProperties: false,
  ...extra,
});
const string: Schema = { type: 'string' };
const boolean: Schema = { type: 'boolean' };
const stringMap: Schema = { type: 'object', additionalProperties: { type: 'string' } };
/** Kubernetes objects passed through as they are (tolerations, affinity, volumes): the apiserver checks them. */
const kubeObject: Schema = { type: 'object' };
const kubeList: Schema = { type: 'array', items: { type: 'object' } };
/** A Go duration as Prometheus and cert-manager read it: 30s, 5m, 2160h. */
const duration: Schema = { type: 'string', pattern: '^([0-9]+(ms|s|m|h))+$' };
const quantities: Schema = {
  type: 'object',
  additionalProperties: { type: ['string', 'number'] },
  propertyNames: { enum: ['cpu', 'memory', 'ephemeral-storage'] },
};
const resources = object({ requests: quantities, limits: quantities });
const labelSelector = object({
  matchLabels: stringMap,
  matchExpressions: {
    type: 'array',
    items: object(
      {
        key: string,
        operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
        values: { type: 'array', items: string },
      },
      { required: ['key', 'operator'] },
    ),
  },
});
/** A PodDisruptionBudget's count: a number of pods, or a percentage of them. */
const intOrPercent: Schema = { type: ['integer', 'string'], minimum: 0, pattern: '^[0-9]+%$' };
const dnsLabel: Schema = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' };

/** The config's schema as a values property: defaults dropped (values.yaml holds the chart's), nothing else. */
function configSchema(): Schema {
  const generated = z.toJSONSchema(Config, { io: 'input', target: 'draft-7' }) as Schema;
  const withoutDefaults = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(withoutDefaults);
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => key !== 'default' && key !== '$schema')
        .map(([key, v]) => [key, withoutDefaults(v)]),
    );
  };
  return {
    description: "regroute's config file (docs/configuration.md), rendered into the ConfigMap",
    ...(withoutDefaults(generated) as Schema),
  };
}

export function valuesSchema(): Schema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'regroute chart values',
    ...object({
      nameOverride: string,
      fullnameOverride: string,
      image: object({
        repository: { type: 'string', minLength: 1 },
        tag: string,
        digest: { type: 'string', pattern: '^(sha256:[a-f0-9]{64})?$' },
        pullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'] },
      }),
      imagePullSecrets: { type: 'array', items: object({ name: string }, { required: ['name'] }) },
      replicas: { type: 'integer', minimum: 1 },
      resources,
      maxOldSpaceSizeMiB: { type: 'integer', minimum: 64 },
      priorityClassName: string,
      priorityClass: object({
        create: boolean,
        // User-defined classes may go up to a billion; above are the system classes.
        value: { type: 'integer', minimum: -2147483648, maximum: 1000000000 },
      }),
      nodeSelector: stringMap,
      tolerations: kubeList,
      affinity: kubeObject,
      podAnnotations: stringMap,
      topologySpread: object({
        enabled: boolean,
        topologyKeys: { type: 'array', items: string, uniqueItems: true },
        whenUnsatisfiable: { enum: ['ScheduleAnyway', 'DoNotSchedule'] },
        maxSkew: { type: 'integer', minimum: 1 },
      }),
      podDisruptionBudget: object({
        enabled: boolean,
        maxUnavailable: intOrPercent,
        minAvailable: intOrPercent,
      }),
      extraVolumes: kubeList,
      extraVolumeMounts: kubeList,
      config: configSchema(),
      webhook: object({
        timeoutSeconds: { type: 'integer', minimum: 1, maximum: 30 },
        failurePolicy: { enum: ['Ignore', 'Fail'] },
        namespaceSelector: labelSelector,
        objectSelector: labelSelector,
      }),
      certificates: object({
        mode: { enum: ['self-signed', 'cert-manager', 'existing-secret'] },
        selfSigned: object({
          caValidityDays: { type: 'integer', minimum: 1 },
          validityDays: { type: 'integer', minimum: 1 },
        }),
        certManager: object({
          duration,
          renewBefore: duration,
          caDuration: duration,
          issuerRef: object({
            name: { type: 'string', minLength: 1 },
            kind: { enum: ['Issuer', 'ClusterIssuer'] },
            group: string,
          }),
        }),
        existingSecret: object({ name: string, caCert: string }),
      }),
      pullSecretSync: object({
        enabled: boolean,
        names: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
        clusterWideCopies: boolean,
        copyNamespaces: { type: 'array', items: dnsLabel, uniqueItems: true },
        resources,
      }),
      admissionEvents: object({ enabled: boolean }),
      cluster: object({
        enabled: boolean,
        warm: boolean,
        repair: boolean,
        clusterWide: boolean,
        namespaces: { type: 'array', items: dnsLabel, uniqueItems: true },
      }),
      serviceMonitor: object({
        enabled: boolean,
        labels: stringMap,
        interval: duration,
        scrapeTimeout: duration,
      }),
      prometheusRule: object({
        enabled: boolean,
        labels: stringMap,
        admissionLatencySeconds: { type: 'number', exclusiveMinimum: 0 },
        errorRatio: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
        certificateExpiryDays: { type: 'integer', minimum: 1 },
      }),
      dashboard: object({
        enabled: boolean,
        labels: stringMap,
        namespace: { anyOf: [{ const: '' }, dnsLabel] },
      }),
      networkPolicy: object({
        enabled: boolean,
        metricsFrom: kubeList,
        extraEgressPorts: {
          type: 'array',
          items: { type: 'integer', minimum: 1, maximum: 65535 },
          uniqueItems: true,
        },
      }),
    }),
  };
}

export const valuesSchemaText = (): string => `${JSON.stringify(valuesSchema(), null, 2)}\n`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(VALUES_SCHEMA_FILE, valuesSchemaText());
  // Formatted as the rest of the repository; the test compares content, not layout.
  execFileSync('npx', ['biome', 'format', '--write', VALUES_SCHEMA_FILE], { stdio: 'inherit' });
  console.log(`wrote ${VALUES_SCHEMA_FILE}`);
}
