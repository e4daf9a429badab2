// Content each registry is known to hold, for deep probes: a manifest regroute resolved there, and one of its blobs.
import type { RepositoryLocation } from './state.js';

export interface ContentSample {
  readonly repository: string;
  readonly digest: string;
  /** A blob of the manifest (its config), once learned from its body; null when it could not be. */
  blob?: string | null;
}

/** Samples kept per registry: enough to rotate over, few enough to stay small whatever pods name. */
export const SAMPLES_PER_REGISTRY = 8;

/**
 * Proving a registry serves content means asking for content it holds. Without a configured healthCheck, the
 * prober rotates over the manifests admissions found there: a registry whose storage fails while `/v2/` still
 * answers is then seen as down within a probe or two.
 */
export class ContentSamples {
  readonly #byRegistry = new Map<string, { samples: ContentSample[]; next: number }>();

  /** A manifest found at `location`: kept if new, the oldest dropped past SAMPLES_PER_REGISTRY. */
  add(location: RepositoryLocation, digest: string): void {
    let entry = this.#byRegistry.get(location.registry);
    if (!entry) {
      entry = { samples: [], next: 0 };
      this.#byRegistry.set(location.registry, entry);
    }
    const { samples } = entry;
    if (samples.some((s) => s.repository === location.repository && s.digest === digest)) return;
    samples.push({ repository: location.repository, digest });
    if (samples.length > SAMPLES_PER_REGISTRY) samples.shift();
  }

  /** The next sample of the registry, in rotation; undefined when nothing is known to be there. */
  next(registry: string): ContentSample | undefined {
    const entry = this.#byRegistry.get(registry);
    if (!entry || entry.samples.length === 0) return undefined;
    const sample = entry.samples[entry.next % entry.samples.length];
    entry.next = (entry.next + 1) % entry.samples.length;
    return sample;
  }

  /** A sample the registry no longer holds (deleted, not failing): not asked for again. */
  drop(registry: string, sample: ContentSample): void {
    const entry = this.#byRegistry.get(registry);
    if (!entry) return;
    entry.samples = entry.samples.filter((s) => s !== sample);
  }

  size(registry: string): number {
    return this.#byRegistry.get(registry)?.samples.length ?? 0;
  }
}
