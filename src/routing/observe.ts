// Gathers the registry state one decision needs, asking only what the decision cannot do without, within a deadline.
import type { Reference } from '../reference/index.js';
import { effectiveTag } from '../reference/index.js';
import { untilAborted } from '../state/deadline.js';
import type { Presence, RegistryState, TagAnswer } from '../state/state.js';
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
  const ownHealth = state.health(reference.registry);
  const candidates = match.candidates.map(
    (candidate): { -readonly [K in keyof CandidateObservation]: CandidateObservation[K] } => ({
      health: state.health(candidate.registry),
      presence: 'not-checked',
    }),
  );

  let digest: DigestAnswer;
  if (reference.digest) digest = { kind: 'digest', digest: reference.digest, from: 'reference' };
  else if (tag) digest = await untilAborted(state.resolveTag(match.source, tag, signal), signal, UNKNOWN_TAG);
  else digest = { kind: 'unknown', cause: 'error' };

  const lookups: Promise<void>[] = [];
  if (digest.kind === 'digest') {
    const wanted = digest.digest;
    // The source just vouched for the digest, so it holds it: no need to ask it again.
    const sourceVouched = digest.from === 'registry' || digest.from === 'cache';
    for (const [index, candidate] of match.candidates.entries()) {
      const seen = candidates[index];
      if (!seen || !usable(seen.health)) continue;
      const isSource =
        candidate.registry === match.source.registry && candidate.repository === match.source.repository;
      seen.presence = sourceVouched && isSource ? 'present' : state.knownPresence(candidate, wanted);
      // Candidates after the first one known to hold the digest cannot change the decision.
      if (seen.presence === 'present') break;
      if (seen.presence === 'absent' && !tag) continue;
      lookups.push(
        (async () => {
          if (seen.presence === 'unknown') {
            seen.presence = await untilAborted<Presence>(
              state.hasManifest(candidate, wanted, signal),
              signal,
              'unknown',
            );
          }
          // Only an absent manifest raises the question of a stale mirror; a present one settles it.
          if (seen.presence === 'absent' && tag && !reference.digest) {
            seen.tag = await untilAborted(state.resolveTag(candidate, tag, signal), signal, UNKNOWN_TAG);
          }
        })(),
      );
    }
  } else if (tag && unverifiedTags === 'allow') {
    for (const [index, candidate] of match.candidates.entries()) {
      const seen = candidates[index];
      if (!seen || !usable(seen.health)) continue;
      lookups.push(
        untilAborted(state.resolveTag(candidate, tag, signal), signal, UNKNOWN_TAG).then((answer) => {
          seen.tag = answer;
        }),
      );
    }
  }
  await Promise.all(lookups);
  return { digest, candidates, ownHealth };
}
