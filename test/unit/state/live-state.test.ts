// LiveState with scripted registry clients: every answer a registry can give, handed out by the test, with the
// health the probes would report set by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ManifestResult } from '../../../src/registry/index.js';
import { HealthTracker } from '../../../src/state/health.js';
import { type Clients, LiveState } from '../../../src/state/live-state.js';
import { digestOf } from '../../helpers/digests.js';

const loc = { registry: 'source.local', repository: 'team/app' };
const D1 = digestOf('1');
const D2 = digestOf('2');
const TTL_MS = 30_000;
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** A registry whose manifest answers the test hands out one by one, counting what was asked and how. */
function scriptedRegistry() {
  const pending: ((result: ManifestResult) => void)[] = [];
  const asked: string[] = [];
  const ask = (method: string) => (_repository: string, reference: string) => {
    asked.push(`${method} ${reference}`);
    return new Promise<ManifestResult>((resolve) => pending.push(resolve));
  };
  const client = { headManifest: ask('HEAD'), getManifest: ask('GET') };
  const pool = { get: async () => ({ ok: true, client }) } as unknown as Clients;
  const reply = (result: ManifestResult) => pending.shift()?.(result);
  const answer = (digest: string) => reply({ kind: 'found', digest, mediaType: MANIFEST });
  return { pool, asked, answer, reply };
}

function liveState(pool: Clients, clock: { t: number }, onMismatch?: () => void) {
  const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 }, () => clock.t);
  const state = new LiveState(pool, tracker, {
    ttls: { tagTtlMs: TTL_MS, presentTtlMs: 3_600_000, absentTtlMs: 15_000, maxEntries: 100 },
    requestTimeoutMs: 5000,
    now: () => clock.t,
    ...(onMismatch ? { onMismatch } : {}),
  });
  return { state, tracker };
}

/** Marks the registry down as the probes would: failures until the threshold. */
const fail = (tracker: HealthTracker, registry: string) => {
  for (let i = 0; i < 3; i++) tracker.failed(registry, 'connection refused');
};

const settle = () => new Promise((resolve) => setImmediate(resolve));
const later = () => AbortSignal.timeout(60_000);

