// Generated routing configs, images and registry worlds for property tests. A world is what the registries really
// hold and how they behave; WorldState serves it to the admission path through MemoryState, and the ground truth
// functions let properties check every decision against what is really there.
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.js';
import type { Config, Route } from '../../src/config/schema.js';
import { effectiveTag, familiarString, parseReference, type Reference } from '../../src/reference/index.js';
import type { RouteMatch } from '../../src/routing/route.js';
import { MemoryState } from '../../src/state/memory-state.js';
import type { Health, Presence, RepositoryLocation, TagAnswer } from '../../src/state/state.js';
import { locationKey } from '../../src/state/state.js';
import { digestOf } from './digests.js';

/** The content a world is made of: few digests, so that candidates often hold the one wanted, or a stale one. */
export const DIGESTS = ['a', 'b', 'c'].map((name) => digestOf(`content ${name}`));
/** A digest no registry ever holds. */
export const NOWHERE = digestOf('content held nowhere');
export const TAGS = ['1.0', 'latest', 'v2'];

/** Registry hosts shared by prefixes, sources and candidates, so that routes overlap as real configs do. */
export const HOSTS = [
  'docker.io',
  'quay.io',
  'fra.ocir.io',
  'ams.ocir.io',
  'mirror.local:5000',
  'registry.local:5000',
  '[::1]:5000',
  'a.corp.example',
  'cache.corp.example',
];
const WILDCARD = '*.corp.example';
const WILDCARD_HOSTS = ['a.corp.example', 'cache.corp.example'];
const PATH_COMPONENTS = ['team', 'library', 'hub', 'app', 'tenancy', 'a.b', 'x_y', 'cache-1'];
export const SECRETS = ['mirror-pull', 'ams-cred', 'shared-cred'];

const joinPath = (...parts: string[]) => parts.filter((part) => part !== '').join('/');
const path = (maxLength: number) =>
  fc.array(fc.constantFrom(...PATH_COMPONENTS), { maxLength }).map((parts) => parts.join('/'));
const location = fc.tuple(fc.constantFrom(...HOSTS), path(2)).map(([host, p]) => joinPath(host, p));

const OWN = Symbol('the prefix itself');

/** A route as a config file states it: a prefix, maybe a source, 1–4 candidates that may include the prefix. */
const route: fc.Arbitrary<Route> = fc
  .record({
    prefix: fc.oneof(
      { weight: 6, arbitrary: location },
      { weight: 1, arbitrary: path(1).map((p) => joinPath(WILDCARD, p)) },
    ),
    source: fc.option(location, { nil: undefined }),
    registries: fc.array(fc.oneof(fc.constant(OWN), location), { minLength: 1, maxLength: 4 }),
  })
  .map(({ prefix, source, registries }) => ({
    prefix,
    ...(source === undefined ? {} : { source }),
    // A wildcard prefix names no single location, so it cannot be a candidate itself.
    registries: registries.map((r) => (r === OWN ? prefix.replace(WILDCARD, 'cache.corp.example') : r)),
  }));

export const routes = fc.uniqueArray(route, { minLength: 1, maxLength: 3, selector: (r) => r.prefix });

/** Pull secrets per registry host; hosts may share one, which the pod must then get once. */
export const registrySettings = fc
  .tuple(...HOSTS.map(() => fc.option(fc.constantFrom(...SECRETS), { nil: undefined, freq: 2 })))
  .map((secrets) =>
    Object.fromEntries(
      HOSTS.flatMap((host, i) => (secrets[i] ? [[host, { pullSecret: secrets[i] }] as const] : [])),
    ),
  );

export type RoutingConfig = Pick<Config, 'routes' | 'registries' | 'admission'>;

export const config: fc.Arbitrary<RoutingConfig> = fc
  .record({ routes, registries: registrySettings, unverifiedTags: fc.constantFrom('allow', 'deny') })
  .map(({ routes, registries, unverifiedTags }) =>
    parseConfig({ routes, registries, admission: { unverifiedTags } }, 'generated'),
  );

