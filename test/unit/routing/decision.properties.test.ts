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
import { locationKey, type TagAnswer } from '../../../src/state/state.js';
import {
  anyHealth,
  behaviourOf,
  candidatesAgreement,
  config,
  contentsOf,
  DIGESTS,
  deadlineAfterAnswers,
  heardInTime,
  INDEX,
  INDEX_CHILDREN,
  image,
  isDown,
  type RoutingConfig,
  servesDigest,
  WaitingState,
  type World,
  WorldState,
  wantedDigest,
  withHostDown,
  world,
  worldLiveState,
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

/** The image under the config, when it parses and a route takes it. */
function routedImage(cfg: RoutingConfig, written: string): Routed | null {
  const parsed = parseReference(written);
  const match = parsed.ok ? matchRoute(parsed.reference, cfg.routes) : null;
  if (!parsed.ok || !match) return null;
  // Counterexamples print the image, the routes and the policy, not every default of the config.
  const shown = () =>
    `${JSON.stringify(written)} routes=${JSON.stringify(cfg.routes)} secrets=${JSON.stringify(cfg.registries)} unverifiedTags=${cfg.admission.unverifiedTags}`;
  const value: Routed = { cfg, written, reference: parsed.reference, match };
  return Object.assign(value, { [fc.toStringMethod]: shown });
}

const routed: fc.Arbitrary<Routed> = config
  .chain((cfg) => image(cfg.routes).map((written) => routedImage(cfg, written)))
  .filter((r): r is Routed => r !== null);

const health = anyHealth;
/** Every answer a registry's tag can give: a digest (an index naming its platforms, too), absent, or none. */
const tagAnswer: fc.Arbitrary<TagAnswer> = fc.oneof(
  fc
    .record({
      kind: fc.constant('digest' as const),
      digest: fc.constantFrom(...DIGESTS, INDEX),
      from: fc.constantFrom('registry' as const, 'cache' as const, 'last-known' as const),
      read: fc.boolean(),
    })
    .map(({ read, ...answer }) =>
      read ? { ...answer, children: answer.digest === INDEX ? INDEX_CHILDREN : [] } : answer,
    ),
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
      'error' as const,
      'mismatch' as const,
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
      sourceHealth: health,
      unverifiedTags: fc.constantFrom('allow' as const, 'deny' as const),
      blocked: fc.array(fc.boolean(), {
        minLength: r.match.candidates.length,
        maxLength: r.match.candidates.length,
      }),
    })
    .map(({ digest, candidates, ownHealth, sourceHealth, unverifiedTags, blocked }) => ({
      ...r,
      observation: { digest, candidates, ownHealth, sourceHealth },
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

/**
 * The rule, stated on its own (docs/decisions.md, "How a decision is made"): what decide() must answer for an
 * observation. `rewrite` is the candidate's index, or null when the image stays; `reason` is exact.
 */
function rule(o: Observed): { rewrite: number | null; reason: Reason; digest: string | null } {
  const { digest, candidates: seen, sourceHealth, ownHealth } = o.observation;
  const stay = (reason: Reason) => ({ rewrite: null, reason, digest: null });
  const { candidates } = o.match;
  const own = candidates.findIndex((c) => c.isOwn);
  const usableAt = (i: number) => (candidates[i] as Candidate).isOwn || !o.blocked[i];
  // 1. The digest comes from the source: the reference's, its answer, or its last-known answer while it fails.
  if (digest.kind === 'digest' && (digest.from !== 'last-known' || isDown(sourceHealth))) {
    const wanted = digest.digest;
    for (const [i, c] of candidates.entries()) {
      const x = seen[i] as CandidateObservation;
      if (isDown(x.health)) continue;
      if (x.presence === 'present' && usableAt(i)) {
        if (c.isOwn) return { rewrite: null, reason: 'source-healthy', digest: wanted };
        const reason: Reason =
          own === -1
            ? isDown(ownHealth)
              ? 'source-unhealthy'
              : 'preferred-candidate'
            : own > i
              ? 'preferred-candidate'
              : isDown((seen[own] as CandidateObservation).health)
                ? 'source-unhealthy'
                : 'source-missing-digest';
        return { rewrite: i, reason, digest: wanted };
      }
      // Its own location up but silent or erring keeps the pod: the kubelet pulls from it.
      if (c.isOwn && x.presence === 'unknown') return stay('deadline');
      if (c.isOwn && x.presence === 'error') return stay('source-error');
    }
    const stale = seen.some(
      (x) =>
        !isDown(x.health) && x.presence === 'absent' && x.tag?.kind === 'digest' && x.tag.digest !== wanted,
    );
    const silent = seen.some((x) => !isDown(x.health) && x.presence === 'unknown');
    return stay(stale ? 'stale-mirror-skipped' : silent ? 'deadline' : 'no-candidate');
  }
  // 2. The source says the tag does not exist, or is up and unheard: nothing moves.
  if (digest.kind === 'absent') return stay('no-candidate');
  if (!isDown(sourceHealth)) {
    return stay(digest.kind === 'unknown' && digest.cause === 'error' ? 'source-error' : 'deadline');
  }
  // 3. The source fails and nothing of it is known: the candidates' tags, where they agree, if allowed.
  if (o.unverifiedTags === 'deny') return stay('unverified-denied');
  const heard = seen.map((x) => (isDown(x.health) ? undefined : x.tag));
  const named = [...new Set(heard.flatMap((t) => (t?.kind === 'digest' ? [t.digest] : [])))];
  const childrenOf = (d: string) =>
    new Set(heard.flatMap((t) => (t?.kind === 'digest' && t.digest === d ? (t.children ?? []) : [])));
  const covering = named.filter((d) => named.every((other) => other === d || childrenOf(d).has(other)));
  const agreed = named.length === 1 ? named[0] : covering.length === 1 ? covering[0] : undefined;
  if (named.length > 0 && agreed === undefined) return stay('unverified-conflict');
  for (const [i, c] of candidates.entries()) {
    const t = heard[i];
    if (t?.kind === 'digest' && t.digest === agreed && usableAt(i)) {
      return c.isOwn
        ? stay('unverified-tag')
        : { rewrite: i, reason: 'unverified-tag', digest: agreed as string };
    }
  }
  // A candidate that answered with an error is no reason to wait: only silence is.
  return stay(heard.some((t) => t?.kind === 'unknown' && t.cause !== 'error') ? 'deadline' : 'no-candidate');
}

describe('decide() over any observation of the candidates', () => {
  const RUNS = 1000;

  it('decides as the rule says: the same candidate, reason and digest', async (t) => {
    await checkProperty(
      t,
      // Outages of the source with nothing of it known are rare in the plain generator: they get their share.
      fc.oneof(
        observed,
        observed.filter((o) => o.observation.digest.kind !== 'digest' && isDown(o.observation.sourceHealth)),
      ),
      (o) => {
        const decision = decideObserved(o);
        const expected = rule(o);
        assert.equal(chosenIndex(o.match, decision), expected.rewrite ?? -1, decision.reason);
        assert.equal(decision.reason, expected.reason);
        if (expected.rewrite !== null) assert.equal(decision.digest, expected.digest);
        return decision.reason;
      },
      RUNS * 3,
    );
  });

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

  it('never routes by digest to a candidate that is down, not known to hold it, caught lying, or unusable', async (t) => {
    await checkProperty(
      t,
      observed.filter((o) => o.observation.digest.kind === 'digest'),
      (o) => {
        const decision = decideObserved(o);
        if (decision.target === null || decision.reason === 'unverified-tag') return decision.reason;
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

  it('uses a last-known digest only while the source is failing, and says how old it is', async (t) => {
    await checkProperty(
      t,
      observed.filter(
        (o) => o.observation.digest.kind === 'digest' && o.observation.digest.from === 'last-known',
      ),
      (o) => {
        const decision = decideObserved(o);
        if (!isDown(o.observation.sourceHealth)) {
          assert.equal(decision.target, null);
          assert.equal(decision.reason, 'deadline');
        }
        return `${o.observation.sourceHealth}: ${decision.reason}`;
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

  it('routes by a candidate’s tag only when the source fails, nothing of it is known, and the policy allows', async (t) => {
    await checkProperty(
      t,
      // Mostly the cases where tag routing is possible at all, with the others kept in to show it stays out.
      fc.oneof(
        observed.filter((o) => o.observation.digest.kind === 'unknown' && o.unverifiedTags === 'allow'),
        observed,
      ),
      (o) => {
        const decision = decideObserved(o);
        if (decision.reason !== 'unverified-tag') return 'other reasons';
        assert.equal(o.unverifiedTags, 'allow');
        assert.ok(isDown(o.observation.sourceHealth), 'the source fails');
        assert.equal(o.observation.digest.kind, 'unknown');
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
});

describe('observe() then decide() over generated registry worlds, through MemoryState and LiveState', () => {
  const RUNS = 400;
  // One in three cases is an outage of the source: the probes find it failing, and (in a fresh start) nothing of
  // it is known, so the candidates' own tags are all there is.
  const scenario = fc.oneof(
    { weight: 2, arbitrary: fc.record({ routed, world }) },
    {
      weight: 1,
      arbitrary: fc
        .record({ routed, world })
        .map((s) => ({ ...s, world: withHostDown(s.world, s.routed.match.source.registry) })),
    },
  );
  const STATES = {
    MemoryState: (w: World) => new WorldState(w),
    'LiveState over scripted clients': (w: World) => worldLiveState(w),
  } as const;

  async function run(kind: keyof typeof STATES, { routed: r, world: w }: { routed: Routed; world: World }) {
    const state = STATES[kind](w);
    const unverifiedTags = r.cfg.admission.unverifiedTags;
    const observation = await observe(r.reference, r.match, state, deadlineAfterAnswers(), unverifiedTags);
    const decision = decide(r.reference, r.match, observation, { unverifiedTags });
    return { state, observation, decision, wanted: wantedDigest(w, r.reference, r.match) };
  }

  /** The world's answer to "where does this image go": the rule stated on what the registries hold and do. */
  function expected(s: { routed: Routed; world: World }): { rewrite: number | null; reason?: Reason } {
    const { reference, match, cfg } = s.routed;
    const w = s.world;
    const wanted = wantedDigest(w, reference, match);
    const isSource = (c: Candidate) =>
      c.registry === match.source.registry && c.repository === match.source.repository;
    if (wanted !== null) {
      for (const [i, c] of match.candidates.entries()) {
        const b = behaviourOf(w, c.registry);
        if (isDown(b.health)) continue;
        if (!heardInTime(w, c)) {
          if (c.isOwn) return { rewrite: null, reason: b.hung ? 'deadline' : 'source-error' };
          continue;
        }
        // The source's word is taken for what it holds; a mirror's bytes must hash to the digest.
        const has = servesDigest(w, c, wanted) || (b.lies && isSource(c));
        if (has) return c.isOwn ? { rewrite: null, reason: 'source-healthy' } : { rewrite: i };
      }
      return { rewrite: null };
    }
    const tag = effectiveTag(reference);
    const sourceDown = isDown(behaviourOf(w, match.source.registry).health);
    if (!tag || reference.digest || !sourceDown) return { rewrite: null };
    if (cfg.admission.unverifiedTags === 'deny') return { rewrite: null, reason: 'unverified-denied' };
    const { named, agreed } = candidatesAgreement(w, reference, match);
    if (named.size > 0 && agreed === null) return { rewrite: null, reason: 'unverified-conflict' };
    const i = match.candidates.findIndex(
      (c) => heardInTime(w, c) && contentsOf(w, c).tags.get(tag) === agreed,
    );
    if (i === -1 || agreed === null) return { rewrite: null };
    return match.candidates[i]?.isOwn
      ? { rewrite: null, reason: 'unverified-tag' }
      : { rewrite: i, reason: 'unverified-tag' };
  }

  for (const kind of Object.keys(STATES) as (keyof typeof STATES)[]) {
    describe(kind, () => {
      it('sends the image where the rule says, for the reason it says', async (t) => {
        await checkProperty(
          t,
          scenario,
          async (s) => {
            const { decision } = await run(kind, s);
            const want = expected(s);
            assert.equal(chosenIndex(s.routed.match, decision), want.rewrite ?? -1, decision.reason);
            if (want.reason) assert.equal(decision.reason, want.reason);
            return decision.reason;
          },
          RUNS,
        );
      });

      it('never routes to a candidate that lacks the digest, is down, hangs, errs, or lies about it', async (t) => {
        await checkProperty(
          t,
          scenario,
          async (s) => {
            const { decision, wanted } = await run(kind, s);
            if (decision.target === null) return decision.reason;
            const candidate = decision.candidate as Candidate;
            const pinned = decision.digest as string;
            assert.ok(heardInTime(s.world, candidate), `${candidate.registry} answered in time`);
            assert.ok(servesDigest(s.world, candidate, pinned), `${locationKey(candidate)} holds ${pinned}`);
            if (decision.reason !== 'unverified-tag') assert.equal(pinned, wanted);
            return decision.reason;
          },
          RUNS,
        );
      });

      it('pins a rewritten image to its digest under the candidate’s repository, with a reason from the set', async (t) => {
        await checkProperty(
          t,
          scenario,
          async (s) => {
            const { decision } = await run(kind, s);
            assert.ok(REASONS.includes(decision.reason));
            assertWellFormedTarget(s.routed.reference, decision);
            return decision.target ? 'rewritten' : 'unchanged';
          },
          RUNS,
        );
      });
    });
  }

  it('observes from the cache at once exactly what waiting for every answer observes, waiting only when it must', async (t) => {
    await checkProperty(
      t,
      // Admissions before this one fill the caches: other images under the same routes, then this image none,
      // one or two times (with none at all, every answer needs a registry).
      scenario.chain((s) =>
        fc.record({
          s: fc.constant(s),
          others: fc.array(image(s.routed.cfg.routes), { maxLength: 3 }),
          again: fc.nat(2),
        }),
      ),
      async ({ s: { routed: r, world: w }, others, again }) => {
        const unverifiedTags = r.cfg.admission.unverifiedTags;
        const history = [
          ...others.flatMap((other) => routedImage(r.cfg, other) ?? []),
          ...Array(again).fill(r),
        ];
        // Twin states of the same world with the same history: one answers from its cache at once, the other is
        // waited for on every answer, as the admission path did before it had a synchronous path.
        const direct = worldLiveState(w);
        const twin = worldLiveState(w);
        for (const before of history) {
          for (const state of [direct, twin]) {
            await observe(before.reference, before.match, state, deadlineAfterAnswers(), unverifiedTags);
          }
        }
        const waiting = new WaitingState(twin);
        const atOnce = observe(r.reference, r.match, direct, deadlineAfterAnswers(), unverifiedTags);
        const waited = await observe(r.reference, r.match, waiting, deadlineAfterAnswers(), unverifiedTags);
        assert.equal(
          atOnce instanceof Promise,
          waiting.neededMore,
          'decided at once exactly when every answer was in the cache',
        );
        const observation = await atOnce;
        assert.deepEqual(observation, waited);
        const decision = decide(r.reference, r.match, observation, { unverifiedTags });
        assert.deepEqual(decision, decide(r.reference, r.match, waited, { unverifiedTags }));
        return `${atOnce instanceof Promise ? 'waited' : 'at once'}: ${decision.reason}`;
      },
      RUNS,
    );
  });

  it('asks a registry the prober counts down for nothing but the last known digest of the source’s tag', async (t) => {
    await checkProperty(
      t,
      scenario,
      async (s) => {
        const { state } = await run('MemoryState', s);
        const lookups = (state as WorldState).lookups;
        const sourceTag = `tag ${locationKey(s.routed.match.source)}:`;
        for (const lookup of lookups) {
          const key = lookup.slice(lookup.indexOf(' ') + 1);
          const host = key.slice(0, key.indexOf('/'));
          if (lookup.startsWith(sourceTag)) continue;
          assert.ok(!isDown(behaviourOf(s.world, host).health), `asked ${lookup}`);
        }
        return `${lookups.length} lookups`;
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
        sourceHealth: 'unhealthy',
      },
      { unverifiedTags: 'deny' },
    );
    assert.equal(decision.target, `docker.io/library/app:1.0@${DIGESTS[0]}`);
    assertWellFormedTarget(reference, decision);
  });
});
