import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LazyDeadline } from '../../../src/state/deadline.js';

const PASSED = new Error('the deadline passed');

describe('LazyDeadline', () => {
  it('arms nothing until a lookup asks for its signal, and has not passed until then', () => {
    const clock = { t: 1_000 };
    const deadline = new LazyDeadline(200, PASSED, () => clock.t);
    assert.equal(deadline.aborted, false, 'synchronous work never sees a timer fire');
    deadline.clear();
  });

  it('aborts on the next turn when asked for its signal after the deadline passed, as its timer would have', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const clock = { t: 250 };
    const deadline = new LazyDeadline(200, PASSED, () => clock.t);
    const { signal } = deadline;
    assert.equal(signal.aborted, false, 'answers at hand are heard first');
    t.mock.timers.tick(0);
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, PASSED);
    assert.equal(deadline.aborted, true);
  });

  it('aborts when the deadline passes, counted from when it was made, not from when it was armed', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const clock = { t: 150 };
    const deadline = new LazyDeadline(200, PASSED, () => clock.t);
    const { signal } = deadline;
    t.mock.timers.tick(49);
    assert.equal(signal.aborted, false);
    t.mock.timers.tick(1);
    assert.equal(signal.aborted, true);
    assert.equal(deadline.aborted, true);
  });

  it('never aborts once cleared with the answer', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const deadline = new LazyDeadline(200, PASSED, () => 0);
    const { signal } = deadline;
    deadline.clear();
    t.mock.timers.tick(1_000);
    assert.equal(signal.aborted, false);
  });

  it('hands every lookup the same signal', () => {
    const deadline = new LazyDeadline(200, PASSED, () => 0);
    assert.equal(deadline.signal, deadline.signal);
    deadline.clear();
  });
});
