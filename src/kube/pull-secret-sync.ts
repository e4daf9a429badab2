// The pull-secret controller's lifecycle: watches that trigger passes, a periodic resync, and shutdown.
import type { KubeConfig, V1Namespace, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type Backoff, defaultBackoff } from './backoff.js';
import { coreApi } from './client.js';
import { ENABLED_LABEL } from './pull-secret-plan.js';
import { targetSecrets } from './secret-api.js';
import { type SyncResult, syncPullSecrets } from './sync-pass.js';
import { type WatchedCollection, watchCollection } from './watch-collection.js';

export { pullSecretNames } from './pull-secret-plan.js';
export type { SyncResult } from './sync-pass.js';

export interface PullSecretSyncOptions {
  kubeConfig: KubeConfig;
  /** regroute's own namespace, holding the Secrets to copy. */
  namespace: string;
  /** The configured `pullSecret` names (see `pullSecretNames`). */
  secretNames: readonly string[];
  log: Logger;
  /** How often every opted-in namespace is checked, catching copies edited or deleted by hand. */
  resyncSeconds?: number;
  /** Ceiling of one API request. */
  requestTimeoutMs?: number;
  backoff?: Backoff;
  /** Called after each pass, e.g. to feed metrics. */
  onPass?: (result: SyncResult) => void;
}

export interface PullSecretSync {
  /** Resolves once the first lists have been tried and no pass is running or queued. */
  settled(): Promise<void>;
  /** Closes the watches and waits for a running pass to end; copies stay. */
  stop(): Promise<void>;
}

const NAMESPACE_SELECTOR = `${ENABLED_LABEL}=true`;

/**
 * Returns at once: an unreachable apiserver must not hold up the webhook, so lists and watches start in the
 * background and retry with backoff. Passes wait until namespaces and every source have been listed once,
 * lest a source not yet seen be reported missing.
 */
export async function startPullSecretSync(options: PullSecretSyncOptions): Promise<PullSecretSync> {
  const { kubeConfig, namespace: sourceNamespace, log } = options;
  const secretNames = [...new Set(options.secretNames)].sort();
  if (secretNames.length === 0) {
    log.info('no registry names a pullSecret: pull secret sync has nothing to do');
    return { settled: async () => {}, stop: async () => {} };
  }
  const backoff = options.backoff ?? defaultBackoff();
  const stopping = new AbortController();
  const core = coreApi(kubeConfig, options.requestTimeoutMs ?? 10_000, stopping.signal);
  const api = targetSecrets(core, backoff, stopping.signal);

  let everything = false;
  const dirty = new Set<string>();
  let draining: Promise<void> | undefined;

  const namespaces: WatchedCollection<V1Namespace> = watchCollection<V1Namespace>({
    kubeConfig,
    path: '/api/v1/namespaces',
    list: () => core.listNamespace({ labelSelector: NAMESPACE_SELECTOR }),
    labelSelector: NAMESPACE_SELECTOR,
    // A namespace that loses the label arrives as a delete: it is no longer synced, and its copies stay.
    onChange: (kind, ns) => {
      if (kind !== 'delete' && ns.metadata?.name) enqueue(ns.metadata.name);
    },
    onSynced: () => enqueue(),
    log,
    backoff,
  });
  // One watch per name, selected by field, so that RBAC can grant exactly these Secrets (resourceNames)
  // rather than every Secret in the namespace.
  const sources: WatchedCollection<V1Secret>[] = secretNames.map((name) =>
    watchCollection<V1Secret>({
      kubeConfig,
      path: `/api/v1/namespaces/${sourceNamespace}/secrets`,
      list: () =>
        core.listNamespacedSecret({ namespace: sourceNamespace, fieldSelector: `metadata.name=${name}` }),
      fieldSelector: `metadata.name=${name}`,
      // A deleted source leaves its copies in place: pods already scheduled or restarting may still need them
      // to pull, and a source deleted by mistake should not take every namespace's copy with it.
      onChange: (kind) => {
        if (kind !== 'delete') enqueue();
      },
      onSynced: () => enqueue(),
      log,
      backoff,
    }),
  );
  const collections: WatchedCollection<V1Namespace | V1Secret>[] = [namespaces, ...sources];

  /** A namespace, or every opted-in namespace when none is named. */
  function enqueue(namespace?: string): void {
    if (namespace === undefined) everything = true;
    else dirty.add(namespace);
    if (!draining && collections.every((c) => c.synced()) && !stopping.signal.aborted) {
      draining = drain()
        // Every API failure is already a counted value; what lands here is a fault in this module, and it
        // must not end the webhook: the next event or resync tries again.
        .catch((error: unknown) =>
          log.error(
            { error: error instanceof Error ? error.message : String(error) },
            'pull secret sync pass failed',
          ),
        )
        .finally(() => {
          draining = undefined;
        });
    }
  }

  async function drain(): Promise<void> {
    // Events that arrive during a pass are gathered and handled by the next round of this loop.
    while ((everything || dirty.size > 0) && !stopping.signal.aborted) {
      const chosen = everything
        ? namespaces.cache.list()
        : [...dirty].flatMap((name) => namespaces.cache.get(name) ?? []);
      everything = false;
      dirty.clear();
      const result = await syncPullSecrets(
        api,
        {
          sourceNamespace,
          secretNames,
          sources: sources.flatMap((source) => source.cache.list(sourceNamespace)),
          namespaces: chosen,
        },
        log,
        stopping.signal,
      );
      const changed = result.created + result.updated + result.skippedUnmanaged + result.failed > 0;
      log[changed ? 'info' : 'debug']({ namespaces: chosen.length, ...result }, 'pull secret sync pass');
      options.onPass?.(result);
    }
  }

  const resync = setInterval(() => enqueue(), (options.resyncSeconds ?? 300) * 1000);
  // The webhook server keeps the process alive; this timer alone must not delay an exit.
  resync.unref();
  log.info(
    { sourceNamespace, secretNames, namespaceSelector: NAMESPACE_SELECTOR },
    'pull secret sync started',
  );

  return {
    async settled() {
      await Promise.all(collections.map((c) => c.started));
      while (draining) await draining;
    },
    async stop() {
      clearInterval(resync);
      stopping.abort();
      await Promise.all(collections.map((c) => c.stop()));
      await draining;
    },
  };
}
