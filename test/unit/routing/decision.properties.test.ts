// Properties of the routing decision over generated routes, references and registry state: whatever the state, an
// image is either left as it is or pinned to a healthy candidate that holds exactly the digest the pod asked for.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { effectiveTag, parseReference, type Reference } from '../../../src/reference/index.js';
import {
  type CandidateObservation,
  type Decision,
  decide,
  type Observation,
  REASONS,
  type Reason,
} from '../../../src/routing/decision.js';
import { observe } from '../../../src/routing/observe.js';
import { type Candidate, matchRoute, type RouteMatch } from '../../../src/routing/route.js';
import { type Health, locationKey, type TagAnswer } from '../../../src/state/state.js';
import {
  behaviourOf,
  config,
  contentsOf,
  DIGESTS,
  deadlineAfterAnswers,
  heardInTime,
  holds,
  image,
  isDown,
  type RoutingConfig,
  type World,
  WorldState,
  wantedDigest,
  world,
} from '../../helpers/routing-world.js';
import { checkProperty } from '../../helpers/runs.js';

const REWRITE_REASONS: readonly Reason[] = [
  'source-unhealthy',
  'source-missing-digest',
  'preferred-candidate',
  'unverified-tag',
];

/** A routed image: its config, its parsed reference and the route that takes it. */
interface Routed {
  readonly cfg: RoutingConfig;
  readonly written: string;
  readonly reference: Reference;
  readonly match: RouteMatch;
}

const routed: fc.Arbitrary<Routed> = config
  .chain((cfg) => image(cfg.routes).map((written) => ({ cfg, written })))
  .map(({ cfg, written }): Routed | null => {
    const parsed = parseReference(written);
    const match = parsed.ok ? matchRoute(parsed.reference, cfg.routes) : null;
    if (!parsed.ok || !match) return null;
    // Counterexamples print the image, the routes and the policy, not every default of the config.
    const shown = () =>
      `${JSON.stringify(written)} routes=${JSON.stringify(cfg.routes)} secrets=${JSON.stringify(cfg.registries)} unverifiedTags=${cfg.admission.unverifiedTags}`;
    const value: Routed = { cfg, written, reference: parsed.reference, match };
    return Object.assign(value, { [fc.toStringMethod]: shown });
  })
  .filter((r): r is Routed => r !== null);

const health = fc.constantFrom<Health>(
  'healthy',
  'healthy',
  'healthy',
  'unhealthy',
  'rate-limited',
  'unknown',
);
const tagAnswer: fc.Arbitrary<TagAnswer> = fc.oneof(
  fc.record({
    kind: fc.constant('digest' as const),
    digest: fc.constantFrom(...DIGESTS),
    from: fc.constantFrom('registry' as const, 'cache' as const, 'last-known' as const),
  }),
  fc.constant({ kind: 'absent' as const }),
  fc.record({
    kind: fc.constant('unknown' as const),
    cause: fc.constantFrom('deadline' as const, 'unhealthy' as const, 'error' as const),
  }),
);
const candidateObservation: fc.Arbitrary<CandidateObservation> = fc.record(
  {
    health,
    presence: fc.constantFrom(
      'present' as const,
      'present' as const,
      'absent' as const,
      'unknown' as const,
      'not-checked' as const,
    ),
    tag: tagAnswer,
  },
  { requiredKeys: ['health', 'presence'] },
);

/** A routed image with an arbitrary observation of its candidates, straight into decide(). */
interface Observed extends Routed {
  readonly observation: Observation;
  readonly unverifiedTags: 'allow' | 'deny';
  /** Candidates the pod may not use (their pull secret cannot be added), by index. */
  readonly blocked: readonly boolean[];
}

const observed: fc.Arbitrary<Observed> = routed.chain((r) =>
  fc
    .record({
      digest: r.reference.digest
        ? fc.constant({ kind: 'digest' as const, digest: r.reference.digest, from: 'reference' as const })
        : tagAnswer,
      candidates: fc.array(candidateObservation, {
        minLength: r.match.candidates.length,
        maxLength: r.match.candidates.length,
      }),
      ownHealth: health,
      unverifiedTags: fc.constantFrom('allow' as const, 'deny' as const),
      blocked: fc.array(fc.boolean(), {
        minLength: r.match.candidates.length,
        maxLength: r.match.candidates.length,
      }),
    })
    .map(({ digest, candidates, ownHealth, unverifiedTags, blocked }) => ({
      ...r,
      observation: { digest, candidates, ownHealth },
      unverifiedTags,
      blocked,
    })),
);

