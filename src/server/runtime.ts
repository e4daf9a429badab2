// What the next review runs with: the config and registry state in force, leased per review so that replaced
// state is closed only once no review uses it.
import type { Logger } from 'pino';
import type { MutateDeps } from '../admission/mutate.js';
import type { Config } from '../config/schema.js';
import type { StateHandle } from '../state/state.js';

class Holder {
  leases = 0;
  retired = false;
  #closing: Promise<void> | null = null;
  #resolveClosed: () => void = () => {};
  readonly closed = new Promise<void>((resolve) => {
    this.#resolveClosed = resolve;
  });

  constructor(readonly handle: StateHandle) {}

  close(log: Logger): Promise<void> {
    this.#closing ??= this.handle
      .close()
      .catch((error: unknown) => log.error({ err: error }, 'closing registry state failed'))
      .finally(() => this.#resolveClosed());
    return this.#closing;
  }
}

interface Generation {
  readonly config: Config;
  readonly deps: MutateDeps;
  readonly holder: Holder;
}

export class Runtime {
  #current: Generation;
  readonly #holderOf = new WeakMap<MutateDeps, Holder>();
  /** Every state not yet closed: the one in force and replaced ones still serving reviews. */
  readonly #open = new Set<Holder>();
  #wasReady = false;

  constructor(
    config: Config,
    state: StateHandle,
    private readonly log: Logger,
  ) {
    this.#current = this.#generation(config, this.#hold(state));
  }

  get config(): Config {
    return this.#current.config;
  }

  get state(): StateHandle {
    return this.#current.holder.handle;
  }

  /**
   * Ready once the first registry state finished its first probe round, and from then on: a reload that swaps in
   * state still probing must not take a serving replica out of its Service (every pod would then be admitted
   * unrouted), while a new replica still must not route blind.
   */
  isReady(): boolean {
    this.#wasReady ||= this.#current.holder.handle.isReady();
    return this.#wasReady;
  }

  /** The deps for one review; hand them back with release() once it is answered. */
  acquire(): MutateDeps {
    this.#current.holder.leases += 1;
    return this.#current.deps;
  }

  release(deps: MutateDeps): void {
    const holder = this.#holderOf.get(deps);
    if (!holder) return;
    holder.leases -= 1;
    if (holder.retired && holder.leases === 0) this.#close(holder);
  }

  /**
   * Puts `config` and `state` in force for the next review. Reviews already running finish with what they
   * acquired, and replaced state is closed after the last of them. Resolves when that close is done, at once when
   * `state` is the state already in force (a change of routes alone keeps it).
   */
  swap(config: Config, state: StateHandle): Promise<void> {
    // Readiness latches on what is being replaced, in case nothing asked while it was in force.
    this.isReady();
    const previous = this.#current.holder;
    const holder = state === previous.handle ? previous : this.#hold(state);
    this.#current = this.#generation(config, holder);
    if (holder === previous) return Promise.resolve();
    previous.retired = true;
    if (previous.leases === 0) this.#close(previous);
    return previous.closed;
  }

  /** Closes every state still open. Call it once the server has drained: no review holds a lease any more. */
  async close(): Promise<void> {
    await Promise.all([...this.#open].map((holder) => this.#close(holder)));
  }

  #hold(state: StateHandle): Holder {
    const holder = new Holder(state);
    this.#open.add(holder);
    return holder;
  }

  #generation(config: Config, holder: Holder): Generation {
    const deps: MutateDeps = { config, state: holder.handle.state };
    this.#holderOf.set(deps, holder);
    return { config, deps, holder };
  }

  #close(holder: Holder): Promise<void> {
    this.#open.delete(holder);
    return holder.close(this.log);
  }
}
