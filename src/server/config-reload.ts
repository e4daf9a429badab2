// Config reload: the config file, and the credential and CA files it names, re-read on change and put in force
// for the next review, or refused with the running config kept.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Metrics } from '../audit/metrics.js';
import { parseConfigText } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { pullSecretNames } from '../kube/pull-secret-plan.js';
import { configuredRegistries } from '../state/clients.js';
import { fingerprint, fingerprintFiles, type ReloadResult, readFileOrError } from './poll.js';
import type { StateHandle } from './run.js';
import type { Runtime } from './runtime.js';

/** The files a config makes registry state read: a change in any of them needs new clients. */
export function referencedFiles(config: Config): string[] {
  return Object.values(config.registries).flatMap((settings) => [
    ...(settings.auth && 'passwordFile' in settings.auth ? [settings.auth.passwordFile] : []),
    ...(settings.auth && 'dockerConfigJson' in settings.auth ? [settings.auth.dockerConfigJson] : []),
    ...(settings.caFile ? [settings.caFile] : []),
  ]);
}

/**
 * What registry state is built from. Equal keys (and unchanged referenced files) mean the running state serves the
 * new config as it is, caches and health included: a change of routes or admission settings rebuilds nothing.
 */
export function registryStateKey(config: Config): string {
  // A pull secret's name only goes into patches: it needs no new client.
  const registries = Object.entries(config.registries).map(([host, { pullSecret: _, ...settings }]) => [
    host,
    settings,
  ]);
  return JSON.stringify([registries, config.probe, config.cache, configuredRegistries(config)]);
}

/** The server settings that differ: they bind sockets and are read once, so only a restart applies them. */
export function changedServerSettings(running: Config, next: Config): string[] {
  return (Object.keys(next.server) as (keyof Config['server'])[]).filter(
    (key) => running.server[key] !== next.server[key],
  );
}

/** What the pull-secret sync was started with: it runs for the process's life, so only a restart applies changes. */
const syncInputs = (config: Config): string =>
  JSON.stringify([config.pullSecretSync, pullSecretNames(config.registries)]);

export interface ConfigReloaderOptions {
  readonly file: string;
  readonly runtime: Runtime;
  /** Builds registry state for a config, probing in the background as at start. */
  readonly createState: (config: Config) => StateHandle;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Longest new state may take over its first probe round before it is put in force anyway. */
  readonly readyTimeoutMs?: (config: Config) => number;
  readonly readyPollMs?: number;
}

/**
 * A probe round ends by probe.timeoutMs; the second on top covers reading credential files and making clients.
 */
const defaultReadyTimeoutMs = (config: Config) => config.probe.timeoutMs + 1000;

export class ConfigReloader {
  /** The config file as last tried, valid or not: a refused file is reported once, not on every check. */
  #tried = '';
  /** The referenced files as the state in force read them. */
  #inputs = '';
  #stopped = false;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly options: ConfigReloaderOptions) {}

  /** Takes the files as they are now as the ones the running config and state came from. */
  static async create(options: ConfigReloaderOptions): Promise<ConfigReloader> {
    const reloader = new ConfigReloader(options);
    const read = await readFileOrError(options.file);
    reloader.#tried = read.ok ? fingerprint(read.bytes) : '';
    reloader.#inputs = await fingerprintFiles(referencedFiles(options.runtime.config));
    options.metrics?.recordFilesValid('config', true);
    return reloader;
  }

  /** Checks the files once; checks never overlap, whether the timer or a caller asks. */
  check(): Promise<ReloadResult> {
    const result = this.#queue.then(() => this.#check());
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** No further reload starts; one under way is abandoned before its swap. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#queue;
  }

  async #check(): Promise<ReloadResult> {
    if (this.#stopped) return 'unchanged';
    const { file, runtime, log, metrics } = this.options;
    const running = runtime.config;
    const read = await readFileOrError(file);
    const tried = read.ok ? fingerprint(read.bytes) : `unreadable ${read.error}`;

    // While the file stays refused, the running config is what the referenced files are checked for: a rotated
    // password still reaches the clients.
    let next = running;
    if (tried !== this.#tried) {
      this.#tried = tried;
      const parsed = read.ok
        ? this.#parse(read.bytes)
        : { ok: false as const, error: `cannot read config ${file}: ${read.error}` };
      metrics?.recordFilesValid('config', parsed.ok);
      if (!parsed.ok) return this.#refuse(parsed.error);
      const ignored = changedServerSettings(running, parsed.config);
      if (ignored.length > 0)
        log.warn(
          { file, settings: ignored.map((key) => `server.${key}`) },
          'server settings changed; they apply on restart',
        );
      if (syncInputs(running) !== syncInputs(parsed.config))
        log.warn(
          { file },
          'pull-secret sync settings or pull secret names changed; the sync applies them on restart',
        );
      next = { ...parsed.config, server: running.server };
    }

    const inputs = await fingerprintFiles(referencedFiles(next));
    const rebuild = inputs !== this.#inputs || registryStateKey(next) !== registryStateKey(running);
    if (!rebuild && JSON.stringify(next) === JSON.stringify(running)) return 'unchanged';

    let state = runtime.state;
    if (rebuild) {
      const built = await this.#build(next);
      if (built === 'stopped') return 'unchanged';
      if (typeof built === 'string') return this.#refuse(built);
      state = built;
    }
    this.#inputs = inputs;
    const before = configuredRegistries(running);
    const retired = runtime.swap(next, state);
    metrics?.configureRegistries(configuredRegistries(next));
    // Probes of the replaced state may land until it closes; the series of a dropped registry goes after that.
    void retired.then(() => {
      for (const registry of before)
        if (!metrics?.registryLabels.isConfigured(registry)) metrics?.forgetRegistry(registry);
    });
    log.info({ file, routes: next.routes.length, registryStateRebuilt: rebuild }, 'config reloaded');
    metrics?.recordReload('config', true);
    return 'applied';
  }

  #refuse(error: string): ReloadResult {
    this.options.log.error(
      { file: this.options.file, error },
      'config not reloaded; the running config stays',
    );
    this.options.metrics?.recordReload('config', false);
    return 'rejected';
  }

  #parse(bytes: Buffer): { ok: true; config: Config } | { ok: false; error: string } {
    try {
      return { ok: true, config: parseConfigText(bytes.toString('utf8'), this.options.file) };
    } catch (error) {
      return { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  }

  /**
   * New registry state for `config`, put in force once its first probe round is done, so that the first reviews
   * after a reload see fresh health rather than none. Health is probed afresh, not carried over from
   * the state it replaces: a rebuild means credentials, a CA or probe settings changed, which is what can turn a
   * registry's verdict. Tag and presence caches start empty too (the last digest known for a tag included).
   * 'stopped' when the reloader stopped meanwhile; any other string says why no state could be built.
   */
  async #build(config: Config): Promise<StateHandle | 'stopped' | string> {
    const { createState, log } = this.options;
    let state: StateHandle;
    try {
      state = createState(config);
    } catch (error) {
      return `registry state could not be built: ${error instanceof Error ? error.message : String(error)}`;
    }
    const timeoutMs = (this.options.readyTimeoutMs ?? defaultReadyTimeoutMs)(config);
    const pollMs = this.options.readyPollMs ?? 25;
    const until = performance.now() + timeoutMs;
    while (!state.isReady() && !this.#stopped && performance.now() < until) await sleep(pollMs);
    if (this.#stopped) {
      await state.close();
      return 'stopped';
    }
    if (!state.isReady())
      log.warn({ timeoutMs }, 'new registry state not probed in time; put in force while its probes finish');
    return state;
  }
}
