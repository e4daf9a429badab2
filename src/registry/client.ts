// One registry's HTTP client: origin and TLS trust, the auth handshake, and /v2/ ping and manifest HEAD as values.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, rootCertificates } from 'node:tls';
import { inspect } from 'node:util';
import { Agent, type Dispatcher } from 'undici';
import type { z } from 'zod';
import type { RegistrySettings } from '../config/schema.js';
import {
  type Availability,
  availabilityOf,
  parseRateLimitRemaining,
  parseRetryAfter,
} from './availability.js';
import { parseWwwAuthenticate } from './challenge.js';
import { type Credentials, loadCredentials } from './credentials.js';
import { type DigestAlgorithm, digestOf, parseDigest } from './digest.js';
import { essence, MANIFEST_ACCEPT } from './media-types.js';
import { RegistrySetupError, readSetupFile } from './setup-error.js';
import {
  mergeScopes,
  parseTokenResponse,
  repositoryScope,
  TokenCache,
  type TokenOutcome,
  tokenRequestUrl,
} from './token.js';

export interface Timeouts {
  /** TCP + TLS handshake. */
  connectMs: number;
  /** From the request sent to the response headers. */
  headersMs: number;
  /** Between two chunks of a response body. */
  bodyMs: number;
  /** How long an idle connection is kept for the next request. */
  keepAliveMs: number;
  /** A whole token exchange, which runs on its own clock because callers share it (see TokenCache.obtain). */
  tokenMs: number;
}

/**
 * Ceilings, not the deadline: the caller's AbortSignal carries the deadline (admission or probe) and usually ends a
 * call long before these. They bound what no signal covers, a token exchange shared by callers above all. Keep-alive
 * outlasts the default 10 s probe interval so that probes and admissions reuse warm TLS connections (~2 ms of CPU
 * per new handshake); a server's shorter Keep-Alive hint still wins.
 */
export const DEFAULT_TIMEOUTS: Timeouts = {
  connectMs: 5_000,
  headersMs: 10_000,
  bodyMs: 10_000,
  keepAliveMs: 30_000,
  tokenMs: 10_000,
};

/** Connections per origin: an admission asks about a few images at once; more would only queue at the registry. */
export const DEFAULT_CONNECTIONS = 8;

/** distribution refuses manifests over 4 MiB, so a larger body is not a manifest. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_AUX_BODY_BYTES = 64 * 1024;

const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export type Operation = 'ping' | 'manifest' | 'blob' | 'token';

/** Who asked: the prober checking a registry's health, or a lookup (an admission's, a command's, cache warming). */
export type RequestKind = 'probe' | 'lookup';

/** One HTTP request made, for metrics: attach a counter or histogram to `onRequest`. */
export interface RequestEvent {
  registry: string;
  operation: Operation;
  kind: RequestKind;
  method: 'GET' | 'HEAD';
  /** Absent when no HTTP answer came (network, TLS, timeout). */
  status?: number;
  outcome: Availability;
  durationMs: number;
  /** The pulls the registry says are left (Docker Hub's `ratelimit-remaining`), when it says. */
  rateLimitRemaining?: number;
}

export interface CallOptions {
  /** The deadline. Every request of the call, token exchange included, ends when it aborts. */
  signal: AbortSignal;
  /** Who asks, for the requests' metrics: a lookup unless said otherwise. */
  kind?: RequestKind;
}

export interface PingResult {
  ok: boolean;
  status?: number;
  latencyMs: number;
  availability: Availability;
  error?: string;
  /** With a 429: how long the registry asked to be left alone. */
  retryAfterMs?: number;
}

export type ManifestResult =
  | {
      kind: 'found';
      digest: string;
      mediaType: string;
      /** Set when the body was read (a GET): the digests an index or manifest list names, [] for a manifest. */
      children?: string[];
      /** Set when the body of a single manifest was read: its config and layer blobs. */
      blobs?: string[];
    }
  | { kind: 'not-found' }
  | {
      kind: 'error';
      availability: Availability;
      status?: number;
      retryAfterMs?: number;
      message: string;
      /** The registry served bytes that do not hash to the digest it was asked for, or announced. */
      mismatch?: true;
    };

export type BlobResult = { kind: 'found' } | Exclude<ManifestResult, { kind: 'found' }>;

/** A registry's settings as a config file may state them: what has a default may be left out. */
export type ClientSettings = z.input<typeof RegistrySettings>;

