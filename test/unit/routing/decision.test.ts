import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Reference } from '../../../src/reference/index.js';
import { type CandidateObservation, decide, type Observation } from '../../../src/routing/decision.js';
import { matchRoute, type RouteMatch } from '../../../src/routing/route.js';
import { digestOf } from '../../helpers/digests.js';

const D = digestOf('current');
const OLD = digestOf('old');
const image: Reference = { registry: 'fra.ocir.io', repository: 'tenancy/app', tag: '1.0', digest: null };
const byDigest: Reference = { ...image, tag: null, digest: D };
const routes = [
  {
    prefix: 'fra.ocir.io/tenancy',
    registries: ['fra.ocir.io/tenancy', 'ams.ocir.io/tenancy', 'cache.local:5000/tenancy'],
  },
];
const match = matchRoute(image, routes) as RouteMatch;

const healthy = (
  presence: CandidateObservation['presence'],
  extra: Partial<CandidateObservation> = {},
): CandidateObservation => ({
  health: 'healthy',
  presence,
  ...extra,
});
const down: CandidateObservation = { health: 'unhealthy', presence: 'not-checked' };
const seen = (
  candidates: CandidateObservation[],
  digest: Observation['digest'] = { kind: 'digest', digest: D, from: 'registry' },
): Observation => ({
  digest,
  candidates,
  ownHealth: candidates[0]?.health ?? 'unknown',
  sourceHealth: candidates[0]?.health ?? 'unknown',
});
const allow = { unverifiedTags: 'allow' as const };

