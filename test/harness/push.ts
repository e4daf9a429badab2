// Pushes through a registry's own HTTP API: blobs by monolithic upload, then the manifest by tag.
import { header, type RegistryEndpoint, registryRequest } from './client.js';
import {
  type ImageContent,
  type ImageOptions,
  type IndexContent,
  type IndexOptions,
  type ManifestContent,
  makeImage,
  makeIndex,
} from './image.js';

export interface Pushed {
  repository: string;
  tag: string;
  /** sha256 of the exact manifest bytes PUT: what a registry answers in Docker-Content-Digest. */
  digest: string;
  mediaType: string;
  size: number;
}

export interface PushedImage extends Pushed {
  content: ImageContent;
}

export interface PushedIndex extends Pushed {
  content: IndexContent;
  /** The per-platform manifests, pushed by digest before the index. */
  images: { digest: string; mediaType: string; platform: ImageContent['platform'] }[];
}

export interface PushImageOptions extends ImageOptions {
  /** Push this content instead of new random content: the same digest lands in every registry given it. */
  content?: ImageContent;
}

export interface PushIndexOptions extends IndexOptions {
  content?: IndexContent;
}

function fail(what: string, response: { statusCode: number; body: Buffer }): never {
  throw new Error(`${what}: HTTP ${response.statusCode} ${response.body.toString('utf8').slice(0, 500)}`);
}

async function pushBlob(endpoint: RegistryEndpoint, repository: string, blob: ImageContent['blobs'][number]) {
  const scope = `repository:${repository}:pull,push`;
  const existing = await registryRequest(endpoint, 'HEAD', `/v2/${repository}/blobs/${blob.digest}`, {
    scope,
  });
  if (existing.statusCode === 200) return;
  const started = await registryRequest(endpoint, 'POST', `/v2/${repository}/blobs/uploads/`, { scope });
  const location = header(started.headers, 'location');
  if (started.statusCode !== 202 || location === undefined) fail(`start upload to ${repository}`, started);
  const target = new URL(location, endpoint.url);
  target.searchParams.set('digest', blob.digest);
  const put = await registryRequest(endpoint, 'PUT', target.toString(), {
    scope,
    headers: { 'content-type': 'application/octet-stream' },
    body: blob.bytes,
  });
  if (put.statusCode !== 201) fail(`upload ${blob.digest} to ${repository}`, put);
}

async function putManifest(
  endpoint: RegistryEndpoint,
  repository: string,
  reference: string,
  manifest: ManifestContent,
) {
  const response = await registryRequest(endpoint, 'PUT', `/v2/${repository}/manifests/${reference}`, {
    scope: `repository:${repository}:pull,push`,
    headers: { 'content-type': manifest.mediaType },
    body: manifest.bytes,
  });
  if (response.statusCode !== 201) fail(`put manifest ${repository}:${reference}`, response);
  const answered = header(response.headers, 'docker-content-digest');
  if (answered !== undefined && answered !== manifest.digest) {
    throw new Error(`registry stored ${repository}:${reference} as ${answered}, pushed ${manifest.digest}`);
  }
}

async function pushImageContent(endpoint: RegistryEndpoint, repository: string, image: ImageContent) {
  for (const blob of image.blobs) await pushBlob(endpoint, repository, blob);
}

/** Pushes a single-platform image (new random content unless `content` is given) and tags it. */
export async function pushImage(
  endpoint: RegistryEndpoint,
  repository: string,
  tag: string,
  options: PushImageOptions = {},
): Promise<PushedImage> {
  const content = options.content ?? makeImage(options);
  await pushImageContent(endpoint, repository, content);
  await putManifest(endpoint, repository, tag, content);
  return {
    repository,
    tag,
    digest: content.digest,
    mediaType: content.mediaType,
    size: content.size,
    content,
  };
}

/** Pushes a multi-platform index (two platforms by default): each image by digest, then the index by tag. */
export async function pushIndex(
  endpoint: RegistryEndpoint,
  repository: string,
  tag: string,
  options: PushIndexOptions = {},
): Promise<PushedIndex> {
  const content = options.content ?? makeIndex(options);
  for (const image of content.images) {
    await pushImageContent(endpoint, repository, image);
    await putManifest(endpoint, repository, image.digest, image);
  }
  await putManifest(endpoint, repository, tag, content);
  const images = content.images.map(({ digest, mediaType, platform }) => ({ digest, mediaType, platform }));
  return {
    repository,
    tag,
    digest: content.digest,
    mediaType: content.mediaType,
    size: content.size,
    content,
    images,
  };
}

/**
 * Pushes one image to every endpoint, so that mirrors hold the very digest of the source.
 * For a stale mirror, push again to that mirror alone without `content`: same tag, other digest.
 */
export async function pushImageToAll(
  endpoints: RegistryEndpoint[],
  repository: string,
  tag: string,
  options: PushImageOptions = {},
): Promise<PushedImage> {
  const content = options.content ?? makeImage(options);
  const pushed = await Promise.all(endpoints.map((e) => pushImage(e, repository, tag, { content })));
  const first = pushed[0];
  if (first === undefined) throw new Error('pushImageToAll needs at least one registry');
  return first;
}

/** The index counterpart of pushImageToAll. */
export async function pushIndexToAll(
  endpoints: RegistryEndpoint[],
  repository: string,
  tag: string,
  options: PushIndexOptions = {},
): Promise<PushedIndex> {
  const content = options.content ?? makeIndex(options);
  const pushed = await Promise.all(endpoints.map((e) => pushIndex(e, repository, tag, { content })));
  const first = pushed[0];
  if (first === undefined) throw new Error('pushIndexToAll needs at least one registry');
  return first;
}
