// The registries the benchmark routes between, started from the integration-test harness on loopback, the images
// pushed to them, and the regroute config that points at them.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigInput } from '../src/config/schema.js';
import {
  type FaultProxy,
  type Harness,
  type ImageContent,
  makeImage,
  pushImageToAll,
  type Registry,
  type RegistryEndpoint,
  registryRequest,
  sha256,
  startHarness,
} from '../test/harness/index.js';
import { inPool } from './util.js';

/**
 * source: where tags are resolved (anonymous, like a public registry). cache: the preferred in-cluster mirror,
 * behind basic auth. mirror: a second mirror behind token auth. sourceProxy: a fault proxy in front of the source
 * (the faults scenario blackholes it). deadMirror: a mirror that is blackholed from the start. outageSource: another
 * fault proxy in front of the source, for the outage-window scenario's faults one after another.
 */
export interface Topology {
  readonly harness: Harness;
  readonly source: Registry;
  readonly cache: Registry;
  readonly mirror: Registry;
  readonly sourceProxy: FaultProxy;
  readonly deadMirror: FaultProxy;
  readonly outageSource: FaultProxy;
  stop(): Promise<void>;
}

export async function startTopology(): Promise<Topology> {
  const harness = await startHarness();
  try {
    const issuer = await harness.startTokenIssuer();
    const [source, cache, mirror] = await Promise.all([
      harness.startRegistry({ name: 'source' }),
      harness.startRegistry({ name: 'cache', auth: { kind: 'htpasswd' } }),
      harness.startRegistry({ name: 'mirror', auth: { kind: 'token', issuer } }),
    ]);
    const sourceProxy = await harness.startFaultProxy(source);
    const deadMirror = await harness.startFaultProxy(mirror, { mode: 'blackhole' });
    const outageSource = await harness.startFaultProxy(source);
    return {
      harness,
      source,
      cache,
      mirror,
      sourceProxy,
      deadMirror,
      outageSource,
      stop: () => harness.stop(),
    };
  } catch (error) {
    await harness.stop();
    throw error;
  }
}

export type RouteName = 'warm' | 'cold' | 'load' | 'fault' | 'outage';

/** Where a route's images live: every route has its own top-level path in each registry. */
export const location = (endpoint: { host: string }, route: RouteName): string => `${endpoint.host}/${route}`;

/**
 * Candidates in order of preference, as a cluster with an in-cluster mirror lists them: cache, mirror, source.
 * The fault route mirrors the registries.conf of the failover comparison: a dead mirror first, then the cache,
 * then the source (behind its fault proxy). The outage route keeps pods at their source while it serves, with the
 * cache as the fallback: the set-up whose first seconds of an outage the outage-window scenario measures.
 */
function routeOf(topology: Topology, name: RouteName): NonNullable<ConfigInput['routes']>[number] {
  const { source, cache, mirror, sourceProxy, deadMirror, outageSource } = topology;
  if (name === 'outage') {
    return {
      prefix: location(outageSource, name),
      registries: [location(outageSource, name), location(cache, name)],
    };
  }
  if (name === 'fault') {
    return {
      prefix: location(sourceProxy, name),
      registries: [location(deadMirror, name), location(cache, name), location(sourceProxy, name)],
    };
  }
  return {
    prefix: location(source, name),
    registries: [location(cache, name), location(mirror, name), location(source, name)],
  };
}

export interface ConfigOverrides {
  readonly admission?: ConfigInput['admission'];
  readonly probe?: ConfigInput['probe'];
  readonly cache?: ConfigInput['cache'];
}

