// Pods and their Events over the Kubernetes API: read, JSON-patch, record an Event; failures become values.
import { type CoreV1Api, type CoreV1Event, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';
import { type ApiResult, FIELD_MANAGER, retrying } from './api-failure.js';
import type { Backoff } from './backoff.js';

export interface PodApi {
  /** The pod as stored now; `undefined` when the API server answers 404 NotFound. */
  read(namespace: string, name: string): Promise<ApiResult<unknown | undefined>>;
  /** An RFC 6902 JSON patch. A 409 Conflict is returned, not retried: the caller reads the pod again. */
  patch(namespace: string, name: string, ops: readonly Operation[]): Promise<ApiResult<unknown>>;
  /** A core/v1 Event; a 409 AlreadyExists (another replica recorded the same one) counts as done. */
  recordEvent(namespace: string, event: CoreV1Event): Promise<ApiResult<unknown>>;
}

/** Retries of transient failures stop once `signal` aborts, so that shutdown is not held up. */
export function podApi(core: CoreV1Api, backoff: Backoff, signal?: AbortSignal): PodApi {
  const retried = retrying(backoff, signal);
  return {
    async read(namespace, name) {
      const result = await retried(() => core.readNamespacedPod({ name, namespace }));
      if (!result.ok && result.failure.status === 404) return { ok: true, value: undefined };
      return result;
    },
    patch: (namespace, name, ops) =>
      retried(() =>
        core.patchNamespacedPod(
          { name, namespace, body: ops, fieldManager: FIELD_MANAGER },
          setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
        ),
      ),
    async recordEvent(namespace, body) {
      const result = await retried(() => core.createNamespacedEvent({ namespace, body }));
      if (!result.ok && result.failure.status === 409) return { ok: true, value: undefined };
      return result;
    },
  };
}
