// Waiting on work that may hang, for no longer than a deadline.

/**
 * Resolves to `fallback` once `signal` aborts, whatever `promise` does: the deadline holds even if a lookup hangs.
 * The fallback waits one turn of the event loop so that work answering the abort itself (with a last known
 * digest, say) is heard first.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, fallback: T): Promise<T> {
  return new Promise<T>((resolve) => {
    const onAbort = () => setImmediate(() => resolve(fallback));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve(fallback);
      },
    );
  });
}
