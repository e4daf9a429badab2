// A running webhook process: config and certs in, HTTPS, health and metrics listeners up, reloads on change, and a
// way down that loses no review.
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { type Logger, pino } from 'pino';
import { Metrics } from '../audit/metrics.js';
import type { Config } from '../config/schema.js';
import { configuredRegistries } from '../state/clients.js';
import type { StateHandle } from '../state/state.js';
import { type AppDeps, buildApp, buildMetricsApp } from './app.js';
import { ConfigReloader } from './config-reload.js';
import { buildHealthApp, closeConnectionsWhile } from './health.js';
import { DEFAULT_RELOAD_INTERVAL_MS, type Polling, pollEvery, type ReloadResult } from './poll.js';
import { Runtime } from './runtime.js';
import { checkKeyPair, readKeyPair, TlsReloader } from './tls.js';

export interface ServerOptions {
  readonly config: Config;
  readonly state: StateHandle;
  readonly log?: Logger;
  readonly metrics?: Metrics;
  /** Overrides config.server.port, metricsPort and healthPort (0 picks a free port): for tests and benchmarks. */
  readonly port?: number;
  /** As above; null turns the metrics listener off whatever the config says (`serve --metrics-port 0`). */
  readonly metricsPort?: number | null;
  readonly healthPort?: number;
  readonly host?: string;
  /**
   * The file `config` was read from. With it (and `createState`), a change to the file, or to a credential or CA
   * file it names, is applied without a restart; without it the config is fixed.
   */
  readonly configFile?: string;
  /** Builds registry state for a reloaded config whose registry settings changed. */
  readonly createState?: (config: Config) => StateHandle;
  /** Told of each config a reload put in force, once it is: what the server does not apply itself (the log level). */
  readonly onReload?: (config: Config) => void;
  /** Told of each review's outcome once it is answered (the Events on rerouted pods); see AppDeps.answered. */
  readonly answered?: AppDeps['answered'];
  /** How often the cert, key and config files are checked. */
  readonly reloadIntervalMs?: number;
  /** How shutdown() waits out server.shutdownDelaySeconds: a test holds it open for as long as it looks. */
  readonly delay?: (ms: number) => Promise<void>;
}

export interface RunningServer {
  readonly port: number;
  /** 0 when the metrics listener is disabled. */
  readonly metricsPort: number;
  /** 0 when the health listener is disabled. */
  readonly healthPort: number;
  /** The config in force: the one started with, or the last reloaded. */
  readonly config: Config;
  /** Checks the cert and key files now, as the timer does. */
  reloadTls(): Promise<ReloadResult>;
  /** Checks the config file now, as the timer does; 'unchanged' when there is no file to check. */
  reloadConfig(): Promise<ReloadResult>;
  /**
   * The way down on SIGTERM: for server.shutdownDelaySeconds every listener keeps accepting and answering, each
   * answer ending its connection, while Kubernetes takes the pod out of the Service; then close().
   */
  shutdown(): Promise<void>;
  /** Stops accepting connections, lets requests in flight finish, then releases registry state. */
  close(): Promise<void>;
}

/**
 * A listener the config may turn off with port 0, unless the caller asks for one (0 then picks a free port); a
 * caller's null turns it off.
 */
