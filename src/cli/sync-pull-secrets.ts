// `regroute sync-pull-secrets`: the pull-secret sync alone, in a process (and a service account) of its own.
import type { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { defaultKubeConfig } from '../kube/client.js';
import { pullSecretNames, startPullSecretSync } from '../kube/pull-secret-sync.js';
import { processLogger } from '../server/log.js';
import { loadConfigOption } from './config-option.js';
import { EXIT, type Io } from './io.js';
import { shutdownSignal } from './serve.js';
import { syncPullSecretsUsage } from './usage.js';

/** What a test substitutes for the process: where signals come from, where logs go, which apiserver. */
export interface SyncPullSecretsEnv {
  readonly signals?: EventEmitter;
  readonly log?: Logger;
  readonly kubeConfig?: KubeConfig;
}

export async function syncPullSecretsCommand(
  args: string[],
  io: Io,
  env: SyncPullSecretsEnv = {},
): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } });
  // The embedded default names no pull secret: without a file this command could only wait.
  if (!values.config) {
    io.err(`sync-pull-secrets needs --config\n\n${syncPullSecretsUsage}`);
    return EXIT.usage;
  }
  const config = await loadConfigOption(values.config);
  const root = env.log ?? processLogger();
  root.level = config.log.level;
  const log = root.child({ component: 'pull-secret-sync' });
  const stopping = shutdownSignal(env.signals);
  // Signal handlers do not keep Node running; with no pull secret configured nothing else would, and a container
  // that exits is restarted by its Deployment over and over.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  const sync = await startPullSecretSync({
    kubeConfig: env.kubeConfig ?? defaultKubeConfig(),
    namespace: config.pullSecretSync.namespace,
    secretNames: pullSecretNames(config.registries),
    resyncSeconds: config.pullSecretSync.resyncSeconds,
    log,
  });

  const signal = await stopping;
  log.info({ signal }, 'shutting down: stopping the pull secret sync');
  await sync.stop();
  clearInterval(keepAlive);
  log.info('stopped');
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  return EXIT.ok;
}
