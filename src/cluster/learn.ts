// Teaching the registry state what the cluster knows: each tag's best lesson, checked for presence before it counts.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { type Candidate, matchRoute } from '../routing/route.js';
import type { LiveStateHandle } from '../state/create.js';
import type { LiveState } from '../state/live-state.js';
import { type Lesson, lessonKey, type Origin, outranks } from './lessons.js';

/** The config and registry state in force: both may be replaced by a reload while the cluster parts run. */
export interface ClusterContext {
  readonly config: Config;
  readonly handle: LiveStateHandle;
}

export interface LearnResult {
  /** Taken as the tag's last-known digest. */
  learned: number;
  /** The state knew a digest for the tag already (the source's own answer, or an earlier lesson). */
  known: number;
  /** Found neither at the source nor at a candidate (or not in time): tried again on a later pass. */
  unconfirmed: number;
  /** No route takes the image: not regroute's to learn. */
  unrouted: number;
}

/** How many lessons are checked at once: each may cost a request to the source and to each candidate. */
const CONCURRENCY = 8;

/**
 * Holds the lessons not yet taught to the state in force, and teaches them on `learn()`. A lesson taught (or
 * found superseded) is not offered again to the same state; a new state (a reload that did not keep the caches)
 * is taught everything again, from the lessons the caller offers anew.
 */
export class Learner {
  readonly #pending = new Map<string, Lesson>();
  /** Per state: the tags it holds a digest for, learned or its own. */
  readonly #settled = new WeakMap<LiveState, Set<string>>();

  constructor(
    private readonly current: () => ClusterContext,
    private readonly log: Logger,
    private readonly onLearned?: (origin: Origin) => void,
  ) {}

  /** Lessons to teach on the next pass; for one tag the most trusted (then newest) stays. */
  offer(lessons: Iterable<Lesson>): void {
    const settled = this.#settledFor(this.current().handle.state);
    for (const lesson of lessons) {
      const key = lessonKey(lesson.reference);
      if (settled.has(key)) continue;
      if (outranks(lesson, this.#pending.get(key))) this.#pending.set(key, lesson);
    }
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** Teaches every pending lesson once; the unconfirmed stay pending. */
  async learn(signal: AbortSignal): Promise<LearnResult> {
    const result: LearnResult = { learned: 0, known: 0, unconfirmed: 0, unrouted: 0 };
    const { config, handle } = this.current();
    const state = handle.state;
    const settled = this.#settledFor(state);
    const work = [...this.#pending.entries()];
    let next = 0;
    const worker = async () => {
      while (next < work.length && !signal.aborted) {
        const [key, lesson] = work[next++] as [string, Lesson];
        const outcome = await this.#teach(config, state, lesson, signal);
        result[outcome]++;
        // A lesson offered meanwhile for the same tag replaced this one: it is tried on its own.
        if (outcome !== 'unconfirmed' && this.#pending.get(key) === lesson) {
          this.#pending.delete(key);
          settled.add(key);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, work.length) }, worker));
    if (result.learned + result.unconfirmed > 0) {
      this.log.info({ ...result, pending: this.#pending.size }, 'learned tag digests from the cluster');
    }
    return result;
  }

  async #teach(
    config: Config,
    state: LiveState,
    lesson: Lesson,
    signal: AbortSignal,
  ): Promise<'learned' | 'known' | 'unconfirmed' | 'unrouted'> {
    const match = matchRoute(lesson.reference, config.routes);
    const tag = lesson.reference.tag;
    if (!match || tag === null) return 'unrouted';
    if (state.tags.lastKnown(match.source, tag)) return 'known';
    const alsoAt = match.candidates.filter(
      (c) => c.registry !== match.source.registry || c.repository !== match.source.repository,
    );
    const digest =
      lesson.origin === 'running'
        ? ((await indexNaming(state, alsoAt, tag, lesson.digest, signal)) ?? lesson.digest)
        : lesson.digest;
    const learned = await state.learnTag(match.source, tag, digest, alsoAt, signal);
    if (learned) {
      this.onLearned?.(lesson.origin);
      this.log.debug(
        {
          image: lessonKey(lesson.reference),
          digest,
          ...(digest !== lesson.digest ? { reported: lesson.digest } : {}),
          origin: lesson.origin,
          source: `${match.source.registry}/${match.source.repository}`,
        },
        'tag digest learned from the cluster',
      );
      return 'learned';
    }
    // learnTag declines when a digest is known for the tag (perhaps just now, from the source itself).
    return state.tags.lastKnown(match.source, tag) ? 'known' : 'unconfirmed';
  }

  #settledFor(state: LiveState): Set<string> {
    let settled = this.#settled.get(state);
    if (!settled) {
      settled = new Set();
      this.#settled.set(state, settled);
    }
    return settled;
  }
}

/**
 * The index a candidate's tag names, when it names the digest a node reported among its platform manifests: CRI-O
 * may report a platform manifest's digest in `imageID` (docs/decisions.md, "What regroute learns"), and pinning
 * pods to it would pin every node to that one platform. Candidates are asked for the tag with its body, in order,
 * while they are usable; undefined when none answers so (the reported digest is then learned as it is).
 */
async function indexNaming(
  state: LiveState,
  candidates: readonly Candidate[],
  tag: string,
  reported: string,
  signal: AbortSignal,
): Promise<string | undefined> {
  for (const candidate of candidates) {
    if (signal.aborted) return undefined;
    const health = state.health(candidate.registry);
    if (health !== 'healthy' && health !== 'unknown') continue;
    const answer = await state.resolveTag(candidate, tag, signal, true);
    if (answer.kind !== 'digest') continue;
    if (answer.digest === reported) return undefined;
    if (answer.children?.includes(reported)) return answer.digest;
  }
  return undefined;
}