const canUseOf =
  (o: Observed) =>
  (candidate: Candidate): boolean =>
    !o.blocked[o.match.candidates.indexOf(candidate)];

const decideObserved = (o: Observed): Decision =>
  decide(o.reference, o.match, o.observation, { unverifiedTags: o.unverifiedTags, canUse: canUseOf(o) });

/** A candidate decide() may route to by digest: not down, known to hold it, and usable by the pod. */
const holdsUsably = (o: Observed, index: number): boolean => {
  const candidate = o.match.candidates[index] as Candidate;
  const seen = o.observation.candidates[index] as CandidateObservation;
  return !isDown(seen.health) && seen.presence === 'present' && (candidate.isOwn || canUseOf(o)(candidate));
};

const chosenIndex = (match: RouteMatch, decision: Decision): number =>
  decision.candidate ? match.candidates.indexOf(decision.candidate) : -1;

/** The rewritten image names the candidate's repository and pins the digest, keeping the tag a reader knows. */
function assertWellFormedTarget(reference: Reference, decision: Decision): void {
  if (decision.target === null) return;
  const parsed = parseReference(decision.target);
  assert.ok(parsed.ok, `target ${decision.target} parses`);
  assert.equal(parsed.reference.registry, decision.candidate?.registry);
  assert.equal(parsed.reference.repository, decision.candidate?.repository);
  assert.ok(decision.digest, 'a rewritten image carries a digest');
  assert.equal(parsed.reference.digest, decision.digest);
  assert.equal(parsed.reference.tag, reference.digest ? reference.tag : effectiveTag(reference));
}

describe('decide() over any observation of the candidates', () => {
  const RUNS = 1000;

  it('gives every decision a reason from the closed set, and a target only with a rewriting reason', async (t) => {
    await checkProperty(
      t,
      observed,
      (o) => {
        const decision = decideObserved(o);
        assert.ok(REASONS.includes(decision.reason), decision.reason);
        assert.equal(decision.target === null, decision.candidate === null);
        if (decision.target) assert.ok(REWRITE_REASONS.includes(decision.reason), decision.reason);
        assert.ok(decision.verdicts.length <= o.match.candidates.length);
        return decision.reason;
      },
      RUNS,
    );
  });

  it('never routes by digest to a candidate that is down, lacks the digest, or cannot be used', async (t) => {
    await checkProperty(
      t,
      observed.filter((o) => o.observation.digest.kind === 'digest'),
      (o) => {
        const decision = decideObserved(o);
        if (decision.target === null) return decision.reason;
        const index = chosenIndex(o.match, decision);
        assert.ok(index >= 0, 'the candidate is one of the route');
        assert.ok(holdsUsably(o, index), `chose candidate ${index} of ${JSON.stringify(o.observation)}`);
        assert.equal(decision.candidate?.isOwn, false, 'rewriting to its own location changes nothing');
        assert.equal(decision.digest, (o.observation.digest as { digest: string }).digest);
        return decision.reason;
      },
      RUNS,
    );
  });

  it('passes over no earlier candidate holding the digest, and stays put when its own location is first', async (t) => {
    await checkProperty(
      t,
      observed.filter((o) => o.observation.digest.kind === 'digest'),
      (o) => {
        const decision = decideObserved(o);
        const first = o.match.candidates.findIndex((_, i) => holdsUsably(o, i));
        const ownUnanswered = o.match.candidates.findIndex(
          (c, i) =>
            c.isOwn &&
            o.observation.candidates[i]?.presence === 'unknown' &&
            !isDown(o.observation.candidates[i]?.health ?? 'unknown'),
        );
        if (first === -1) {
          assert.equal(decision.target, null);
          assert.ok(
            ['stale-mirror-skipped', 'deadline', 'no-candidate'].includes(decision.reason),
            decision.reason,
          );
        } else if (ownUnanswered !== -1 && ownUnanswered < first) {
          // Its own location not answering in time is no reason to move the pod: the safe default stands.
          assert.deepEqual([decision.target, decision.reason], [null, 'deadline']);
        } else if (o.match.candidates[first]?.isOwn) {
          assert.deepEqual([decision.target, decision.reason], [null, 'source-healthy']);
        } else {
          assert.equal(chosenIndex(o.match, decision), first);
        }
        return decision.reason;
      },
      RUNS,
    );
  });

  it('pins a rewritten image to the digest it was routed by, under the candidate’s repository', async (t) => {
    await checkProperty(
      t,
      observed,
      (o) => {
        const decision = decideObserved(o);
        assertWellFormedTarget(o.reference, decision);
        return decision.target ? 'rewritten' : 'unchanged';
      },
      RUNS,
    );
  });

  it('routes by an unverified tag only when no digest is known and unverifiedTags is allow', async (t) => {
    await checkProperty(
      t,
      // Mostly the cases where tag routing is possible at all, with the others kept in to show it stays out.
      fc.oneof(
        observed.filter((o) => o.observation.digest.kind !== 'digest' && o.unverifiedTags === 'allow'),
        observed,
      ),
      (o) => {
        const decision = decideObserved(o);
        if (decision.reason !== 'unverified-tag') return 'other reasons';
        assert.equal(o.unverifiedTags, 'allow');
        assert.notEqual(o.observation.digest.kind, 'digest');
        if (decision.target === null) return 'unverified-tag, own location';
        const index = chosenIndex(o.match, decision);
        const seen = o.observation.candidates[index] as CandidateObservation;
        assert.ok(!isDown(seen.health));
        assert.equal(seen.tag?.kind, 'digest');
        assert.equal(decision.digest, (seen.tag as { digest: string }).digest);
        return 'unverified-tag, rewritten';
      },
      RUNS,
    );
  });

  it('leaves the image unchanged when no digest is known and unverifiedTags is deny', async (t) => {
    await checkProperty(
      t,
      observed.filter((o) => o.observation.digest.kind !== 'digest' && o.unverifiedTags === 'deny'),
      (o) => {
        const decision = decideObserved(o);
        assert.equal(decision.target, null);
        assert.ok(['unverified-denied', 'deadline'].includes(decision.reason), decision.reason);
        return decision.reason;
      },
      RUNS,
    );
  });
});

