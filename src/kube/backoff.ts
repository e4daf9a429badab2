// Retry timing for calls to the Kubernetes API: exponential backoff with full jitter, sleep injectable.
import { setTimeout as delay } from 'node:timers/promises';

export interface Backoff {
  /** Delay before the first retry; doubles with each further one. */
  baseMs: number;
  maxMs: number;
  /** Tries per call, the first included. */
  attempts: number;
  /** Waits `ms`, or less once `signal` aborts; tests pass one that returns at once. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** In [0, 1); tests pin it. */
  random: () => number;
}

/**
 * 0.2 s, 0.4 s, 0.8 s, 1.6 s: five tries within ~3 s, short enough that a pass is not held up for long by one
 * namespace, long enough to ride out an apiserver restart behind a load balancer.
 */
export const defaultBackoff = (): Backoff => ({
  baseMs: 200,
  maxMs: 30_000,
  attempts: 5,
  // An abort (shutdown) ends the wait early; the caller sees the aborted signal and gives up.
  sleep: (ms, signal) => delay(ms, undefined, { signal }).catch(() => {}),
  random: Math.random,
});

/**
 * Full jitter (a random point below the exponential ceiling): many regroute replicas restarting together do
 * not retry in lockstep against an apiserver that has just come back.
 */
export function backoffDelay(retry: number, backoff: Pick<Backoff, 'baseMs' | 'maxMs' | 'random'>): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, retry));
  return Math.floor(backoff.random() * ceiling);
}

/**
 * Calls `call` until it returns a value `retryable` rejects, the tries run out or `signal` aborts; the last
 * value is returned either way, so failures stay values for the caller to count and log.
 */
export async function withRetries<T>(
  call: () => Promise<T>,
  retryable: (value: T) => boolean,
  backoff: Backoff,
  signal?: AbortSignal,
): Promise<T> {
  let result = await call();
  for (let retry = 0; retry < backoff.attempts - 1 && retryable(result); retry++) {
    await backoff.sleep(backoffDelay(retry, backoff), signal);
    if (signal?.aborted) break;
    result = await call();
  }
  return result;
}
