// Timeouts that do not charge the event loop's own lateness to the other side, over injected lateness and mocked
// timers: no assertion depends on how fast this machine is.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventLoopLag, LagDiscountedTimeout, type LoopLag } from '../../../src/state/loop-lag.js';

/** Lateness the test sets by hand, counted from each since(). */
function scriptedLag() {
  const lag = { total: 0 };
  const source: LoopLag = {
    since: () => {
      const at = lag.total;
      return () => lag.total - at;
    },
  };
  return { lag, source };
}

describe('LagDiscountedTimeout', () => {
  it('aborts at the timeout when the event loop was on time: the wait was the other side’s', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { source } = scriptedLag();
    const timeout = new LagDiscountedTimeout(500, source);
    t.mock.timers.tick(499);
    assert.equal(timeout.signal.aborted, false);
    t.mock.timers.tick(1);
    assert.equal(timeout.signal.aborted, true);
    assert.equal(timeout.ours, false);
  });

  it('grants the event loop’s lateness once more, so an answer read late is still heard', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { lag, source } = scriptedLag();
    const timeout = new LagDiscountedTimeout(500, source);
    lag.total = 300;
    t.mock.timers.tick(500);
    assert.equal(timeout.signal.aborted, false, 'the answer may be waiting in a socket');
    assert.equal(timeout.grantedMs, 300);
    t.mock.timers.tick(300);
    assert.equal(timeout.signal.aborted, true, 'granted once: the loop was on time since');
    assert.equal(timeout.ours, false, 'the other side had its whole timeout');
  });

  it('is no verdict when the event loop ran late by as much as the timeout', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { lag, source } = scriptedLag();
    const timeout = new LagDiscountedTimeout(500, source);
    lag.total = 450;
    t.mock.timers.tick(500);
    lag.total = 900;
    t.mock.timers.tick(450);
    assert.equal(timeout.grantedMs, 500, 'never more than the timeout again');
    lag.total = 950;
    t.mock.timers.tick(50);
    assert.equal(timeout.signal.aborted, true);
    assert.equal(timeout.ours, true);
  });

  it('takes lateness small beside the timeout for noise: neither granted nor an excuse', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { lag, source } = scriptedLag();
    const timeout = new LagDiscountedTimeout(500, source);
    lag.total = 20;
    t.mock.timers.tick(500);
    assert.equal(timeout.signal.aborted, true);
    assert.equal(timeout.ours, false);
    assert.equal(timeout.grantedMs, 0);
  });

  it('is cleared with the answer', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { source } = scriptedLag();
    const timeout = new LagDiscountedTimeout(500, source);
    timeout.clear();
    t.mock.timers.tick(1_000);
    assert.equal(timeout.signal.aborted, false);
  });
});

describe('EventLoopLag', () => {
  it('counts nothing before it samples, and never a negative lateness', () => {
    const lag = new EventLoopLag();
    assert.equal(lag.since()(), 0);
    lag.start();
    try {
      assert.ok(lag.since()() >= 0);
    } finally {
      lag.stop();
    }
  });
});
