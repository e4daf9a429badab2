// A Docker token-auth issuer on loopback: Basic credentials in, RS256 JWTs with an x5c chain out.
import { randomBytes, randomUUID, sign } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import type { HarnessCA } from './ca.js';
import type { Credentials } from './client.js';
import { freePort, LOOPBACK, sleep } from './ports.js';

export interface ResourceScope {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenRequest {
  method: string;
  /** Username of valid Basic credentials; undefined for an anonymous request. */
  account: string | undefined;
  service: string | undefined;
  scopes: ResourceScope[];
  /** HTTP status the issuer answered with. */
  statusCode: number;
}

export interface TokenIssuerOptions {
  /** Users allowed to get tokens; default: one generated user, see `credentials`. */
  users?: Record<string, string>;
  /** Whether requests without credentials get (pull-only) tokens; default false: 401. */
  anonymous?: boolean;
  expiresInSeconds?: number;
  /** The `iss` claim, which registries check against their `auth.token.issuer`. */
  issuer?: string;
  /** Which of the requested actions to grant; default: all to users, `pull` only to anonymous. */
  grant?: (account: string | undefined, scope: ResourceScope) => string[];
}

export interface TokenIssuer {
  host: string;
  port: number;
  url: string;
  /** The token endpoint, as registries put it in their Bearer challenge. */
  realm: string;
  issuer: string;
  caFile: string;
  /** What registries trusting this issuer use as `auth.token.rootcertbundle`. */
  rootCertBundle: string;
  /** The first user: what a client sends as Basic credentials to the realm. */
  credentials: Credentials;
  /** Every request that reached the issuer since start (or resetCounts), in order. */
  readonly requests: TokenRequest[];
  readonly tokensIssued: number;
  readonly running: boolean;
  resetCounts(): void;
  /** Stops listening and drops open connections: "the token server is down". */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

const base64url = (value: Buffer | string) => Buffer.from(value).toString('base64url');

/** Splits on the first and last colon: a repository name may hold a host:port (scope.md). */
export function parseScope(scope: string): ResourceScope | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const actions = scope.slice(last + 1);
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: actions === '' ? [] : actions.split(','),
  };
}

function decodeBasic(authorization: string | undefined): Credentials | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(authorization ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readForm(request: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export async function startTokenIssuer(
  ca: HarnessCA,
  options: TokenIssuerOptions = {},
): Promise<TokenIssuer> {
  const users = options.users ?? { 'harness-token-user': randomBytes(12).toString('hex') };
  const firstUser = Object.entries(users)[0];
  if (firstUser === undefined) throw new Error('a token issuer needs at least one user');
  const issuerName = options.issuer ?? 'regroute-harness-token-issuer';
  const expiresIn = options.expiresInSeconds ?? 300;
  const signer = ca.tokenSigner();
  const grant =
    options.grant ??
    ((account: string | undefined, scope: ResourceScope) =>
      account !== undefined ? scope.actions : scope.actions.filter((action) => action === 'pull'));

  const requests: TokenRequest[] = [];
  let tokensIssued = 0;

  const mint = (account: string | undefined, service: string | undefined, scopes: ResourceScope[]) => {
    const now = Math.floor(Date.now() / 1000);
    // distribution 2.8 verifies iss, aud (a string: the registry's service), nbf/exp with 60 s leeway,
    // then the x5c leaf against its rootcertbundle, then that every requested action is in `access`.
    const header = { typ: 'JWT', alg: 'RS256', x5c: signer.x5c };
    const claims = {
      iss: issuerName,
      sub: account ?? '',
      aud: service ?? '',
      exp: now + expiresIn,
      nbf: now,
      iat: now,
      jti: randomUUID(),
      access: scopes.map((scope) => ({ type: scope.type, name: scope.name, actions: grant(account, scope) })),
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), signer.keyPem);
    tokensIssued++;
    return {
      token: `${signingInput}.${signature.toString('base64url')}`,
      issuedAt: new Date(now * 1000).toISOString(),
    };
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'https://issuer');
    const record: TokenRequest = {
      method: request.method ?? 'GET',
      account: undefined,
      service: undefined,
      scopes: [],
      statusCode: 0,
    };
    requests.push(record);
    const answer = (statusCode: number, body: unknown, headers: Record<string, string> = {}) => {
      record.statusCode = statusCode;
      response.writeHead(statusCode, { 'content-type': 'application/json', ...headers });
      response.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token') return answer(404, { errors: [{ code: 'NOT_FOUND' }] });

    let params = url.searchParams;
    let credentials = decodeBasic(request.headers.authorization);
    if (request.method === 'POST') {
      // OAuth2 password grant (oauth.md): credentials come in the form, scopes space-separated.
      params = await readForm(request);
      const username = params.get('username');
      if (username !== null) credentials = { username, password: params.get('password') ?? '' };
      params = new URLSearchParams([
        ...[...params].filter(([key]) => key !== 'scope'),
        ...(params.get('scope') ?? '').split(' ').map((scope): [string, string] => ['scope', scope]),
      ]);
    } else if (request.method !== 'GET') {
      return answer(405, { errors: [{ code: 'UNSUPPORTED' }] });
    }
    record.service = params.get('service') ?? undefined;
    record.scopes = params.getAll('scope').flatMap((scope) => parseScope(scope) ?? []);

    const challenge = { 'www-authenticate': 'Basic realm="regroute-harness-token-issuer"' };
    if (credentials === undefined && !options.anonymous) {
      return answer(401, { errors: [{ code: 'UNAUTHORIZED', message: 'credentials required' }] }, challenge);
    }
    if (credentials !== undefined && users[credentials.username] !== credentials.password) {
      return answer(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }, challenge);
    }
    record.account = credentials?.username;
    const { token, issuedAt } = mint(record.account, record.service, record.scopes);
    answer(200, { token, access_token: token, expires_in: expiresIn, issued_at: issuedAt });
  };

  const server: Server = createServer(
    { cert: ca.serving.certPem, key: ca.serving.keyPem },
    (request, response) => {
      handle(request, response).catch((error: unknown) => {
        response.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    },
  );
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const port = await freePort();
  const host = `${LOOPBACK}:${port}`;
  const url = `https://${host}`;
  let running = false;

  const start = () =>
    new Promise<void>((resolve, reject) => {
      if (running) return resolve();
      server.once('error', reject);
      server.listen(port, LOOPBACK, () => {
        server.off('error', reject);
        // A forgotten stop() must not keep the test process alive; open connections still do while in use.
        server.unref();
        running = true;
        resolve();
      });
    });
  const stop = async () => {
    if (!running) return;
    running = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
    // Lets clients in this process see their kept-alive sockets close, so that their next request is refused
    // (ECONNREFUSED) rather than written to a dead socket ("other side closed").
    await sleep(10);
  };

  await start();
  return {
    host,
    port,
    url,
    realm: `${url}/token`,
    issuer: issuerName,
    caFile: ca.caFile,
    rootCertBundle: ca.caFile,
    credentials: { username: firstUser[0], password: firstUser[1] },
    requests,
    get tokensIssued() {
      return tokensIssued;
    },
    get running() {
      return running;
    },
    resetCounts() {
      requests.length = 0;
      tokensIssued = 0;
    },
    stop,
    start,
  };
}