export interface RegistryClientOptions {
  /** `host[:port]` as in a normalized image reference; 'docker.io' is Docker Hub. */
  registry: string;
  settings?: ClientSettings;
  /** Wall clock for token lifetimes (epoch ms). */
  now?: () => number;
  onRequest?: (event: RequestEvent) => void;
  connections?: number;
  timeouts?: Partial<Timeouts>;
  tokenExpiryMarginMs?: number;
  userAgent?: string;
}

/** The origin a registry key is reached at; Docker Hub's API does not live at docker.io itself. */
export function originOf(registry: string, insecure = false): string {
  const host = registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
  return `${insecure ? 'http' : 'https'}://${host}`;
}

/**
 * Builds a registry's client, reading its credentials and CA file now (a config reload builds a new client).
 * Throws RegistrySetupError when a file is missing or unusable.
 */
export async function createRegistryClient(options: RegistryClientOptions): Promise<RegistryClient> {
  const settings = options.settings ?? {};
  const credentials = await loadCredentials(settings.auth, options.registry);
  const ca = settings.caFile === undefined ? undefined : await trustStore(settings.caFile, options.registry);
  return new RegistryClient(options, credentials, ca);
}

/**
 * The CA file is trusted in addition to the public roots, not instead of them: a registry's token realm often lives
 * on another host with a public certificate (auth.docker.io for Docker Hub, the GitLab host for its registry), and
 * Node's `ca` option would otherwise replace the default roots. NODE_EXTRA_CA_CERTS is added back for the same
 * reason, since `ca` drops it as well.
 */
async function trustStore(caFile: string, registry: string): Promise<string[]> {
  const pem = await readSetupFile(caFile, 'ca-file-unreadable', registry);
  // OpenSSL skips a CA block it cannot parse without a word: a garbled file would only show as every handshake
  // failing, blamed on the registry. One certificate that parses is what makes the file a CA bundle.
  if (!pemCertificates(pem).some(parses)) {
    throw new RegistrySetupError(
      'ca-file-invalid',
      `registry ${registry}: ${caFile} holds no parseable PEM certificate`,
    );
  }
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  const extraPem = extra ? await readFile(extra, 'utf8').catch(() => undefined) : undefined;
  return [...rootCertificates, ...(extraPem ? [extraPem] : []), pem];
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/** Each `CERTIFICATE` block of a PEM bundle, with its armour. */
function pemCertificates(pem: string): string[] {
  return pem.match(PEM_CERTIFICATE) ?? [];
}

function parses(block: string): boolean {
  try {
    new X509Certificate(block);
    return true;
  } catch {
    return false;
  }
}

type Challenge = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service?: string };

interface Failure {
  availability: Availability;
  status?: number;
  retryAfterMs?: number;
  message: string;
}

interface Authorization {
  header: string;
  /** Set for a bearer token, so that a token the registry refuses can be dropped from the cache. */
  token?: { key: string; value: string };
}

interface Request {
  method: 'GET' | 'HEAD';
  url: URL;
  headers: Record<string, string>;
  operation: Operation;
  kind: RequestKind;
}

type Response = Dispatcher.ResponseData;

const isFailure = (value: Response | Failure | Authorization | undefined): value is Failure =>
  value !== undefined && 'availability' in value;

