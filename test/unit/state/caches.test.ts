import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PresenceCache, TagCache } from '../../../src/state/caches.js';
import { SingleFlight } from '../../../src/state/single-flight.js';
import { digestOf } from '../../helpers/digests.js';

const ttls = { tagTtlMs: 30_000, presentTtlMs: 3_600_000, absentTtlMs: 15_000, maxEntries: 100 };
const loc = { registry: 'a.io', repository: 'team/app' };
const D1 = digestOf('1');
const D2 = digestOf('2');

describe('TagCache', () => {
  it('answers fresh within the tag TTL and not after, but keeps the last known digest', () => {
    const c = { t: 0 };
    const cache = new TagCache(ttls, () => c.t);
    cache.record(loc, 'v1', D1);
    c.t = 29_999;
    assert.equal(cache.fresh(loc, 'v1'), D1);
    c.t = 30_000;
    assert.equal(cache.fresh(loc, 'v1'), undefined);
    assert.equal(cache.lastKnown(loc, 'v1')?.digest, D1);
  });

  it('remembers that a tag does not exist for the short TTL, without forgetting its last digest', () => {
    const c = { t: 0 };
    const cache = new TagCache(ttls, () => c.t);
    cache.record(loc, 'v1', D1);
    cache.record(loc, 'v1', null);
    assert.equal(cache.fresh(loc, 'v1'), null);
    assert.equal(cache.lastKnown(loc, 'v1')?.digest, D1);
    c.t = 15_000;
    assert.equal(cache.fresh(loc, 'v1'), undefined);
  });

  it('follows a tag that moves', () => {
    const cache = new TagCache(ttls);
    cache.record(loc, 'v1', D1);
    cache.record(loc, 'v1', D2);
    assert.equal(cache.fresh(loc, 'v1'), D2);
    assert.equal(cache.lastKnown(loc, 'v1')?.digest, D2);
  });

  it('says how old the last known digest is, counting from when it was last seen', () => {
    const c = { t: 0 };
    const cache = new TagCache(ttls, () => c.t);
    cache.record(loc, 'v1', D1);
    c.t = 50_000;
    cache.record(loc, 'v1', null);
    c.t = 90_000;
    assert.deepEqual(cache.lastKnown(loc, 'v1'), { digest: D1, ageMs: 90_000 });
  });

  it('asks for a refresh ahead of expiry, never serving an answer older than the TTL', () => {
    const c = { t: 0 };
    const cache = new TagCache(ttls, () => c.t);
    cache.record(loc, 'v1', D1);
    c.t = 0.5 * ttls.tagTtlMs;
    assert.equal(cache.refreshDue(loc, 'v1'), false);
    c.t = 0.8 * ttls.tagTtlMs;
    assert.equal(cache.refreshDue(loc, 'v1'), true);
    assert.equal(cache.fresh(loc, 'v1'), D1);
    c.t = ttls.tagTtlMs;
    assert.equal(cache.refreshDue(loc, 'v1'), false);
    assert.equal(cache.fresh(loc, 'v1'), undefined);
  });

  it('stays within its size bound', () => {
    const cache = new TagCache(ttls);
    for (let i = 0; i < 1000; i++) cache.record(loc, `t${i}`, D1);
    assert.equal(cache.size, 100);
  });
});

describe('PresenceCache', () => {
  it('trusts a mirror only once its bytes were hashed, and keeps that trust when a HEAD confirms it', () => {
    const cache = new PresenceCache(ttls);
    cache.record(loc, D1, true);
    assert.equal(cache.get(loc, D1, 'claim'), 'present');
    assert.equal(cache.get(loc, D1, 'bytes'), 'unknown', 'a HEAD is only a claim');
    cache.record(loc, D1, true, true);
    cache.record(loc, D1, true);
    assert.equal(cache.get(loc, D1, 'bytes'), 'present');
  });

  it('remembers a registry caught serving other bytes for a digest, whatever is asked', () => {
    const c = { t: 0 };
    const cache = new PresenceCache(ttls, () => c.t);
    cache.recordMismatch(loc, D1);
    assert.equal(cache.get(loc, D1, 'claim'), 'mismatch');
    assert.equal(cache.get(loc, D1, 'bytes'), 'mismatch');
    c.t = ttls.absentTtlMs;
    assert.equal(cache.get(loc, D1), 'mismatch', 'as long as a presence, not an absence');
  });

  it('trusts presence for the long TTL and absence for the short one', () => {
    const c = { t: 0 };
    const cache = new PresenceCache(ttls, () => c.t);
    cache.record(loc, D1, true);
    cache.record(loc, D2, false);
    c.t = 14_999;
    assert.equal(cache.get(loc, D2), 'absent');
    c.t = 15_000;
    assert.equal(cache.get(loc, D2), 'unknown');
    assert.equal(cache.get(loc, D1), 'present');
    c.t = 3_600_000;
    assert.equal(cache.get(loc, D1), 'unknown');
  });

  it('keys by registry, repository and digest', () => {
    const cache = new PresenceCache(ttls);
    cache.record(loc, D1, true);
    assert.equal(cache.get({ ...loc, registry: 'b.io' }, D1), 'unknown');
    assert.equal(cache.get({ ...loc, repository: 'team/other' }, D1), 'unknown');
  });
});

describe('SingleFlight', () => {
  it('shares one run among concurrent callers of a key and runs again once it settled', async () => {
    const flight = new SingleFlight<number>();
    let runs = 0;
    // The first run stays under way until every caller has asked.
    let finish: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const work = async () => {
      runs += 1;
      await held;
      return runs;
    };
    const asked = [flight.run('k', work), flight.run('k', work), flight.run('k', work)];
    assert.equal(flight.size, 1);
    finish();
    const answers = await Promise.all(asked);
    assert.deepEqual(answers, [1, 1, 1]);
    assert.equal(flight.size, 0);
    assert.equal(await flight.run('k', work), 2);
  });

  it('lets a failure reach every caller and does not keep it', async () => {
    const flight = new SingleFlight<number>();
    const failing = () => Promise.reject(new Error('boom'));
    await Promise.all([
      assert.rejects(flight.run('k', failing), /boom/),
      assert.rejects(flight.run('k', failing), /boom/),
    ]);
    assert.equal(await flight.run('k', async () => 7), 7);
  });
});