/** `[:tag][@digest]`: tag only, digest only (one nobody holds included), both, or neither (`latest`). */
const suffix = fc
  .record({
    tag: fc.option(fc.constantFrom(...TAGS), { nil: null }),
    digest: fc.option(fc.constantFrom(...DIGESTS, NOWHERE), { nil: null }),
  })
  .map(({ tag, digest }) => `${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`);

/** Strings that are no image reference at all. */
export const invalidImage = fc.constantFrom(
  '',
  'Upper/Case:1',
  'nginx@sha256:abc',
  ':1.0',
  'a//b',
  `${'a'.repeat(64)}`,
  'docker.io/library/nginx:-bad',
  ' nginx',
);

/**
 * An image a pod may name under one of the routes (under a wildcard's subdomains too), written in full or in its
 * familiar form (`nginx:1.27`), or an image no route covers, or not a reference at all.
 */
export function image(routeList: readonly Route[]): fc.Arbitrary<string> {
  const routed = fc
    .record({
      route: fc.constantFrom(...routeList),
      host: fc.constantFrom(...WILDCARD_HOSTS),
      remainder: path(2),
      suffix,
      familiar: fc.boolean(),
    })
    .map(({ route, host, remainder, suffix, familiar }) => {
      const written = `${joinPath(route.prefix.replace(WILDCARD, host), remainder)}${suffix}`;
      const parsed = parseReference(written);
      return familiar && parsed.ok ? familiarString(parsed.reference) : written;
    });
  const unrouted = fc
    .tuple(fc.constantFrom('unrouted.example', 'docker.io', 'quay.io'), path(2), suffix)
    .map(([host, p, s]) => `${joinPath(host, p || 'solo')}${s}`);
  return fc.oneof(
    { weight: 8, arbitrary: routed },
    { weight: 1, arbitrary: unrouted },
    { weight: 1, arbitrary: invalidImage },
  );
}

export interface HostBehaviour {
  readonly health: Health;
  /** Answers nothing until the admission deadline passes. */
  readonly hung: boolean;
}

/** What one repository holds: manifests, tags as they are now, and tags as last seen before. */
export interface Contents {
  readonly manifests: ReadonlySet<string>;
  readonly tags: ReadonlyMap<string, string>;
  readonly lastKnownTags: ReadonlyMap<string, string>;
}

export interface World {
  readonly hosts: Readonly<Record<string, HostBehaviour>>;
  /** Every repository's contents derive from this seed, so a world covers any location a route can name. */
  readonly seed: number;
}

/** Healthy most often; a host hangs (answers only after the deadline) now and then, whatever the prober says. */
const hostBehaviour: fc.Arbitrary<HostBehaviour> = fc.record({
  health: fc.constantFrom<Health>('healthy', 'healthy', 'healthy', 'unhealthy', 'rate-limited', 'unknown'),
  hung: fc.nat(7).map((n) => n === 0),
});

export const world: fc.Arbitrary<World> = fc
  .record({ hosts: fc.tuple(...HOSTS.map(() => hostBehaviour)), seed: fc.integer() })
  .map(({ hosts, seed }) => {
    const byHost: Record<string, HostBehaviour> = {};
    for (const [i, host] of HOSTS.entries()) byHost[host] = hosts[i] as HostBehaviour;
    const shown = () =>
      `world(seed=${seed}; ${Object.entries(byHost)
        .map(([host, b]) => `${host}=${b.health}${b.hung ? ',hung' : ''}`)
        .join(' ')})`;
    return { hosts: byHost, seed, [fc.toStringMethod]: shown };
  });

const UNLISTED: HostBehaviour = { health: 'unknown', hung: false };
export const behaviourOf = (w: World, registry: string): HostBehaviour => w.hosts[registry] ?? UNLISTED;

/** The admission path gets answers from this registry: the prober does not count it down and it does not hang. */
export const answers = (w: World, registry: string): boolean => {
  const { health, hung } = behaviourOf(w, registry);
  return (health === 'healthy' || health === 'unknown') && !hung;
};

export const isDown = (health: Health): boolean => health === 'unhealthy' || health === 'rate-limited';