describe('observe() then decide() over generated registry worlds (MemoryState)', () => {
  const RUNS = 500;
  const scenario = fc.record({ routed, world });

  async function run({ routed: r, world: w }: { routed: Routed; world: World }) {
    const state = new WorldState(w);
    const unverifiedTags = r.cfg.admission.unverifiedTags;
    const observation = await observe(r.reference, r.match, state, deadlineAfterAnswers(), unverifiedTags);
    const decision = decide(r.reference, r.match, observation, { unverifiedTags });
    return { state, observation, decision, wanted: wantedDigest(w, r.reference, r.match) };
  }

  it('never routes to a candidate that lacks the digest, is down, or did not answer', async (t) => {
    await checkProperty(
      t,
      scenario,
      async (s) => {
        const { decision, wanted } = await run(s);
        if (decision.target === null || wanted === null) return decision.reason;
        const candidate = decision.candidate as Candidate;
        const { reference, match } = s.routed;
        assert.ok(
          heardInTime(s.world, reference, match, candidate),
          `${candidate.registry} answered in time`,
        );
        assert.ok(
          holds(s.world, candidate, wanted),
          `${candidate.registry}/${candidate.repository} holds ${wanted}`,
        );
        return decision.reason;
      },
      RUNS,
    );
  });

  it('routes by the digest the pod asked for: its own, the source’s for the tag, or the last one seen', async (t) => {
    await checkProperty(
      t,
      scenario,
      async (s) => {
        const { decision, wanted } = await run(s);
        if (decision.target === null || decision.reason === 'unverified-tag') return decision.reason;
        assert.equal(decision.digest, wanted);
        return decision.reason;
      },
      RUNS,
    );
  });

  it('passes over no earlier candidate that answers and holds the digest', async (t) => {
    await checkProperty(
      t,
      scenario,
      async (s) => {
        const { decision, wanted } = await run(s);
        if (wanted === null) return 'no digest known';
        const { reference, match } = s.routed;
        const { candidates } = match;
        const first = candidates.findIndex(
          (c) => heardInTime(s.world, reference, match, c) && holds(s.world, c, wanted),
        );
        const ownHung = candidates.findIndex(
          (c) =>
            c.isOwn &&
            !isDown(behaviourOf(s.world, c.registry).health) &&
            behaviourOf(s.world, c.registry).hung,
        );
        if (first === -1) {
          assert.equal(decision.target, null, 'nothing to route to');
        } else if (ownHung !== -1 && ownHung < first) {
          assert.deepEqual([decision.target, decision.reason], [null, 'deadline']);
        } else if (candidates[first]?.isOwn) {
          assert.deepEqual([decision.target, decision.reason], [null, 'source-healthy']);
        } else {
          assert.equal(chosenIndex(s.routed.match, decision), first);
        }
        return decision.reason;
      },
      RUNS,
    );
  });

  it('routes by an unverified tag only with allow, when no digest can be known, to the candidate’s own tag', async (t) => {
    const noDigest = scenario.filter(
      (s) =>
        s.routed.cfg.admission.unverifiedTags === 'allow' &&
        wantedDigest(s.world, s.routed.reference, s.routed.match) === null,
    );
    await checkProperty(
      t,
      fc.oneof(noDigest, scenario),
      async (s) => {
        const { decision, wanted } = await run(s);
        if (decision.reason !== 'unverified-tag') return 'other reasons';
        assert.equal(s.routed.cfg.admission.unverifiedTags, 'allow');
        assert.equal(wanted, null);
        if (decision.target === null) return 'unverified-tag, own location';
        const candidate = decision.candidate as Candidate;
        assert.ok(!isDown(behaviourOf(s.world, candidate.registry).health));
        const tag = effectiveTag(s.routed.reference) as string;
        const contents = contentsOf(s.world, candidate);
        // A candidate asked after the deadline is heard by its last known digest for the tag, as the source is.
        const expected = heardInTime(s.world, s.routed.reference, s.routed.match, candidate)
          ? contents.tags.get(tag)
          : contents.lastKnownTags.get(tag);
        assert.equal(decision.digest, expected);
        return 'unverified-tag, rewritten';
      },
      RUNS,
    );
  });

  it('pins a rewritten image to its digest under the candidate’s repository, with a reason from the set', async (t) => {
    await checkProperty(
      t,
      scenario,
      async (s) => {
        const { decision } = await run(s);
        assert.ok(REASONS.includes(decision.reason));
        assertWellFormedTarget(s.routed.reference, decision);
        return decision.target ? 'rewritten' : 'unchanged';
      },
      RUNS,
    );
  });

  it('asks a registry the prober counts down for nothing but the last known digest of the source’s tag', async (t) => {
    await checkProperty(
      t,
      scenario,
      async (s) => {
        const { state } = await run(s);
        const sourceTag = `tag ${locationKey(s.routed.match.source)}:`;
        for (const lookup of state.lookups) {
          const key = lookup.slice(lookup.indexOf(' ') + 1);
          const host = key.slice(0, key.indexOf('/'));
          if (lookup.startsWith(sourceTag)) continue;
          assert.ok(!isDown(behaviourOf(s.world, host).health), `asked ${lookup}`);
        }
        return `${state.lookups.length} lookups`;
      },
      RUNS,
    );
  });
});

