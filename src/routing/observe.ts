// Gathers the registry state one decision needs, asking only what the decision cannot do without, within a deadline.
import type { Reference } from '../reference/index.js';
import { effectiveTag } from '../reference/index.js';
import { type Deadline, deadlineOf, untilAborted } from '../state/deadline.js';
import {
  isFailing,
  type Presence,
  type RegistryState,
  type RepositoryLocation,
  type TagAnswer,
  type Trust,
} from '../state/state.js';
import type { CandidateObservation, DigestAnswer, Observation } from './decision.js';
import type { RouteMatch } from './route.js';

const UNKNOWN_TAG: TagAnswer = { kind: 'unknown', cause: 'deadline' };
const UNKNOWN_PRESENCE: Presence = 'unknown';
const usable = (health: string) => health === 'healthy' || health === 'unknown';

/**
 * What gathering an observation asks of the registry state, one step at a time. Written once as steps (generators),
 * the gathering runs through `run`, which answers each step at once when the state can and waits only for the
 * ones that need a registry: the same answers either way, without a promise per image when every one is cached.
 */
type Ask =
  | {
      readonly kind: 'tag';
      readonly location: RepositoryLocation;
      readonly tag: string;
      readonly withBody: boolean;
    }
  | {
      readonly kind: 'presence';
      readonly location: RepositoryLocation;
      readonly digest: string;
      readonly trust: Trust;
    }
  /** Suspicions under way about these registries, settled (or the deadline passed). */
  | { readonly kind: 'settled'; readonly registries: readonly string[] }
  /** Starts steps alongside the ones asking; answers their Pending. */
  | { readonly kind: 'start'; readonly steps: Steps<void> }
  /** Every one of these started steps, done. */
  | { readonly kind: 'join'; readonly pending: readonly Pending[] };

/** What each ask is answered with: a TagAnswer, a Presence, a Pending for `start`, nothing for the others. */
type Steps<T> = Generator<Ask, T, unknown>;
/** Started steps: done (undefined) or still waiting for a registry. */
type Pending = Promise<void> | undefined;

/**
 * Runs `steps` from `input` (the answer to the step it stopped at). A tag is answered from the cache when the state
 * can (`cachedTag`); the first step that needs a registry (or a suspicion's verdict) is waited for, within the
 * deadline, and the rest runs when it is answered. So an observation made entirely of cached answers is made
 * synchronously, and one that needs registries waits exactly as long as its lookups.
 */
function run<T>(steps: Steps<T>, state: RegistryState, deadline: Deadline, input?: unknown): T | Promise<T> {
  let answer = input;
  const resume = (value?: unknown) => run(steps, state, deadline, value);
  for (;;) {
    const step = steps.next(answer);
    if (step.done) return step.value;
    const ask = step.value;
    switch (ask.kind) {
      case 'tag':
        answer = state.cachedTag?.(ask.location, ask.tag, ask.withBody);
        if (answer === undefined) {
          const { signal } = deadline;
          const lookup = state.resolveTag(ask.location, ask.tag, signal, ask.withBody);
          return untilAborted(lookup, signal, UNKNOWN_TAG).then(resume);
        }
        break;
      case 'presence': {
        const { signal } = deadline;
        const lookup = state.hasManifest(ask.location, ask.digest, signal, ask.trust);
        return untilAborted(lookup, signal, UNKNOWN_PRESENCE).then(resume);
      }
      case 'settled': {
        const { signal } = deadline;
        return Promise.all(ask.registries.map((registry) => state.settledHealth?.(registry, signal))).then(
          () => resume(),
        );
      }
      case 'start':
        answer = run(ask.steps, state, deadline);
        break;
      case 'join': {
        const waiting = ask.pending.filter((pending) => pending !== undefined);
        if (waiting.length > 0) return Promise.all(waiting).then(() => resume());
        answer = undefined;
        break;
      }
    }
  }
}

const askTag = (location: RepositoryLocation, tag: string, withBody = false): Ask => ({
  kind: 'tag',
  location,
  tag,
  withBody,
});
const askPresence = (location: RepositoryLocation, digest: string, trust: Trust): Ask => ({
  kind: 'presence',
  location,
  digest,
  trust,
});

/**
 * The registry state the decision for `reference` needs, within `deadline`. Synchronous when every answer it needs
 * is cached (the warm path), a promise otherwise; the observation is the same either way.
 */
export function observe(
  reference: Reference,
  match: RouteMatch,
  state: RegistryState,
  deadline: AbortSignal | Deadline,
  unverifiedTags: 'allow' | 'deny',
): Observation | Promise<Observation> {
  const waiting = deadlineOf(deadline);
  return run(observation(reference, match, state, waiting, unverifiedTags), state, waiting);
}

type Seen = { -readonly [K in keyof CandidateObservation]: CandidateObservation[K] };