/** A regroute config for the given routes: every registry trusts the harness CA; credentials come from files. */
export async function configFor(
  topology: Topology,
  routes: readonly RouteName[],
  overrides: ConfigOverrides = {},
): Promise<ConfigInput> {
  const { harness, source, cache, mirror, sourceProxy, deadMirror, outageSource } = topology;
  const passwordFile = async (name: string, registry: Registry) => {
    const file = join(harness.dir, `${name}.password`);
    await writeFile(file, registry.credentials?.password ?? '', { mode: 0o600 });
    return { username: registry.credentials?.username ?? '', passwordFile: file };
  };
  const cacheAuth = await passwordFile('cache', cache);
  const mirrorAuth = await passwordFile('mirror', mirror);
  const { caFile } = harness;
  return {
    server: { tlsCert: harness.ca.serving.certFile, tlsKey: harness.ca.serving.keyFile },
    ...overrides,
    registries: {
      [source.host]: { caFile },
      [cache.host]: { caFile, auth: cacheAuth, pullSecret: 'cache-pull' },
      [mirror.host]: { caFile, auth: mirrorAuth, pullSecret: 'mirror-pull' },
      [sourceProxy.host]: { caFile },
      [deadMirror.host]: { caFile, auth: mirrorAuth, pullSecret: 'mirror-pull' },
      [outageSource.host]: { caFile },
    },
    routes: routes.map((name) => routeOf(topology, name)),
  };
}

export interface ImageName {
  readonly repository: string;
  readonly tag: string;
}

/** The same image under another manifest: same blobs, an annotation more, so a new digest for one manifest PUT. */
function variantOf(base: ImageContent, label: string): ImageContent {
  const manifest = JSON.parse(base.bytes.toString('utf8')) as Record<string, unknown>;
  manifest.annotations = { 'org.regroute.bench.image': label };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { ...base, bytes, digest: sha256(bytes), size: bytes.length };
}

/** PUTs a manifest whose blobs the repository already holds: one request (plus the auth handshake). */
async function putManifest(
  endpoint: RegistryEndpoint,
  image: ImageName,
  content: ImageContent,
): Promise<void> {
  const answer = await registryRequest(endpoint, 'PUT', `/v2/${image.repository}/manifests/${image.tag}`, {
    scope: `repository:${image.repository}:pull,push`,
    headers: { 'content-type': content.mediaType },
    body: content.bytes,
  });
  if (answer.statusCode !== 201) {
    throw new Error(`put ${image.repository}:${image.tag} to ${endpoint.url}: HTTP ${answer.statusCode}`);
  }
}

/**
 * Pushes every image to every endpoint with the same digest everywhere, and answers the digests by
 * `repository:tag`. Each repository's blobs are uploaded once, with its first image; later images in it differ
 * by their manifest only and cost one manifest PUT, which keeps pushing a few hundred digests to seconds.
 */
export async function pushImages(
  endpoints: readonly RegistryEndpoint[],
  images: readonly ImageName[],
  concurrency = 8,
): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  const byRepository = new Map<string, ImageName[]>();
  for (const image of images) {
    const key = `${image.repository}:${image.tag}`;
    if (digests.has(key)) continue;
    digests.set(key, '');
    byRepository.set(image.repository, [...(byRepository.get(image.repository) ?? []), image]);
  }
  const bases = new Map<string, ImageContent>();
  const repositories = [...byRepository.keys()];
  await inPool(repositories, concurrency, async (repository) => {
    const first = byRepository.get(repository)?.[0] as ImageName;
    const pushed = await pushImageToAll([...endpoints], repository, first.tag, { content: makeImage() });
    bases.set(repository, pushed.content);
    digests.set(`${repository}:${first.tag}`, pushed.digest);
  });
  const rest = repositories.flatMap((repository) => (byRepository.get(repository) ?? []).slice(1));
  const puts = rest.flatMap((image) => {
    const content = variantOf(
      bases.get(image.repository) as ImageContent,
      `${image.repository}:${image.tag}`,
    );
    digests.set(`${image.repository}:${image.tag}`, content.digest);
    return endpoints.map((endpoint) => ({ endpoint, image, content }));
  });
  await inPool(puts, concurrency, ({ endpoint, image, content }) => putManifest(endpoint, image, content));
  return digests;
}
