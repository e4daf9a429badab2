// Specification of the retry timing for Kubernetes API calls, with sleep and randomness pinned.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Backoff, backoffDelay, withRetries } from '../../../src/kube/backoff.js';

const pinned = (random = 0.999_999, attempts = 4): Backoff & { slept: number[] } => {
  const slept: number[] = [];
  return {
    baseMs: 100,
    maxMs: 500,
    attempts,
    random: () => random,
    sleep: async (ms) => {
      slept.push(ms);
    },
    slept,
  };
};

describe('backoff', () => {
  it('doubles the ceiling with each retry up to the maximum', () => {
    const backoff = pinned();
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((retry) => backoffDelay(retry, backoff)),
      [99, 199, 399, 499, 499],
    );
  });

  it('waits a random point below the ceiling (full jitter)', () => {
    assert.equal(backoffDelay(2, pinned(0.5)), 200);
    assert.equal(backoffDelay(2, pinned(0)), 0);
  });

  it('retries while the result is retryable and returns the first that is not', async () => {
    const backoff = pinned(0.5);
    const answers = ['busy', 'busy', 'done'];
    const result = await withRetries(
      async () => answers.shift(),
      (a) => a === 'busy',
      backoff,
    );
    assert.equal(result, 'done');
    assert.deepEqual(backoff.slept, [50, 100]);
  });

  it('gives up after the configured number of tries and returns the last result', async () => {
    const backoff = pinned(0.5, 3);
    let calls = 0;
    const result = await withRetries(
      async () => ++calls,
      () => true,
      backoff,
    );
    assert.equal(result, 3);
    assert.equal(backoff.slept.length, 2);
  });

  it('does not retry a result that is not retryable', async () => {
    const backoff = pinned();
    let calls = 0;
    await withRetries(
      async () => ++calls,
      () => false,
      backoff,
    );
    assert.equal(calls, 1);
    assert.deepEqual(backoff.slept, []);
  });

  it('stops retrying once the signal aborts', async () => {
    const backoff = pinned();
    const shutdown = new AbortController();
    let calls = 0;
    await withRetries(
      async () => {
        calls++;
        shutdown.abort();
        return 'busy';
      },
      () => true,
      backoff,
      shutdown.signal,
    );
    assert.equal(calls, 1);
  });
});
