// Registry state held in memory and set by hand: for tests, `explain --offline`, and a config with no registries.
import type { Health, Presence, RegistryState, RepositoryLocation, TagAnswer } from './state.js';
import { locationKey } from './state.js';

export class MemoryState implements RegistryState {
  readonly #health = new Map<string, Health>();
  readonly #tags = new Map<string, string>();
  readonly #lastKnownTags = new Map<string, string>();
  readonly #manifests = new Set<string>();
  readonly #delayMs = new Map<string, number>();
  /** Every lookup asked of this state, in order: lets tests assert what the admission path did not need. */
  readonly lookups: string[] = [];

  setHealth(registry: string, health: Health): this {
    this.#health.set(registry, health);
    return this;
  }

  /** The registry holds `digest` under `tag` (and so holds the manifest too). */
  putTag(location: RepositoryLocation, tag: string, digest: string): this {
    this.#tags.set(`${locationKey(location)}:${tag}`, digest);
    this.#lastKnownTags.set(`${locationKey(location)}:${tag}`, digest);
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

  /** Answers from this registry come only after `ms`: a slow or hung registry. */
  setDelay(registry: string, ms: number): this {
    this.#delayMs.set(registry, ms);
    return this;
  }

  health(registry: string): Health {
    return this.#health.get(registry) ?? 'unknown';
  }

  async resolveTag(location: RepositoryLocation, tag: string, signal: AbortSignal): Promise<TagAnswer> {
    const key = `${locationKey(location)}:${tag}`;
    this.lookups.push(`tag ${key}`);
    const lastKnown = (cause: 'deadline' | 'unhealthy'): TagAnswer => {
      const digest = this.#lastKnownTags.get(key);
      return digest ? { kind: 'digest', digest, from: 'last-known' } : { kind: 'unknown', cause };
    };
    if (!this.#answers(location.registry)) return lastKnown('unhealthy');
    if (!(await this.#wait(location.registry, signal))) return lastKnown('deadline');
    const digest = this.#tags.get(key);
    return digest ? { kind: 'digest', digest, from: 'registry' } : { kind: 'absent' };
  }

  async hasManifest(location: RepositoryLocation, digest: string, signal: AbortSignal): Promise<Presence> {
    const key = `${locationKey(location)}@${digest}`;
    this.lookups.push(`manifest ${key}`);
    if (!this.#answers(location.registry)) return 'unknown';
    if (!(await this.#wait(location.registry, signal))) return 'unknown';
    return this.#manifests.has(key) ? 'present' : 'absent';
  }

  knownPresence(): Presence {
    return 'unknown';
  }

  #answers(registry: string): boolean {
    const health = this.health(registry);
    return health === 'healthy' || health === 'unknown';
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
