// The manifest media types regroute routes, and the Accept header that asks a registry for any of them.

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

export const MANIFEST_MEDIA_TYPES = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST] as const;

/**
 * Every type must be listed, the multi-image ones above all: without them distribution answers 404 for an OCI
 * index (read as "this registry lacks the image") and one platform's manifest, with that manifest's digest, for a
 * Docker manifest list (read as "this registry holds other content").
 */
export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

/** A Content-Type without its parameters, lower-cased; '' when absent. */
export function essence(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}
