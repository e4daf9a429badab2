// Route matching: which configured route takes an image, and the ordered candidate locations it offers.
import type { Route } from '../config/schema.js';
import { type Reference, splitLocation } from '../reference/index.js';
import type { RepositoryLocation } from '../state/state.js';

export interface Candidate extends RepositoryLocation {
  /** The configured candidate entry this came from, e.g. `ams.ocir.io/tenancy`. */
  readonly location: string;
  /** True when this is where the image already points: choosing it leaves the image unchanged. */
  readonly isOwn: boolean;
}

export interface RouteMatch {
  readonly route: Route;
  /** Where the tag is resolved to a digest. */
  readonly source: RepositoryLocation;
  readonly candidates: readonly Candidate[];
}

const join = (path: string, remainder: string): string =>
  [path, remainder].filter((part) => part !== '').join('/');

/**
 * The repository a runtime pulls for `registry/repository`: Docker Hub reads a one-component name as library/<name>.
 * A candidate must name that repository, or regroute would check one place and the kubelet pull from another.
 */
const pulledRepository = (registry: string, repository: string): string =>
  registry === 'docker.io' && repository !== '' && !repository.includes('/')
    ? `library/${repository}`
    : repository;

/**
 * How much of `name` (registry/repository) a prefix covers, or -1. A prefix matches whole path components only,
 * and `*.example.com` matches any subdomain of example.com (not example.com itself), with the same port.
 */
function matchedLength(prefix: string, name: string): number {
  const { registry: hostPattern, path } = splitLocation(prefix);
  const { registry: host, path: repository } = splitLocation(name);
  const hostMatches = hostPattern.startsWith('*.')
    ? host.endsWith(hostPattern.slice(1)) && host.length > hostPattern.length - 1
    : host === hostPattern;
  if (!hostMatches) return -1;
  if (path === '') return host.length;
  if (repository !== path && !repository.startsWith(`${path}/`)) return -1;
  return host.length + 1 + path.length;
}

/**
 * The route whose prefix covers the longest part of the normalized name; at equal length an exact host beats a
 * wildcard, then the earlier route wins. Returns null when no route matches.
 */
export function matchRoute(reference: Reference, routes: readonly Route[]): RouteMatch | null {
  const name = `${reference.registry}/${reference.repository}`;
  let best: { route: Route; length: number; wildcard: boolean } | null = null;
  for (const route of routes) {
    const length = matchedLength(route.prefix, name);
    if (length < 0) continue;
    const wildcard = route.prefix.startsWith('*.');
    if (!best || length > best.length || (length === best.length && best.wildcard && !wildcard)) {
      best = { route, length, wildcard };
    }
  }
  if (!best) return null;

  const matched = name.slice(0, best.length);
  const remainder = name.slice(best.length + 1);
  const sourceLocation = splitLocation(best.route.source ?? matched);
  const source = {
    registry: sourceLocation.registry,
    repository: pulledRepository(sourceLocation.registry, join(sourceLocation.path, remainder)),
  };
  const candidates = best.route.registries
    .map((location) => {
      const { registry, path } = splitLocation(location);
      const repository = pulledRepository(registry, join(path, remainder));
      const isOwn = registry === reference.registry && repository === reference.repository;
      return { location, registry, repository, isOwn };
    })
    // A candidate with no repository left (the image is the prefix itself and the candidate is a bare host)
    // cannot name an image.
    .filter((candidate) => candidate.repository !== '');
  return { route: best.route, source, candidates };
}
