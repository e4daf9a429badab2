// Secrets in target namespaces over the Kubernetes API: read, create, replace; failures become values.
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { type ApiResult, FIELD_MANAGER, retrying } from './api-failure.js';
import type { Backoff } from './backoff.js';

export type { ApiResult } from './api-failure.js';

export interface TargetSecrets {
  /** `undefined` when the apiserver answers 404 NotFound. */
  read(namespace: string, name: string): Promise<ApiResult<V1Secret | undefined>>;
  create(namespace: string, secret: V1Secret): Promise<ApiResult<V1Secret>>;
  replace(namespace: string, name: string, secret: V1Secret): Promise<ApiResult<V1Secret>>;
}

/** Retries stop early once `signal` aborts, so that shutdown is not held up by an unreachable apiserver. */
export function targetSecrets(core: CoreV1Api, backoff: Backoff, signal?: AbortSignal): TargetSecrets {
  const retried = retrying(backoff, signal);
  return {
    async read(namespace, name) {
      const result = await retried(() => core.readNamespacedSecret({ name, namespace }));
      if (!result.ok && result.failure.status === 404) return { ok: true, value: undefined };
      return result;
    },
    create: (namespace, body) =>
      retried(() => core.createNamespacedSecret({ namespace, body, fieldManager: FIELD_MANAGER })),
    replace: (namespace, name, body) =>
      retried(() => core.replaceNamespacedSecret({ name, namespace, body, fieldManager: FIELD_MANAGER })),
  };
}