// Found by the properties above: a one-component repository on Docker Hub is read as library/<name> by every
// runtime, so a candidate there must be checked under that name, or the kubelet pulls from another repository.
describe('a Docker Hub candidate with a one-component remainder', () => {
  const reference: Reference = {
    registry: 'quay.io',
    repository: 'team/app',
    tag: '1.0',
    digest: DIGESTS[0] as string,
  };
  const match = matchRoute(reference, [
    { prefix: 'quay.io/team', registries: ['quay.io/team', 'docker.io'] },
  ]);

  it('is checked under library/, the repository the rewritten image names', () => {
    assert.deepEqual(
      match?.candidates.map((c) => `${c.registry}/${c.repository}`),
      ['quay.io/team/app', 'docker.io/library/app'],
    );
    const decision = decide(
      reference,
      match as RouteMatch,
      {
        digest: { kind: 'digest', digest: DIGESTS[0] as string, from: 'reference' },
        candidates: [
          { health: 'unhealthy', presence: 'not-checked' },
          { health: 'healthy', presence: 'present' },
        ],
        ownHealth: 'unhealthy',
      },
      { unverifiedTags: 'deny' },
    );
    assert.equal(decision.target, `docker.io/library/app:1.0@${DIGESTS[0]}`);
    assertWellFormedTarget(reference, decision);
  });
});
