// Generated routing configs, images and registry worlds for property tests. A world is what the registries really
// hold and how they behave (health as the probes see it, hanging, erring, lying); it is served to the admission path
// through MemoryState (WorldState) and through the real LiveState over scripted registry clients (worldLiveState),
// and the ground truth functions below state the routing rule from the world alone, copying neither.
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.js';
import type { Config, Route } from '../../src/config/schema.js';
import { effectiveTag, familiarString, parseReference, type Reference } from '../../src/reference/index.js';
import type { ManifestResult, RegistryClient } from '../../src/registry/index.js';
import type { RouteMatch } from '../../src/routing/route.js';
import type { HealthTracker } from '../../src/state/health.js';
import { type Clients, LiveState } from '../../src/state/live-state.js';
import { MemoryState } from '../../src/state/memory-state.js';
import type {
  Health,
  Presence,
  RegistryState,
  RepositoryLocation,
  TagAnswer,
  Trust,
} from '../../src/state/state.js';
import { locationKey } from '../../src/state/state.js';
import { digestOf } from './digests.js';

/** The content a world is made of: few digests, so that candidates often hold the one wanted, or a stale one. */
export const DIGESTS = ['a', 'b', 'c'].map((name) => digestOf(`content ${name}`));
/**
 * A multi-platform index naming DIGESTS[0] as one of its platforms: a mirror filled by pulling one platform holds
 * that child under the tag where the source holds the index.
 */
export const INDEX = digestOf('index of content a');
export const INDEX_CHILDREN: readonly string[] = [DIGESTS[0] as string];
/** What a tag may point at. */
const TAG_TARGETS = [...DIGESTS, INDEX];
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
  /** Health as the probes see it. */
  readonly health: Health;
  /** Answers nothing until the admission deadline passes. */
  readonly hung: boolean;
  /** Answers every lookup with an error (a 5xx), whatever the probes say. */
  readonly errs: boolean;
  /** Claims every digest asked with a HEAD; its bytes hash only to what it holds. */
  readonly lies: boolean;
}

/** What one repository holds: manifests, tags as they are now, and tags as last seen before. */
export interface Contents {
  readonly manifests: ReadonlySet<string>;
  readonly tags: ReadonlyMap<string, string>;
  readonly lastKnownTags: ReadonlyMap<string, string>;
}

export interface World {
  readonly hosts: Readonly<Record<string, HostBehaviour>>;
  /** regroute has just started: no last-known digest of any tag (a restart during an outage). */
  readonly freshStart: boolean;
  /** Every repository's contents derive from this seed, so a world covers any location a route can name. */
  readonly seed: number;
}

/** Every health a registry can have, healthy most often. */
export const anyHealth: fc.Arbitrary<Health> = fc.constantFrom<Health>(
  'healthy',
  'healthy',
  'healthy',
  'suspect',
  'unhealthy',
  'rate-limited',
  'unknown',
);

/**
 * Healthy most often; now and then, whatever the prober says, a host hangs (answers only after the deadline),
 * answers errors, or lies about what it holds.
 */
const hostBehaviour: fc.Arbitrary<HostBehaviour> = fc
  .record({
    health: anyHealth,
    misbehaviour: fc.constantFrom('none', 'none', 'none', 'none', 'none', 'hung', 'errs', 'lies'),
  })
  .map(({ health, misbehaviour }) => ({
    health,
    hung: misbehaviour === 'hung',
    errs: misbehaviour === 'errs',
    lies: misbehaviour === 'lies',
  }));

export const world: fc.Arbitrary<World> = fc
  .record({
    hosts: fc.tuple(...HOSTS.map(() => hostBehaviour)),
    seed: fc.integer(),
    freshStart: fc.nat(3).map((n) => n === 0),
  })
  .map(({ hosts, seed, freshStart }) => {
    const byHost: Record<string, HostBehaviour> = {};
    for (const [i, host] of HOSTS.entries()) byHost[host] = hosts[i] as HostBehaviour;
    const shown = () =>
      `world(seed=${seed}${freshStart ? ', fresh start' : ''}; ${Object.entries(byHost)
        .map(
          ([host, b]) =>
            `${host}=${b.health}${b.hung ? ',hung' : ''}${b.errs ? ',errs' : ''}${b.lies ? ',lies' : ''}`,
        )
        .join(' ')})`;
    return { hosts: byHost, seed, freshStart, [fc.toStringMethod]: shown };
  });

