// Where images live in a Pod: every container kind and every image volume, read defensively from untrusted JSON.

export const CONTAINER_KINDS = ['initContainers', 'containers', 'ephemeralContainers'] as const;
export type ContainerKind = (typeof CONTAINER_KINDS)[number];

/**
 * Image volumes (Kubernetes 1.31+, `spec.volumes[].image.reference`): the kubelet pulls them as it pulls a
 * container's image, with the pod's pull secrets, so they are routed the same way.
 */
export const VOLUME_KIND = 'volumes';
export type SiteKind = ContainerKind | typeof VOLUME_KIND;
/** Every place of a Pod that names an image, in the order they are routed (and counted toward the image cap). */
export const SITE_KINDS: readonly SiteKind[] = [...CONTAINER_KINDS, VOLUME_KIND];

export interface ImageSite {
  readonly kind: SiteKind;
  readonly index: number;
  /** The container's name, or the volume's. */
  readonly name: string;
  /** The image as written; not a string when the pod is malformed. */
  readonly image: unknown;
}

/** The JSON pointer segments of the field holding a site's image. */
export const imageFieldOf = (site: Pick<ImageSite, 'kind' | 'index'>): (string | number)[] =>
  site.kind === VOLUME_KIND
    ? ['spec', VOLUME_KIND, site.index, 'image', 'reference']
    : ['spec', site.kind, site.index, 'image'];

type Json = Record<string, unknown>;

export const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function specOf(pod: unknown): Json | null {
  return isObject(pod) && isObject(pod.spec) ? pod.spec : null;
}

export function metadataOf(pod: unknown): Json | null {
  return isObject(pod) && isObject(pod.metadata) ? pod.metadata : null;
}

export function imageSites(pod: unknown, kinds: readonly SiteKind[] = SITE_KINDS): ImageSite[] {
  const spec = specOf(pod);
  if (!spec) return [];
  const sites: ImageSite[] = [];
  for (const kind of kinds) {
    const list = spec[kind];
    if (!Array.isArray(list)) continue;
    list.forEach((item: unknown, index) => {
      if (!isObject(item)) return;
      const name = typeof item.name === 'string' ? item.name : `${kind}[${index}]`;
      if (kind !== VOLUME_KIND) {
        sites.push({ kind, index, name, image: item.image });
        return;
      }
      // Only an image volume names an image; any other volume source (configMap, emptyDir…) is not a site.
      if (item.image === undefined || item.image === null) return;
      sites.push({ kind, index, name, image: isObject(item.image) ? item.image.reference : item.image });
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
