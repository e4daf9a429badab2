// Keeping known images warm: the tags the cluster uses resolved, candidates checked, pull-through caches filled.
import { setTimeout as delay } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { WorkloadLister } from '../kube/workload-api.js';
import { effectiveTag, parseReference } from '../reference/index.js';
import { type Candidate, matchRoute } from '../routing/route.js';
import type { LiveStateHandle } from '../state/create.js';
import { isFailing, type RepositoryLocation } from '../state/state.js';
import type { ClusterContext } from './learn.js';
import type { ClusterMetrics } from './metrics.js';

export interface WarmResult {
  /** Distinct images of workloads and pods that a route takes. */
  images: number;
  /** Tags whose digest the source answered. */
  resolved: number;
  /** Manifests pull-through caches were asked for. */
  fills: number;
  fillFailures: number;
  /** Workload kinds of a namespace that could not be listed. */
  listFailures: number;
}

export interface WarmerOptions {
  readonly current: () => ClusterContext;
  /** The opted-in namespaces. */
  readonly namespaces: () => readonly string[];
  /** Images the watched pods name. */
  readonly podImages: () => Iterable<string>;
  /** Lists workload templates; without it only pods' images are warmed. */
  readonly lister?: WorkloadLister;
  readonly log: Logger;
  readonly metrics?: ClusterMetrics;
  readonly ratePerSecond: number;
  readonly fillsPerPass: number;
  /** The images the templates name, each pass: what the learner reads pinned digests from. */
  readonly onTemplateImages?: (images: readonly string[]) => void;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** How long a (cache, digest) asked for is not asked again: a cache may evict, but not within hours. */
const FILL_MEMORY_MS = 6 * 3600_000;

const sameLocation = (a: RepositoryLocation, b: RepositoryLocation) =>
  a.registry === b.registry && a.repository === b.repository;

/**
 * One pass looks up every image once, at most `ratePerSecond` a second: the tag at the source (which records the
 * source's digest, the last-known digest an outage routes by) and the digest at every other candidate, by its bytes
 * (which records what each holds). A candidate configured `pullThroughCache` is asked for the manifest and, for an
 * index, each platform manifest by digest, while the source is healthy: a pull-through cache fetches what it is asked
 * for from its upstream and keeps it. Blobs are not asked for (see docs/decisions.md, "Keeping known images
 * warm").
 */
export class Warmer {
  readonly #filled = new LRUCache<string, true>({ max: 20_000, ttl: FILL_MEMORY_MS });
  readonly #warnedLists = new Set<string>();
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(private readonly options: WarmerOptions) {
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms, signal) => delay(ms, undefined, { signal }).catch(() => {}));
  }

  async pass(signal: AbortSignal): Promise<WarmResult> {
    const { log, metrics } = this.options;
    const result: WarmResult = { images: 0, resolved: 0, fills: 0, fillFailures: 0, listFailures: 0 };
    const templates = new Set<string>();
    if (this.options.lister) {
      for (const namespace of this.options.namespaces()) {
        if (signal.aborted) return result;
        const listed = await this.options.lister.imagesIn(namespace);
        for (const image of listed.images) templates.add(image);
        for (const { kind, failure } of listed.failures) {
          result.listFailures++;
          const key = `${namespace}/${kind}/${failure.status ?? failure.reason}`;
          if (this.#warnedLists.has(key)) continue;
          this.#warnedLists.add(key);
          log.warn({ namespace, kind, ...failure }, 'could not list workloads; their images are not warmed');
        }
      }
    }
    this.options.onTemplateImages?.([...templates]);
    const images = new Set([...templates, ...this.options.podImages()]);

    const { config, handle } = this.options.current();
    let fillsLeft = this.options.fillsPerPass;
    const intervalMs = 1000 / this.options.ratePerSecond;
    let nextAt = this.#now();
    for (const image of [...images].sort()) {
      if (signal.aborted) break;
      const parsed = parseReference(image);
      if (!parsed.ok) continue;
      const reference = parsed.reference;
      const match = matchRoute(reference, config.routes);
      if (!match) continue;
      const waitMs = nextAt - this.#now();
      if (waitMs > 0) await this.#sleep(waitMs, signal);
      if (signal.aborted) break;
      nextAt = Math.max(nextAt, this.#now() - intervalMs) + intervalMs;
      result.images++;
      metrics?.warmLookups.inc();

      const state = handle.state;
      let digest = reference.digest;
      let sourceHolds = false;
      if (!digest) {
        const tag = effectiveTag(reference);
        if (tag === null) continue;
        const answer = await state.resolveTag(match.source, tag, signal);
        if (answer.kind !== 'digest') continue;
        digest = answer.digest;
        sourceHolds = answer.from !== 'last-known';
        if (sourceHolds) result.resolved++;
      } else if (!isFailing(state.health(match.source.registry))) {
        sourceHolds = (await state.hasManifest(match.source, digest, signal)) === 'present';
      }

      for (const candidate of match.candidates) {
        if (signal.aborted) break;
        if (sameLocation(candidate, match.source)) continue;
        const settings = config.registries[candidate.registry];
        if (settings?.pullThroughCache && !settings.trusted && sourceHolds && fillsLeft > 0) {
          const asked = await this.#fill(handle, candidate, digest, fillsLeft, signal);
          fillsLeft -= asked.manifests;
          result.fills += asked.manifests;
          if (asked.failed) result.fillFailures++;
        }
        await state.hasManifest(candidate, digest, signal, 'bytes');
      }
    }
    log.info({ ...result, namespaces: this.options.namespaces().length }, 'warm-up pass');
    return result;
  }

  /** Asks a pull-through cache for the manifest and, for an index, each platform manifest it names. */
  async #fill(
    handle: LiveStateHandle,
    cache: Candidate,
    digest: string,
    budget: number,
    signal: AbortSignal,
  ): Promise<{ manifests: number; failed: boolean }> {
    const key = `${cache.registry}/${cache.repository}@${digest}`;
    if (this.#filled.has(key)) return { manifests: 0, failed: false };
    const made = await handle.clients.get(cache.registry);
    if (!made.ok) return { manifests: 0, failed: true };
    const fetch = async (reference: string) => {
      const fetched = await made.client.getManifest(cache.repository, reference, { signal });
      this.options.metrics?.fill(fetched.kind === 'found' ? 'fetched' : 'failed');
      return fetched;
    };
    const top = await fetch(digest);
    let manifests = 1;
    let failed = top.kind !== 'found';
    if (top.kind === 'found') {
      for (const child of top.children ?? []) {
        if (manifests >= budget || signal.aborted) {
          failed = true;
          break;
        }
        manifests++;
        if ((await fetch(child)).kind !== 'found') failed = true;
      }
    }
    const fields = { registry: cache.registry, repository: cache.repository, digest, manifests };
    if (failed) {
      this.options.log.warn(
        { ...fields, ...(top.kind === 'error' ? { error: top.message } : { result: top.kind }) },
        'pull-through cache could not be filled; asked again on a later pass',
      );
    } else {
      this.#filled.set(key, true);
      this.options.log.info(fields, 'pull-through cache asked for manifests');
    }
    return { manifests, failed };
  }
}
