// One collection kept in memory as compact records by paginated list + watch: full objects are never kept.
import { type KubeConfig, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { failureOf } from './api-failure.js';
import { type Backoff, backoffDelay } from './backoff.js';
import type { ChangeKind } from './watch-collection.js';

/** One page of a list, as client-node returns it (`metadata._continue` is the `continue` token). */
export interface ListPage {
  items: readonly unknown[];
  metadata?: { resourceVersion?: string; _continue?: string };
}

export interface CompactCollectionOptions<R> {
  kubeConfig: KubeConfig;
  /** The collection's URL path, e.g. `/api/v1/namespaces/team-a/pods`. */
  path: string;
  /** The list call for `path`, one page of at most PAGE_SIZE items from `continueToken` on. */
  listPage: (continueToken: string | undefined) => Promise<ListPage>;
  /** What is kept of an object; undefined drops it. Called on list items and watch events alike. */
  compact: (object: unknown) => R | undefined;
  /** `namespace/name` (`name` for cluster-scoped objects): a deletion is matched by the object's metadata. */
  keyOf: (record: R) => string;
  onChange: (kind: ChangeKind, record: R, previous: R | undefined) => void;
  /** After each list: the records are complete. */
  onSynced?: () => void;
  log: Logger;
  backoff: Backoff;
  /** Asked of the API server, which ends the watch after it; regroute then watches again from where it was. */
  watchTimeoutSeconds?: number;
}

export interface CompactCollection<R> {
  get(key: string): R | undefined;
  values(): IterableIterator<R>;
  readonly size: number;
  /** True once a list has succeeded. */
  synced(): boolean;
  /** Settles when the first list has been tried, whether or not it succeeded. */
  readonly started: Promise<void>;
  stop(): Promise<void>;
}

/** Items per list request: a page of pods is parsed and compacted before the next is asked for. */
export const PAGE_SIZE = 500;

type WatchEnd = { kind: 'ended' } | { kind: 'expired' } | { kind: 'failed'; error: unknown };

/**
 * Like client-node's ListWatch, but keeping only `compact(object)`: a pod is ~10 KB as JSON and a few hundred
 * bytes as regroute keeps it. Lists page by page; watches from the list's resourceVersion with bookmarks, so that
 * a rewatch after the API server ends a watch rarely needs a relist; relists at once on 410 Gone (an expired
 * resourceVersion, as an HTTP answer or an ERROR event) and after other failures once a backoff delay has passed.
 */
export function watchCompact<R>(options: CompactCollectionOptions<R>): CompactCollection<R> {
  const { log, backoff, keyOf, compact, onChange } = options;
  const records = new Map<string, R>();
  const watch = new Watch(options.kubeConfig);
  const stopping = new AbortController();
  const timeoutSeconds = options.watchTimeoutSeconds ?? 300 + Math.floor(backoff.random() * 300);
  let resourceVersion = '';
  let synced = false;
  let markStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    markStarted = resolve;
  });
  let watching: AbortController | undefined;

  function put(record: R): void {
    const key = keyOf(record);
    const before = records.get(key);
    records.set(key, record);
    onChange(before ? 'update' : 'add', record, before);
  }

  function remove(key: string): void {
    const before = records.get(key);
    if (before === undefined) return;
    records.delete(key);
    onChange('delete', before, before);
  }

  async function list(): Promise<void> {
    const fresh = new Map<string, R>();
    let token: string | undefined;
    let version = '';
    do {
      const page = await options.listPage(token);
      for (const item of page.items) {
        const record = compact(item);
        if (record !== undefined) fresh.set(keyOf(record), record);
      }
      token = page.metadata?._continue || undefined;
      // Every page of one list carries the first page's resourceVersion.
      version = page.metadata?.resourceVersion ?? version;
    } while (token !== undefined && !stopping.signal.aborted);
    if (stopping.signal.aborted) return;
    for (const key of [...records.keys()]) if (!fresh.has(key)) remove(key);
    for (const record of fresh.values()) put(record);
    resourceVersion = version;
  }

  function watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let expired = false;
      let timedOut = false;
      let failure: unknown;
      // The API server ends the watch after timeoutSeconds; a connection gone half-open would never say so.
      const limit = setTimeout(
        () => {
          timedOut = true;
          watching?.abort();
        },
        (timeoutSeconds + 30) * 1000,
      );
      limit.unref();
      const finish = (error: unknown) => {
        clearTimeout(limit);
        if (expired) resolve({ kind: 'expired' });
        else if (failure !== undefined) resolve({ kind: 'failed', error: failure });
        else if (error !== null && error !== undefined && !stopping.signal.aborted && !timedOut)
          resolve({ kind: 'failed', error });
        else resolve({ kind: 'ended' });
      };
      watch
        .watch(
          options.path,
          { resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
          (type, object) => {
            const version = versionOf(object);
            switch (type) {
              case 'ADDED':
              case 'MODIFIED': {
                const record = compact(object);
                if (record !== undefined) put(record);
                // An object that is no longer kept (no longer matching) is as good as deleted.
                else {
                  const key = keyOfRaw(object);
                  if (key !== undefined) remove(key);
                }
                break;
              }
              case 'DELETED': {
                const key = keyOfRaw(object);
                if (key !== undefined) remove(key);
                break;
              }
              case 'ERROR': {
                // A Status: 410 Expired when the resourceVersion is too old for the watch cache.
                if ((object as { code?: unknown } | null)?.code === 410) expired = true;
                else failure = Object.assign(new Error('watch ERROR event'), { body: object });
                watching?.abort();
                return;
              }
            }
            if (version !== undefined) resourceVersion = version;
          },
          finish,
        )
        .then((controller) => {
          watching = controller;
          if (stopping.signal.aborted) controller.abort();
        })
        .catch((error: unknown) => finish(error));
    });
  }

  async function run(): Promise<void> {
    let needList = true;
    let failures = 0;
    while (!stopping.signal.aborted) {
      let failure: unknown;
      if (needList) {
        try {
          await list();
          if (stopping.signal.aborted) break;
          needList = false;
          synced = true;
          failures = 0;
          options.onSynced?.();
        } catch (error) {
          failure = error;
        }
        markStarted();
      }
      if (failure === undefined) {
        const end = await watchOnce();
        if (stopping.signal.aborted) break;
        if (end.kind === 'ended') {
          failures = 0;
          continue;
        }
        if (end.kind === 'expired' || failureOf(end.error).status === 410) {
          log.info({ path: options.path }, 'watch resourceVersion expired; listing again');
          needList = true;
          continue;
        }
        failure = end.error;
      } else if (failureOf(failure).status === 410) {
        // A continue token that expired between pages: the list starts over.
        continue;
      }
      const waitMs = backoffDelay(failures++, backoff);
      log.warn(
        { path: options.path, ...failureOf(failure), retryInMs: waitMs },
        'list or watch failed; retrying',
      );
      await backoff.sleep(waitMs, stopping.signal);
    }
    markStarted();
  }

  const running = run().catch((error: unknown) => {
    // Every API failure is handled above; what lands here is a fault in a callback, which must not end the process.
    log.error(
      { path: options.path, error: error instanceof Error ? error.message : String(error) },
      'watch ended',
    );
    markStarted();
  });

  return {
    get: (key) => records.get(key),
    values: () => records.values(),
    get size() {
      return records.size;
    },
    synced: () => synced,
    started,
    async stop() {
      stopping.abort();
      watching?.abort();
      await running;
    },
  };
}

function versionOf(object: unknown): string | undefined {
  const version = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
  return typeof version === 'string' && version !== '' ? version : undefined;
}

/** `namespace/name` (or `name`) of a raw object, for deletions, whose records may not compact any more. */
function keyOfRaw(object: unknown): string | undefined {
  const metadata = (object as { metadata?: { namespace?: unknown; name?: unknown } } | null)?.metadata;
  if (typeof metadata?.name !== 'string') return undefined;
  return typeof metadata.namespace === 'string' ? `${metadata.namespace}/${metadata.name}` : metadata.name;
}
