// The routing decision for one image: which candidate serves it and why. Pure: it reads an observation, never fetches.
import type { Reference } from '../reference/index.js';
import { effectiveTag } from '../reference/index.js';
import { type Health, isFailing, locationKey, type Presence, type TagAnswer } from '../state/state.js';
import type { Candidate, RouteMatch } from './route.js';

/** A closed set of reasons: audit log, metrics and kubectl warnings share it. */
export const REASONS = [
  // The image is rewritten:
  'source-unhealthy', // its own registry is down or rate-limited
  'source-missing-digest', // its own location is up but does not hold the digest
  'preferred-candidate', // an earlier candidate in the route holds the digest
  'unverified-tag', // the source is down and no digest of it is known; the candidates agree on the tag (allow)
  // The image is left as it is:
  'source-healthy', // its own location is the first healthy candidate holding the digest
  'stale-mirror-skipped', // candidates were skipped because their tag points at other content
  'no-candidate', // no healthy candidate holds the digest
  'unverified-denied', // the source is down, no digest of it is known and unverifiedTags is deny
  'unverified-conflict', // the source is down, no digest of it is known, and the candidates' tags disagree
  'deadline', // registry state was not known within the admission deadline
  'source-error', // its own location answered the lookup with an error: no reason to move the pod
  'no-route', // no route matches the image
  'invalid-reference', // the image is not a valid reference
  'already-rewritten', // regroute rewrote this container before (reinvocation)
  'image-cap', // the review names more images than one admission routes (MAX_IMAGES_PER_REVIEW)
] as const;
export type Reason = (typeof REASONS)[number];

/** Images left where they are because something was down, stale, late or wrong: what users and operators are told. */
export const LEFT_FOR_A_FAULT: ReadonlySet<Reason> = new Set([
  'deadline',
  'source-error',
  'no-candidate',
  'stale-mirror-skipped',
  'unverified-denied',
  'unverified-conflict',
]);

/** Where the digest to route came from. */
export type DigestAnswer =
  | TagAnswer
  | { readonly kind: 'digest'; readonly digest: string; readonly from: 'reference' };

export interface CandidateObservation {
  readonly health: Health;
  /** Whether the candidate holds the digest; 'not-checked' when the decision did not need to know. */
  readonly presence: Presence | 'not-checked';
  /** The candidate's own answer for the tag: tells a stale mirror from a missing image, and serves unverified tags. */
  readonly tag?: TagAnswer;
}

export interface Observation {
  readonly digest: DigestAnswer;
  /** Parallel to the route match's candidates. */
  readonly candidates: readonly CandidateObservation[];
  /** Health of the registry the image points at, which need not be a candidate. */
  readonly ownHealth: Health;
  /** Health of the route's source, which defines the content of a tag. */
  readonly sourceHealth: Health;
  /** The platform manifests the digest names when it is an index and its body has been read. */
  readonly platforms?: readonly string[];
}

export type Verdict =
  | 'chosen'
  | 'suspect' // a failure seen, its confirmation not in by the deadline
  | 'unhealthy'
  | 'rate-limited'
  | 'absent'
  | 'stale'
  | 'unknown'
  | 'error'
  | 'mismatch' // served bytes that do not hash to the digest it claimed
  | 'not-checked'
  | 'no-tag'
  | 'single-platform' // its tag names one platform's manifest of the index another candidate holds
  | 'conflict' // its tag names content the other candidates' tags do not
  | 'pull-secret-unavailable';

export interface CandidateVerdict {
  /** The candidate's repository for this image (`registry/repository`), as an operator would look it up. */
  readonly location: string;
  readonly verdict: Verdict;
}

export interface Decision {
  readonly reason: Reason;
  /** The rewritten image; null when the image stays as it is. */
  readonly target: string | null;
  /** The digest the pod will run, when known. */
  readonly digest: string | null;
  readonly candidate: Candidate | null;
  readonly verdicts: readonly CandidateVerdict[];
  /** Set when the digest is the source's last-known answer for the tag (the source failing): its age. */
  readonly lastKnownAgeMs?: number;
}

