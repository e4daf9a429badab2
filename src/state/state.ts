// What the admission path may ask about registries: the one seam between pure decisions and live registry state.

/** A repository at one registry: where a manifest may or may not be. */
export interface RepositoryLocation {
  readonly registry: string;
  readonly repository: string;
}

/**
 * A registry's health as the probes and passive signals see it. `suspect`: one failure seen, its confirmation under
 * way (it ends within a probe timeout or two).
 */
export type Health = 'healthy' | 'suspect' | 'unhealthy' | 'rate-limited' | 'unknown';

/**
 * Health the probes hold against a registry (suspect, down or rate-limited): its answers are not waited for, its
 * pods may be moved, and a tag's last-known digest stands in for its answer.
 */
export const isFailing = (health: Health): health is 'suspect' | 'unhealthy' | 'rate-limited' =>
  health === 'suspect' || health === 'unhealthy' || health === 'rate-limited';

/**
 * What a tag points at, and how fresh that knowledge is. `last-known` is the source's own earlier answer, used only
 * while the probes find the source failing; `ageMs` says how old it is. `children` is set when the answer came with
 * the manifest's body: the manifests an index names ([] for a single manifest).
 */
export type TagAnswer =
  | {
      readonly kind: 'digest';
      readonly digest: string;
      readonly from: 'registry' | 'cache' | 'last-known';
      readonly ageMs?: number;
      readonly children?: readonly string[];
    }
  | { readonly kind: 'absent' }
  | { readonly kind: 'unknown'; readonly cause: 'deadline' | 'unhealthy' | 'error' };

/**
 * Whether a repository holds a manifest. `unknown`: no answer (not asked, or not in time); `error`: the registry
 * answered, but not with anything to trust (a 5xx, refused credentials); `mismatch`: it served bytes that do not
 * hash to the digest it claimed to hold — a registry caught lying.
 */
export type Presence = 'present' | 'absent' | 'unknown' | 'error' | 'mismatch';

/**
 * How far a presence answer is trusted. `claim`: the registry said so (a HEAD), enough for the source, which defines
 * the content anyway; `bytes`: its bytes were hashed to the digest, required before a pod is sent to a mirror.
 */
export type Trust = 'claim' | 'bytes';

export interface RegistryState {
  /** The prober's verdict; never does I/O. */
  health(registry: string): Health;
  /**
   * The registry's health once a suspicion under way is confirmed or cleared, or as it is when `signal` aborts
   * first: an admission waits this long rather than move a pod on one failed probe.
   */
  settledHealth?(registry: string, signal: AbortSignal): Promise<Health>;
  /**
   * Resolves a tag to a digest: from a fresh cache entry, else from the registry when it is not known to be
   * down, else — only while the probes find it failing — from the last digest seen for the tag. Never rejects;
   * answers `unknown` once `signal` aborts. `withBody` reads the manifest (a GET) so that the answer names an
   * index's children and its bytes are hashed.
   */
  resolveTag(
    location: RepositoryLocation,
    tag: string,
    signal: AbortSignal,
    withBody?: boolean,
  ): Promise<TagAnswer>;
  /** Whether the repository holds the manifest; cache first. Never rejects; `unknown` once `signal` aborts. */
  hasManifest(
    location: RepositoryLocation,
    digest: string,
    signal: AbortSignal,
    trust?: Trust,
  ): Promise<Presence>;
  /**
   * What resolveTag would answer without a registry request (a fresh cache entry, a failing registry's last-known
   * digest), undefined when only a request can tell. Lets the admission path decide a warm pod without waiting;
   * never does I/O but the refresh-ahead resolveTag would start too.
   */
  cachedTag?(location: RepositoryLocation, tag: string, withBody?: boolean): TagAnswer | undefined;
  /**
   * A fresh answer for the tag from cache only (a digest, null for "no such tag"), undefined when a lookup is
   * needed: tells the admission path a miss is coming. Never does I/O.
   */
  knownTag?(location: RepositoryLocation, tag: string): string | null | undefined;
  /** The platform manifests an index names, when its body has been read anywhere (digests name content). */
  platformsOf?(digest: string): readonly string[] | undefined;
  /** Presence from cache only: lets the admission path skip lookups it does not need. Never does I/O. */
  knownPresence(location: RepositoryLocation, digest: string, trust?: Trust): Presence;
}

export const locationKey = (location: RepositoryLocation): string =>
  `${location.registry}/${location.repository}`;

/** The registry state a process routes with, and its life cycle: built from a config, replaced on reload. */
export interface StateHandle {
  readonly state: RegistryState;
  /** True once registry state can be trusted for routing. */
  readonly isReady: () => boolean;
  close(): Promise<void>;
}
