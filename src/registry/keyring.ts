// Which dockerconfigjson `auths` key serves a registry, by the kubelet keyring's rules (pkg/credentialprovider).

/** The kubelet stores Docker Hub credentials under this host ('https://index.docker.io/v1/' normalized). */
export const DOCKER_HUB_KEY = 'index.docker.io';

interface SchemelessUrl {
  host: string;
  port: string;
  path: string;
}

/** Reads `host[:port][/path]` the way the kubelet's ParseSchemelessURL does, without URL normalization. */
function parseSchemeless(value: string): SchemelessUrl {
  const slash = value.indexOf('/');
  const authority = slash === -1 ? value : value.slice(0, slash);
  const path = slash === -1 ? '' : value.slice(slash);
  const bracket = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  if (colon > bracket) return { host: authority.slice(0, colon), port: authority.slice(colon + 1), path };
  return { host: authority, port: '', path };
}

/**
 * A config key as the kubelet indexes it: scheme dropped, a leading /v1/ or /v2/ segment dropped, host alone when
 * nothing else remains ('https://index.docker.io/v1/' → 'index.docker.io', 'https://h/v2/foo' → 'h/foo').
 */
export function normalizeConfigKey(key: string): string {
  const schemeless = key.replace(/^https?:\/\//, '');
  const { host, port, path } = parseSchemeless(schemeless);
  const authority = port === '' ? host : `${host}:${port}`;
  const effective = path.startsWith('/v1/') || path.startsWith('/v2/') ? path.slice(3) : path;
  return effective === '' || effective === '/' ? authority : authority + effective;
}

/** Go's path.Match for one host label: '*' (any run), '?' (one character), '[…]' classes, '\\' escapes. */
function labelMatches(pattern: string, label: string): boolean {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? '';
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i] ?? '');
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) return false; // Go reports ErrBadPattern; the kubelet treats it as no match.
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('^')) body = `^${escapeClass(body.slice(1))}`;
      else body = escapeClass(body);
      source += `[${body}]`;
      i = end;
    } else source += escapeRegExp(c);
  }
  return new RegExp(`${source}$`, 's').test(label);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function escapeClass(s: string): string {
  return s.replace(/[\\\]^[]/g, '\\$&');
}

/**
 * URLsMatchStr(glob, target): ports equal, the same number of host labels each matching its glob label ('*' never
 * crosses a '.'), and the target's path starting with the glob's path (a plain string prefix).
 */
export function urlsMatch(glob: string, target: string): boolean {
  const g = parseSchemeless(glob);
  const t = parseSchemeless(target);
  if (g.port !== t.port) return false;
  const gLabels = g.host.split('.');
  const tLabels = t.host.split('.');
  if (gLabels.length !== tLabels.length) return false;
  if (!gLabels.every((label, i) => labelMatches(label, tLabels[i] ?? ''))) return false;
  return t.path.startsWith(g.path);
}

/**
 * The kubelet's isDefaultRegistryMatch: an image whose first component is not a host (no '.' or ':'), or names
 * docker.io / index.docker.io, is a Docker Hub image.
 */
export function isDefaultRegistryMatch(image: string): boolean {
  const slash = image.indexOf('/');
  const first = slash === -1 ? image : image.slice(0, slash);
  if (first === '') return false;
  if (slash === -1) return true;
  if (first === 'docker.io' || first === DOCKER_HUB_KEY) return true;
  return !/[.:]/.test(first);
}

function matchingKeys(keys: readonly string[], target: string): string[] {
  const normalized = new Map(keys.map((key) => [key, normalizeConfigKey(key)]));
  return keys
    .filter((key) => urlsMatch(normalized.get(key) ?? key, target))
    .sort((a, b) => compareDescending(normalized.get(a) ?? a, normalized.get(b) ?? b));
}

function compareDescending(a: string, b: string): number {
  return a < b ? 1 : a > b ? -1 : 0;
}

function dockerHubKeys(keys: readonly string[]): string[] {
  return keys.filter((key) => normalizeConfigKey(key) === DOCKER_HUB_KEY);
}

/**
 * The config keys whose credentials the kubelet would try for `image`, in its order: matching normalized keys in
 * reverse lexicographic order (most specific first), else the Docker Hub key when the image is a Docker Hub image.
 * Keys are returned as written in the config.
 */
export function lookupConfigKeys(keys: Iterable<string>, image: string): string[] {
  const list = [...keys];
  const matches = matchingKeys(list, image);
  if (matches.length > 0) return matches;
  return isDefaultRegistryMatch(image) ? dockerHubKeys(list) : [];
}

const DOCKER_HUB_HOSTS = new Set(['docker.io', DOCKER_HUB_KEY, 'registry-1.docker.io']);

/**
 * The config keys that serve a whole registry host (`host[:port]`), best first. Narrower than an image lookup:
 * keys with a repository path do not cover the whole host, and only Docker Hub's own names fall back to the Docker
 * Hub key (for an image, a bare first component like 'registry' would be a Docker Hub user; here it is a host).
 */
export function lookupConfigKeysForHost(keys: Iterable<string>, host: string): string[] {
  const list = [...keys];
  const matches = matchingKeys(list, host);
  if (matches.length > 0) return matches;
  return DOCKER_HUB_HOSTS.has(host) ? dockerHubKeys(list) : [];
}