async function listenUnlessOff(
  build: () => FastifyInstance,
  configured: number,
  override: number | null | undefined,
  host: string,
): Promise<{ app: FastifyInstance | null; port: number }> {
  if (override === null || (configured === 0 && override === undefined)) return { app: null, port: 0 };
  const app = build();
  await app.listen({ port: override ?? configured, host });
  return { app, port: (app.server.address() as AddressInfo).port };
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config } = options;
  const log = options.log ?? pino({ name: 'regroute' });
  const metrics = options.metrics ?? new Metrics();
  metrics.configureRegistries(configuredRegistries(config));
  // The config in force was accepted to get here, from a file or embedded; a reloader reports the file's changes.
  metrics.recordFilesValid('config', true);
  const { tlsCert, tlsKey } = config.server;
  const read = await readKeyPair(tlsCert, tlsKey);
  if (!read.ok) throw new Error(`serving certificate: ${read.error}`);
  const checked = checkKeyPair(read.pair);
  if (!checked.ok) throw new Error(`serving certificate ${tlsCert} with key ${tlsKey}: ${checked.error}`);

  const runtime = new Runtime(config, options.state, log);
  let draining = false;
  const app = buildApp(
    {
      mutateDeps: () => runtime.acquire(),
      release: (deps) => runtime.release(deps),
      metrics,
      log,
      isReady: () => runtime.isReady(),
      ...(options.answered ? { answered: options.answered } : {}),
    },
    { https: { cert: read.pair.cert, key: read.pair.key } },
  );
  closeConnectionsWhile(app, () => draining);
  const host = options.host ?? config.server.host;
  await app.listen({ port: options.port ?? config.server.port, host });
  const port = (app.server.address() as AddressInfo).port;

  const drained = (built: FastifyInstance) => {
    closeConnectionsWhile(built, () => draining);
    return built;
  };
  const listening: FastifyInstance[] = [app];
  const listen = async (
    build: () => FastifyInstance,
    configured: number,
    override: number | null | undefined,
  ) => {
    try {
      const bound = await listenUnlessOff(() => drained(build()), configured, override, host);
      if (bound.app) listening.push(bound.app);
      return bound;
    } catch (error) {
      // A port in use must not leave the others open, holding the process up after the error is reported.
      await Promise.all(listening.map((open) => open.close()));
      throw error;
    }
  };
  const { app: metricsApp, port: boundMetricsPort } = await listen(
    () => buildMetricsApp(metrics),
    config.server.metricsPort,
    options.metricsPort,
  );
  const { app: healthApp, port: boundHealthPort } = await listen(
    () => buildHealthApp(() => runtime.isReady()),
    config.server.healthPort,
    options.healthPort,
  );

  const intervalMs = options.reloadIntervalMs ?? DEFAULT_RELOAD_INTERVAL_MS;
  const tls = new TlsReloader({
    certFile: tlsCert,
    keyFile: tlsKey,
    initial: read.pair,
    apply: (pair) => (app.server as HttpsServer).setSecureContext({ cert: pair.cert, key: pair.key }),
    log,
    metrics,
  });
  const failed = (what: string) => (error: unknown) => log.error({ err: error }, `${what} check failed`);
  const polling: Polling[] = [pollEvery(intervalMs, () => tls.check(), failed('serving certificate'))];
  const reloader =
    options.configFile && options.createState
      ? await ConfigReloader.create({
          file: options.configFile,
          runtime,
          createState: options.createState,
          log,
          metrics,
        })
      : null;
  const reloadConfig = async (): Promise<ReloadResult> => {
    if (!reloader) return 'unchanged';
    const result = await reloader.check();
    if (result === 'applied') options.onReload?.(runtime.config);
    return result;
  };
  if (reloader) polling.push(pollEvery(intervalMs, reloadConfig, failed('config')));
  log.info(
    {
      port,
      metricsPort: boundMetricsPort,
      healthPort: boundHealthPort,
      routes: config.routes.length,
      configReload: reloader !== null,
    },
    'regroute serving',
  );

  const delay = options.delay ?? sleep;
  let closing: Promise<void> | null = null;
  let stopping: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      for (const p of polling) p.stop();
      // fastify's close stops accepting at once, then waits for requests in flight; a reload under way is
      // abandoned meanwhile rather than holding the port open.
      await Promise.all([app.close(), reloader?.stop()]);
      await Promise.all([metricsApp?.close(), healthApp?.close()]);
      await runtime.close();
    })();
    return closing;
  };
  return {
    port,
    metricsPort: boundMetricsPort,
    healthPort: boundHealthPort,
    get config() {
      return runtime.config;
    },
    reloadTls: () => tls.check(),
    reloadConfig,
    shutdown() {
      stopping ??= (async () => {
        draining = true;
        await delay(config.server.shutdownDelaySeconds * 1000);
        await close();
      })();
      return stopping;
    },
    close,
  };
}
