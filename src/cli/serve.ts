// `regroute serve`: runs the webhook until SIGTERM or SIGINT, then drains in-flight requests and exits.
import type { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Metrics } from '../audit/metrics.js';
import { type Config, LogLevel } from '../config/schema.js';
import { processLogger } from '../server/log.js';
import { type RunningServer, startServer } from '../server/run.js';
import { createStateHandle, type LiveStateHandle } from '../state/create.js';
import { loadConfigOption } from './config-option.js';
import { EXIT, type Io, UsageError } from './io.js';

/** How long a stopping webhook waits for the Events of its last reviews, within the pod's grace period. */
const EVENTS_DRAIN_MS = 2_000;

export const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
export type ShutdownSignal = (typeof SHUTDOWN_SIGNALS)[number];

/**
 * Resolves with the first shutdown signal, then stops listening for them: a second signal while draining meets
 * Node's default action and ends the process at once, which is what an operator pressing Ctrl-C twice wants.
 */
export function shutdownSignal(emitter: EventEmitter = process): Promise<ShutdownSignal> {
  return new Promise((resolve) => {
    const handlers = SHUTDOWN_SIGNALS.map((signal) => {
      const handler = () => {
        for (const [other, h] of handlers) emitter.off(other, h);
        resolve(signal);
      };
      emitter.on(signal, handler);
      return [signal, handler] as const;
    });
  });
}

/**
 * @kubernetes/client-node holds about 70 MB of memory once loaded, which the webhook itself never needs: only the
 * parts that talk to the API server load it, and only when enabled.
 */
const kubeClient = () => import('../kube/client.js');

/** The pull-secret sync, loaded only when enabled. */
async function startPullSecrets(config: Config, log: Logger) {
  const [{ pullSecretNames, startPullSecretSync }, { defaultKubeConfig }] = await Promise.all([
    import('../kube/pull-secret-sync.js'),
    kubeClient(),
  ]);
  return startPullSecretSync({
    kubeConfig: defaultKubeConfig(),
    namespace: config.pullSecretSync.namespace,
    secretNames: pullSecretNames(config.registries),
    resyncSeconds: config.pullSecretSync.resyncSeconds,
    log: log.child({ component: 'pull-secret-sync' }),
  });
}

/**
 * The Events on rerouted pods, loaded only when enabled. A client that cannot be made (no kubeconfig, no service
 * account) leaves them off, logged: routing goes on without them.
 */
async function startEvents(env: ServeEnv, log: Logger, metrics: Metrics) {
  try {
    const [{ startAdmissionEvents }, client] = await Promise.all([
      import('../kube/admission-events.js'),
      kubeClient(),
    ]);
    return startAdmissionEvents({
      kubeConfig: env.kubeConfig ?? client.defaultKubeConfig(),
      log: log.child({ component: 'admission-events' }),
      registry: metrics.registry,
    });
  } catch (error) {
    log.error(
      { error: error instanceof Error ? error.message : String(error) },
      'admission Events left off: no Kubernetes API client',
    );
    return undefined;
  }
}

/** What a test substitutes for the process: where signals come from, where logs go, how often files are read. */
export interface ServeEnv {
  readonly signals?: EventEmitter;
  readonly log?: Logger;
  readonly reloadIntervalMs?: number;
  /** Where the cluster parts find the API server, instead of the pod's service account or ~/.kube/config. */
  readonly kubeConfig?: KubeConfig;
}

/**
 * A port given on the command line: digits only, up to 65535, checked before anything starts. An empty or
 * malformed value is refused rather than ignored or handed to the socket as NaN.
 */
