// How late this process's event loop runs, and timeouts that do not charge that lateness to whoever is waited for.
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** How late the event loop has run: the time its own work kept ready callbacks (an answer in a socket) waiting. */
export interface LoopLag {
  /** Starts counting: the function returned answers the lateness (ms) accumulated since. */
  since(): () => number;
  /** For lags that sample: from when to when (a prober's life). */
  start?(): void;
  stop?(): void;
}

/** How often the event loop's lateness is sampled (a libuv timer: no JavaScript runs per sample). */
const RESOLUTION_MS = 10;
/**
 * What a sample may exceed RESOLUTION_MS by without the loop having been held: a timer's own granularity and the
 * scheduler's jitter (measured idle: 0.1 ms on average; on a busy machine a few ms now and then).
 */
const JITTER_MS = 2;

/**
 * The event loop's lateness from perf_hooks' delay histogram: every sample is the time between two ticks of a timer
 * due every RESOLUTION_MS, so what a sample exceeds that (and JITTER_MS) by is how long the loop was held, by our own
 * work or by the machine (a CPU limit's throttling included). Its sum over a stretch is read as the difference of
 * two running totals. Sampling runs between start() and stop().
 */
export class EventLoopLag implements LoopLag {
  #histogram: IntervalHistogram | null = null;

  start(): void {
    if (this.#histogram) return;
    this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#histogram.enable();
  }

  stop(): void {
    this.#histogram?.disable();
    this.#histogram = null;
  }

  since(): () => number {
    const histogram = this.#histogram;
    if (!histogram) return () => 0;
    const before = lateness(histogram);
    return () => Math.max(0, lateness(histogram) - before);
  }
}

/**
 * Lateness summed over every sample so far (ms), less the jitter allowed each: the histogram counts nanoseconds,
 * and its mean over all samples times their count is their sum.
 */
function lateness(histogram: IntervalHistogram): number {
  const samples = histogram.count;
  return samples === 0 ? 0 : (histogram.mean * samples) / 1e6 - samples * (RESOLUTION_MS + JITTER_MS);
}

/**
 * Lateness within this share of a timeout is noise (sampling, a collection): neither granted nor held against the
 * other side. Past it, the loop was late by an amount comparable to the timeout itself.
 */
export const COMPARABLE_SHARE = 0.1;

/**
 * A timeout of `timeoutMs` that counts the other side's time, not this process's. When it expires after the event
 * loop ran late by a comparable amount (a saturated webhook whose answer from the registry sat unread in a socket),
 * that lateness is granted once more, up to `timeoutMs` in all, so a slow answer is still heard. When it aborts with
 * such lateness left ungranted, the other side never had its whole timeout of this process's attention: `ours`
 * says so, and the timeout is no verdict on it.
 */
export class LagDiscountedTimeout {
  readonly #controller = new AbortController();
  readonly #lateSince: () => number;
  #timer: NodeJS.Timeout;
  #grantedMs = 0;
  #ours = false;

  constructor(
    private readonly timeoutMs: number,
    lag: LoopLag,
  ) {
    this.#lateSince = lag.since();
    this.#timer = setTimeout(this.#expire, timeoutMs);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** True once it aborted while the loop's lateness, comparable to the timeout, was left ungranted. */
  get ours(): boolean {
    return this.#ours;
  }

  /** Lateness of the event loop granted on top of the timeout so far (ms). */
  get grantedMs(): number {
    return this.#grantedMs;
  }

  /** The wait is over: the timer is cleared. */
  clear(): void {
    clearTimeout(this.#timer);
  }

  readonly #expire = (): void => {
    const ungranted = this.#lateSince() - this.#grantedMs;
    const comparable = ungranted >= COMPARABLE_SHARE * this.timeoutMs;
    const room = this.timeoutMs - this.#grantedMs;
    if (comparable && room > 0) {
      const more = Math.min(ungranted, room);
      this.#grantedMs += more;
      this.#timer = setTimeout(this.#expire, more);
      return;
    }
    this.#ours = comparable;
    this.#controller.abort(new DOMException('the timeout passed', 'TimeoutError'));
  };
}
