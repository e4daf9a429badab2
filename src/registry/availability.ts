// What a registry's answer (or its silence) means for routing: a closed set of outcomes and the mapping to it.

/**
 * Every outcome of a registry request. Logs, metrics and routing decisions share these names, so the set is closed:
 * a new failure mode maps onto one of them rather than adding a free-form string.
 */
export type Availability =
  | 'available'
  | 'not-found'
  | 'auth'
  | 'rate-limited'
  | 'unreachable'
  | 'server-error'
  | 'timeout'
  | 'tls';

export const AVAILABILITIES: readonly Availability[] = [
  'available',
  'not-found',
  'auth',
  'rate-limited',
  'unreachable',
  'server-error',
  'timeout',
  'tls',
];

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_ABORTED',
  'ABORT_ERR',
]);

// OpenSSL verification failures surface as their X509 names; Node adds ERR_TLS_*/ERR_SSL_* codes of its own.
const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  // A TLS client talking to a plain-HTTP port fails the handshake with EPROTO ("wrong version number").
  'EPROTO',
]);

/** An HTTP status, or a thrown value from a request (undici, node:net/tls, or an AbortSignal's reason). */
export function availabilityOf(outcome: number | unknown): Availability {
  if (typeof outcome === 'number') return availabilityOfStatus(outcome);
  return availabilityOfError(outcome);
}

function availabilityOfStatus(status: number): Availability {
  if (status >= 200 && status < 300) return 'available';
  if (status === 404) return 'not-found';
  if (status === 401 || status === 403) return 'auth';
  if (status === 429) return 'rate-limited';
  if (status === 408) return 'timeout';
  // Anything else (3xx, other 4xx, 5xx) is an answer the client cannot use: the registry misbehaves, it is not
  // absent. 'unreachable' is kept for failures where no HTTP answer came at all.
  return 'server-error';
}

function availabilityOfError(error: unknown): Availability {
  // Causes nest (fetch-style wrappers, AggregateError from happy-eyeballs): the outermost known code decides.
  for (const e of errorChain(error)) {
    const name = typeof e.name === 'string' ? e.name : '';
    const code = typeof e.code === 'string' ? e.code : '';
    if (name === 'AbortError' || name === 'TimeoutError' || TIMEOUT_CODES.has(code)) return 'timeout';
    if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) return 'tls';
    if (UNREACHABLE_CODES.has(code)) return 'unreachable';
  }
  return 'unreachable';
}

function* errorChain(error: unknown): Generator<{ name?: unknown; code?: unknown }> {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    yield e as { name?: unknown; code?: unknown };
    const { cause, errors } = e as { cause?: unknown; errors?: unknown };
    queue.push(cause);
    if (Array.isArray(errors)) queue.push(...errors);
  }
}

/**
 * `Retry-After` as milliseconds from `now`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in the past
 * is 0; an unparseable value is undefined.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // HTTP-date always names the weekday and the zone; Date.parse would also take "5" or "2024", which is no date.
  if (!/^[A-Za-z]{3,9},? /.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * A registry's pull budget as Docker Hub announces it on manifest requests: `ratelimit-remaining: 76;w=21600`
 * (76 pulls left in a 6-hour window). Undefined when the header is absent or not of that form.
 */
export function parseRateLimitRemaining(value: string | undefined): number | undefined {
  const match = value === undefined ? null : /^\s*(\d+)\s*(?:;|$)/.exec(value);
  return match ? Number(match[1]) : undefined;
}
