// What the admission path may ask about registries: the one seam between pure decisions and live registry state.

/** A repository at one registry: where a manifest may or may not be. */
export interface RepositoryLocation {
  readonly registry: string;
  readonly repository: string;
}

export type Health = 'healthy' | 'unhealthy' | 'rate-limited' | 'unknown';

/** What a tag points at, and how fresh that knowledge is. */
export type TagAnswer =
  | { readonly kind: 'digest'; readonly digest: string; readonly from: 'registry' | 'cache' | 'last-known' }
  | { readonly kind: 'absent' }
  | { readonly kind: 'unknown'; readonly cause: 'deadline' | 'unhealthy' | 'error' };

/**
 * Whether a repository holds a manifest. `unknown`: no answer (not asked, or not in time); `error`: the registry
 * answered, but not with anything to trust (a 5xx, refused credentials, a digest that does not match).
 */
export type Presence = 'present' | 'absent' | 'unknown' | 'error';

export interface RegistryState {
  /** The prober's verdict; never does I/O. */
  health(registry: string): Health;
  /**
   * Resolves a tag to a digest: from a fresh cache entry, else from the registry when it is not known to be
   * down, else from the last digest ever seen for the tag. Never rejects; answers `unknown` once `signal` aborts.
   */
  resolveTag(location: RepositoryLocation, tag: string, signal: AbortSignal): Promise<TagAnswer>;
  /** Whether the repository holds the manifest; cache first. Never rejects; `unknown` once `signal` aborts. */
  hasManifest(location: RepositoryLocation, digest: string, signal: AbortSignal): Promise<Presence>;
  /** Presence from cache only: lets the admission path skip lookups it does not need. Never does I/O. */
  knownPresence(location: RepositoryLocation, digest: string): Presence;
}

export const locationKey = (location: RepositoryLocation): string =>
  `${location.registry}/${location.repository}`;
