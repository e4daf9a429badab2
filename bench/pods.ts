// AdmissionReviews the benchmark sends: the project's Pod fixtures, grown to realistic sizes, with their images
// pointed at the loopback registries.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseReference } from '../src/reference/index.js';

type Json = Record<string, unknown>;
type Container = Json & { name: string; image: string };
type Pod = Json & { metadata: Json; spec: Json & { containers: Container[]; initContainers?: Container[] } };
export type Review = Json & { request: Json & { uid: string; object: Pod } };

const FIXTURES = new URL('../test/fixtures/admission/', import.meta.url);

/** Pod CREATE from a ReplicaSet: 3 containers and 1 init container. */
export const SMALL_FIXTURE = 'pod-create-replicaset.json';
/** 30 containers and 5 init containers. */
export const LARGE_FIXTURE = 'pod-create-30-containers.json';

export function loadReview(name: string): Review {
  return JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as Review;
}

/** Every container of the pod, init containers first. */
export function containersOf(review: Review): Container[] {
  const { spec } = review.request.object;
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/** `<location>/<repository>:<tag>`: the image's repository (Docker Hub names normalized) under another location. */
export function relocate(image: string, location: string): string {
  const parsed = parseReference(image);
  if (!parsed.ok) throw new Error(`fixture image ${image} does not parse: ${parsed.error.message}`);
  const { repository, tag } = parsed.reference;
  return `${location}/${repository}:${tag ?? 'latest'}`;
}

/** A copy of the review with each container's image replaced; `image` sees containers in containersOf order. */
export function withImages(review: Review, image: (original: string, index: number) => string): Review {
  const copy = structuredClone(review);
  containersOf(copy).forEach((container, index) => {
    container.image = image(container.image, index);
  });
  return copy;
}

/** A copy with a fresh request uid, as the apiserver sends every review. */
export function withFreshUid(review: Review): Review {
  const copy = structuredClone(review);
  copy.request.uid = randomUUID();
  return copy;
}

export const bodyOf = (review: Review): string => JSON.stringify(review);

// What real pods carry beyond their images: environment, resources, probes, a security context.
const ENV_POOL: Json[] = [
  { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
  {
    name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    value: 'http://otel-collector.observability.svc.cluster.local:4317',
  },
  { name: 'JAVA_TOOL_OPTIONS', value: '-XX:MaxRAMPercentage=75.0 -XX:+UseG1GC -Dfile.encoding=UTF-8' },
];

function enrichContainer(container: Container, index: number): void {
  container.env = ENV_POOL.slice(0, 1 + (index % 3)).map((entry) => structuredClone(entry));
  container.resources = {
    limits: { cpu: '500m', memory: '512Mi' },
    requests: { cpu: '100m', memory: '128Mi' },
  };
  const probe = (path: string) => ({
    httpGet: { path, port: 8080, scheme: 'HTTP' },
    timeoutSeconds: 1,
    periodSeconds: 10,
    successThreshold: 1,
    failureThreshold: 3,
  });
  container.livenessProbe = probe('/healthz');
  container.readinessProbe = probe('/readyz');
  container.securityContext = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
  };
}

/** A managedFields `fieldsV1` tree as the apiserver writes it: `f:` per field, `k:{"name":…}` per named list item. */
function fieldsOf(value: unknown): Json {
  if (Array.isArray(value)) {
    const fields: Json = {};
    value.forEach((item, index) => {
      const name = (item as Json | null)?.name;
      const key = typeof name === 'string' ? `k:${JSON.stringify({ name })}` : `i:${index}`;
      fields[key] = { '.': {}, ...fieldsOf(item) };
    });
    return fields;
  }
  if (value === null || typeof value !== 'object') return {};
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, child]) => child !== undefined)
      .map(([key, child]) => [`f:${key}`, fieldsOf(child)]),
  );
}

/**
 * A copy of the review grown to at least `targetBytes` of JSON: every container gets realistic settings, the pod
 * the managedFields entry its controller would write, then environment variables are added round-robin over the
 * containers until the size is reached.
 */
export function grownTo(review: Review, targetBytes: number): Review {
  const copy = structuredClone(review);
  const pod = copy.request.object;
  const containers = containersOf(copy);
  containers.forEach(enrichContainer);
  const sizeWithManagedFields = () => {
    const { managedFields: _, ...metadata } = pod.metadata;
    pod.metadata.managedFields = [
      {
        manager: 'kube-controller-manager',
        operation: 'Update',
        apiVersion: 'v1',
        time: '2026-11-01T10:00:00Z',
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:metadata': fieldsOf(metadata), 'f:spec': fieldsOf(pod.spec) },
      },
    ];
    return Buffer.byteLength(JSON.stringify(copy));
  };
  // Bounded: each round adds variables for about a third of the bytes still missing (one weighs ~150 bytes with
  // its managedFields entry), so the size approaches the target from below in a few rounds.
  let added = 0;
  for (let round = 0, size = sizeWithManagedFields(); round < 100 && size < targetBytes; round++) {
    const batch = Math.max(1, Math.floor((targetBytes - size) / 450));
    for (let i = 0; i < batch; i++, added++) {
      const container = containers[added % containers.length] as Container;
      const env = container.env as Json[];
      env.push({ name: `APP_SETTING_${env.length}`, value: `setting-${added}-of-${container.name}` });
    }
    size = sizeWithManagedFields();
  }
  return copy;
}

/** The repository (below the registry host) and tag of each distinct image of the review: what to push. */
export function imagesToPush(review: Review): { repository: string; tag: string }[] {
  const seen = new Map<string, { repository: string; tag: string }>();
  for (const { image } of containersOf(review)) {
    const parsed = parseReference(image);
    if (!parsed.ok) throw new Error(`image ${image} does not parse: ${parsed.error.message}`);
    const { repository, tag } = parsed.reference;
    seen.set(image, { repository, tag: tag ?? 'latest' });
  }
  return [...seen.values()];
}
