// Registry state held in memory and set by hand: for tests, `explain --offline`, and a config with no registries.
import type { Health, Presence, RegistryState, RepositoryLocation, TagAnswer, Trust } from './state.js';
import { isFailing, locationKey } from './state.js';

export class MemoryState implements RegistryState {
  readonly #health = new Map<string, Health>();
  readonly #tags = new Map<string, string>();
  readonly #lastKnownTags = new Map<string, string>();
  readonly #manifests = new Set<string>();
  readonly #children = new Map<string, readonly string[]>();
  readonly #delayMs = new Map<string, number>();
  readonly #erring = new Set<string>();
  readonly #lying = new Set<string>();
  /** Every lookup asked of this state, in order: lets tests assert what the admission path did not need. */
  readonly lookups: string[] = [];

  setHealth(registry: string, health: Health): this {
    this.#health.set(registry, health);
    return this;
  }

  /**
   * The registry holds `digest` under `tag` (and so holds the manifest too). `remembered`: regroute has seen that
   * answer before, so it is the tag's last-known digest; false for a process that has just started.
   */
  putTag(location: RepositoryLocation, tag: string, digest: string, remembered = true): this {
    this.#tags.set(`${locationKey(location)}:${tag}`, digest);
    if (remembered) this.#lastKnownTags.set(`${locationKey(location)}:${tag}`, digest);
    return this.putManifest(location, digest);
  }

  /** A digest seen for the tag earlier, though the registry no longer answers for it. */
  putLastKnownTag(location: RepositoryLocation, tag: string, digest: string): this {
    this.#lastKnownTags.set(`${locationKey(location)}:${tag}`, digest);
    return this;
  }

  putManifest(location: RepositoryLocation, digest: string): this {
    this.#manifests.add(`${locationKey(location)}@${digest}`);
    return this;
  }

  /** `digest` is an index naming `children`: answers read with their body say so. */
  putIndex(digest: string, children: readonly string[]): this {
    this.#children.set(digest, children);
    return this;
  }

  /** Answers from this registry come only after `ms`: a slow or hung registry. */
  setDelay(registry: string, ms: number): this {
    this.#delayMs.set(registry, ms);
    return this;
  }

  /** The registry answers every lookup with an error (a 5xx, refused credentials), whatever the probes say. */
  setErrors(registry: string): this {
    this.#erring.add(registry);
    return this;
  }

  /** The registry claims every digest asked of it (HEAD answers 200), but its bytes hash only to what it holds. */
  setLies(registry: string): this {
    this.#lying.add(registry);
    return this;
  }

  health(registry: string): Health {
    return this.#health.get(registry) ?? 'unknown';
  }

  /** Health set by hand has no suspicion under way to wait for. */
  async settledHealth(registry: string): Promise<Health> {
    return this.health(registry);
  }

  async resolveTag(
    location: RepositoryLocation,
    tag: string,
    signal: AbortSignal,
    withBody = false,
  ): Promise<TagAnswer> {
    const key = `${locationKey(location)}:${tag}`;
    this.lookups.push(`tag ${key}`);
    // As LiveState: the last digest seen stands in only while the registry is failing.
    const fallback = (cause: 'deadline' | 'unhealthy' | 'error'): TagAnswer => {
      const digest = isFailing(this.health(location.registry)) ? this.#lastKnownTags.get(key) : undefined;
      return digest ? { kind: 'digest', digest, from: 'last-known' } : { kind: 'unknown', cause };
    };
    if (isFailing(this.health(location.registry))) return fallback('unhealthy');
    if (!(await this.#wait(location.registry, signal))) return fallback('deadline');
    if (this.#erring.has(location.registry)) return fallback('error');
    const digest = this.#tags.get(key);
    if (!digest) return { kind: 'absent' };
    return withBody
      ? { kind: 'digest', digest, from: 'registry', children: this.#children.get(digest) ?? [] }
      : { kind: 'digest', digest, from: 'registry' };
  }

  async hasManifest(
    location: RepositoryLocation,
    digest: string,
    signal: AbortSignal,
    trust: Trust = 'claim',
  ): Promise<Presence> {
    const key = `${locationKey(location)}@${digest}`;
    this.lookups.push(`manifest ${key}`);
    if (isFailing(this.health(location.registry))) return 'unknown';
    if (!(await this.#wait(location.registry, signal))) return 'unknown';
    if (this.#erring.has(location.registry)) return 'error';
    const held = this.#manifests.has(key);
    if (this.#lying.has(location.registry)) return trust === 'claim' || held ? 'present' : 'mismatch';
    return held ? 'present' : 'absent';
  }

  knownPresence(): Presence {
    return 'unknown';
  }

  /** Resolves true after the registry's delay, false if `signal` aborts first. */
  #wait(registry: string, signal: AbortSignal): Promise<boolean> {
    const ms = this.#delayMs.get(registry) ?? 0;
    if (signal.aborted) return Promise.resolve(false);
    if (ms === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