const UNLISTED: HostBehaviour = { health: 'unknown', hung: false, errs: false, lies: false };
export const behaviourOf = (w: World, registry: string): HostBehaviour => w.hosts[registry] ?? UNLISTED;

/**
 * The admission path gets usable answers from this registry: the prober does not count it down, and it neither
 * hangs nor errs.
 */
export const answers = (w: World, registry: string): boolean => {
  const { health, hung, errs } = behaviourOf(w, registry);
  return (health === 'healthy' || health === 'unknown') && !hung && !errs;
};

/** What the probes hold against a registry: suspect (a failure awaiting its confirmation), down or rate-limited. */
export const isDown = (health: Health): boolean =>
  health === 'suspect' || health === 'unhealthy' || health === 'rate-limited';

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
  const pick = () => TAG_TARGETS[Math.floor(next() * TAG_TARGETS.length)] as string;
  const manifests = new Set(DIGESTS.filter(() => next() < 0.5));
  const tags = new Map<string, string>();
  const lastKnownTags = new Map<string, string>();
  for (const tag of TAGS) {
    const current = next() < 0.6 ? pick() : undefined;
    if (current) {
      tags.set(tag, current);
      manifests.add(current);
      // Holding an index means holding its platforms' manifests too.
      if (current === INDEX) for (const child of INDEX_CHILDREN) manifests.add(child);
    }
    // A tag moves: what was last seen may differ from what it points at now, or be all that is left. A tag the
    // registry serves has always been seen (MemoryState.putTag records it as last known too).
    const lastKnown = current ? (next() < 0.8 ? current : pick()) : next() < 0.5 ? pick() : undefined;
    if (lastKnown && !w.freshStart) lastKnownTags.set(tag, lastKnown);
  }
  return { manifests, tags, lastKnownTags };
}

