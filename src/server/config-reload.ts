// Config reload: the config file, and the credential and CA files it names, re-read on change and put in force
// for the next review, or refused with the running config kept.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Metrics } from '../audit/metrics.js';
import { parseConfigText } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { pullSecretNames } from '../kube/pull-secret-plan.js';
import { configuredRegistries } from '../state/clients.js';
import { firstRoundBoundMs } from '../state/prober.js';
import type { StateHandle } from '../state/state.js';
import { fingerprint, type ReloadResult, readFileOrError } from './poll.js';
import type { Runtime } from './runtime.js';

/** The files a config makes registry state read, each with the registry whose client reads it. */
export function registryFiles(config: Config): { registry: string; file: string }[] {
  return Object.entries(config.registries).flatMap(([registry, settings]) =>
    [
      ...(settings.auth && 'passwordFile' in settings.auth ? [settings.auth.passwordFile] : []),
      ...(settings.auth && 'dockerConfigJson' in settings.auth ? [settings.auth.dockerConfigJson] : []),
      ...(settings.caFile ? [settings.caFile] : []),
    ].map((file) => ({ registry, file })),
  );
}

/** The files a config makes registry state read: a change in any of them needs new clients. */
export function referencedFiles(config: Config): string[] {
  return registryFiles(config).map(({ file }) => file);
}

/**
 * What each registry's files hold, by `registry file`: a fingerprint, or `unreadable:<code>`. A file that cannot
 * be read now but could when the running clients were made keeps its earlier fingerprint in `inputs`: the running
 * client for that registry is what stands for it (a Secret being re-projected vanishes for a moment), and the
 * file coming back unchanged is then no change at all.
 */
async function readInputs(
  config: Config,
  running: ReadonlyMap<string, string>,
): Promise<{ inputs: Map<string, string>; unreadable: { registry: string; file: string; error: string }[] }> {
  const inputs = new Map<string, string>();
  const unreadable: { registry: string; file: string; error: string }[] = [];
  await Promise.all(
    registryFiles(config).map(async ({ registry, file }) => {
      const key = `${registry} ${file}`;
      const read = await readFileOrError(file);
      if (read.ok) {
        inputs.set(key, fingerprint(read.bytes));
        return;
      }
      unreadable.push({ registry, file, error: read.error });
      const before = running.get(key);
      inputs.set(key, before !== undefined ? before : `unreadable:${read.error}`);
    }),
  );
  unreadable.sort((a, b) => `${a.registry} ${a.file}`.localeCompare(`${b.registry} ${b.file}`));
  return { inputs, unreadable };
}

const inputsKey = (inputs: ReadonlyMap<string, string>): string =>
  [...inputs].sort(([a], [b]) => a.localeCompare(b)).join('\n');

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

/**
 * The cluster parts (learning, warm-up, repair) are started once with their settings and run for the process's
 * life, so a change waits for a restart: the running config keeps the settings they run with.
 */
export function changedClusterSettings(running: Config, next: Config): string[] {
  const keys = new Set([...Object.keys(running.cluster), ...Object.keys(next.cluster)]) as Set<
    keyof Config['cluster']
  >;
  return [...keys]
    .filter((key) => JSON.stringify(running.cluster[key]) !== JSON.stringify(next.cluster[key]))
    .map((key) => `cluster.${key}`);
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

/** The first round of probes, confirmations of first failures included, has a bound of its own. */
const defaultReadyTimeoutMs = (config: Config) => firstRoundBoundMs(config.probe);

export class ConfigReloader {
  /** The config file as last tried, valid or not: a refused file is reported once, not on every check. */
  #tried = '';
  /** The referenced files as the state in force read them (see readInputs). */
  #inputs = new Map<string, string>();
  /** The unreadable files last reported, so that one that stays missing is reported once. */
  #unreadable = '';
  /** Whether the config file as last tried was put in force. */
  #configValid = true;
  #stopped = false;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly options: ConfigReloaderOptions) {}

  /** Takes the files as they are now as the ones the running config and state came from. */
  static async create(options: ConfigReloaderOptions): Promise<ConfigReloader> {
    const reloader = new ConfigReloader(options);
    const read = await readFileOrError(options.file);
    reloader.#tried = read.ok ? fingerprint(read.bytes) : '';
    const { inputs, unreadable } = await readInputs(options.runtime.config, new Map());
    reloader.#inputs = inputs;
    // Reported at start already, by the clients that could not be made.
    reloader.#unreadable = JSON.stringify(unreadable);
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
      this.#configValid = parsed.ok;
      metrics?.recordFilesValid('config', parsed.ok);
      if (!parsed.ok) return this.#refuse(parsed.error);
      const ignored = changedServerSettings(running, parsed.config);
      if (ignored.length > 0)
        log.warn(
          { file, settings: ignored.map((key) => `server.${key}`) },
          'server settings changed; they apply on restart',
        );
      const cluster = changedClusterSettings(running, parsed.config);
      if (cluster.length > 0)
        log.warn({ file, settings: cluster }, 'cluster settings changed; they apply on restart');
      const events =
        JSON.stringify(running.admission.events) !== JSON.stringify(parsed.config.admission.events);
      if (events)
        log.warn(
          { file, settings: ['admission.events'] },
          'admission events setting changed; it applies on restart',
        );
      if (syncInputs(running) !== syncInputs(parsed.config))
        log.warn(
          { file },
          'pull-secret sync settings or pull secret names changed; the sync applies them on restart',
        );
      next = {
        ...parsed.config,
        server: running.server,
        cluster: running.cluster,
        // The Events part was started (or not) with the running setting, and runs for the process's life.
        admission: { ...parsed.config.admission, events: running.admission.events },
      };
    }

    const { inputs, unreadable } = await readInputs(next, this.#inputs);
    const refusedFiles = this.#noteUnreadable(unreadable);
    const rebuild =
      inputsKey(inputs) !== inputsKey(this.#inputs) || registryStateKey(next) !== registryStateKey(running);
    if (!rebuild && JSON.stringify(next) === JSON.stringify(running))
      return refusedFiles ? 'rejected' : 'unchanged';

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

  /**
   * Reports files the config names that cannot be read, once for as long as they stay so: their registries keep
   * their running clients meanwhile. True when newly reported.
   */
  #noteUnreadable(unreadable: { registry: string; file: string; error: string }[]): boolean {
    const { file, log, metrics } = this.options;
    const key = JSON.stringify(unreadable);
    if (key === this.#unreadable) return false;
    this.#unreadable = key;
    if (unreadable.length === 0) {
      log.info({ file }, 'the files the config names can be read again');
      metrics?.recordFilesValid('config', this.#configValid);
      return false;
    }
    log.error(
      { file, unreadable },
      'cannot read files the config names; their registries keep their running clients',
    );
    metrics?.recordReload('config', false);
    metrics?.recordFilesValid('config', false);
    return true;
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
   * registry's verdict. What createState keeps of the state it replaces is its business (the serve command keeps
   * caches, and the clients of registries whose files cannot be read now). 'stopped' when the reloader stopped
   * meanwhile; any other string says why no state could be built.
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
