// One registry client per registry host: the config's made at once and kept, other hosts' made on first use and
// evicted when too many; a reload's pool keeps the clients whose files it cannot read.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { splitLocation } from '../reference/index.js';
import {
  createRegistryClient,
  type RegistryClient,
  RegistrySetupError,
  type RequestEvent,
} from '../registry/index.js';

/**
 * Wildcard routes let pods name hosts the config does not list; this bounds how many clients they hold at once
 * (each keeps a connection pool and a TLS context). Hosts the config names do not count against it.
 */
export const MAX_UNCONFIGURED_CLIENTS = 256;

/** A full pool is reported at most this often; what happened meanwhile is counted in the next report. */
const FULL_POOL_REPORT_MS = 60_000;

/** Every registry host the config names: in its registries, route candidates, explicit sources and exact prefixes. */
export function configuredRegistries(config: Config): string[] {
  const hosts = new Set(Object.keys(config.registries));
  for (const route of config.routes) {
    for (const location of route.registries) hosts.add(splitLocation(location).registry);
    if (route.source) hosts.add(splitLocation(route.source).registry);
    if (!route.prefix.startsWith('*.')) hosts.add(splitLocation(route.prefix).registry);
  }
  return [...hosts].sort();
}

/**
 * A client, or why there is none. `local: true` when the reason is a limit of ours (the pool is full of clients
 * in use): it says nothing about the registry, which must not be counted down for it. `local: false` when the
 * registry's own setup failed (a missing password file, an unreadable CA): the registry cannot be used.
 */
export type ClientOrFailure =
  | { ok: true; client: RegistryClient }
  | { ok: false; error: string; local: boolean };

export interface ClientPoolOptions {
  readonly onRequest?: (event: RequestEvent) => void;
  /**
   * The pool this one replaces on a config reload. A registry whose files cannot be read now (a Secret being
   * re-projected) keeps the client it had there, rather than counting as down until the files return.
   */
  readonly previous?: ClientPool;
  /** Told when an unconfigured host's client is evicted: what was known of that host is no longer probed. */
  readonly onEvict?: (registry: string) => void;
  readonly maxUnconfigured?: number;
  readonly now?: () => number;
}

interface Entry {
  readonly made: Promise<ClientOrFailure>;
  /** Set once `made` settles: the client, or null when there is none. Unsettled entries are never evicted. */
  settled?: RegistryClient | null;
}

/**
 * How many pools hold each client: a reload's pool may keep a client of the pool it replaces, and whichever
 * closes last closes the client.
 */
const holders = new WeakMap<RegistryClient, number>();

function hold(client: RegistryClient): void {
  holders.set(client, (holders.get(client) ?? 0) + 1);
}

async function release(client: RegistryClient): Promise<void> {
  const left = (holders.get(client) ?? 1) - 1;
  holders.set(client, left);
  if (left <= 0) await client.close();
}

