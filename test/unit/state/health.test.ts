import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_RATE_LIMIT_MS, HealthTracker, MAX_RATE_LIMIT_MS } from '../../../src/state/health.js';

const clock = () => {
  const c = { t: 1_000_000, now: () => c.t };
  return c;
};

describe('HealthTracker', () => {
  it('tells its listeners when a registry turns suspect, once per suspicion', () => {
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 });
    const heard: string[] = [];
    tracker.onSuspicion((registry) => heard.push(registry));
    tracker.succeeded('a.io');
    tracker.failed('a.io', 'x');
    tracker.failed('a.io', 'x');
    tracker.succeeded('a.io');
    tracker.failed('a.io', 'x');
    assert.deepEqual(heard, ['a.io', 'a.io']);
  });

  it('settles a suspicion for whoever waits on it, either way', async () => {
    const tracker = new HealthTracker({ failureThreshold: 2, successThreshold: 1 });
    tracker.succeeded('a.io');
    await tracker.settled('a.io'); // nothing to wait for
    tracker.failed('a.io', 'x');
    const cleared = tracker.settled('a.io').then(() => tracker.health('a.io'));
    tracker.succeeded('a.io');
    assert.equal(await cleared, 'healthy');
    tracker.failed('a.io', 'x');
    const confirmed = tracker.settled('a.io').then(() => tracker.health('a.io'));
    tracker.failed('a.io', 'x');
    assert.equal(await confirmed, 'unhealthy');
  });

  it('knows nothing of a registry never checked', () => {
    assert.equal(new HealthTracker({ failureThreshold: 3, successThreshold: 1 }).health('a.io'), 'unknown');
  });

  it('trusts a registry never seen before on its first success', () => {
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 2 });
    tracker.succeeded('up.io');
    assert.equal(tracker.health('up.io'), 'healthy');
  });

  it('does not call a registry never seen before down on one failure: a cold start may be our own', () => {
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 });
    tracker.failed('down.io', 'ECONNREFUSED');
    assert.equal(tracker.health('down.io'), 'suspect');
    assert.equal(tracker.awaitsVerdict('down.io'), true);
    tracker.failed('down.io', 'ECONNREFUSED');
    assert.equal(tracker.health('down.io'), 'suspect');
    tracker.failed('down.io', 'ECONNREFUSED');
    assert.equal(tracker.health('down.io'), 'unhealthy');
    assert.equal(tracker.awaitsVerdict('down.io'), false);
  });

  it('awaits no verdict from a registry that asked to be left alone', () => {
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 });
    tracker.failed('hub.io', 'HTTP 503');
    tracker.rateLimited('hub.io', 60_000);
    assert.equal(tracker.awaitsVerdict('hub.io'), false);
  });

  it('confirms a first failure at least once, even with a failureThreshold of 1', () => {
    const tracker = new HealthTracker({ failureThreshold: 1, successThreshold: 1 });
    tracker.failed('down.io', 'ECONNREFUSED');
    assert.equal(tracker.health('down.io'), 'suspect');
    tracker.failed('down.io', 'ECONNREFUSED');
    assert.equal(tracker.health('down.io'), 'unhealthy');
    tracker.succeeded('down.io');
    tracker.failed('down.io', 'ECONNREFUSED');
    assert.equal(
      tracker.health('down.io'),
      'unhealthy',
      'after the first verdict the threshold alone counts',
    );
  });

  it('calls a registry whose first failure a success follows healthy', () => {
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 2 });
    tracker.failed('slow-start.io', 'timeout');
    tracker.succeeded('slow-start.io');
    assert.equal(tracker.health('slow-start.io'), 'healthy');
  });

  it('marks a healthy registry suspect on one failure, unhealthy only after failureThreshold failures in a row', () => {
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 });
    tracker.succeeded('a.io');
    tracker.failed('a.io', 'x');
    assert.equal(tracker.health('a.io'), 'suspect');
    tracker.failed('a.io', 'x');
    tracker.succeeded('a.io');
    assert.equal(tracker.health('a.io'), 'healthy', 'a blip is forgiven');
    tracker.failed('a.io', 'x');
    tracker.failed('a.io', 'x');
    assert.equal(tracker.health('a.io'), 'suspect');
    tracker.failed('a.io', 'connection refused');
    assert.equal(tracker.health('a.io'), 'unhealthy');
    assert.equal(tracker.snapshot('a.io').lastError, 'connection refused');
  });

  it('needs successThreshold successes in a row to trust an unhealthy registry again', () => {
    const tracker = new HealthTracker({ failureThreshold: 1, successThreshold: 2 });
    tracker.succeeded('a.io');
    tracker.failed('a.io', 'x');
    assert.equal(tracker.health('a.io'), 'unhealthy');
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

  it('caps Retry-After: a year asked for is MAX_RATE_LIMIT_MS avoided', () => {
    const c = clock();
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 }, c.now);
    tracker.succeeded('hub.io');
    tracker.rateLimited('hub.io', 365 * 24 * 3_600_000);
    assert.equal(tracker.snapshot('hub.io').rateLimitedUntil, c.t + MAX_RATE_LIMIT_MS);
    c.t += MAX_RATE_LIMIT_MS - 1;
    assert.equal(tracker.health('hub.io'), 'rate-limited');
    c.t += 1;
    assert.equal(tracker.health('hub.io'), 'healthy');
  });

  it('lifts a rate limit when a manifest can be read again, not when /v2/ answers', () => {
    const c = clock();
    const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 }, c.now);
    tracker.succeeded('hub.io');
    tracker.rateLimited('hub.io', 60_000);
    tracker.succeeded('hub.io', 12, 'ping');
    assert.equal(tracker.health('hub.io'), 'rate-limited');
    tracker.succeeded('hub.io', 15, 'manifest');
    assert.equal(tracker.health('hub.io'), 'healthy');
    assert.equal(tracker.snapshot('hub.io').rateLimitedUntil, null);
  });

  it('forgets a registry no longer probed', () => {
    const tracker = new HealthTracker({ failureThreshold: 1, successThreshold: 1 });
    tracker.succeeded('gone.io');
    tracker.failed('gone.io', 'x');
    tracker.forget('gone.io');
    assert.equal(tracker.health('gone.io'), 'unknown');
    assert.deepEqual(tracker.registries(), []);
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
