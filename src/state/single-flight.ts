// Concurrent callers asking the same question share one answer: one registry request per key at a time.

export class SingleFlight<T> {
  readonly #inflight = new Map<string, Promise<T>>();

  run(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.#inflight.get(key);
    if (running) return running;
    const started = work().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, started);
    return started;
  }

  get size(): number {
    return this.#inflight.size;
  }
}