function header(res: Response, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Reads a body up to `limit` bytes; past it the body is destroyed (closing that connection) and undefined returned. */
async function readBody(body: Response['body'], limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The error codes of a distribution error body (`{"errors":[{"code":…}]}`); none when it is not one. */
function errorCodes(bytes: Buffer | undefined): string[] {
  if (bytes === undefined || bytes.length === 0) return [];
  try {
    const { errors } = JSON.parse(bytes.toString('utf8')) as { errors?: unknown };
    if (!Array.isArray(errors)) return [];
    return errors.flatMap((e) => (typeof e?.code === 'string' ? [e.code as string] : []));
  } catch {
    return [];
  }
}

/** Settles like `promise`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T> | T, signal: AbortSignal): Promise<T> {
  if (!(promise instanceof Promise)) return Promise.resolve(promise);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

// A keep-alive connection the server closed while idle fails the next request this way; one retry on a fresh
// connection tells it apart from a registry that is really down. GET and HEAD are safe to repeat.
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

export class RegistryClient {
  readonly registry: string;
  readonly origin: string;
  readonly #insecure: boolean;
  readonly #credentials: Credentials | undefined;
  readonly #agent: Agent;
  readonly #tokens: TokenCache<Failure>;
  readonly #now: () => number;
  readonly #onRequest: ((event: RequestEvent) => void) | undefined;
  readonly #timeouts: Timeouts;
  readonly #userAgent: string;
  readonly #closing = new AbortController();
  #challenge: Challenge | undefined;
  #calls = 0;
  readonly #idle: (() => void)[] = [];

  /** Use createRegistryClient, which reads the files this takes the contents of. */
  constructor(
    options: RegistryClientOptions,
    credentials: Credentials | undefined,
    ca: string[] | undefined,
  ) {
    this.registry = options.registry;
    this.#insecure = options.settings?.insecure ?? false;
    this.origin = originOf(options.registry, this.#insecure);
    this.#credentials = credentials;
    this.#now = options.now ?? Date.now;
    this.#onRequest = options.onRequest;
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.#userAgent = options.userAgent ?? 'regroute';
    this.#tokens = new TokenCache<Failure>(this.#now, options.tokenExpiryMarginMs);
    // An Agent keeps one Pool per origin: the registry's, and its token realm's when that lives elsewhere.
    this.#agent = new Agent({
      connections: options.connections ?? DEFAULT_CONNECTIONS,
      pipelining: 1,
      keepAliveTimeout: this.#timeouts.keepAliveMs,
      keepAliveMaxTimeout: this.#timeouts.keepAliveMs,
      headersTimeout: this.#timeouts.headersMs,
      bodyTimeout: this.#timeouts.bodyMs,
      connect: {
        timeout: this.#timeouts.connectMs,
        rejectUnauthorized: true,
        // Built once: handing `ca` to every connection would re-parse ~150 root certificates per TLS handshake.
        ...(ca ? { secureContext: createSecureContext({ ca }) } : {}),
      },
    });
  }

  /** Whether a call is under way: a pool evicts only a client no caller is using. */
  get busy(): boolean {
    return this.#calls > 0;
  }

  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /**
   * `GET /v2/`. Healthy on 200; on 401, healthy when the registry sent a challenge and, with credentials
   * configured, the authenticated retry succeeds. Without credentials a challenge is all a healthy registry owes.
   */
  ping(options: CallOptions): Promise<PingResult> {
    return this.#using(() => this.#ping(options));
  }

  /**
   * Whether the registry holds `repository` (path without host) at `reference` (tag or digest), and under which
   * digest. Never throws: network, auth and protocol failures come back as `kind: 'error'`.
   */
  headManifest(repository: string, reference: string, options: CallOptions): Promise<ManifestResult> {
    return this.#using(() => this.#headManifest(repository, reference, options));
  }

  /**
   * Like headManifest, but always reads the manifest and hashes its bytes: a registry that answers HEAD with
   * whatever digest it was asked for cannot pass this one. The result also names an index's child manifests.
   */
  getManifest(repository: string, reference: string, options: CallOptions): Promise<ManifestResult> {
    return this.#using(() => this.#readManifest(repository, reference, options));
  }

  /** Resolves once no call is under way (at once when none is). */
  whenIdle(): Promise<void> {
    if (this.#calls === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Counts the call while it runs; the count goes up before the caller's turn ends. */
  async #using<T>(call: () => Promise<T>): Promise<T> {
    this.#calls += 1;
    try {
      return await call();
    } finally {
      this.#calls -= 1;
      if (this.#calls === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #ping({ signal, kind = 'lookup' }: CallOptions): Promise<PingResult> {
    const started = performance.now();
    const latencyMs = (): number => performance.now() - started;
    const req = this.#request('GET', '/v2/', {}, 'ping', kind);
    try {
      const res = this.#credentials
        ? await this.#exchange(req, undefined, signal)
        : await this.#send(req, signal);
      if (isFailure(res)) return { ok: false, latencyMs: latencyMs(), ...pingFailure(res) };
      const status = res.statusCode;
      if (status === 401) {
        const { challenge } = await this.#learnChallenge(res);
        if (challenge) return { ok: true, status, latencyMs: latencyMs(), availability: 'available' };
        return {
          ok: false,
          status,
          latencyMs: latencyMs(),
          availability: 'auth',
          error: 'HTTP 401 without a challenge',
        };
      }
      await res.body.dump();
      const availability = availabilityOf(status);
      if (availability === 'available') return { ok: true, status, latencyMs: latencyMs(), availability };
      const failure: PingResult = {
        ok: false,
        status,
        latencyMs: latencyMs(),
        availability,
        error: `HTTP ${status}`,
      };
      const retryAfterMs = parseRetryAfter(header(res, 'retry-after'), this.#now());
      if (retryAfterMs !== undefined) failure.retryAfterMs = retryAfterMs;
      return failure;
    } catch (error) {
      return {
        ok: false,
        latencyMs: latencyMs(),
        availability: availabilityOf(error),
        error: this.#describe(error),
      };
    }
  }

  async #headManifest(
    repository: string,
    reference: string,
    { signal, kind = 'lookup' }: CallOptions,
  ): Promise<ManifestResult> {
    if (!REPOSITORY.test(repository)) return invalid(`invalid repository name "${repository}"`);
    const wanted = parseDigest(reference);
    if (wanted === undefined && !TAG.test(reference)) return invalid(`invalid tag or digest "${reference}"`);
    const path = `/v2/${repository}/manifests/${reference}`;
    const scope = repositoryScope(repository);
    try {
      const res = await this.#exchange(
        this.#request('HEAD', path, { accept: MANIFEST_ACCEPT }, 'manifest', kind),
        scope,
        signal,
      );
      if (isFailure(res)) return manifestError(res);
      await res.body.dump();
      const status = res.statusCode;
      // HEAD is optional in practice: some registries and proxies answer 405 (or 501), which says nothing about
      // the manifest; GET answers the same question with the body.
      if (status === 405 || status === 501)
        return await this.#getManifest(path, scope, reference, signal, kind);
      if (status === 404) return { kind: 'not-found' };
      if (status !== 200) return manifestError(this.#statusFailure(res, 'manifest HEAD'));
      const digest = parseDigest(header(res, 'docker-content-digest'));
      const mediaType = essence(header(res, 'content-type'));
      // Without Docker-Content-Digest (older registries), in another algorithm than the one asked for, or without
      // a media type, only the body can tell.
      if (digest === undefined || mediaType === '' || (wanted && wanted.algorithm !== digest.algorithm)) {
        return await this.#getManifest(path, scope, reference, signal, kind);
      }
      const value = `${digest.algorithm}:${digest.hex}`;
      if (wanted && value !== reference) return mismatch(reference, value);
      return { kind: 'found', digest: value, mediaType };
    } catch (error) {
      return { kind: 'error', availability: availabilityOf(error), message: this.#describe(error) };
    }
  }

  async #readManifest(
    repository: string,
    reference: string,
    { signal, kind = 'lookup' }: CallOptions,
  ): Promise<ManifestResult> {
    if (!REPOSITORY.test(repository)) return invalid(`invalid repository name "${repository}"`);
    if (parseDigest(reference) === undefined && !TAG.test(reference))
      return invalid(`invalid tag or digest "${reference}"`);
    try {
      return await this.#getManifest(
        `/v2/${repository}/manifests/${reference}`,
        repositoryScope(repository),
        reference,
        signal,
        kind,
      );
    } catch (error) {
      return { kind: 'error', availability: availabilityOf(error), message: this.#describe(error) };
    }
  }

  /**
   * `HEAD /v2/<repository>/blobs/<digest>`: whether the registry's storage serves a blob. A redirect (to object
   * storage) counts as served: the registry found the blob and handed it on.
   */
  async headBlob(
    repository: string,
    digest: string,
    { signal, kind = 'lookup' }: CallOptions,
  ): Promise<BlobResult> {
    if (!REPOSITORY.test(repository)) return invalid(`invalid repository name "${repository}"`);
    if (parseDigest(digest) === undefined) return invalid(`invalid digest "${digest}"`);
    try {
      const res = await this.#exchange(
        this.#request('HEAD', `/v2/${repository}/blobs/${digest}`, {}, 'blob', kind),
        repositoryScope(repository),
        signal,
      );
      if (isFailure(res)) return manifestError(res);
      await res.body.dump();
      const status = res.statusCode;
      if (status === 404) return { kind: 'not-found' };
      if ((status >= 200 && status < 300) || (status >= 301 && status <= 308)) return { kind: 'found' };
      return manifestError(this.#statusFailure(res, 'blob HEAD'));
    } catch (error) {
      return { kind: 'error', availability: availabilityOf(error), message: this.#describe(error) };
    }
  }

  /** Destroys the connection pools; calls in flight end as 'unreachable' and token exchanges are abandoned. */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#agent.destroy();
  }

  toJSON(): Record<string, unknown> {
    return {
      registry: this.registry,
      origin: this.origin,
      credentials: this.#credentials ? 'configured' : 'none',
    };
  }

  toString(): string {
    return `RegistryClient(${this.origin})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  async #getManifest(
    path: string,
    scope: string,
    reference: string,
    signal: AbortSignal,
    kind: RequestKind,
  ): Promise<ManifestResult> {
    const res = await this.#exchange(
      this.#request('GET', path, { accept: MANIFEST_ACCEPT }, 'manifest', kind),
      scope,
      signal,
    );
    if (isFailure(res)) return manifestError(res);
    const status = res.statusCode;
    if (status !== 200) {
      const codes = errorCodes(await readBody(res.body, MAX_AUX_BODY_BYTES));
      if (status === 404 || codes.includes('MANIFEST_UNKNOWN') || codes.includes('NAME_UNKNOWN')) {
        return { kind: 'not-found' };
      }
      return manifestError(this.#statusFailure(res, 'manifest GET'));
    }
    const contentType = essence(header(res, 'content-type'));
    const bytes = await readBody(res.body, MAX_MANIFEST_BYTES);
    if (bytes === undefined) {
      return { kind: 'error', availability: 'server-error', status, message: 'manifest larger than 4 MiB' };
    }
    const wanted = parseDigest(reference);
    const announced = parseDigest(header(res, 'docker-content-digest'));
    const algorithm: DigestAlgorithm = wanted?.algorithm ?? announced?.algorithm ?? 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (wanted && digest !== reference) return mismatch(reference, digest);
    if (announced && announced.algorithm === algorithm && `${algorithm}:${announced.hex}` !== digest) {
      return mismatch(`${algorithm}:${announced.hex}`, digest, 'Docker-Content-Digest');
    }
    const fields = manifestFields(bytes);
    return {
      kind: 'found',
      digest,
      mediaType: contentType || fields.mediaType,
      children: fields.children,
      ...(fields.blobs.length > 0 ? { blobs: fields.blobs } : {}),
    };
  }

  /**
   * Sends `req`, answering a 401 once: with Basic, or with a bearer token for the challenge's realm. The first
   * attempt already carries credentials when an earlier answer taught us the registry's challenge.
   */
  async #exchange(req: Request, scope: string | undefined, signal: AbortSignal): Promise<Response | Failure> {
    const known = this.#challenge;
    const first = known ? await this.#authorize(known, scope, [], signal, req.kind) : undefined;
    if (isFailure(first)) return first;
    const res = await this.#send(withAuthorization(req, first), signal);
    if (isFailure(res) || res.statusCode !== 401) return res;

    const { challenge, asked } = await this.#learnChallenge(res);
    if (first?.token) this.#tokens.invalidate(first.token.key, first.token.value);
    if (challenge === undefined)
      return { availability: 'auth', status: 401, message: 'HTTP 401 without a challenge' };
    const retry = await this.#authorize(challenge, scope, asked ? [asked] : [], signal, req.kind);
    if (isFailure(retry)) return retry;
    if (retry === undefined) {
      return {
        availability: 'auth',
        status: 401,
        message: 'registry requires credentials; none are configured',
      };
    }
    if (retry.header === first?.header) {
      return { availability: 'auth', status: 401, message: 'registry refused the configured credentials' };
    }
    const again = await this.#send(withAuthorization(req, retry), signal);
    if (isFailure(again) || again.statusCode !== 401) return again;
    await again.body.dump();
    if (retry.token) this.#tokens.invalidate(retry.token.key, retry.token.value);
    return {
      availability: 'auth',
      status: 401,
      message: this.#credentials
        ? 'registry refused the configured credentials'
        : 'registry refused anonymous access',
    };
  }

  /**
   * Parses and remembers a 401's challenge (bearer with a realm preferred, else basic), with the scope a bearer
   * challenge asks for; consumes the body.
   */
  async #learnChallenge(res: Response): Promise<{ challenge?: Challenge; asked?: string }> {
    const challenges = parseWwwAuthenticate(header(res, 'www-authenticate') ?? '', { lenient: true });
    await res.body.dump();
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    let learned: Challenge | undefined;
    if (bearer?.params.realm) {
      learned = { scheme: 'bearer', realm: bearer.params.realm };
      if (bearer.params.service !== undefined) learned.service = bearer.params.service;
    } else if (challenges.some((c) => c.scheme === 'basic')) {
      learned = { scheme: 'basic' };
    }
    if (learned === undefined) return {};
    this.#challenge = learned;
    const asked = bearer?.params.scope;
    return asked ? { challenge: learned, asked } : { challenge: learned };
  }

  /** The Authorization for `challenge`: Basic when credentials exist, a (cached or new) bearer token, or none. */
  async #authorize(
    challenge: Challenge,
    scope: string | undefined,
    asked: string[],
    signal: AbortSignal,
    kind: RequestKind,
  ): Promise<Authorization | Failure | undefined> {
    if (challenge.scheme === 'basic') {
      return this.#credentials ? { header: this.#credentials.basicAuthorization() } : undefined;
    }
    const key = `${challenge.realm}\n${challenge.service ?? ''}\n${scope ?? ''}`;
    const scopes = mergeScopes(scope ? [scope] : [], asked);
    const outcome = await untilAborted(
      // Shared by every caller of the scope: counted as the kind of the call that started it.
      this.#tokens.obtain(key, () => this.#fetchToken(challenge, scopes, kind)),
      signal,
    );
    if (!outcome.ok) return outcome.failure;
    return { header: `Bearer ${outcome.token.value}`, token: { key, value: outcome.token.value } };
  }

  /** One token exchange, shared by all callers of its scope, so bounded by its own timeout rather than theirs. */
  async #fetchToken(
    challenge: Extract<Challenge, { scheme: 'bearer' }>,
    scopes: string[],
    kind: RequestKind,
  ): Promise<TokenOutcome<Failure>> {
    const fail = (failure: Failure): TokenOutcome<Failure> => ({ ok: false, failure });
    let url: URL;
    try {
      url = tokenRequestUrl({
        realm: challenge.realm,
        ...(challenge.service !== undefined ? { service: challenge.service } : {}),
        scopes,
        ...(this.#credentials ? { account: this.#credentials.username } : {}),
      });
    } catch {
      return fail({ availability: 'auth', message: 'token realm is not a URL' });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      return fail({ availability: 'auth', message: `token realm has unsupported scheme ${url.protocol}` });
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#credentials) {
      if (url.protocol === 'http:' && !this.#insecure) {
        return fail({
          availability: 'auth',
          message: 'refusing to send credentials to a plain-HTTP token realm',
        });
      }
      headers.authorization = this.#credentials.basicAuthorization();
    }
    const signal = AbortSignal.any([AbortSignal.timeout(this.#timeouts.tokenMs), this.#closing.signal]);
    try {
      const res = await this.#send({ method: 'GET', url, headers, operation: 'token', kind }, signal);
      if (isFailure(res)) return fail(res);
      if (res.statusCode !== 200) {
        await res.body.dump();
        return fail(this.#statusFailure(res, 'token request'));
      }
      const body = await readBody(res.body, MAX_AUX_BODY_BYTES);
      const token = body && parseTokenResponse(body.toString('utf8'), this.#now());
      if (!token)
        return fail({ availability: 'auth', status: 200, message: 'token response carries no token' });
      return { ok: true, token };
    } catch (error) {
      return fail({ availability: availabilityOf(error), message: this.#describe(error) });
    }
  }

  async #send(req: Request, signal: AbortSignal, retried = false): Promise<Response | Failure> {
    const started = performance.now();
    try {
      const pending = this.#agent.request({
        origin: req.url.origin,
        path: req.url.pathname + req.url.search,
        method: req.method,
        headers: { 'user-agent': this.#userAgent, ...req.headers },
        signal,
      });
      // undici honours an abort only once the connection is up: a handshake with a blackholed host would hold the
      // caller until connect.timeout. The caller is released at once; undici settles the request later, and a
      // response that still arrives is discarded.
      const res = await untilAborted(pending, signal).catch((error: unknown) => {
        if (signal.aborted)
          pending.then(
            (late) => late.body.destroy(),
            () => {},
          );
        throw error;
      });
      this.#emit(
        req,
        started,
        availabilityOf(res.statusCode),
        res.statusCode,
        parseRateLimitRemaining(header(res, 'ratelimit-remaining')),
      );
      return res;
    } catch (error) {
      this.#emit(req, started, availabilityOf(error));
      const code = (error as { code?: unknown }).code;
      if (!retried && !signal.aborted && typeof code === 'string' && STALE_CONNECTION.has(code)) {
        return this.#send(req, signal, true);
      }
      return { availability: availabilityOf(error), message: this.#describe(error) };
    }
  }

  #request(
    method: 'GET' | 'HEAD',
    path: string,
    headers: Record<string, string>,
    operation: Operation,
    kind: RequestKind,
  ): Request {
    return { method, url: new URL(path, this.origin), headers, operation, kind };
  }

  #statusFailure(res: Response, what: string): Failure {
    const failure: Failure = {
      availability: availabilityOf(res.statusCode),
      status: res.statusCode,
      message: `${what} answered HTTP ${res.statusCode}`,
    };
    const retryAfterMs = parseRetryAfter(header(res, 'retry-after'), this.#now());
    if (retryAfterMs !== undefined) failure.retryAfterMs = retryAfterMs;
    return failure;
  }

  #emit(
    req: Request,
    started: number,
    outcome: Availability,
    status?: number,
    rateLimitRemaining?: number,
  ): void {
    if (!this.#onRequest) return;
    const event: RequestEvent = {
      registry: this.registry,
      operation: req.operation,
      kind: req.kind,
      method: req.method,
      outcome,
      durationMs: performance.now() - started,
    };
    if (rateLimitRemaining !== undefined) event.rateLimitRemaining = rateLimitRemaining;
    if (status !== undefined) event.status = status;
    try {
      this.#onRequest(event);
    } catch {
      // A metrics hook must not turn a registry answer into a failure.
    }
  }

  /** A thrown value as a short message: its code and text, with every configured secret scrubbed out. */
  #describe(error: unknown): string {
    const e = error as { code?: unknown; name?: unknown; message?: unknown };
    const label = typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'Error';
    const text = typeof e?.message === 'string' ? e.message : String(error);
    let message = `${label}: ${text}`.slice(0, 300);
    for (const secret of this.#credentials?.secrets() ?? [])
      message = message.replaceAll(secret, '[redacted]');
    return message;
  }
}

function withAuthorization(req: Request, auth: Authorization | undefined): Request {
  return auth ? { ...req, headers: { ...req.headers, authorization: auth.header } } : req;
}

function pingFailure(failure: Failure): Omit<PingResult, 'ok' | 'latencyMs'> {
  const result: Omit<PingResult, 'ok' | 'latencyMs'> = {
    availability: failure.availability,
    error: failure.message,
  };
  if (failure.status !== undefined) result.status = failure.status;
  if (failure.retryAfterMs !== undefined) result.retryAfterMs = failure.retryAfterMs;
  return result;
}

function manifestError(failure: Failure): ManifestResult {
  return { kind: 'error', ...failure };
}

function invalid(message: string): ManifestResult {
  return { kind: 'error', availability: 'not-found', message };
}

function mismatch(expected: string, actual: string, what = 'the reference'): ManifestResult {
  return {
    kind: 'error',
    availability: 'server-error',
    message: `digest mismatch: ${what} says ${expected}, the manifest hashes to ${actual}`,
    mismatch: true,
  };
}

/**
 * The manifest's own `mediaType` field (for registries that send no Content-Type; '' when absent) and the digests
 * of the manifests an index or manifest list names ([] for anything else).
 */
function manifestFields(bytes: Buffer): { mediaType: string; children: string[]; blobs: string[] } {
  const digests = (list: unknown): string[] =>
    Array.isArray(list)
      ? list.flatMap((m: { digest?: unknown }) =>
          typeof m?.digest === 'string' && parseDigest(m.digest) !== undefined ? [m.digest] : [],
        )
      : [];
  try {
    const { mediaType, manifests, config, layers } = JSON.parse(bytes.toString('utf8')) as {
      mediaType?: unknown;
      manifests?: unknown;
      config?: unknown;
      layers?: unknown;
    };
    return {
      mediaType: typeof mediaType === 'string' ? mediaType : '',
      children: digests(manifests),
      blobs: [...digests([config]), ...digests(layers)],
    };
  } catch {
    return { mediaType: '', children: [], blobs: [] };
  }
}
