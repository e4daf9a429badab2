import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_RATE_LIMIT_MS, HealthTracker } from '../../../src/state/health.js';

const clock = () => {
  const c = { t: 1_000_000, now: () => c.t };
  return c;
};

describe('HealthTracker', () => {
  it('knows nothing of a registry never checked', () => {
    assert.equal(new HealthTracker({ failureThreshold: 3, successThreshold: 1 }).health('a.io'), 'unknown');
  });

  it('decides a first verdict on the first result, so a new replica never trusts a dead registry', () => {
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 2 });
    tracker.failed('down.io', 'ECONNREFUSED');
    tracker.succeeded('up.io');
    assert.equal(tracker.health('down.io'), 'unhealthy');
    assert.equal(tracker.health('up.io'), 'healthy');
  });

  it('marks a healthy registry unhealthy only after failureThreshold failures in a row', () => {
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 });
    tracker.succeeded('a.io');
    tracker.failed('a.io', 'x');
    tracker.failed('a.io', 'x');
    tracker.succeeded('a.io');
    tracker.failed('a.io', 'x');
    tracker.failed('a.io', 'x');
    assert.equal(tracker.health('a.io'), 'healthy');
    tracker.failed('a.io', 'connection refused');
    assert.equal(tracker.health('a.io'), 'unhealthy');
    assert.equal(tracker.snapshot('a.io').lastError, 'connection refused');
  });

  it('needs successThreshold successes in a row to trust an unhealthy registry again', () => {
    const tracker = new HealthTracker({ failureThreshold: 1, successThreshold: 2 });
    tracker.failed('a.io', 'x');
    tracker.succeeded('a.io');
    assert.equal(tracker.health('a.io'), 'unhealthy');
    tracker.succeeded('a.io');
    assert.equal(tracker.health('a.io'), 'healthy');
    assert.equal(tracker.snapshot('a.io').lastError, null);
  });

  it('avoids a rate-limited registry until Retry-After has passed', () => {
    const c = clock();
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 }, c.now);
    tracker.succeeded('hub.io');
    tracker.rateLimited('hub.io', 5_000);
    assert.equal(tracker.health('hub.io'), 'rate-limited');
    tracker.succeeded('hub.io');
    assert.equal(tracker.health('hub.io'), 'rate-limited', 'a probe success does not lift the rate limit');
    c.t += 5_000;
    assert.equal(tracker.health('hub.io'), 'healthy');
  });

  it('uses a default rate-limit period when the registry gives no Retry-After', () => {
    const c = clock();
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 }, c.now);
    tracker.rateLimited('hub.io', undefined);
    c.t += DEFAULT_RATE_LIMIT_MS - 1;
    assert.equal(tracker.health('hub.io'), 'rate-limited');
    c.t += 1;
    assert.equal(tracker.health('hub.io'), 'unknown');
  });
});
