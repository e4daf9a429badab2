// `regroute serve`: runs the webhook until SIGTERM or SIGINT, then drains in-flight requests and exits.
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Metrics } from '../audit/metrics.js';
import { ensureDevCerts } from '../certs/files.js';
import { startServer } from '../server/run.js';
import { createStateHandle } from '../state/create.js';
import { loadConfigOption } from './config-option.js';
import { EXIT, type Io } from './io.js';

export const serveUsage = `regroute serve [--config FILE] [--port N]
  Serves POST /mutate, GET /healthz and GET /readyz over HTTPS, and GET /metrics on the metrics port.
  Without --config: the embedded default (port 8443, no routes) with dev certs made in certs/ when missing.`;

export async function serveCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, port: { type: 'string' } } });
  const config = await loadConfigOption(values.config);
  const log = pino({ name: 'regroute' });
  if (!values.config && (await ensureDevCerts(config.server.tlsCert, config.server.tlsKey))) {
    log.info({ cert: config.server.tlsCert }, 'made development certificates');
  }
  for (const [host, settings] of Object.entries(config.registries)) {
    if (settings.insecure) log.warn({ registry: host }, 'registry configured insecure: plain HTTP, no TLS');
  }
  const metrics = new Metrics();
  const state = createStateHandle(config, log, { metrics });
  const server = await startServer({
    config,
    state,
    log,
    metrics,
    ...(values.port ? { port: Number(values.port) } : {}),
  });
  io.err(`regroute listening on https://${config.server.host}:${server.port}`);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await server.close();
  return EXIT.ok;
}