/** A small deterministic generator keyed by the world's seed and a location: contents without enumeration. */
function random(seed: number, key: string): () => number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  let state = h >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function contentsOf(w: World, where: RepositoryLocation): Contents {
  const next = random(w.seed, locationKey(where));
  const pick = () => DIGESTS[Math.floor(next() * DIGESTS.length)] as string;
  const manifests = new Set(DIGESTS.filter(() => next() < 0.5));
  const tags = new Map<string, string>();
  const lastKnownTags = new Map<string, string>();
  for (const tag of TAGS) {
    const current = next() < 0.6 ? pick() : undefined;
    if (current) {
      tags.set(tag, current);
      manifests.add(current);
    }
    // A tag moves: what was last seen may differ from what it points at now, or be all that is left. A tag the
    // registry serves has always been seen (MemoryState.putTag records it as last known too).
    const lastKnown = current ? (next() < 0.8 ? current : pick()) : next() < 0.5 ? pick() : undefined;
    if (lastKnown) lastKnownTags.set(tag, lastKnown);
  }
  return { manifests, tags, lastKnownTags };
}

export const holds = (w: World, where: RepositoryLocation, digest: string): boolean =>
  contentsOf(w, where).manifests.has(digest);

/**
 * MemoryState filled with a world's contents the first time the admission path asks about a location. Hung hosts
 * answer only once the signal aborts, with what MemoryState knows then.
 */
export class WorldState extends MemoryState {
  readonly #world: World;
  readonly #filled = new Set<string>();

  constructor(w: World) {
    super();
    this.#world = w;
    for (const [host, { health, hung }] of Object.entries(w.hosts)) {
      this.setHealth(host, health);
      if (hung) this.setDelay(host, 3_600_000);
    }
  }

  override resolveTag(where: RepositoryLocation, tag: string, signal: AbortSignal): Promise<TagAnswer> {
    this.#fill(where);
    return super.resolveTag(where, tag, signal);
  }

  override hasManifest(where: RepositoryLocation, digest: string, signal: AbortSignal): Promise<Presence> {
    this.#fill(where);
    return super.hasManifest(where, digest, signal);
  }

  #fill(where: RepositoryLocation): void {
    const key = locationKey(where);
    if (this.#filled.has(key)) return;
    this.#filled.add(key);
    const { manifests, tags, lastKnownTags } = contentsOf(this.#world, where);
    for (const digest of manifests) this.putManifest(where, digest);
    for (const [tag, digest] of tags) this.putTag(where, tag, digest);
    for (const [tag, digest] of lastKnownTags) this.putLastKnownTag(where, tag, digest);
  }
}

/**
 * An admission deadline that passes once every registry that answers has answered: MemoryState answers within
 * the same turn of the event loop, so only hung hosts are still waiting when it fires.
 */
export function deadlineAfterAnswers(): AbortSignal {
  const controller = new AbortController();
  setImmediate(() => controller.abort());
  return controller.signal;
}

/**
 * The digest the pod asked for, as regroute can know it: the reference's own, else what the source's tag points
 * at when the source answers, else the last digest seen for the tag. Null when no digest can be known.
 */
export function wantedDigest(w: World, reference: Reference, match: RouteMatch): string | null {
  if (reference.digest) return reference.digest;
  const tag = effectiveTag(reference);
  if (!tag) return null;
  const contents = contentsOf(w, match.source);
  if (answers(w, match.source.registry)) return contents.tags.get(tag) ?? null;
  return contents.lastKnownTags.get(tag) ?? null;
}

/**
 * Whether the admission deadline passed while the source's tag was still being resolved: the source hung. Every
 * lookup after that is answered by the deadline, so no candidate can be heard to hold anything.
 */
export const lateDigest = (w: World, reference: Reference, match: RouteMatch): boolean => {
  const source = behaviourOf(w, match.source.registry);
  return !reference.digest && source.hung && !isDown(source.health);
};

/** A candidate's answers reach the decision: it answers, and the deadline had not passed before it was asked. */
export const heardInTime = (
  w: World,
  reference: Reference,
  match: RouteMatch,
  where: RepositoryLocation,
): boolean => answers(w, where.registry) && !lateDigest(w, reference, match);