export interface DecideOptions {
  readonly unverifiedTags: 'allow' | 'deny';
  /** False when the pod cannot use the candidate (e.g. its pull secret cannot be added): skipped. */
  readonly canUse?: (candidate: Candidate) => boolean;
}

export const unchanged = (reason: Reason, verdicts: readonly CandidateVerdict[] = []): Decision => ({
  reason,
  target: null,
  digest: null,
  candidate: null,
  verdicts,
});

const isDown = isFailing;

function verdictFor(
  observation: CandidateObservation,
  digest: string,
  platforms: readonly string[] | undefined,
): Verdict {
  if (isDown(observation.health)) return observation.health;
  switch (observation.presence) {
    case 'present':
      return 'chosen';
    case 'absent': {
      const tagged = observation.tag?.kind === 'digest' ? observation.tag.digest : null;
      if (tagged === null || tagged === digest) return 'absent';
      // Its tag names one platform of the index the source names: a mirror filled by pulling one node's image.
      return platforms?.includes(tagged) ? 'single-platform' : 'stale';
    }
    default:
      return observation.presence;
  }
}

/** Why a pod leaves its own location for `chosen`, given what was seen of the locations before it. */
function rewriteReason(
  chosenIndex: number,
  match: RouteMatch,
  verdicts: readonly CandidateVerdict[],
  ownHealth: Health,
): Reason {
  const ownIndex = match.candidates.findIndex((candidate) => candidate.isOwn);
  if (ownIndex === -1) return isDown(ownHealth) ? 'source-unhealthy' : 'preferred-candidate';
  if (ownIndex > chosenIndex) return 'preferred-candidate';
  const own = verdicts[ownIndex]?.verdict;
  return own === 'suspect' || own === 'unhealthy' || own === 'rate-limited'
    ? 'source-unhealthy'
    : 'source-missing-digest';
}

function whyNone(verdicts: readonly CandidateVerdict[]): Reason {
  if (verdicts.some((v) => v.verdict === 'stale' || v.verdict === 'single-platform')) {
    return 'stale-mirror-skipped';
  }
  if (verdicts.some((v) => v.verdict === 'unknown')) return 'deadline';
  return 'no-candidate';
}

