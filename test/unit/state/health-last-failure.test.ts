import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthTracker } from '../../../src/state/health.js';

describe('HealthTracker.lastFailure', () => {
  const tracker = (clock: { now: number }) =>
    new HealthTracker({ failureThreshold: 2, successThreshold: 2 }, () => clock.now);

  it('is null for a registry never seen or never failing', () => {
    const clock = { now: 1000 };
    const health = tracker(clock);
    assert.equal(health.lastFailure('a.io'), null);
    health.succeeded('a.io');
    assert.equal(health.lastFailure('a.io'), null);
    assert.deepEqual(health.registries(), ['a.io'], 'asking creates no entry');
  });

  it('gives the last cause, its time and the failures in a row, until a success settles the registry healthy', () => {
    const clock = { now: 1000 };
    const health = tracker(clock);
    health.failed('a.io', 'HTTP 503');
    clock.now = 2000;
    health.failed('a.io', 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:5000');
    assert.equal(health.health('a.io'), 'unhealthy');
    assert.deepEqual(health.lastFailure('a.io'), {
      error: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:5000',
      at: 2000,
      consecutiveFailures: 2,
    });
    // One success of the two an unhealthy registry needs: still unhealthy, the failure kept, none in a row now.
    clock.now = 3000;
    health.succeeded('a.io');
    assert.equal(health.health('a.io'), 'unhealthy');
    assert.deepEqual(health.lastFailure('a.io'), {
      error: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:5000',
      at: 2000,
      consecutiveFailures: 0,
    });
    health.succeeded('a.io');
    assert.equal(health.health('a.io'), 'healthy');
    assert.equal(health.lastFailure('a.io'), null);
  });

  it('counts a 429 as the last failure, with its time', () => {
    const clock = { now: 5000 };
    const health = tracker(clock);
    health.rateLimited('a.io', 30_000);
    assert.deepEqual(health.lastFailure('a.io'), {
      error: 'rate limited (429)',
      at: 5000,
      consecutiveFailures: 0,
    });
  });
});
