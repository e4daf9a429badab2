// One collection kept in memory by list+watch (client-node's ListWatch), restarted with backoff after failures.
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  type ObjectCache,
  Watch,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { failureOf } from './api-failure.js';
import { type Backoff, backoffDelay } from './backoff.js';

export type ChangeKind = 'add' | 'update' | 'delete';

export interface CollectionOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** The collection's URL path, e.g. `/api/v1/namespaces`. */
  path: string;
  /** The list call matching `path` and the selectors. */
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  onChange: (kind: ChangeKind, object: T) => void;
  /** After each (re)start whose list and watch both succeeded: the cache is complete. */
  onSynced: () => void;
  log: Logger;
  backoff: Backoff;
}

export interface WatchedCollection<T> {
  cache: ObjectCache<T>;
  /** True once a list has succeeded; the cache is empty and incomplete before that. */
  synced(): boolean;
  /** Settles when the first list and watch have been tried, whether or not they succeeded. */
  started: Promise<void>;
  stop(): Promise<void>;
}

/**
 * ListWatch starts a new watch after any list that was in flight when it was stopped; refusing watches once
 * stopped keeps a connection from outliving `stop()`.
 */
class StoppableWatch extends Watch {
  stopped = false;

  override watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, object: unknown, event?: unknown) => void,
    done: (error: unknown) => void,
  ): Promise<AbortController> {
    if (!this.stopped) return super.watch(path, query, callback, done);
    const refused = new AbortController();
    refused.abort();
    return Promise.resolve(refused);
  }
}

/**
 * ListWatch relists by itself after a 410 Gone (an expired resourceVersion) and rewatches when the apiserver
 * ends a watch, but after any other error it stops for good: this restarts it, waiting longer after each
 * consecutive failure.
 */
export function watchCollection<T extends KubernetesObject>(
  options: CollectionOptions<T>,
): WatchedCollection<T> {
  const { log, backoff } = options;
  const watch = new StoppableWatch(options.kubeConfig);
  const informer = new ListWatch<T>(
    options.path,
    watch,
    options.list,
    false,
    options.labelSelector,
    options.fieldSelector,
  );
  const stopping = new AbortController();
  let failures = 0;
  let failedSinceStart = false;
  let synced = false;
  let running: Promise<void> = Promise.resolve();

  informer.on('add', (object) => options.onChange('add', object));
  informer.on('update', (object) => options.onChange('update', object));
  informer.on('delete', (object) => options.onChange('delete', object));
  informer.on('error', (error) => {
    // Stopping aborts the watch request, which ListWatch reports as one more error.
    if (stopping.signal.aborted) return;
    failedSinceStart = true;
    const waitMs = backoffDelay(failures++, backoff);
    log.warn(
      { path: options.path, ...failureOf(error), retryInMs: waitMs },
      'list or watch failed; restarting',
    );
    running = backoff.sleep(waitMs, stopping.signal).then(start);
  });

  let attempts = 0;
  async function start(): Promise<void> {
    if (stopping.signal.aborted) return;
    const attempt = ++attempts;
    failedSinceStart = false;
    await informer.start();
    // ListWatch reports list and watch failures through 'error' before start() settles; a retry that error
    // scheduled may already have begun (a backoff of no time at all), and it speaks for itself.
    if (attempt !== attempts || failedSinceStart || stopping.signal.aborted) return;
    failures = 0;
    synced = true;
    options.onSynced();
  }

  running = start();
  return {
    cache: informer,
    synced: () => synced,
    started: running,
    async stop() {
      watch.stopped = true;
      stopping.abort();
      await informer.stop();
      await running;
      await informer.stop();
    },
  };
}
