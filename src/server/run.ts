// A running webhook process: config and certs in, HTTPS and metrics listeners up, and a clean way down.
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { type Logger, pino } from 'pino';
import type { MutateDeps } from '../admission/mutate.js';
import { Metrics } from '../audit/metrics.js';
import type { Config } from '../config/schema.js';
import type { RegistryState } from '../state/state.js';
import { buildApp, buildMetricsApp } from './app.js';

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
}

export interface RunningServer {
  readonly port: number;
  /** 0 when the metrics listener is disabled. */
  readonly metricsPort: number;
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config } = options;
  const log = options.log ?? pino({ name: 'regroute' });
  const metrics = options.metrics ?? new Metrics();
  const mutateDeps: MutateDeps = { config, state: options.state.state };
  const [cert, key] = await Promise.all([readFile(config.server.tlsCert), readFile(config.server.tlsKey)]);

  const app = buildApp(
    { mutateDeps: () => mutateDeps, metrics, log, isReady: options.state.isReady },
    { https: { cert, key } },
  );
  const host = options.host ?? config.server.host;
  await app.listen({ port: options.port ?? config.server.port, host });
  const port = (app.server.address() as AddressInfo).port;

  const metricsPort = options.metricsPort ?? config.server.metricsPort;
  const metricsApp = metricsPort === 0 && options.metricsPort === undefined ? null : buildMetricsApp(metrics);
  if (metricsApp) await metricsApp.listen({ port: metricsPort, host });
  const boundMetricsPort = metricsApp ? (metricsApp.server.address() as AddressInfo).port : 0;
  log.info({ port, metricsPort: boundMetricsPort, routes: config.routes.length }, 'regroute serving');

  return {
    port,
    metricsPort: boundMetricsPort,
    async close() {
      // fastify's close stops accepting, then waits for in-flight requests to finish.
      await app.close();
      await metricsApp?.close();
      await options.state.close();
    },
  };
}
