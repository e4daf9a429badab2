// Gathers the registry state one decision needs, asking only what the decision cannot do without, within a deadline.
import type { Reference } from '../reference/index.js';
import { effectiveTag } from '../reference/index.js';
import { untilAborted } from '../state/deadline.js';
import { isFailing, type Presence, type RegistryState, type TagAnswer, type Trust } from '../state/state.js';
import type { CandidateObservation, DigestAnswer, Observation } from './decision.js';
import type { RouteMatch } from './route.js';

const UNKNOWN_TAG: TagAnswer = { kind: 'unknown', cause: 'deadline' };
const usable = (health: string) => health === 'healthy' || health === 'unknown';

export async function observe(
  reference: Reference,
  match: RouteMatch,
  state: RegistryState,
  signal: AbortSignal,
  unverifiedTags: 'allow' | 'deny',
): Promise<Observation> {
  const tag = effectiveTag(reference);
  // One failure makes a registry suspect while the prober confirms it (a probe timeout or two): a pod of its source
  // or own location waits for that verdict, within the deadline, rather than move on a blip.
  // Checked before anything is allocated: this runs for every image of every admission.
  const sourceSuspect = state.health(match.source.registry) === 'suspect';
  const ownSuspect = state.health(reference.registry) === 'suspect';
  if ((sourceSuspect || ownSuspect) && state.settledHealth && !signal.aborted) {
    await Promise.all([
      sourceSuspect ? state.settledHealth(match.source.registry, signal) : undefined,
      ownSuspect ? state.settledHealth(reference.registry, signal) : undefined,
    ]);
  }
  const ownHealth = state.health(reference.registry);
  const candidates = match.candidates.map(
    (candidate): { -readonly [K in keyof CandidateObservation]: CandidateObservation[K] } => ({
      health: state.health(candidate.registry),
      presence: 'not-checked',
    }),
  );
  const isSource = (candidate: (typeof match.candidates)[number]) =>
    candidate.registry === match.source.registry && candidate.repository === match.source.repository;

  // One round trip on a miss: the candidates listed before the source are asked for the tag (with its body, so
  // that a matching digest proves presence by bytes) at the same time as the source, not after it answers; only a
  // candidate whose tag names other content needs a second request. Candidates after the source are asked only
  // if the source cannot serve.
  const early = new Map<number, Promise<void>>();
  const miss =
    tag !== null &&
    !reference.digest &&
    !signal.aborted &&
    state.knownTag !== undefined &&
    state.knownTag(match.source, tag) === undefined &&
    !isFailing(state.health(match.source.registry));
  if (miss) {
    for (const [index, candidate] of match.candidates.entries()) {
      if (isSource(candidate)) break;
      const seen = candidates[index];
      if (!seen || !usable(seen.health)) continue;
      early.set(
        index,
        untilAborted(state.resolveTag(candidate, tag, signal, true), signal, UNKNOWN_TAG).then((answer) => {
          seen.tag = answer;
        }),
      );
    }
  }

  let digest: DigestAnswer;
  if (reference.digest) digest = { kind: 'digest', digest: reference.digest, from: 'reference' };
  else if (!tag) digest = { kind: 'unknown', cause: 'error' };
  else if (signal.aborted) digest = UNKNOWN_TAG;
  else digest = await untilAborted(state.resolveTag(match.source, tag, signal), signal, UNKNOWN_TAG);
  // Read after the lookup: a failing answer may just have taught the tracker that the source is down.
  const sourceHealth = state.health(match.source.registry);

  // No lookup starts once the deadline has passed: a pod of thousands of images must not keep the registries
  // (and this process) busy after its answer is due.
  const lookups: Promise<void>[] = [];
  const launch = (work: () => Promise<void>) => {
    if (!signal.aborted) lookups.push(work());
  };
  if (digest.kind === 'digest' && (digest.from !== 'last-known' || isFailing(sourceHealth))) {
    const wanted = digest.digest;
    // The source just vouched for the digest, so it holds it: no need to ask it again.
    const sourceVouched = digest.from === 'registry' || digest.from === 'cache';
    for (const [index, candidate] of match.candidates.entries()) {
      const seen = candidates[index];
      if (!seen || !usable(seen.health)) continue;
      // The source defines the content, so its word is enough; a mirror is trusted once its bytes hashed right.
      const trust: Trust = isSource(candidate) ? 'claim' : 'bytes';
      const asked = early.get(index);
      if (asked) {
        // Its tag was asked with the source's: a matching digest was recorded as present (its bytes hashed).
        launch(async () => {
          await asked;
          seen.presence = state.knownPresence(candidate, wanted, trust);
          if (seen.presence === 'unknown' && !signal.aborted) {
            seen.presence = await untilAborted<Presence>(
              state.hasManifest(candidate, wanted, signal, trust),
              signal,
              'unknown',
            );
          }
        });
        continue;
      }
      seen.presence =
        sourceVouched && isSource(candidate) ? 'present' : state.knownPresence(candidate, wanted, trust);
      // Candidates after the first one known to hold the digest cannot change the decision.
      if (seen.presence === 'present') break;
      if (seen.presence === 'mismatch') continue;
      if (seen.presence === 'absent' && !tag) continue;
      launch(async () => {
        if (seen.presence === 'unknown') {
          seen.presence = await untilAborted<Presence>(
            state.hasManifest(candidate, wanted, signal, trust),
            signal,
            'unknown',
          );
        }
        // Only an absent manifest raises the question of a stale mirror; a present one settles it.
        if (seen.presence === 'absent' && tag && !reference.digest && !signal.aborted) {
          seen.tag = await untilAborted(state.resolveTag(candidate, tag, signal), signal, UNKNOWN_TAG);
        }
      });
    }
  } else if (digest.kind === 'unknown' && isFailing(sourceHealth) && tag && unverifiedTags === 'allow') {
    // Nothing of the source is known: the candidates' tags are read with their bodies, so that an index and the
    // single-platform manifest a mirror holds under the same tag can be told apart.
    for (const [index, candidate] of match.candidates.entries()) {
      const seen = candidates[index];
      if (!seen || !usable(seen.health)) continue;
      launch(async () => {
        seen.tag = await untilAborted(state.resolveTag(candidate, tag, signal, true), signal, UNKNOWN_TAG);
      });
    }
  }
  await Promise.all(lookups);
  const platforms = digest.kind === 'digest' ? state.platformsOf?.(digest.digest) : undefined;
  return platforms
    ? { digest, candidates, ownHealth, sourceHealth, platforms }
    : { digest, candidates, ownHealth, sourceHealth };
}
