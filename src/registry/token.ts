// Bearer tokens of the distribution token protocol: scopes, the token request, the response, and a shared cache.

/** Seconds a token lives when the response omits expires_in (distribution token spec). */
export const DEFAULT_TOKEN_LIFETIME_S = 60;

export interface Token {
  value: string;
  /** Epoch milliseconds after which the token must not be sent. */
  expiresAt: number;
}

/** `repository:<name>:<actions>`; the name is the repository path without the registry host. */
export function repositoryScope(repository: string, actions: readonly string[] = ['pull']): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** containerd's GetTokenScopes: the union of scope lists (space-separated values split), deduplicated, sorted. */
export function mergeScopes(...lists: readonly (readonly string[])[]): string[] {
  const all = new Set<string>();
  for (const list of lists) {
    for (const item of list) {
      for (const scope of item.split(' ')) if (scope !== '') all.add(scope);
    }
  }
  return [...all].sort();
}

export interface TokenRequest {
  realm: string;
  service?: string;
  scopes: readonly string[];
  /** The Basic username, sent as `account` like the distribution client does; never the password. */
  account?: string;
}

/** `GET <realm>?service=…&scope=…&scope=…[&account=…]`: one scope parameter per scope, never joined. */
export function tokenRequestUrl(request: TokenRequest): URL {
  const url = new URL(request.realm);
  if (request.service !== undefined && request.service !== '')
    url.searchParams.append('service', request.service);
  for (const scope of request.scopes) url.searchParams.append('scope', scope);
  if (request.account !== undefined) url.searchParams.append('account', request.account);
  return url;
}

/**
 * A token response body, received at `receivedAt` (epoch ms). `access_token` wins over `token` (distribution
 * canonicalizes to it). The lifetime counts from `issued_at` when given, but never from later than the receipt:
 * a server clock running ahead must not stretch a token's life. Returns undefined for anything unusable.
 */
export function parseTokenResponse(text: string, receivedAt: number): Token | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (body === null || typeof body !== 'object') return undefined;
  const { access_token, token, expires_in, issued_at } = body as Record<string, unknown>;
  const value =
    typeof access_token === 'string' && access_token !== ''
      ? access_token
      : typeof token === 'string' && token !== ''
        ? token
        : undefined;
  if (value === undefined) return undefined;
  const lifetimeS =
    typeof expires_in === 'number' && Number.isFinite(expires_in) && expires_in > 0
      ? expires_in
      : DEFAULT_TOKEN_LIFETIME_S;
  const issuedAt = typeof issued_at === 'string' ? Date.parse(issued_at) : Number.NaN;
  const start = Number.isNaN(issuedAt) ? receivedAt : Math.min(issuedAt, receivedAt);
  return { value, expiresAt: start + lifetimeS * 1000 };
}

export type TokenOutcome<F> = { ok: true; token: Token } | { ok: false; failure: F };

/**
 * Tokens per key (realm, service and scope), reused until `marginMs` before expiry, with concurrent requests for a
 * key sharing one exchange. Failures are not cached: the next request tries again.
 */
export class TokenCache<F> {
  readonly #tokens = new Map<string, Token>();
  readonly #inflight = new Map<string, Promise<TokenOutcome<F>>>();

  /**
   * `marginMs` covers the trip to the registry: a token valid when sent must still be valid when checked. It is
   * small because a token that expires anyway is answered with 401, which refreshes it once.
   */
  constructor(
    private readonly now: () => number = Date.now,
    private readonly marginMs = 1000,
  ) {}

  /** A cached token still inside its lifetime, if any. */
  get(key: string): string | undefined {
    const token = this.#tokens.get(key);
    if (token === undefined) return undefined;
    if (this.now() > token.expiresAt - this.marginMs) {
      this.#tokens.delete(key);
      return undefined;
    }
    return token.value;
  }

  /** Forgets a token the registry refused, unless another exchange has replaced it meanwhile. */
  invalidate(key: string, value: string): void {
    if (this.#tokens.get(key)?.value === value) this.#tokens.delete(key);
  }

  clear(): void {
    this.#tokens.clear();
  }

  /**
   * The cached token, or the outcome of `exchange`, shared by every caller asking for `key` while it runs. The
   * exchange must bound itself (its own timeout): it outlives a caller that gives up, so that its token still
   * serves the next one.
   */
  obtain(key: string, exchange: () => Promise<TokenOutcome<F>>): Promise<TokenOutcome<F>> | TokenOutcome<F> {
    const cached = this.#tokens.get(key);
    if (cached !== undefined && this.get(key) !== undefined) return { ok: true, token: cached };
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = exchange().then(
        (outcome) => {
          this.#inflight.delete(key);
          if (outcome.ok) this.#tokens.set(key, outcome.token);
          return outcome;
        },
        (error: unknown) => {
          this.#inflight.delete(key);
          throw error;
        },
      );
      this.#inflight.set(key, pending);
    }
    return pending;
  }
}