function targetOf(candidate: Candidate, reference: Reference, digest: string | null): string {
  const tag = reference.digest ? reference.tag : effectiveTag(reference);
  return `${candidate.registry}/${candidate.repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
}

/** Walks the candidates in order and picks the first healthy one holding the digest. */
function decideByDigest(
  reference: Reference,
  match: RouteMatch,
  observation: Observation,
  digest: string,
  canUse: (candidate: Candidate) => boolean,
): Decision {
  const verdicts: CandidateVerdict[] = [];
  for (const [index, candidate] of match.candidates.entries()) {
    const seen = observation.candidates[index];
    let verdict: Verdict = seen ? verdictFor(seen, digest, observation.platforms) : 'not-checked';
    if (verdict === 'chosen' && !candidate.isOwn && !canUse(candidate)) verdict = 'pull-secret-unavailable';
    verdicts.push({ location: locationKey(candidate), verdict });
    if (verdict === 'chosen') {
      const rest = match.candidates
        .slice(index + 1)
        .map((c) => ({ location: locationKey(c), verdict: 'not-checked' as const }));
      const all = [...verdicts, ...rest];
      if (candidate.isOwn) return { ...unchanged('source-healthy', all), digest };
      return {
        reason: rewriteReason(index, match, verdicts, observation.ownHealth),
        target: targetOf(candidate, reference, digest),
        digest,
        candidate,
        verdicts: all,
      };
    }
    // Its own location not answering in time, or answering with an error, is no reason to move the pod
    // elsewhere: the safe default stands.
    if (verdict === 'unknown' && candidate.isOwn) return unchanged('deadline', verdicts);
    if (verdict === 'error' && candidate.isOwn) return unchanged('source-error', verdicts);
  }
  return unchanged(whyNone(verdicts), verdicts);
}

/**
 * The digest the candidates' tags agree on: the only one they name, or an index naming every other one they name
 * (mirrors filled by pulling one platform hold a child of the index under the tag). Null when they disagree otherwise.
 */
function agreedDigest(tags: readonly TagAnswer[]): string | null {
  const answers = tags.filter((t): t is Extract<TagAnswer, { kind: 'digest' }> => t.kind === 'digest');
  const digests = [...new Set(answers.map((a) => a.digest))];
  if (digests.length <= 1) return digests[0] ?? null;
  const covering = digests.filter((digest) => {
    const children = new Set(answers.flatMap((a) => (a.digest === digest ? (a.children ?? []) : [])));
    return digests.every((other) => other === digest || children.has(other));
  });
  return covering.length === 1 ? (covering[0] as string) : null;
}

/**
 * The source is failing and no digest of it is known: the candidates' own tags may route the pod, only where they
 * agree on the content, and only if the policy allows. A mirror's tag never overrules another's.
 */
function decideByTag(
  reference: Reference,
  match: RouteMatch,
  observation: Observation,
  options: DecideOptions,
): Decision {
  if (options.unverifiedTags === 'deny') return unchanged('unverified-denied');
  const canUse = options.canUse ?? (() => true);
  const heard = match.candidates.map((_, index) => {
    const seen = observation.candidates[index];
    return seen && !isDown(seen.health) ? seen.tag : undefined;
  });
  const agreed = agreedDigest(heard.filter((t): t is TagAnswer => t !== undefined));
  const anyDigest = heard.some((t) => t?.kind === 'digest');
  const verdicts: CandidateVerdict[] = [];
  for (const [index, candidate] of match.candidates.entries()) {
    const seen = observation.candidates[index];
    const tag = heard[index];
    let verdict: Verdict;
    if (!seen) verdict = 'not-checked';
    else if (isDown(seen.health)) verdict = seen.health;
    else if (tag?.kind === 'digest') {
      if (agreed === null) verdict = 'conflict';
      else if (tag.digest !== agreed) verdict = 'single-platform';
      else verdict = candidate.isOwn || canUse(candidate) ? 'chosen' : 'pull-secret-unavailable';
    } else if (tag?.kind === 'unknown') verdict = tag.cause === 'error' ? 'error' : 'unknown';
    else verdict = tag ? 'no-tag' : 'not-checked';
    verdicts.push({ location: locationKey(candidate), verdict });
    if (verdict === 'chosen' && agreed !== null) {
      if (candidate.isOwn) return unchanged('unverified-tag', verdicts);
      return {
        reason: 'unverified-tag',
        target: targetOf(candidate, reference, agreed),
        digest: agreed,
        candidate,
        verdicts,
      };
    }
  }
  if (anyDigest && agreed === null) return unchanged('unverified-conflict', verdicts);
  return unchanged(verdicts.some((v) => v.verdict === 'unknown') ? 'deadline' : 'no-candidate', verdicts);
}

/**
 * The rule (docs/decisions.md, "How a decision is made"): a pod is pinned only to the digest its source named —
 * the reference's own, the source's fresh answer for the tag, or its last-known answer while the probes find the
 * source failing. A source that is up but slow or erring keeps its pod; a mirror's tag speaks only when the source
 * is failing and nothing of it is known.
 */
export function decide(
  reference: Reference,
  match: RouteMatch,
  observation: Observation,
  options: DecideOptions,
): Decision {
  const { digest } = observation;
  const sourceFailing = isDown(observation.sourceHealth);
  if (digest.kind === 'digest' && (digest.from !== 'last-known' || sourceFailing)) {
    const decision = decideByDigest(
      reference,
      match,
      observation,
      digest.digest,
      options.canUse ?? (() => true),
    );
    return digest.from === 'last-known' && digest.ageMs !== undefined
      ? { ...decision, lastKnownAgeMs: digest.ageMs }
      : decision;
  }
  // The source says the tag does not exist: no other registry's tag can make it so.
  if (digest.kind === 'absent') return unchanged('no-candidate');
  if (!sourceFailing) {
    // The source is up: it defines the tag, and the kubelet pulls from it; not knowing its answer moves nothing.
    return unchanged(digest.kind === 'unknown' && digest.cause === 'error' ? 'source-error' : 'deadline');
  }
  return decideByTag(reference, match, observation, options);
}
