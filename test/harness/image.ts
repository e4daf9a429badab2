// Image content for pushes: small random layers and configs, single-platform manifests and indexes.
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Every manifest type a router must list: distribution answers 404 rather than fall back to another. */
export const ACCEPT_ALL_MANIFESTS = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.dockerManifest,
].join(', ');

export type ManifestFormat = 'oci' | 'docker';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Blob {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

/** A manifest (or index) as bytes: its digest is the sha256 of exactly these bytes. */
export interface ManifestContent {
  mediaType: string;
  bytes: Buffer;
  digest: string;
  size: number;
}

export interface ImageContent extends ManifestContent {
  kind: 'image';
  format: ManifestFormat;
  platform: Platform;
  blobs: Blob[];
}

export interface IndexContent extends ManifestContent {
  kind: 'index';
  format: ManifestFormat;
  images: ImageContent[];
}

const LINUX_AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const LINUX_ARM64: Platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };
export const DEFAULT_PLATFORMS: Platform[] = [LINUX_AMD64, LINUX_ARM64];

export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function manifestContent(mediaType: string, document: unknown): ManifestContent {
  const bytes = Buffer.from(JSON.stringify(document));
  return { mediaType, bytes, digest: sha256(bytes), size: bytes.length };
}

/** A one-file ustar archive: real enough for any puller, small enough to upload in one request. */
function tarOneFile(name: string, content: Buffer): Buffer {
  const headerBlock = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) =>
    headerBlock.write(value, offset, length, 'ascii');
  const octal = (value: number, length: number) => `${value.toString(8).padStart(length - 1, '0')}\0`;
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(content.length, 12));
  field(136, 12, octal(0, 12));
  field(148, 8, '        ');
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let checksum = 0;
  for (const byte of headerBlock) checksum += byte;
  field(148, 8, `${checksum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([headerBlock, content, padding, Buffer.alloc(1024)]);
}

export interface ImageOptions {
  format?: ManifestFormat;
  platform?: Platform;
}

/** A new single-platform image; random content, so each call yields a distinct digest. */
export function makeImage({ format = 'oci', platform = LINUX_AMD64 }: ImageOptions = {}): ImageContent {
  const nonce = randomBytes(16).toString('hex');
  const tar = tarOneFile('regroute-harness', Buffer.from(`${nonce}\n`));
  const layer: Blob = {
    digest: '',
    mediaType: format === 'oci' ? MEDIA_TYPES.ociLayer : MEDIA_TYPES.dockerLayer,
    bytes: gzipSync(tar),
  };
  layer.digest = sha256(layer.bytes);
  const configDocument = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Labels: { 'org.regroute.harness.nonce': nonce } },
    rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
  };
  const configBytes = Buffer.from(JSON.stringify(configDocument));
  const config: Blob = {
    digest: sha256(configBytes),
    mediaType: format === 'oci' ? MEDIA_TYPES.ociConfig : MEDIA_TYPES.dockerConfig,
    bytes: configBytes,
  };
  const descriptor = (blob: Blob) => ({
    mediaType: blob.mediaType,
    digest: blob.digest,
    size: blob.bytes.length,
  });
  const mediaType = format === 'oci' ? MEDIA_TYPES.ociManifest : MEDIA_TYPES.dockerManifest;
  const manifest = manifestContent(mediaType, {
    schemaVersion: 2,
    mediaType,
    config: descriptor(config),
    layers: [descriptor(layer)],
  });
  return { kind: 'image', format, platform: platform, blobs: [config, layer], ...manifest };
}

export interface IndexOptions {
  format?: ManifestFormat;
  platforms?: Platform[];
}

/** A new multi-platform index (an OCI index, or a Docker manifest list) over fresh images. */
export function makeIndex({
  format = 'oci',
  platforms = DEFAULT_PLATFORMS,
}: IndexOptions = {}): IndexContent {
  const images = platforms.map((platform) => makeImage({ format, platform }));
  const mediaType = format === 'oci' ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.dockerManifestList;
  const index = manifestContent(mediaType, {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((image) => ({
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.size,
      platform: image.platform,
    })),
  });
  return { kind: 'index', format, images, ...index };
}