function* observation(
  reference: Reference,
  match: RouteMatch,
  state: RegistryState,
  deadline: Deadline,
  unverifiedTags: 'allow' | 'deny',
): Steps<Observation> {
  const tag = effectiveTag(reference);
  // One failure makes a registry suspect while the prober confirms it (a probe timeout or two): a pod of its source
  // or own location waits for that verdict, within the deadline, rather than move on a blip.
  // Checked before anything is allocated: this runs for every image of every admission.
  let sourceHealth = state.health(match.source.registry);
  let ownHealth = state.health(reference.registry);
  if ((sourceHealth === 'suspect' || ownHealth === 'suspect') && state.settledHealth && !deadline.aborted) {
    const registries: string[] = [];
    if (sourceHealth === 'suspect') registries.push(match.source.registry);
    if (ownHealth === 'suspect') registries.push(reference.registry);
    yield { kind: 'settled', registries };
    sourceHealth = state.health(match.source.registry);
    ownHealth = state.health(reference.registry);
  }
  const candidates = match.candidates.map(
    (candidate): Seen => ({ health: state.health(candidate.registry), presence: 'not-checked' }),
  );
  const isSource = (candidate: (typeof match.candidates)[number]) =>
    candidate.registry === match.source.registry && candidate.repository === match.source.repository;

  // One round trip on a miss: the candidates listed before the source are asked for the tag (with its body, so
  // that a matching digest proves presence by bytes) at the same time as the source, not after it answers; only a
  // candidate whose tag names other content needs a second request. Candidates after the source are asked only
  // if the source cannot serve.
  // The source's answer when the cache has it, read once: it also says whether this is a miss (no fresh answer).
  const asksSource = tag !== null && !reference.digest && !deadline.aborted;
  const cached = asksSource ? state.cachedTag?.(match.source, tag) : undefined;
  const fresh =
    cached !== undefined
      ? cached.kind === 'absent' || (cached.kind === 'digest' && cached.from === 'cache')
      : asksSource && state.knownTag?.(match.source, tag) !== undefined;
  let early: Map<number, Pending> | undefined;
  const miss = asksSource && state.knownTag !== undefined && !fresh && !isFailing(sourceHealth);
  if (miss) {
    early = new Map();
    for (const [index, candidate] of match.candidates.entries()) {
      if (isSource(candidate)) break;
      const seen = candidates[index];
      if (!seen || !usable(seen.health)) continue;
      const steps = (function* (): Steps<void> {
        seen.tag = (yield askTag(candidate, tag, true)) as TagAnswer;
      })();
      early.set(index, (yield { kind: 'start', steps }) as Pending);
    }
  }

  let digest: DigestAnswer;
  if (reference.digest) digest = { kind: 'digest', digest: reference.digest, from: 'reference' };
  else if (!tag) digest = { kind: 'unknown', cause: 'error' };
  else if (deadline.aborted) digest = UNKNOWN_TAG;
  else digest = cached ?? ((yield askTag(match.source, tag)) as TagAnswer);
  // Read after the lookup: a failing answer may just have taught the tracker that the source is down.
  sourceHealth = state.health(match.source.registry);

  // No lookup starts once the deadline has passed: a pod of thousands of images must not keep the registries
  // (and this process) busy after its answer is due.
  const lookups: Pending[] = [];
  if (digest.kind === 'digest' && (digest.from !== 'last-known' || isFailing(sourceHealth))) {
    const wanted = digest.digest;
    // The source just vouched for the digest, so it holds it: no need to ask it again.
    const sourceVouched = digest.from === 'registry' || digest.from === 'cache';
    for (const [index, candidate] of match.candidates.entries()) {
      const seen = candidates[index];
      if (!seen || !usable(seen.health)) continue;
      // The source defines the content, so its word is enough; a mirror is trusted once its bytes hashed right.
      const trust: Trust = isSource(candidate) ? 'claim' : 'bytes';
      const asked = early?.get(index);
      if (early?.has(index)) {
        // Its tag was asked with the source's: a matching digest was recorded as present (its bytes hashed).
        if (deadline.aborted) continue;
        const steps = (function* (): Steps<void> {
          yield { kind: 'join', pending: [asked] };
          seen.presence = state.knownPresence(candidate, wanted, trust);
          if (seen.presence === 'unknown' && !deadline.aborted) {
            seen.presence = (yield askPresence(candidate, wanted, trust)) as Presence;
          }
        })();
        lookups.push((yield { kind: 'start', steps }) as Pending);
        continue;
      }
      seen.presence =
        sourceVouched && isSource(candidate) ? 'present' : state.knownPresence(candidate, wanted, trust);
      // Candidates after the first one known to hold the digest cannot change the decision.
      if (seen.presence === 'present') break;
      if (seen.presence === 'mismatch') continue;
      if (seen.presence === 'absent' && !tag) continue;
      if (deadline.aborted) continue;
      const steps = (function* (): Steps<void> {
        if (seen.presence === 'unknown')
          seen.presence = (yield askPresence(candidate, wanted, trust)) as Presence;
        // Only an absent manifest raises the question of a stale mirror; a present one settles it.
        if (seen.presence === 'absent' && tag && !reference.digest && !deadline.aborted) {
          seen.tag = (yield askTag(candidate, tag)) as TagAnswer;
        }
      })();
      lookups.push((yield { kind: 'start', steps }) as Pending);
    }
  } else if (digest.kind === 'unknown' && isFailing(sourceHealth) && tag && unverifiedTags === 'allow') {
    // Nothing of the source is known: the candidates' tags are read with their bodies, so that an index and the
    // single-platform manifest a mirror holds under the same tag can be told apart.
    for (const [index, candidate] of match.candidates.entries()) {
      const seen = candidates[index];
      if (!seen || !usable(seen.health) || deadline.aborted) continue;
      const steps = (function* (): Steps<void> {
        seen.tag = (yield askTag(candidate, tag, true)) as TagAnswer;
      })();
      lookups.push((yield { kind: 'start', steps }) as Pending);
    }
  }
  if (lookups.length > 0) yield { kind: 'join', pending: lookups };
  const platforms = digest.kind === 'digest' ? state.platformsOf?.(digest.digest) : undefined;
  return platforms
    ? { digest, candidates, ownHealth, sourceHealth, platforms }
    : { digest, candidates, ownHealth, sourceHealth };
}
