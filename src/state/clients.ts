// One registry client per registry host, made on first use from the config and kept for the process's life.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { createRegistryClient, type RegistryClient, type RequestEvent } from '../registry/index.js';
import { splitLocation } from '../routing/route.js';

/** Wildcard routes let pods name hosts the config does not list; this bounds how many clients they can create. */
const MAX_CLIENTS = 256;

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

export type ClientOrFailure = { ok: true; client: RegistryClient } | { ok: false; error: string };

export class ClientPool {
  readonly #clients = new Map<string, Promise<ClientOrFailure>>();

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly onRequest?: (event: RequestEvent) => void,
  ) {
    for (const registry of configuredRegistries(config)) void this.get(registry);
  }

  /** The registry's client, or why it could not be made (a missing password file, an unreadable CA). */
  get(registry: string): Promise<ClientOrFailure> {
    const existing = this.#clients.get(registry);
    if (existing) return existing;
    if (this.#clients.size >= MAX_CLIENTS)
      return Promise.resolve({ ok: false, error: 'too many registries' });
    const made = createRegistryClient({
      registry,
      settings: this.config.registries[registry] ?? {},
      ...(this.onRequest ? { onRequest: this.onRequest } : {}),
    }).then(
      (client): ClientOrFailure => ({ ok: true, client }),
      (error: unknown): ClientOrFailure => {
        const message = error instanceof Error ? error.message : String(error);
        this.log.error(
          { registry, error: message },
          'registry client could not be set up; registry treated as down',
        );
        return { ok: false, error: message };
      },
    );
    this.#clients.set(registry, made);
    return made;
  }

  registries(): string[] {
    return [...this.#clients.keys()];
  }

  async close(): Promise<void> {
    const clients = await Promise.all(this.#clients.values());
    await Promise.all(clients.map((c) => (c.ok ? c.client.close() : undefined)));
  }
}