describe('decide', () => {
  it('leaves the image when its own registry is healthy and holds the digest', () => {
    const decision = decide(
      image,
      match,
      seen([healthy('present'), healthy('not-checked'), healthy('not-checked')]),
      allow,
    );
    assert.equal(decision.target, null);
    assert.equal(decision.reason, 'source-healthy');
    assert.equal(decision.digest, D);
  });

  it('routes to the first healthy mirror holding the digest when the source is down, pinning tag and digest', () => {
    const observation = seen([down, healthy('present'), healthy('present')], {
      kind: 'digest',
      digest: D,
      from: 'last-known',
    });
    const decision = decide(image, match, observation, allow);
    assert.equal(decision.target, `ams.ocir.io/tenancy/app:1.0@${D}`);
    assert.equal(decision.reason, 'source-unhealthy');
    assert.deepEqual(
      decision.verdicts.map((v) => v.verdict),
      ['unhealthy', 'chosen', 'not-checked'],
    );
  });

  it('leaves the image, saying why, when its own location answers the digest lookup with an error', () => {
    const decision = decide(image, match, seen([healthy('error'), healthy('present')]), allow);
    assert.equal(decision.target, null);
    assert.equal(decision.reason, 'source-error');
    assert.deepEqual(
      decision.verdicts.map((v) => v.verdict),
      ['error'],
    );
  });

  it('passes over a mirror that answered with an error, and says no-candidate when none is left', () => {
    const routed = decide(image, match, seen([down, healthy('error'), healthy('present')]), allow);
    assert.equal(routed.candidate?.registry, 'cache.local:5000');
    const none = decide(image, match, seen([down, healthy('error'), down]), allow);
    assert.equal(none.reason, 'no-candidate');
  });

  it('treats a rate-limited source like a down one', () => {
    const decision = decide(
      image,
      match,
      seen([{ health: 'rate-limited', presence: 'not-checked' }, healthy('present')]),
      allow,
    );
    assert.equal(decision.reason, 'source-unhealthy');
    assert.equal(decision.candidate?.registry, 'ams.ocir.io');
  });

  it('skips a mirror whose digest for the tag differs (a stale mirror)', () => {
    const stale = healthy('absent', { tag: { kind: 'digest', digest: OLD, from: 'registry' } });
    const decision = decide(image, match, seen([down, stale, healthy('present')]), allow);
    assert.equal(decision.candidate?.registry, 'cache.local:5000');
    assert.equal(decision.target, `cache.local:5000/tenancy/app:1.0@${D}`);
    assert.deepEqual(
      decision.verdicts.map((v) => v.verdict),
      ['unhealthy', 'stale', 'chosen'],
    );
  });

  it('leaves the image, saying so, when every reachable mirror is stale', () => {
    const stale = healthy('absent', { tag: { kind: 'digest', digest: OLD, from: 'registry' } });
    const decision = decide(image, match, seen([down, stale, down]), allow);
    assert.equal(decision.target, null);
    assert.equal(decision.reason, 'stale-mirror-skipped');
  });

  it('never chooses a candidate that does not hold the digest', () => {
    const decision = decide(image, match, seen([down, healthy('absent'), healthy('absent')]), allow);
    assert.equal(decision.target, null);
    assert.equal(decision.reason, 'no-candidate');
  });

  it('routes a digest reference by digest alone', () => {
    const decision = decide(
      byDigest,
      match,
      seen([down, healthy('present')], { kind: 'digest', digest: D, from: 'reference' }),
      allow,
    );
    assert.equal(decision.target, `ams.ocir.io/tenancy/app@${D}`);
  });

  it('moves to an earlier candidate than the image itself and says it was preferred', () => {
    const mirrorImage: Reference = {
      registry: 'cache.local:5000',
      repository: 'tenancy/app',
      tag: '1.0',
      digest: null,
    };
    const mirrorMatch = matchRoute(mirrorImage, [
      {
        prefix: 'cache.local:5000/tenancy',
        source: 'fra.ocir.io/tenancy',
        registries: ['fra.ocir.io/tenancy', 'cache.local:5000/tenancy'],
      },
    ]) as RouteMatch;
    const decision = decide(
      mirrorImage,
      mirrorMatch,
      seen([healthy('present'), healthy('not-checked')]),
      allow,
    );
    assert.equal(decision.reason, 'preferred-candidate');
    assert.equal(decision.target, `fra.ocir.io/tenancy/app:1.0@${D}`);
  });

  it('says the source lacks the digest when it is up but the manifest is missing there', () => {
    const decision = decide(image, match, seen([healthy('absent'), healthy('present')]), allow);
    assert.equal(decision.reason, 'source-missing-digest');
  });

  it('keeps the image when its own location did not answer in time, rather than guess', () => {
    const decision = decide(image, match, seen([healthy('unknown'), healthy('present')]), allow);
    assert.equal(decision.target, null);
    assert.equal(decision.reason, 'deadline');
  });

  it('skips a mirror that did not answer in time and takes the next one holding the digest', () => {
    const decision = decide(image, match, seen([down, healthy('unknown'), healthy('present')]), allow);
    assert.equal(decision.candidate?.registry, 'cache.local:5000');
  });

  it('routes by tag, recorded as unverified, when no digest is known and the policy allows', () => {
    const observation = seen(
      [
        down,
        healthy('not-checked', { tag: { kind: 'absent' } }),
        healthy('not-checked', { tag: { kind: 'digest', digest: OLD, from: 'registry' } }),
      ],
      { kind: 'unknown', cause: 'unhealthy' },
    );
    const decision = decide(image, match, observation, allow);
    assert.equal(decision.reason, 'unverified-tag');
    assert.equal(decision.target, `cache.local:5000/tenancy/app:1.0@${OLD}`);
  });

  it('leaves the image when no digest is known and the policy denies unverified tags', () => {
    const observation = seen(
      [down, healthy('not-checked', { tag: { kind: 'digest', digest: OLD, from: 'registry' } })],
      {
        kind: 'unknown',
        cause: 'unhealthy',
      },
    );
    const decision = decide(image, match, observation, { unverifiedTags: 'deny' });
    assert.equal(decision.target, null);
    assert.equal(decision.reason, 'unverified-denied');
  });

  it('reports the deadline when the digest could not be learned in time', () => {
    const observation = seen([healthy('not-checked'), healthy('not-checked')], {
      kind: 'unknown',
      cause: 'deadline',
    });
    assert.equal(decide(image, match, observation, { unverifiedTags: 'deny' }).reason, 'deadline');
    assert.equal(decide(image, match, observation, allow).reason, 'deadline');
  });

  it('skips a candidate the pod cannot use and takes the next', () => {
    const decision = decide(image, match, seen([down, healthy('present'), healthy('present')]), {
      ...allow,
      canUse: (c) => c.registry !== 'ams.ocir.io',
    });
    assert.equal(decision.candidate?.registry, 'cache.local:5000');
    assert.equal(decision.verdicts[1]?.verdict, 'pull-secret-unavailable');
  });
});