describe('LiveState tag resolution', () => {
  it('refreshes a tag pods keep asking for ahead of its expiry, in the background, answering from cache meanwhile', async () => {
    const clock = { t: 0 };
    const registry = scriptedRegistry();
    const { state } = liveState(registry.pool, clock);
    state.tags.record(loc, 'v1', D1);

    clock.t = 0.8 * TTL_MS;
    assert.deepEqual(await state.resolveTag(loc, 'v1', later()), {
      kind: 'digest',
      digest: D1,
      from: 'cache',
    });
    await settle();
    assert.deepEqual(registry.asked, ['HEAD v1'], 'one refresh was sent');

    registry.answer(D2); // the tag moved meanwhile
    await settle();
    assert.deepEqual(await state.resolveTag(loc, 'v1', later()), {
      kind: 'digest',
      digest: D2,
      from: 'cache',
    });
  });

  it('never serves an answer older than the TTL: past it, the registry is asked and waited for', async () => {
    const clock = { t: 0 };
    const registry = scriptedRegistry();
    const { state } = liveState(registry.pool, clock);
    state.tags.record(loc, 'v1', D1);

    clock.t = TTL_MS;
    const resolving = state.resolveTag(loc, 'v1', later());
    await settle();
    registry.answer(D2);
    assert.deepEqual(await resolving, { kind: 'digest', digest: D2, from: 'registry' });
  });

  it('falls back to the last known digest, with its age, only while the probes find the source failing', async () => {
    const clock = { t: 0 };
    const registry = scriptedRegistry();
    const { state, tracker } = liveState(registry.pool, clock);
    state.tags.record(loc, 'v1', D1);
    clock.t = 5 * 60_000;
    fail(tracker, loc.registry);
    assert.deepEqual(await state.resolveTag(loc, 'v1', later()), {
      kind: 'digest',
      digest: D1,
      from: 'last-known',
      ageMs: 5 * 60_000,
    });
    assert.deepEqual(registry.asked, [], 'a failing source is not asked');
  });

  it('does not pin the last known digest when a healthy source is merely slow: its tag may have moved', async () => {
    const clock = { t: 0 };
    const registry = scriptedRegistry();
    const { state, tracker } = liveState(registry.pool, clock);
    state.tags.record(loc, 'v1', D1);
    clock.t = TTL_MS * 10;
    tracker.succeeded(loc.registry);
    const controller = new AbortController();
    const resolving = state.resolveTag(loc, 'v1', controller.signal);
    await settle();
    controller.abort();
    assert.deepEqual(await resolving, { kind: 'unknown', cause: 'deadline' });
  });

  it('does not pin the last known digest when a source answers one error its confirmation clears', async () => {
    const clock = { t: 0 };
    const registry = scriptedRegistry();
    const { state, tracker } = liveState(registry.pool, clock);
    state.tags.record(loc, 'v1', D1);
    clock.t = TTL_MS * 10;
    tracker.succeeded(loc.registry);
    const resolving = state.resolveTag(loc, 'v1', later());
    await settle();
    registry.reply({ kind: 'error', availability: 'server-error', status: 503, message: 'HTTP 503' });
    await settle();
    assert.equal(tracker.health(loc.registry), 'suspect', 'the error is a passive signal');
    tracker.succeeded(loc.registry); // the prober's confirmation: a blip
    assert.deepEqual(await resolving, { kind: 'unknown', cause: 'error' });
  });

  it('pins the last known digest when the confirmation finds the source failing', async () => {
    const clock = { t: 0 };
    const registry = scriptedRegistry();
    const { state, tracker } = liveState(registry.pool, clock);
    state.tags.record(loc, 'v1', D1);
    clock.t = TTL_MS * 10;
    tracker.succeeded(loc.registry);
    const resolving = state.resolveTag(loc, 'v1', later());
    await settle();
    registry.reply({ kind: 'error', availability: 'server-error', status: 503, message: 'HTTP 503' });
    await settle();
    fail(tracker, loc.registry); // the prober's confirmation: down
    assert.deepEqual(await resolving, { kind: 'digest', digest: D1, from: 'last-known', ageMs: TTL_MS * 10 });
  });

  it('answers at the deadline when a confirmation is still under way, as the health then stands', async () => {
    const registry = scriptedRegistry();
    const { state, tracker } = liveState(registry.pool, { t: 0 });
    tracker.succeeded(loc.registry);
    const controller = new AbortController();
    const resolving = state.resolveTag(loc, 'v1', controller.signal);
    await settle();
    registry.reply({ kind: 'error', availability: 'server-error', status: 503, message: 'HTTP 503' });
    await settle();
    controller.abort();
    assert.deepEqual(await resolving, { kind: 'unknown', cause: 'error' }, 'suspect, nothing known');
  });

  it('starts no request once the deadline has passed', async () => {
    const registry = scriptedRegistry();
    const { state } = liveState(registry.pool, { t: 0 });
    const controller = new AbortController();
    controller.abort();
    assert.deepEqual(await state.resolveTag(loc, 'v1', controller.signal), {
      kind: 'unknown',
      cause: 'deadline',
    });
    assert.equal(await state.hasManifest(loc, D1, controller.signal, 'bytes'), 'unknown');
    assert.deepEqual(registry.asked, []);
  });

  it('reads a tag with its body when asked, and names an index’s children from then on', async () => {
    const registry = scriptedRegistry();
    const { state } = liveState(registry.pool, { t: 0 });
    const resolving = state.resolveTag(loc, 'v1', later(), true);
    await settle();
    registry.reply({
      kind: 'found',
      digest: D1,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      children: [D2],
    });
    assert.deepEqual(await resolving, { kind: 'digest', digest: D1, from: 'registry', children: [D2] });
    assert.deepEqual(await state.resolveTag(loc, 'v1', later(), true), {
      kind: 'digest',
      digest: D1,
      from: 'cache',
      children: [D2],
    });
    assert.deepEqual(registry.asked, ['GET v1']);
  });
});

describe('LiveState answers from the cache alone', () => {
  it('answers what resolveTag would without a request, and nothing when only a request can tell', async () => {
    const clock = { t: 0 };
    const registry = scriptedRegistry();
    const { state, tracker } = liveState(registry.pool, clock);
    assert.equal(state.cachedTag(loc, 'v1'), undefined, 'never asked');
    state.tags.record(loc, 'v1', D1);
    state.tags.record(loc, 'gone', null);
    assert.deepEqual(state.cachedTag(loc, 'v1'), { kind: 'digest', digest: D1, from: 'cache' });
    assert.deepEqual(state.cachedTag(loc, 'gone'), { kind: 'absent' });
    assert.equal(state.cachedTag(loc, 'v1', true), undefined, 'its body was never read: a GET is needed');

    clock.t = TTL_MS;
    assert.equal(state.cachedTag(loc, 'v1'), undefined, 'expired');
    fail(tracker, loc.registry);
    assert.deepEqual(state.cachedTag(loc, 'v1'), {
      kind: 'digest',
      digest: D1,
      from: 'last-known',
      ageMs: TTL_MS,
    });
    assert.deepEqual(await state.resolveTag(loc, 'v1', later()), state.cachedTag(loc, 'v1'));
    assert.deepEqual(registry.asked, [], 'no request was made');
  });

  it('starts the refresh-ahead of a tag it answers, as resolveTag does', async () => {
    const clock = { t: 0 };
    const registry = scriptedRegistry();
    const { state } = liveState(registry.pool, clock);
    state.tags.record(loc, 'v1', D1);
    clock.t = 0.8 * TTL_MS;
    assert.deepEqual(state.cachedTag(loc, 'v1'), { kind: 'digest', digest: D1, from: 'cache' });
    await settle();
    assert.deepEqual(registry.asked, ['HEAD v1']);
  });
});

