// One pass over some namespaces: read the copies there, plan, write, and count what happened.
import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ApiFailure } from './api-failure.js';
import {
  type PullSecretAction,
  planCopy,
  planPullSecretCopies,
  targetNamespaces,
} from './pull-secret-plan.js';
import type { ApiResult, TargetSecrets } from './secret-api.js';

export interface SyncResult {
  created: number;
  updated: number;
  unchanged: number;
  /** Secrets of a configured name that regroute does not manage, left as they are. */
  skippedUnmanaged: number;
  /** Copies that could not be read or written after retries; the next pass tries again. */
  failed: number;
  /** Configured names without a source Secret. */
  missingSources: string[];
}

export interface PassInput {
  sourceNamespace: string;
  secretNames: readonly string[];
  sources: readonly V1Secret[];
  namespaces: readonly V1Namespace[];
}

const emptyResult = (): SyncResult => ({
  created: 0,
  updated: 0,
  unchanged: 0,
  skippedUnmanaged: 0,
  failed: 0,
  missingSources: [],
});

/**
 * A write the apiserver refused because the copy changed since it was read (409 AlreadyExists on create,
 * 409 Conflict or 404 NotFound on replace): the copy is read again and planned once more.
 */
const isStale = (action: PullSecretAction, failure: ApiFailure): boolean =>
  failure.status === 409 || (action.kind === 'update' && failure.status === 404);

/**
 * Namespaces are done one after another, each read completely before anything is written there, so that a
 * namespace whose copies cannot be read is left alone rather than guessed at.
 */
export async function syncPullSecrets(
  api: TargetSecrets,
  input: PassInput,
  log: Logger,
  signal?: AbortSignal,
): Promise<SyncResult> {
  const result = emptyResult();
  const names = [...new Set(input.secretNames)].sort();
  const sources = new Map(
    input.sources
      .filter((source) => source.metadata?.namespace === input.sourceNamespace)
      .map((source) => [source.metadata?.name ?? '', source] as const),
  );
  const present = names.filter((name) => sources.has(name));
  result.missingSources = names.filter((name) => !sources.has(name));
  if (result.missingSources.length > 0) {
    log.warn(
      { sourceNamespace: input.sourceNamespace, missing: result.missingSources },
      'configured pull secrets not found in the source namespace; their copies are left as they are',
    );
  }
  if (present.length === 0) return result;

  const record = (action: PullSecretAction, outcome: ApiResult<unknown>): void => {
    const fields = { namespace: action.namespace, secret: action.name, action: action.kind };
    if (!outcome.ok) {
      result.failed++;
      log.warn({ ...fields, ...outcome.failure }, 'could not write pull secret copy');
    } else if (action.kind === 'create') {
      result.created++;
      log.info(fields, 'pull secret copied');
    } else {
      result.updated++;
      log.info(fields, 'pull secret copy updated');
    }
  };

  async function apply(action: PullSecretAction, mayReplan: boolean): Promise<void> {
    const fields = { namespace: action.namespace, secret: action.name };
    if (action.kind === 'unchanged') {
      result.unchanged++;
      return;
    }
    if (action.kind === 'skip-unmanaged') {
      result.skippedUnmanaged++;
      log.warn(fields, 'a Secret of this name exists and is not managed by regroute; not overwriting it');
      return;
    }
    const outcome =
      action.kind === 'create'
        ? await api.create(action.namespace, action.secret)
        : await api.replace(action.namespace, action.name, action.secret);
    const source = sources.get(action.name);
    if (!outcome.ok && mayReplan && source && isStale(action, outcome.failure)) {
      log.info({ ...fields, ...outcome.failure }, 'pull secret copy changed meanwhile; reading it again');
      const reread = await api.read(action.namespace, action.name);
      if (reread.ok)
        return apply(planCopy(source, input.sourceNamespace, action.namespace, reread.value), false);
    }
    record(action, outcome);
  }

  for (const namespace of targetNamespaces(input.namespaces, input.sourceNamespace)) {
    if (signal?.aborted) break;
    const reads: ApiResult<V1Secret | undefined>[] = [];
    for (const name of present) reads.push(await api.read(namespace, name));
    const unreadable = reads.find((read) => !read.ok);
    if (unreadable && !unreadable.ok) {
      result.failed += present.length;
      log.warn(
        { namespace, ...unreadable.failure },
        'could not read pull secret copies; namespace left for later',
      );
      continue;
    }
    const targets = reads.flatMap((read) => (read.ok && read.value ? [read.value] : []));
    const plan = planPullSecretCopies({
      sourceNamespace: input.sourceNamespace,
      secretNames: present,
      sources: input.sources,
      namespaces: input.namespaces.filter((ns) => ns.metadata?.name === namespace),
      targets,
    });
    for (const action of plan.actions) await apply(action, true);
  }
  return result;
}
