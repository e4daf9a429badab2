// Where images live in a Pod: every container kind, read defensively from untrusted JSON.

export const CONTAINER_KINDS = ['initContainers', 'containers', 'ephemeralContainers'] as const;
export type ContainerKind = (typeof CONTAINER_KINDS)[number];

export interface ImageSite {
  readonly kind: ContainerKind;
  readonly index: number;
  readonly name: string;
  /** The image as written; not a string when the pod is malformed. */
  readonly image: unknown;
}

type Json = Record<string, unknown>;

export const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function specOf(pod: unknown): Json | null {
  return isObject(pod) && isObject(pod.spec) ? pod.spec : null;
}

export function metadataOf(pod: unknown): Json | null {
  return isObject(pod) && isObject(pod.metadata) ? pod.metadata : null;
}

export function imageSites(pod: unknown, kinds: readonly ContainerKind[] = CONTAINER_KINDS): ImageSite[] {
  const spec = specOf(pod);
  if (!spec) return [];
  const sites: ImageSite[] = [];
  for (const kind of kinds) {
    const list = spec[kind];
    if (!Array.isArray(list)) continue;
    list.forEach((container: unknown, index) => {
      if (!isObject(container)) return;
      const name = typeof container.name === 'string' ? container.name : `${kind}[${index}]`;
      sites.push({ kind, index, name, image: container.image });
    });
  }
  return sites;
}

export function labelOf(pod: unknown, key: string): string | undefined {
  const labels = metadataOf(pod)?.labels;
  const value = isObject(labels) ? labels[key] : undefined;
  return typeof value === 'string' ? value : undefined;
}

export function annotationOf(pod: unknown, key: string): string | undefined {
  const annotations = metadataOf(pod)?.annotations;
  const value = isObject(annotations) ? annotations[key] : undefined;
  return typeof value === 'string' ? value : undefined;
}

export function pullSecretNames(pod: unknown): string[] {
  const secrets = specOf(pod)?.imagePullSecrets;
  if (!Array.isArray(secrets)) return [];
  return secrets.flatMap((secret: unknown) =>
    isObject(secret) && typeof secret.name === 'string' ? [secret.name] : [],
  );
}