export class ClientPool {
  /** In order of use, least recent first: configured hosts are never evicted, so their place does not matter. */
  readonly #entries = new Map<string, Entry>();
  readonly #configured: ReadonlySet<string>;
  readonly #max: number;
  readonly #now: () => number;
  #closed = false;
  #full = { evicted: 0, refused: 0, reportedAt: Number.NEGATIVE_INFINITY };

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly options: ClientPoolOptions = {},
  ) {
    this.#configured = new Set(configuredRegistries(config));
    this.#max = options.maxUnconfigured ?? MAX_UNCONFIGURED_CLIENTS;
    this.#now = options.now ?? Date.now;
    for (const registry of this.#configured) this.#entries.set(registry, this.#make(registry));
  }

  /** The registry's client, made on first use; for a host the config does not name, a use that keeps it. */
  get(registry: string): Promise<ClientOrFailure> {
    const existing = this.#entries.get(registry);
    if (existing) {
      if (!this.#configured.has(registry)) {
        this.#entries.delete(registry);
        this.#entries.set(registry, existing);
      }
      return existing.made;
    }
    if (this.#closed) return Promise.resolve({ ok: false, error: 'registry clients closed', local: true });
    if (this.#unconfiguredCount() >= this.#max && !this.#evictOne()) {
      this.#reportFull('refused', registry);
      return Promise.resolve({
        ok: false,
        error: `registry client pool full (${this.#max} hosts outside the config, all in use)`,
        local: true,
      });
    }
    const entry = this.#make(registry);
    this.#entries.set(registry, entry);
    return entry.made;
  }

  /** The registry's client if the pool holds one; never makes one, and is not a use (probes must not keep hosts). */
  peek(registry: string): Promise<ClientOrFailure> | undefined {
    return this.#entries.get(registry)?.made;
  }

  registries(): string[] {
    return [...this.#entries.keys()];
  }

  async close(): Promise<void> {
    this.#closed = true;
    const made = await Promise.all([...this.#entries.values()].map((entry) => entry.made));
    await Promise.all(made.map((c) => (c.ok ? release(c.client) : undefined)));
  }

  #unconfiguredCount(): number {
    return this.#entries.size - this.#configured.size;
  }

  /**
   * Makes room by evicting the least recently used client of a host the config does not name, among those no call
   * is using (one still being made counts as in use). False when there is none.
   */
  #evictOne(): boolean {
    for (const [registry, entry] of this.#entries) {
      if (this.#configured.has(registry) || entry.settled === undefined || entry.settled?.busy) continue;
      this.#entries.delete(registry);
      const client = entry.settled;
      // A caller handed this client in the current turn starts its call before the next turn, so waiting for
      // idleness from then on never cuts short a call that was about to be made.
      if (client) setImmediate(() => void client.whenIdle().then(() => release(client)));
      this.options.onEvict?.(registry);
      this.#reportFull('evicted', registry);
      return true;
    }
    return false;
  }

  /**
   * A full pool is news once, then a count every FULL_POOL_REPORT_MS: a pod naming hundreds of hosts must not flood
   * the log.
   */
  #reportFull(what: 'evicted' | 'refused', registry: string): void {
    this.#full[what] += 1;
    const now = this.#now();
    if (now - this.#full.reportedAt < FULL_POOL_REPORT_MS) return;
    const { evicted, refused } = this.#full;
    this.log.warn(
      { registry, evicted, refused, max: this.#max },
      what === 'evicted'
        ? 'registry client pool full: idle clients of hosts outside the config evicted, least recently used first'
        : 'registry client pool full of clients in use: a request was not sent (not a registry failure)',
    );
    this.#full = { evicted: 0, refused: 0, reportedAt: now };
  }

  #make(registry: string): Entry {
    const entry: Entry = {
      made: createRegistryClient({
        registry,
        settings: this.config.registries[registry] ?? {},
        ...(this.options.onRequest ? { onRequest: this.options.onRequest } : {}),
      }).then(
        (client): ClientOrFailure => {
          hold(client);
          entry.settled = client;
          return { ok: true, client };
        },
        async (error: unknown): Promise<ClientOrFailure> => {
          const message = error instanceof Error ? error.message : String(error);
          const kept = error instanceof RegistrySetupError ? await this.#keep(registry, message) : undefined;
          entry.settled = kept ?? null;
          if (kept) return { ok: true, client: kept };
          this.log.error(
            { registry, error: message },
            'registry client could not be set up; registry treated as down',
          );
          return { ok: false, error: message, local: false };
        },
      ),
    };
    return entry;
  }

  /** The client the replaced pool had for `registry`, now held by this pool too; undefined when it had none. */
  async #keep(registry: string, error: string): Promise<RegistryClient | undefined> {
    const previous = await this.options.previous?.peek(registry);
    if (!previous?.ok || previous.client.closed) return undefined;
    hold(previous.client);
    this.log.error(
      { registry, error },
      'registry client could not be set up from its files; the running client is kept until they can be read',
    );
    return previous.client;
  }
}
