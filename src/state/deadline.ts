// Waiting on work that may hang, for no longer than a deadline.
import { setMaxListeners } from 'node:events';

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

/** What waiting for registries needs of a deadline: whether it has passed, and a signal for a lookup that waits. */
export interface Deadline {
  readonly aborted: boolean;
  readonly signal: AbortSignal;
}

/**
 * A deadline given as a signal (a command's, a test's) or as a Deadline. Every lookup of every image may listen to
 * the signal: dozens of listeners are expected for a large pod, and Node's leak warning would otherwise be printed
 * for each one while a registry is slow.
 */
export function deadlineOf(deadline: AbortSignal | Deadline): Deadline {
  if (!(deadline instanceof AbortSignal)) return deadline;
  setMaxListeners(0, deadline);
  return {
    get aborted() {
      return deadline.aborted;
    },
    signal: deadline,
  };
}

/**
 * An admission's deadline that costs nothing until something waits for it. A warm admission is decided from the
 * cache without waiting: it then makes no AbortController, timer or listener. The first lookup that has to wait
 * asks for the signal, which aborts when the deadline passes, as a timer armed at the start would have: by a timer,
 * on the event loop's next turn if the deadline has passed already, so that answers already at hand (a cache's,
 * a last-known digest's) are heard first. Synchronous work never sees a timer fire: `aborted` is false until then.
 */
export class LazyDeadline implements Deadline {
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** `endsAt` on the `now` clock (performance.now by default); `reason` is what the signal aborts with. */
  constructor(
    private readonly endsAt: number,
    private readonly reason: unknown,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get aborted(): boolean {
    return this.#controller?.signal.aborted ?? false;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = new AbortController();
      setMaxListeners(0, controller.signal);
      const remainingMs = Math.max(0, this.endsAt - this.now());
      this.#timer = setTimeout(() => controller.abort(this.reason), remainingMs);
      this.#controller = controller;
    }
    return this.#controller.signal;
  }

  /** The answer is out: a timer still armed is cleared, so that it neither fires nor holds the deadline's objects. */
  clear(): void {
    clearTimeout(this.#timer);
  }
}