export function portOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535)
    throw new UsageError(`--${flag}: expected a port number from 0 to 65535, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** A log level given on the command line, one of the config's. */
export function logLevelOption(value: string | undefined): LogLevel | undefined {
  if (value === undefined) return undefined;
  const parsed = LogLevel.safeParse(value);
  if (!parsed.success)
    throw new UsageError(
      `--log-level: expected one of ${LogLevel.options.join('|')}, got ${JSON.stringify(value)}`,
    );
  return parsed.data;
}

export async function serveCommand(args: string[], io: Io, env: ServeEnv = {}): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      port: { type: 'string' },
      'metrics-port': { type: 'string' },
      'log-level': { type: 'string' },
    },
  });
  // 0 picks a free port for the webhook (tests, benchmarks), and turns the metrics listener off, as
  // server.metricsPort 0 does.
  const port = portOption('port', values.port);
  const metricsPort = portOption('metrics-port', values['metrics-port']);
  const pinnedLevel = logLevelOption(values['log-level']);
  const config = await loadConfigOption(values.config);
  const log = env.log ?? processLogger();
  // The file's level is applied again on every reload, unless the command line pinned one.
  const applyLogLevel = (c: Config) => {
    log.level = pinnedLevel ?? c.log.level;
  };
  applyLogLevel(config);
  // node-forge, which makes the certificates, is loaded only when they may need making.
  const devCerts = values.config ? undefined : (await import('../certs/files.js')).ensureDevCerts;
  if (devCerts && (await devCerts(config.server.tlsCert, config.server.tlsKey))) {
    log.info({ cert: config.server.tlsCert }, 'made development certificates');
  }
  for (const [host, settings] of Object.entries(config.registries)) {
    if (settings.insecure) log.warn({ registry: host }, 'registry configured insecure: plain HTTP, no TLS');
  }
  const metrics = new Metrics();
  let latest: { config: Config; handle: LiveStateHandle } | undefined;
  const createState = (c: Config) => {
    const handle = createStateHandle(c, log, { metrics, ...(latest ? { previous: latest } : {}) });
    latest = { config: c, handle };
    return handle;
  };
  const state = createState(config);
  // Learning, warm-up and repair start before the server, so that the first lists run while it starts; a new
  // replica is ready once they are done (within cluster.readyTimeoutSeconds), routing as a warm one would.
  let server: RunningServer | undefined;
  const cluster = config.cluster.enabled
    ? (await import('../cluster/start.js')).startCluster({
        kubeConfig: env.kubeConfig ?? (await kubeClient()).defaultKubeConfig(),
        settings: config.cluster,
        current: () => ({ config: server?.config ?? config, handle: latest?.handle ?? state }),
        log: log.child({ component: 'cluster' }),
        metrics,
      })
    : undefined;
  const served = cluster ? { ...state, isReady: () => state.isReady() && cluster.ready() } : state;
  // Events on rerouted pods: queued as reviews are answered and posted in the background, never in their way.
  const events = config.admission.events.enabled ? await startEvents(env, log, metrics) : undefined;
  server = await startServer({
    config,
    state: served,
    log,
    metrics,
    ...(values.config ? { configFile: values.config, createState } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(metricsPort !== undefined ? { metricsPort: metricsPort === 0 ? null : metricsPort } : {}),
    ...(env.reloadIntervalMs ? { reloadIntervalMs: env.reloadIntervalMs } : {}),
    onReload: applyLogLevel,
    ...(events ? { answered: events.offer.bind(events) } : {}),
  }).catch(async (error: unknown) => {
    await events?.stop();
    await cluster?.stop();
    await state.close();
    throw error;
  });
  // Until here a signal ends the process at once, which is right: nothing is in flight before the port is open.
  const stopping = shutdownSignal(env.signals);
  io.err(`regroute listening on https://${config.server.host}:${server.port}`);
  // Returns at once: lists and watches run in the background, so an unreachable apiserver never holds up admission.
  const pullSecretSync = config.pullSecretSync.enabled ? await startPullSecrets(config, log) : undefined;

  const signal = await stopping;
  // SIGTERM is Kubernetes deleting the pod, whose endpoint leaves the Service only a moment later: serve on
  // meanwhile. SIGINT is someone at a terminal, with nothing to wait for.
  const delaySeconds = signal === 'SIGTERM' ? config.server.shutdownDelaySeconds : 0;
  log.info({ signal, delaySeconds }, 'shutting down: draining requests in flight');
  await cluster?.stop();
  await (signal === 'SIGTERM' ? server.shutdown() : server.close());
  // The Events of the last reviews get a moment to go out; what is left then is dropped and counted.
  await events?.stop(EVENTS_DRAIN_MS);
  await pullSecretSync?.stop();
  log.info('stopped');
  // Whatever a destination still holds must reach stdout before the process goes.
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  return EXIT.ok;
}
