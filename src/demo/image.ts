// The demo's image: one small OCI image built in memory (a config and one layer), and its push through the
// registry API (blobs by monolithic upload, then the manifest by tag).
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { type Dispatcher, request } from 'undici';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface Blob {
  readonly mediaType: string;
  readonly digest: string;
  readonly bytes: Buffer;
}

export interface Image {
  /** The manifest's digest: the sha256 of exactly `manifest`, what registries answer in Docker-Content-Digest. */
  readonly digest: string;
  readonly manifest: Buffer;
  readonly mediaType: string;
  /** Config first, then the layer. */
  readonly blobs: readonly Blob[];
}

export const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A ustar archive holding one regular file: what a layer is, small enough to upload in one request. */
export function tarOneFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) =>
    header.write(value, offset, length, 'ascii');
  const octal = (value: number, length: number) => `${value.toString(8).padStart(length - 1, '0')}\0`;
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8)); // uid
  field(116, 8, octal(0, 8)); // gid
  field(124, 12, octal(content.length, 12));
  field(136, 12, octal(0, 12)); // mtime: fixed, so the same content always makes the same digest
  field(148, 8, '        '); // the checksum counts its own field as spaces
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let checksum = 0;
  for (const byte of header) checksum += byte;
  field(148, 8, `${checksum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

/**
 * A linux/amd64 image whose one layer holds `hello.txt` with `text`. Built from fixed bytes: the same text makes the
 * same digest, on every run and in every registry it is pushed to.
 */
export function makeImage(text: string): Image {
  const tar = tarOneFile('hello.txt', Buffer.from(`${text}\n`));
  const layerBytes = gzipSync(tar, { level: 9 });
  const layer: Blob = { mediaType: OCI_LAYER, digest: sha256(layerBytes), bytes: layerBytes };
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/hello.txt'] },
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
    }),
  );
  const config: Blob = { mediaType: OCI_CONFIG, digest: sha256(configBytes), bytes: configBytes };
  const descriptor = (blob: Blob) => ({
    mediaType: blob.mediaType,
    digest: blob.digest,
    size: blob.bytes.length,
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptor(config),
      layers: [descriptor(layer)],
    }),
  );
  return { digest: sha256(manifest), manifest, mediaType: OCI_MANIFEST, blobs: [config, layer] };
}

export interface PushTarget {
  /** `https://host:port` of a registry that accepts anonymous pushes. */
  readonly url: string;
  readonly dispatcher: Dispatcher;
}

async function send(
  target: PushTarget,
  method: Dispatcher.HttpMethod,
  url: string,
  headers: Record<string, string> = {},
  body?: Buffer,
) {
  const response = await request(new URL(url, target.url), {
    method,
    headers,
    ...(body ? { body } : {}),
    dispatcher: target.dispatcher,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text };
}

function refused(what: string, response: { status: number; text: string }): Error {
  return new Error(`${what}: HTTP ${response.status} ${response.text.slice(0, 300)}`);
}

/** Pushes `image` as `repository:tag`; resolves with the digest the registry stored it under. */
export async function pushImage(
  target: PushTarget,
  repository: string,
  tag: string,
  image: Image,
): Promise<string> {
  for (const blob of image.blobs) {
    const held = await send(target, 'HEAD', `/v2/${repository}/blobs/${blob.digest}`);
    if (held.status === 200) continue;
    const started = await send(target, 'POST', `/v2/${repository}/blobs/uploads/`);
    const location = started.headers.location;
    if (started.status !== 202 || typeof location !== 'string') {
      throw refused(`start an upload to ${repository}`, started);
    }
    const upload = new URL(location, target.url);
    upload.searchParams.set('digest', blob.digest);
    const put = await send(
      target,
      'PUT',
      upload.toString(),
      { 'content-type': 'application/octet-stream' },
      blob.bytes,
    );
    if (put.status !== 201) throw refused(`upload ${blob.digest} to ${repository}`, put);
  }
  const put = await send(
    target,
    'PUT',
    `/v2/${repository}/manifests/${tag}`,
    { 'content-type': image.mediaType },
    image.manifest,
  );
  if (put.status !== 201) throw refused(`put the manifest ${repository}:${tag}`, put);
  const stored = put.headers['docker-content-digest'];
  return typeof stored === 'string' ? stored : image.digest;
}
