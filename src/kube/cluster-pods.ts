// The pods of opted-in namespaces, kept as compact records: a namespace watch, and a pod watch per namespace.
import type { CoreV1Api, KubeConfig, V1Namespace } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Backoff } from './backoff.js';
import { type CompactCollection, PAGE_SIZE, watchCompact } from './compact-watch.js';
import { Interner, type PodRecord, podKey, podRecord } from './pod-record.js';
import { ENABLED_LABEL } from './pull-secret-plan.js';
import type { ChangeKind } from './watch-collection.js';
import { type WatchedCollection, watchCollection } from './watch-collection.js';

export const NAMESPACE_SELECTOR = `${ENABLED_LABEL}=true`;

export interface ClusterPodsOptions {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  log: Logger;
  backoff: Backoff;
  /** Every change to a kept pod; a namespace that stops being opted in deletes its pods. */
  onChange: (kind: ChangeKind, pod: PodRecord, previous: PodRecord | undefined) => void;
  /** After the namespaces and each of their pods have been listed (again). */
  onSynced?: () => void;
  watchTimeoutSeconds?: number;
  /** Shared with whoever else makes pod records (a repair reading a pod back). */
  interner?: Interner;
}

export interface ClusterPods {
  get(key: string): PodRecord | undefined;
  pods(): IterableIterator<PodRecord>;
  /** The opted-in namespaces, sorted. */
  namespaces(): string[];
  readonly size: number;
  /** True once the namespaces and every opted-in namespace's pods have been listed. */
  synced(): boolean;
  /** Resolves when synced() turns true, or when `signal` aborts. */
  whenSynced(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
}

/**
 * One pod watch per opted-in namespace rather than one over the cluster: only pods regroute may act on are ever
 * sent, and RBAC can then be granted per namespace (RoleBindings) instead of cluster-wide.
 */
export function watchClusterPods(options: ClusterPodsOptions): ClusterPods {
  const { kubeConfig, core, log, backoff } = options;
  const interner = options.interner ?? new Interner();
  const byNamespace = new Map<string, CompactCollection<PodRecord>>();
  const waiters = new Set<() => void>();
  let stopped = false;

  const synced = (): boolean =>
    namespaces.synced() && [...byNamespace.values()].every((collection) => collection.synced());
  const checkSynced = (): void => {
    if (!synced()) return;
    options.onSynced?.();
    for (const resolve of [...waiters]) resolve();
  };

  function open(namespace: string): void {
    if (byNamespace.has(namespace) || stopped) return;
    const path = `/api/v1/namespaces/${namespace}/pods`;
    byNamespace.set(
      namespace,
      watchCompact<PodRecord>({
        kubeConfig,
        path,
        listPage: (token) => core.listNamespacedPod({ namespace, limit: PAGE_SIZE, _continue: token }),
        compact: (object) => podRecord(object, interner),
        keyOf: podKey,
        onChange: options.onChange,
        onSynced: checkSynced,
        log,
        backoff,
        ...(options.watchTimeoutSeconds ? { watchTimeoutSeconds: options.watchTimeoutSeconds } : {}),
      }),
    );
  }

  async function close(namespace: string): Promise<void> {
    const collection = byNamespace.get(namespace);
    if (!collection) return;
    byNamespace.delete(namespace);
    await collection.stop();
    for (const pod of collection.values()) options.onChange('delete', pod, pod);
    checkSynced();
  }

  const namespaces: WatchedCollection<V1Namespace> = watchCollection<V1Namespace>({
    kubeConfig,
    path: '/api/v1/namespaces',
    list: () => core.listNamespace({ labelSelector: NAMESPACE_SELECTOR }),
    labelSelector: NAMESPACE_SELECTOR,
    // A namespace that loses the label arrives as a delete.
    onChange: (kind, ns) => {
      const name = ns.metadata?.name;
      if (!name) return;
      if (kind === 'delete') void close(name);
      else open(name);
    },
    onSynced: () => {
      // A relist may have dropped namespaces without a delete event reaching us.
      const listed = new Set(namespaces.cache.list().map((ns) => ns.metadata?.name ?? ''));
      for (const name of [...byNamespace.keys()]) if (!listed.has(name)) void close(name);
      for (const name of listed) if (name) open(name);
      checkSynced();
    },
    log,
    backoff,
  });

  return {
    get(key) {
      const slash = key.indexOf('/');
      return byNamespace.get(key.slice(0, slash))?.get(key);
    },
    *pods() {
      for (const collection of byNamespace.values()) yield* collection.values();
    },
    namespaces: () => [...byNamespace.keys()].sort(),
    get size() {
      let total = 0;
      for (const collection of byNamespace.values()) total += collection.size;
      return total;
    },
    synced,
    whenSynced(signal) {
      if (synced() || signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          waiters.delete(done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        waiters.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    },
    async stop() {
      stopped = true;
      for (const resolve of [...waiters]) resolve();
      await namespaces.stop();
      await Promise.all([...byNamespace.values()].map((collection) => collection.stop()));
      byNamespace.clear();
    },
  };
}
