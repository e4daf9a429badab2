// How a Kubernetes API call failed, in terms safe to log and to decide a retry on; calls whose failures are values.
import { type Backoff, withRetries } from './backoff.js';

/**
 * Why a call failed, in terms safe to log: the HTTP status and the Status `reason` (NotFound, AlreadyExists,
 * Conflict, …) or, without an answer, the network error's code. Never a message or body: those may quote
 * the object that was sent.
 */
export interface ApiFailure {
  status?: number;
  reason: string;
}

export function failureOf(error: unknown): ApiFailure {
  // API calls throw ApiException (`code`, `body`); a refused watch is an Error with `statusCode` and no body.
  const { code, statusCode, body } = (error ?? {}) as {
    code?: unknown;
    statusCode?: unknown;
    body?: unknown;
  };
  const status = typeof code === 'number' ? code : typeof statusCode === 'number' ? statusCode : undefined;
  if (status !== undefined) return { status, reason: statusReason(body) ?? `HTTP ${status}` };
  if (typeof code === 'string') return { reason: code };
  return { reason: error instanceof Error ? error.name : 'unknown' };
}

/** client-node keeps an error response's body as text: a Kubernetes Status object when the apiserver sent it. */
function statusReason(body: unknown): string | undefined {
  try {
    const status: unknown = typeof body === 'string' ? JSON.parse(body) : body;
    const reason = (status as { reason?: unknown } | null)?.reason;
    return typeof reason === 'string' && reason !== '' ? reason : undefined;
  } catch {
    return undefined;
  }
}

/** No answer, 429 and 5xx may pass; 4xx answers describe the request or the object and will not change. */
export const isTransient = (failure: ApiFailure): boolean =>
  failure.status === undefined || failure.status === 429 || failure.status >= 500;

export type ApiResult<T> = { ok: true; value: T } | { ok: false; failure: ApiFailure };

/** Shown in managedFields, so `kubectl get -o yaml --show-managed-fields` says what regroute wrote. */
export const FIELD_MANAGER = 'regroute';

async function attempt<T>(call: () => Promise<T>): Promise<ApiResult<T>> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return { ok: false, failure: failureOf(error) };
  }
}

const transient = (result: ApiResult<unknown>): boolean => !result.ok && isTransient(result.failure);

/**
 * Runs API calls as values, retrying transient failures with backoff. Retries stop once `signal` aborts, so that
 * shutdown is not held up by an unreachable apiserver.
 */
export const retrying =
  (backoff: Backoff, signal?: AbortSignal) =>
  <T>(call: () => Promise<T>): Promise<ApiResult<T>> =>
    withRetries(() => attempt(call), transient, backoff, signal);
