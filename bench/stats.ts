// Percentiles of latency samples, and the few summaries the report prints.

export interface Summary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

const EMPTY: Summary = {
  count: 0,
  p50: Number.NaN,
  p99: Number.NaN,
  p999: Number.NaN,
  max: Number.NaN,
  mean: Number.NaN,
};

/** Nearest-rank percentile of ascending samples: the smallest sample with at least p% of samples at or below it. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function summarize(samples: ArrayLike<number>): Summary {
  if (samples.length === 0) return EMPTY;
  const sorted = Float64Array.from(samples).sort();
  let total = 0;
  for (const value of sorted) total += value;
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted[sorted.length - 1] as number,
    mean: total / sorted.length,
  };
}

/**
 * A fixed-size buffer of samples: a long run keeps the first `capacity` samples rather than growing without
 * bound, and says how many it dropped.
 */
export class SampleBuffer {
  readonly #values: Float64Array;
  #length = 0;
  #dropped = 0;

  constructor(capacity: number) {
    this.#values = new Float64Array(capacity);
  }

  push(value: number): void {
    if (this.#length < this.#values.length) this.#values[this.#length++] = value;
    else this.#dropped++;
  }

  get dropped(): number {
    return this.#dropped;
  }

  values(): Float64Array {
    return this.#values.subarray(0, this.#length);
  }

  clear(): void {
    this.#length = 0;
    this.#dropped = 0;
  }
}