/** The same world with the source's registry failing as the probes see it. */
export const withHostDown = (w: World, registry: string): World => {
  const hosts = { ...w.hosts, [registry]: { ...behaviourOf(w, registry), health: 'unhealthy' as const } };
  return Object.assign(
    { ...w, hosts },
    {
      [fc.toStringMethod]: () =>
        `${(w as unknown as Record<symbol, () => string>)[fc.toStringMethod]?.() ?? 'world'} with ${registry} down`,
    },
  );
};

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
    for (const [host, { health, hung, errs, lies }] of Object.entries(w.hosts)) {
      this.setHealth(host, health);
      if (hung) this.setDelay(host, 3_600_000);
      if (errs) this.setErrors(host);
      if (lies) this.setLies(host);
    }
    this.putIndex(INDEX, INDEX_CHILDREN);
  }

  override resolveTag(
    where: RepositoryLocation,
    tag: string,
    signal: AbortSignal,
    withBody?: boolean,
  ): Promise<TagAnswer> {
    this.#fill(where);
    return super.resolveTag(where, tag, signal, withBody);
  }

  override hasManifest(
    where: RepositoryLocation,
    digest: string,
    signal: AbortSignal,
    trust?: Trust,
  ): Promise<Presence> {
    this.#fill(where);
    return super.hasManifest(where, digest, signal, trust);
  }

  #fill(where: RepositoryLocation): void {
    const key = locationKey(where);
    if (this.#filled.has(key)) return;
    this.#filled.add(key);
    const { manifests, tags, lastKnownTags } = contentsOf(this.#world, where);
    for (const digest of manifests) this.putManifest(where, digest);
    for (const [tag, digest] of tags) this.putTag(where, tag, digest, !this.#world.freshStart);
    for (const [tag, digest] of lastKnownTags) this.putLastKnownTag(where, tag, digest);
  }
}

/**
 * The real LiveState over scripted registry clients that answer from the world: health as the world's probes say
 * (passive signals do not move it, so the oracle stays the world), the source's last-known digests already in the
 * tag cache from an earlier answer, hung hosts answering only when their request's own timeout ends.
 */
export function worldLiveState(w: World): LiveState {
  let clock = 0;
  const health = (registry: string) => behaviourOf(w, registry).health;
  const tracker = {
    health,
    // No prober confirms anything here: a suspect host stays suspect, as one whose confirmation is still out.
    settled: () => Promise.resolve(),
    succeeded() {},
    failed() {},
    rateLimited() {},
  } as unknown as HealthTracker;
  const clientOf = (registry: string) => {
    const answer = (repository: string, reference: string, read: boolean, signal: AbortSignal) => {
      const b = behaviourOf(w, registry);
      if (b.hung) {
        return new Promise<ManifestResult>((resolve) =>
          signal.addEventListener('abort', () =>
            resolve({ kind: 'error', availability: 'timeout', message: 'timed out' }),
          ),
        );
      }
      if (b.errs) {
        return Promise.resolve<ManifestResult>({
          kind: 'error',
          availability: 'server-error',
          status: 503,
          message: 'HTTP 503',
        });
      }
      const contents = contentsOf(w, { registry, repository });
      const byDigest = reference.includes(':');
      const digest = byDigest ? reference : contents.tags.get(reference);
      const held = digest !== undefined && contents.manifests.has(digest);
      if (byDigest && b.lies && !held) {
        return Promise.resolve<ManifestResult>(
          read
            ? { kind: 'error', availability: 'server-error', message: 'digest mismatch', mismatch: true }
            : { kind: 'found', digest: reference, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
        );
      }
      if (!held || digest === undefined) return Promise.resolve<ManifestResult>({ kind: 'not-found' });
      const found: ManifestResult = {
        kind: 'found',
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
      };
      if (read) found.children = digest === INDEX ? [...INDEX_CHILDREN] : [];
      return Promise.resolve(found);
    };
    return {
      headManifest: (repository: string, reference: string, { signal }: { signal: AbortSignal }) =>
        answer(repository, reference, false, signal),
      getManifest: (repository: string, reference: string, { signal }: { signal: AbortSignal }) =>
        answer(repository, reference, true, signal),
    } as unknown as RegistryClient;
  };
  const clients: Clients = {
    get: (registry: string) => Promise.resolve({ ok: true as const, client: clientOf(registry) }),
  };
  const state = new LiveState(clients, tracker, {
    ttls: { tagTtlMs: 30_000, presentTtlMs: 3_600_000, absentTtlMs: 15_000, maxEntries: 10_000 },
    requestTimeoutMs: 3_600_000,
    now: () => clock,
  });
  // Last-known answers were recorded long ago: no longer fresh, still the last digest seen. Recorded the first time
  // a location's tag is asked, whether the answer is then taken from the cache or waited for.
  const seeded = new Set<string>();
  const seed = (where: RepositoryLocation) => {
    if (seeded.has(locationKey(where))) return;
    seeded.add(locationKey(where));
    const now = clock;
    clock = 0;
    for (const [t, digest] of contentsOf(w, where).lastKnownTags) state.tags.record(where, t, digest);
    clock = now;
  };
  const resolveTag = state.resolveTag.bind(state);
  state.resolveTag = (where, tag, signal, withBody) => {
    seed(where);
    return resolveTag(where, tag, signal, withBody);
  };
  const cachedTag = state.cachedTag.bind(state);
  state.cachedTag = (where, tag, withBody) => {
    seed(where);
    return cachedTag(where, tag, withBody);
  };
  clock = 1_000_000_000;
  return state;
}

/**
 * `inner` with no answer taken from the cache at once: every tag is asked and waited for, as the admission path did
 * before it decided warm pods synchronously, so that the two can be compared on twin states. It notes whether any
 * answer needed more than the cache (a registry request, a suspicion's verdict): exactly when the admission path may
 * not decide at once.
 */
export class WaitingState implements RegistryState {
  #neededMore = false;

  constructor(private readonly inner: LiveState) {}

  get neededMore(): boolean {
    return this.#neededMore;
  }

  health(registry: string): Health {
    return this.inner.health(registry);
  }

  settledHealth(registry: string, signal: AbortSignal): Promise<Health> {
    this.#neededMore = true;
    return this.inner.settledHealth(registry, signal);
  }

  resolveTag(
    where: RepositoryLocation,
    tag: string,
    signal: AbortSignal,
    withBody?: boolean,
  ): Promise<TagAnswer> {
    if (this.inner.cachedTag(where, tag, withBody) === undefined) this.#neededMore = true;
    return this.inner.resolveTag(where, tag, signal, withBody);
  }

  hasManifest(
    where: RepositoryLocation,
    digest: string,
    signal: AbortSignal,
    trust?: Trust,
  ): Promise<Presence> {
    this.#neededMore = true;
    return this.inner.hasManifest(where, digest, signal, trust);
  }

  knownTag(where: RepositoryLocation, tag: string): string | null | undefined {
    return this.inner.knownTag(where, tag);
  }

  platformsOf(digest: string): readonly string[] | undefined {
    return this.inner.platformsOf(digest);
  }

  knownPresence(where: RepositoryLocation, digest: string, trust?: Trust): Presence {
    return this.inner.knownPresence(where, digest, trust);
  }
}

/**
 * An admission deadline that passes once every registry that answers has answered: MemoryState and the scripted
 * clients answer within the same turn of the event loop, so only hung hosts are still waiting when it fires.
 */
export function deadlineAfterAnswers(): AbortSignal {
  const controller = new AbortController();
  setImmediate(() => controller.abort());
  return controller.signal;
}

/**
 * What the candidates' tags say when nothing of the source is known: the answers of candidates that answer, and the
 * digest they agree on — the only one named, or the index naming all others. Null when they name none or disagree.
 */
export function candidatesAgreement(
  w: World,
  reference: Reference,
  match: RouteMatch,
): { readonly named: ReadonlySet<string>; readonly agreed: string | null } {
  const tag = effectiveTag(reference) as string;
  const named = new Set<string>();
  for (const candidate of match.candidates) {
    if (!answers(w, candidate.registry)) continue;
    const digest = contentsOf(w, candidate).tags.get(tag);
    if (digest) named.add(digest);
  }
  if (named.size <= 1) return { named, agreed: [...named][0] ?? null };
  const covering = [...named].filter(
    (d) => d === INDEX && [...named].every((o) => o === INDEX || INDEX_CHILDREN.includes(o)),
  );
  return { named, agreed: covering.length === 1 ? (covering[0] as string) : null };
}

/**
 * The digest the pod may be pinned to, as the rule says: the reference's own; else the source's answer for the
 * tag when the source answers; else, while the probes find the source failing, its last-known answer. Null when
 * none of these is known (a source up but hung or erring, or a failing source never heard).
 */
export function wantedDigest(w: World, reference: Reference, match: RouteMatch): string | null {
  if (reference.digest) return reference.digest;
  const tag = effectiveTag(reference);
  if (!tag) return null;
  const contents = contentsOf(w, match.source);
  if (isDown(behaviourOf(w, match.source.registry).health)) return contents.lastKnownTags.get(tag) ?? null;
  if (answers(w, match.source.registry)) return contents.tags.get(tag) ?? null;
  return null;
}

/** A candidate whose answers reach the decision: it answers, and no lookup of it comes after the deadline. */
export const heardInTime = (w: World, where: RepositoryLocation): boolean => answers(w, where.registry);

/**
 * Whether the pod may be sent to `where` for `digest`: it answers, and holds the digest. A lying host's claim is not
 * enough: only what it really holds counts, since its bytes are hashed before it is trusted.
 */
export const servesDigest = (w: World, where: RepositoryLocation, digest: string): boolean =>
  heardInTime(w, where) && holds(w, where, digest);