describe('LiveState presence', () => {
  it('trusts a mirror only once its bytes hashed to the digest: a GET the first time, the cache after', async () => {
    const registry = scriptedRegistry();
    const { state } = liveState(registry.pool, { t: 0 });
    const checking = state.hasManifest(loc, D1, later(), 'bytes');
    await settle();
    registry.answer(D1);
    assert.equal(await checking, 'present');
    assert.equal(await state.hasManifest(loc, D1, later(), 'bytes'), 'present');
    assert.deepEqual(registry.asked, [`GET ${D1}`]);
  });

  it('a HEAD claim is enough for the source but not for a mirror', async () => {
    const registry = scriptedRegistry();
    const { state } = liveState(registry.pool, { t: 0 });
    const claimed = state.hasManifest(loc, D1, later(), 'claim');
    await settle();
    registry.answer(D1);
    assert.equal(await claimed, 'present');
    assert.equal(state.knownPresence(loc, D1, 'bytes'), 'unknown');
    assert.deepEqual(registry.asked, [`HEAD ${D1}`]);
  });

  it('reports and remembers a registry caught serving other bytes, without counting it down', async () => {
    const registry = scriptedRegistry();
    let reported = 0;
    const { state, tracker } = liveState(registry.pool, { t: 0 }, () => {
      reported += 1;
    });
    tracker.succeeded(loc.registry);
    const checking = state.hasManifest(loc, D1, later(), 'bytes');
    await settle();
    registry.reply({
      kind: 'error',
      availability: 'server-error',
      message: `digest mismatch: the reference says ${D1}, the manifest hashes to ${D2}`,
      mismatch: true,
    });
    assert.equal(await checking, 'mismatch');
    assert.equal(reported, 1);
    assert.equal(await state.hasManifest(loc, D1, later(), 'bytes'), 'mismatch', 'cached');
    assert.equal(tracker.health(loc.registry), 'healthy');
    assert.equal(registry.asked.length, 1);
  });

  it('counts an error answer as a passive failure: the registry is suspect and not asked again meanwhile', async () => {
    const registry = scriptedRegistry();
    const { state, tracker } = liveState(registry.pool, { t: 0 });
    tracker.succeeded(loc.registry);
    const checking = state.hasManifest(loc, digestOf('x'), later(), 'bytes');
    await settle();
    registry.reply({ kind: 'error', availability: 'server-error', status: 500, message: 'HTTP 500' });
    assert.equal(await checking, 'error');
    assert.equal(tracker.health(loc.registry), 'suspect');
    assert.equal(await state.hasManifest(loc, digestOf('y'), later(), 'bytes'), 'unknown');
    assert.equal(registry.asked.length, 1);
  });

  it('never counts a local limit (no client could be had) as a failure of the registry', async () => {
    const pool = {
      get: async () => ({ ok: false, error: 'too many registries', local: true }),
    } as unknown as Clients;
    const { state, tracker } = liveState(pool, { t: 0 });
    tracker.succeeded(loc.registry);
    for (let i = 0; i < 5; i++)
      assert.equal(await state.hasManifest(loc, digestOf(`y${i}`), later()), 'error');
    assert.equal(tracker.health(loc.registry), 'healthy');
  });
});

describe('LiveState learning a tag from the cluster', () => {
  const mirror = { registry: 'mirror.local', repository: 'team/app' };

  it('takes a digest pods run as the last-known one only once a candidate is found holding it', async () => {
    const registry = scriptedRegistry();
    const { state, tracker } = liveState(registry.pool, { t: 0 });
    fail(tracker, loc.registry); // a restart during an outage: the source cannot be asked
    const learning = state.learnTag(loc, 'v1', D1, [mirror], later());
    await settle();
    registry.answer(D1); // the mirror's bytes hash to it
    assert.equal(await learning, true);
    assert.deepEqual(
      registry.asked,
      [`GET ${D1}`],
      'the failing source is not asked; the mirror is, by bytes',
    );
    assert.equal(state.tags.lastKnown(loc, 'v1')?.digest, D1);
    assert.equal(state.tags.fresh(loc, 'v1'), undefined, 'never a fresh answer');
  });

  it('refuses a digest nobody is found holding, and never overrides what the source answered', async () => {
    const registry = scriptedRegistry();
    const { state } = liveState(registry.pool, { t: 0 });
    const learning = state.learnTag(loc, 'v1', D2, [], later());
    await settle();
    registry.reply({ kind: 'not-found' });
    assert.equal(await learning, false);
    assert.equal(state.tags.lastKnown(loc, 'v1'), undefined);
    state.tags.record(loc, 'v1', D1);
    assert.equal(await state.learnTag(loc, 'v1', D2, [], later()), false);
    assert.equal(state.tags.lastKnown(loc, 'v1')?.digest, D1);
  });
});
