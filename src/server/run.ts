// A running webhook process: config and certs in, HTTPS and metrics listeners up, reloads on change, and a clean
// way down.
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type Logger, pino } from 'pino';
import { Metrics } from '../audit/metrics.js';
import type { Config } from '../config/schema.js';
import { configuredRegistries } from '../state/clients.js';
import type { RegistryState } from '../state/state.js';
import { buildApp, buildMetricsApp } from './app.js';
import { ConfigReloader } from './config-reload.js';
import { DEFAULT_RELOAD_INTERVAL_MS, type Polling, pollEvery, type ReloadResult } from './poll.js';
import { Runtime } from './runtime.js';
import { checkKeyPair, readKeyPair, TlsReloader } from './tls.js';

export interface StateHandle {
  readonly state: RegistryState;
  /** True once registry state can be trusted for routing. */
  readonly isReady: () => boolean;
  close(): Promise<void>;
}

export interface ServerOptions {
  readonly config: Config;
  readonly state: StateHandle;
  readonly log?: Logger;
  readonly metrics?: Metrics;
  /** Overrides config.server.port and metricsPort (0 picks a free port): for tests and benchmarks. */
  readonly port?: number;
  readonly metricsPort?: number;
  readonly host?: string;
  /**
   * The file `config` was read from. With it (and `createState`), a change to the file, or to a credential or CA
   * file it names, is applied without a restart; without it the config is fixed.
   */
  readonly configFile?: string;
  /** Builds registry state for a reloaded config whose registry settings changed. */
  readonly createState?: (config: Config) => StateHandle;
  /** How often the cert, key and config files are checked. */
  readonly reloadIntervalMs?: number;
}

export interface RunningServer {
  readonly port: number;
  /** 0 when the metrics listener is disabled. */
  readonly metricsPort: number;
  /** The config in force: the one started with, or the last reloaded. */
  readonly config: Config;
  /** Checks the cert and key files now, as the timer does. */
  reloadTls(): Promise<ReloadResult>;
  /** Checks the config file now, as the timer does; 'unchanged' when there is no file to check. */
  reloadConfig(): Promise<ReloadResult>;
  /** Stops accepting connections, lets requests in flight finish, then releases registry state. */
  close(): Promise<void>;
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
  const app = buildApp(
    {
      mutateDeps: () => runtime.acquire(),
      release: (deps) => runtime.release(deps),
      metrics,
      log,
      isReady: () => runtime.isReady(),
    },
    { https: { cert: read.pair.cert, key: read.pair.key } },
  );
  const host = options.host ?? config.server.host;
  await app.listen({ port: options.port ?? config.server.port, host });
  const port = (app.server.address() as AddressInfo).port;

  const metricsPort = options.metricsPort ?? config.server.metricsPort;
  const metricsApp = metricsPort === 0 && options.metricsPort === undefined ? null : buildMetricsApp(metrics);
  if (metricsApp) await metricsApp.listen({ port: metricsPort, host });
  const boundMetricsPort = metricsApp ? (metricsApp.server.address() as AddressInfo).port : 0;

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
  if (reloader) polling.push(pollEvery(intervalMs, () => reloader.check(), failed('config')));
  log.info(
    { port, metricsPort: boundMetricsPort, routes: config.routes.length, configReload: reloader !== null },
    'regroute serving',
  );

  let closing: Promise<void> | null = null;
  return {
    port,
    metricsPort: boundMetricsPort,
    get config() {
      return runtime.config;
    },
    reloadTls: () => tls.check(),
    reloadConfig: () => reloader?.check() ?? Promise.resolve('unchanged'),
    close() {
      closing ??= (async () => {
        for (const p of polling) p.stop();
        // fastify's close stops accepting at once, then waits for requests in flight; a reload under way is
        // abandoned meanwhile rather than holding the port open.
        await Promise.all([app.close(), reloader?.stop()]);
        await metricsApp?.close();
        await runtime.close();
      })();
      return closing;
    },
  };
}
