// Specification of RegistryClient against small loopback registries: auth, manifests, failures, secrecy.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { inspect } from 'node:util';
import {
  type ClientSettings,
  createRegistryClient,
  originOf,
  type RegistryClient,
  type RegistryClientOptions,
  type RequestEvent,
} from '../../../src/registry/client.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_MANIFEST,
} from '../../../src/registry/media-types.js';
import { RegistrySetupError } from '../../../src/registry/setup-error.js';
import {
  closedPort,
  createTestPki,
  type Handler,
  type Loopback,
  manifestStore,
  type StoredManifest,
  sha256,
  startHttp,
  startHttps,
  startSilent,
  type TestPki,
} from './loopback.js';

const PASSWORD = 'correct horse battery staple';
const USER = 'robot';
const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const INDEX: StoredManifest = {
  mediaType: OCI_INDEX,
  body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] })),
};
const MANIFEST: StoredManifest = {
  mediaType: DOCKER_MANIFEST,
  body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] })),
};
const STORE = {
  'team/app:v1': INDEX,
  [`team/app@${sha256(INDEX.body)}`]: INDEX,
  'library/busybox:latest': MANIFEST,
};

/** A generous deadline for calls that are expected to complete. */
const deadline = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(10_000) });

let pki: TestPki;
let dir = '';
let passwordFile = '';
let wrongPasswordFile = '';

before(async () => {
  pki = await createTestPki();
  dir = await mkdtemp(join(tmpdir(), 'regroute-client-test-'));
  passwordFile = join(dir, 'password');
  await writeFile(passwordFile, `${PASSWORD}\n`);
  wrongPasswordFile = join(dir, 'wrong-password');
  await writeFile(wrongPasswordFile, 'not the password\n');
});

after(async () => {
  await pki.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function serve(t: TestContext, handler: Handler, keyPair = pki.loopback): Promise<Loopback> {
  const server = await startHttps(keyPair, handler);
  t.after(() => server.close());
  return server;
}

async function clientFor(
  t: TestContext,
  server: { host: string },
  settings: Partial<ClientSettings> = {},
  options: Partial<RegistryClientOptions> = {},
): Promise<RegistryClient> {
  const client = await createRegistryClient({
    registry: server.host,
    settings: { caFile: pki.caFile, ...settings },
    ...options,
  });
  t.after(() => client.close());
  return client;
}

const withPassword = (file = passwordFile): Partial<ClientSettings> => ({
  auth: { username: USER, passwordFile: file },
});

/** Guards `inner` with HTTP Basic; the challenge names a realm like distribution's htpasswd mode. */
function basicAuth(inner: Handler, user = USER, password = PASSWORD): Handler {
  return (req, res) => {
    if (req.headers.authorization === basic(user, password)) return inner(req, res);
    res.writeHead(401, { 'www-authenticate': 'Basic realm="lab-basic"', 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  };
}

interface TokenServerState {
  origin: string;
  tokenRequests: URL[];
  tokenAuthorizations: (string | undefined)[];
  issued: Set<string>;
}

/**
 * Guards `inner` with the distribution token protocol, the token endpoint at /token on the same server: scope in
 * manifest challenges, none on /v2/ (as distribution 2.8 answers).
 */
function tokenAuth(
  inner: Handler,
  options: { credentials?: [string, string]; expiresIn?: number; echoSecretsOnDenial?: boolean } = {},
): { handler: Handler; state: TokenServerState } {
  const state: TokenServerState = {
    origin: '',
    tokenRequests: [],
    tokenAuthorizations: [],
    issued: new Set(),
  };
  const handler: Handler = (req, res) => {
    const url = new URL(req.url ?? '/', state.origin);
    if (url.pathname === '/token') {
      state.tokenRequests.push(url);
      state.tokenAuthorizations.push(req.headers.authorization);
      const [user, password] = options.credentials ?? [];
      if (user !== undefined && req.headers.authorization !== basic(user, password ?? '')) {
        const echoed = Buffer.from((req.headers.authorization ?? '').slice(6), 'base64').toString();
        res.writeHead(401, { 'www-authenticate': 'Basic realm="token"', 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ details: options.echoSecretsOnDenial ? `bad credentials ${echoed}` : 'denied' }),
        );
        return;
      }
      const token = `token-${state.tokenRequests.length}`;
      state.issued.add(token);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token, ...(options.expiresIn ? { expires_in: options.expiresIn } : {}) }));
      return;
    }
    const auth = req.headers.authorization ?? '';
    if (auth.startsWith('Bearer ') && state.issued.has(auth.slice('Bearer '.length))) return inner(req, res);
    const name = /^\/v2\/(.+)\/manifests\//.exec(url.pathname)?.[1];
    const scope = name ? `,scope="repository:${name}:pull"` : '';
    res.writeHead(401, {
      'www-authenticate': `Bearer realm="${state.origin}/token",service="test-registry"${scope}`,
      'content-type': 'application/json',
    });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  };
  return { handler, state };
}

async function serveWithTokens(t: TestContext, options: Parameters<typeof tokenAuth>[1] = {}) {
  const { handler, state } = tokenAuth(manifestStore(STORE), options);
  const server = await serve(t, handler);
  state.origin = server.origin;
  return { server, state };
}

describe('RegistryClient', () => {
  describe('anonymous registry', () => {
    it('pings /v2/ and finds a tag with its digest and media type', async (t) => {
      const server = await serve(t, manifestStore(STORE));
      const client = await clientFor(t, server);
      const ping = await client.ping(deadline());
      assert.equal(ping.ok, true);
      assert.equal(ping.status, 200);
      assert.equal(ping.availability, 'available');
      assert.ok(ping.latencyMs >= 0);

      const found = await client.headManifest('team/app', 'v1', deadline());
      assert.deepEqual(found, { kind: 'found', digest: sha256(INDEX.body), mediaType: OCI_INDEX });
      const head = server.requests.find((r) => r.method === 'HEAD');
      assert.equal(head?.path, '/v2/team/app/manifests/v1');
      for (const type of [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST]) {
        assert.ok(head?.headers.accept?.includes(type), `Accept lists ${type}`);
      }
      assert.equal(head?.headers.authorization, undefined);
    });

    it('finds a manifest by digest', async (t) => {
      const server = await serve(t, manifestStore(STORE));
      const client = await clientFor(t, server);
      const digest = sha256(INDEX.body);
      assert.deepEqual(await client.headManifest('team/app', digest, deadline()), {
        kind: 'found',
        digest,
        mediaType: OCI_INDEX,
      });
    });

    it('answers not-found for a 404', async (t) => {
      const server = await serve(t, manifestStore(STORE));
      const client = await clientFor(t, server);
      assert.deepEqual(await client.headManifest('team/app', 'v2', deadline()), { kind: 'not-found' });
      assert.deepEqual(await client.headManifest('team/other', 'v1', deadline()), { kind: 'not-found' });
    });

    it('refuses a malformed repository or reference without sending anything', async (t) => {
      const server = await serve(t, manifestStore(STORE));
      const client = await clientFor(t, server);
      for (const [repository, reference] of [
        ['Team/App', 'v1'],
        ['team/../../v2', 'v1'],
        ['team/app', 'v1/../x'],
        ['team/app', 'sha256:abc'],
      ] as const) {
        const result = await client.headManifest(repository, reference, deadline());
        assert.equal(result.kind, 'error', `${repository} ${reference}`);
      }
      assert.equal(server.requests.length, 0);
    });
  });

  describe('manifest digests', () => {
    it('hashes the body of a GET when the registry omits Docker-Content-Digest', async (t) => {
      const server = await serve(t, manifestStore(STORE, { omitDigest: true }));
      const client = await clientFor(t, server);
      const found = await client.headManifest('team/app', 'v1', deadline());
      assert.deepEqual(found, {
        kind: 'found',
        digest: sha256(INDEX.body),
        mediaType: OCI_INDEX,
        children: [],
      });
      assert.deepEqual(
        server.requests.map((r) => r.method),
        ['HEAD', 'GET'],
      );
    });

    it('never answers found when the body does not hash to the requested digest', async (t) => {
      const wanted = sha256('what the admission asked for');
      const server = await serve(t, manifestStore({ [`team/app@${wanted}`]: INDEX }, { omitDigest: true }));
      const client = await clientFor(t, server);
      const result = await client.headManifest('team/app', wanted, deadline());
      assert.equal(result.kind, 'error');
      assert.equal(result.kind === 'error' && result.availability, 'server-error');
      assert.match(result.kind === 'error' ? result.message : '', /digest mismatch/);
    });

    it('getManifest catches a registry whose HEAD echoes any digest asked for', async (t) => {
      const wanted = sha256('content this registry does not hold');
      // The lie: HEAD for the wanted digest answers 200 with that digest, but the bytes are other content.
      const server = await serve(
        t,
        manifestStore({ [`team/app@${wanted}`]: INDEX }, { announceDigest: wanted }),
      );
      const client = await clientFor(t, server);
      assert.equal((await client.headManifest('team/app', wanted, deadline())).kind, 'found');
      const verified = await client.getManifest('team/app', wanted, deadline());
      assert.equal(verified.kind, 'error');
      assert.match(verified.kind === 'error' ? verified.message : '', /digest mismatch/);
      assert.deepEqual(
        server.requests.map((r) => r.method),
        ['HEAD', 'GET'],
      );
    });

    it('getManifest names the child manifests of an index', async (t) => {
      const child = sha256(MANIFEST.body);
      const index: StoredManifest = {
        mediaType: OCI_INDEX,
        body: Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_INDEX,
            manifests: [{ mediaType: DOCKER_MANIFEST, digest: child, size: MANIFEST.body.length }],
          }),
        ),
      };
      const server = await serve(t, manifestStore({ 'team/app:v1': index }));
      const client = await clientFor(t, server);
      assert.deepEqual(await client.getManifest('team/app', 'v1', deadline()), {
        kind: 'found',
        digest: sha256(index.body),
        mediaType: OCI_INDEX,
        children: [child],
      });
    });

    it('never answers found when HEAD announces another digest than the one requested', async (t) => {
      const digest = sha256(INDEX.body);
      const server = await serve(t, manifestStore(STORE, { announceDigest: sha256('other content') }));
      const client = await clientFor(t, server);
      const result = await client.headManifest('team/app', digest, deadline());
      assert.equal(result.kind, 'error');
      assert.match(result.kind === 'error' ? result.message : '', /digest mismatch/);
    });

    it('rejects a GET whose Docker-Content-Digest disagrees with its body', async (t) => {
      const lying = manifestStore(STORE, { announceDigest: sha256('other content') });
      // HEAD without the header forces the GET, whose header then lies.
      const server = await serve(t, (req, res) => {
        if (req.method === 'HEAD') return manifestStore(STORE, { omitDigest: true })(req, res);
        return lying(req, res);
      });
      const client = await clientFor(t, server);
      const result = await client.headManifest('team/app', 'v1', deadline());
      assert.equal(result.kind, 'error');
      assert.match(result.kind === 'error' ? result.message : '', /Docker-Content-Digest/);
    });

    it('falls back to GET when HEAD is answered 405', async (t) => {
      const server = await serve(t, manifestStore(STORE, { headNotAllowed: true }));
      const client = await clientFor(t, server);
      assert.deepEqual(await client.headManifest('library/busybox', 'latest', deadline()), {
        kind: 'found',
        digest: sha256(MANIFEST.body),
        mediaType: DOCKER_MANIFEST,
        children: [],
      });
      assert.deepEqual(await client.headManifest('library/busybox', 'missing', deadline()), {
        kind: 'not-found',
      });
    });

    it("treats a GET's MANIFEST_UNKNOWN error body as not-found whatever its status", async (t) => {
      const server = await serve(t, (req, res) => {
        if (req.method === 'HEAD') return void res.writeHead(405).end();
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known' }] }));
      });
      const client = await clientFor(t, server);
      assert.deepEqual(await client.headManifest('team/app', 'v1', deadline()), { kind: 'not-found' });
    });
  });

  describe('Basic auth', () => {
    it('retries with Basic after the challenge, then sends it up front', async (t) => {
      const server = await serve(t, basicAuth(manifestStore(STORE)));
      const client = await clientFor(t, server, withPassword());
      assert.equal((await client.ping(deadline())).ok, true);
      assert.deepEqual(
        server.requests.map((r) => r.headers.authorization),
        [undefined, basic(USER, PASSWORD)],
      );
      const found = await client.headManifest('team/app', 'v1', deadline());
      assert.equal(found.kind, 'found');
      assert.equal(server.requests.length, 3, 'no second 401: the challenge was remembered');
      assert.equal(server.requests[2]?.headers.authorization, basic(USER, PASSWORD));
    });

    it('reports auth when the password is wrong, without sending it twice', async (t) => {
      const server = await serve(t, basicAuth(manifestStore(STORE)));
      const client = await clientFor(t, server, withPassword(wrongPasswordFile));
      const ping = await client.ping(deadline());
      assert.deepEqual([ping.ok, ping.status, ping.availability], [false, 401, 'auth']);
      const result = await client.headManifest('team/app', 'v1', deadline());
      assert.equal(result.kind === 'error' && result.availability, 'auth');
      assert.equal(server.requests.length, 3);
    });

    it('calls a challenging registry healthy when no credentials are configured, but cannot read from it', async (t) => {
      const server = await serve(t, basicAuth(manifestStore(STORE)));
      const client = await clientFor(t, server);
      const ping = await client.ping(deadline());
      assert.deepEqual([ping.ok, ping.status, ping.availability], [true, 401, 'available']);
      const result = await client.headManifest('team/app', 'v1', deadline());
      assert.equal(result.kind === 'error' && result.availability, 'auth');
    });
  });

  describe('Bearer token auth', () => {
    it('fetches a token for the repository scope with Basic credentials, then reuses it', async (t) => {
      const { server, state } = await serveWithTokens(t, { credentials: [USER, PASSWORD] });
      const client = await clientFor(t, server, withPassword());

      assert.equal((await client.headManifest('team/app', 'v1', deadline())).kind, 'found');
      assert.equal(state.tokenRequests.length, 1);
      const [tokenRequest] = state.tokenRequests;
      assert.deepEqual(tokenRequest?.searchParams.getAll('scope'), ['repository:team/app:pull']);
      assert.equal(tokenRequest?.searchParams.get('service'), 'test-registry');
      assert.equal(tokenRequest?.searchParams.get('account'), USER);
      assert.equal(state.tokenAuthorizations[0], basic(USER, PASSWORD));
      assert.equal(server.requests.at(-1)?.headers.authorization, 'Bearer token-1');

      const before = server.requests.length;
      assert.equal((await client.headManifest('team/app', 'v1', deadline())).kind, 'found');
      assert.equal(state.tokenRequests.length, 1, 'the cached token serves');
      assert.equal(server.requests.length, before + 1, 'sent up front: no 401 round trip');

      assert.equal((await client.headManifest('library/busybox', 'latest', deadline())).kind, 'found');
      assert.equal(state.tokenRequests.length, 2, 'another repository is another scope');
    });

    it('fetches anonymous tokens when no credentials are configured', async (t) => {
      const { server, state } = await serveWithTokens(t);
      const client = await clientFor(t, server);
      assert.equal((await client.headManifest('team/app', 'v1', deadline())).kind, 'found');
      assert.equal(state.tokenAuthorizations[0], undefined);
      assert.equal(state.tokenRequests[0]?.searchParams.has('account'), false);
    });

    it('shares one token request among concurrent calls for the same scope', async (t) => {
      const { server, state } = await serveWithTokens(t, { credentials: [USER, PASSWORD] });
      const client = await clientFor(t, server, withPassword());
      // The first call teaches the client the challenge, so the next ones all need the same new scope at once.
      await client.ping(deadline());
      const results = await Promise.all(
        Array.from({ length: 6 }, () => client.headManifest('team/app', 'v1', deadline())),
      );
      for (const result of results) assert.equal(result.kind, 'found');
      const scoped = state.tokenRequests.filter((u) => u.searchParams.has('scope'));
      assert.equal(scoped.length, 1);
    });

    it('fetches a new token once the cached one expires (injected clock)', async (t) => {
      let now = Date.parse('2030-01-01T00:00:00Z');
      const { server, state } = await serveWithTokens(t, { credentials: [USER, PASSWORD], expiresIn: 300 });
      const client = await clientFor(t, server, withPassword(), { now: () => now });
      await client.headManifest('team/app', 'v1', deadline());
      now += 298_000;
      await client.headManifest('team/app', 'v1', deadline());
      assert.equal(state.tokenRequests.length, 1, 'still valid 2 s before expiry');
      now += 2_000;
      await client.headManifest('team/app', 'v1', deadline());
      assert.equal(state.tokenRequests.length, 2, 'renewed at expiry');
    });

    it('replaces a token the registry stops accepting, once', async (t) => {
      const { server, state } = await serveWithTokens(t, { credentials: [USER, PASSWORD] });
      const client = await clientFor(t, server, withPassword());
      await client.headManifest('team/app', 'v1', deadline());
      state.issued.clear();
      assert.equal((await client.headManifest('team/app', 'v1', deadline())).kind, 'found');
      assert.equal(state.tokenRequests.length, 2);
    });

    it('pings with a token that has no scope', async (t) => {
      const { server, state } = await serveWithTokens(t, { credentials: [USER, PASSWORD] });
      const client = await clientFor(t, server, withPassword());
      const ping = await client.ping(deadline());
      assert.deepEqual([ping.ok, ping.status], [true, 200]);
      assert.equal(state.tokenRequests.length, 1);
      assert.equal(state.tokenRequests[0]?.searchParams.has('scope'), false);
    });

    it('reports auth when the token server refuses the credentials', async (t) => {
      const { server } = await serveWithTokens(t, { credentials: [USER, PASSWORD] });
      const client = await clientFor(t, server, withPassword(wrongPasswordFile));
      const ping = await client.ping(deadline());
      assert.deepEqual([ping.ok, ping.availability], [false, 'auth']);
      const result = await client.headManifest('team/app', 'v1', deadline());
      assert.equal(result.kind === 'error' && result.availability, 'auth');
    });
  });

  describe('failures as values', () => {
    it('maps 429 to rate-limited with Retry-After in seconds or as an HTTP-date', async (t) => {
      const now = Date.parse('2030-01-01T00:00:00Z');
      let retryAfter = '7';
      const server = await serve(
        t,
        (_req, res) => void res.writeHead(429, { 'retry-after': retryAfter }).end(),
      );
      const client = await clientFor(t, server, {}, { now: () => now });
      assert.deepEqual(await client.headManifest('team/app', 'v1', deadline()), {
        kind: 'error',
        availability: 'rate-limited',
        status: 429,
        retryAfterMs: 7000,
        message: 'manifest HEAD answered HTTP 429',
      });
      retryAfter = new Date(now + 90_000).toUTCString();
      const dated = await client.headManifest('team/app', 'v1', deadline());
      assert.equal(dated.kind === 'error' && dated.retryAfterMs, 90_000);
      const ping = await client.ping(deadline());
      assert.deepEqual(
        [ping.ok, ping.status, ping.availability, ping.retryAfterMs],
        [false, 429, 'rate-limited', 90_000],
      );
    });

    it('maps 503 to server-error', async (t) => {
      const server = await serve(t, (_req, res) => void res.writeHead(503).end('maintenance'));
      const client = await clientFor(t, server);
      const ping = await client.ping(deadline());
      assert.deepEqual([ping.ok, ping.status, ping.availability], [false, 503, 'server-error']);
      const result = await client.headManifest('team/app', 'v1', deadline());
      assert.deepEqual(result.kind === 'error' && [result.availability, result.status], [
        'server-error',
        503,
      ]);
    });

    it('ends a call to a registry that accepts and never answers when the signal aborts', async (t) => {
      let received: () => void = () => {};
      const arrived = new Promise<void>((resolve) => {
        received = resolve;
      });
      const server = await serve(t, () => received());
      const client = await clientFor(t, server);
      const controller = new AbortController();
      const pending = client.headManifest('team/app', 'v1', { signal: controller.signal });
      await arrived;
      controller.abort();
      const result = await pending;
      assert.deepEqual(result.kind === 'error' && result.availability, 'timeout');
    });

    it('ends a ping stuck in the TLS handshake of a blackholed port when the signal aborts', async (t) => {
      let connected: () => void = () => {};
      const arrived = new Promise<void>((resolve) => {
        connected = resolve;
      });
      const silent = await startSilent(() => connected());
      t.after(() => silent.close());
      const client = await clientFor(t, silent);
      const controller = new AbortController();
      const pending = client.ping({ signal: controller.signal });
      await arrived;
      controller.abort();
      const ping = await pending;
      assert.deepEqual([ping.ok, ping.availability], [false, 'timeout']);
    });

    it('answers at once when the signal has already fired', async (t) => {
      const server = await serve(t, manifestStore(STORE));
      const client = await clientFor(t, server);
      const result = await client.headManifest('team/app', 'v1', { signal: AbortSignal.abort() });
      assert.equal(result.kind === 'error' && result.availability, 'timeout');
    });

    it('maps a refused connection to unreachable', async (t) => {
      const client = await clientFor(t, { host: await closedPort() });
      const ping = await client.ping(deadline());
      assert.deepEqual([ping.ok, ping.availability], [false, 'unreachable']);
      assert.match(ping.error ?? '', /ECONNREFUSED/);
    });
  });

  describe('TLS', () => {
    it('rejects a certificate for another name', async (t) => {
      const server = await serve(t, manifestStore(STORE), pki.wrongName);
      const client = await clientFor(t, server);
      const ping = await client.ping(deadline());
      assert.deepEqual([ping.ok, ping.availability], [false, 'tls']);
      const result = await client.headManifest('team/app', 'v1', deadline());
      assert.equal(result.kind === 'error' && result.availability, 'tls');
      assert.equal(server.requests.length, 0);
    });

    it('rejects a certificate from a CA it was not given', async (t) => {
      const server = await serve(t, manifestStore(STORE));
      const client = await clientFor(t, server, { caFile: undefined });
      const ping = await client.ping(deadline());
      assert.deepEqual([ping.ok, ping.availability], [false, 'tls']);
    });

    it('keeps verifying when the process is told not to (NODE_TLS_REJECT_UNAUTHORIZED=0)', async (t) => {
      // Only `insecure` (plain HTTP, per registry) lowers the bar: a stray environment variable never does.
      const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
      t.after(() => {
        if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
        else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
      });
      const server = await serve(t, manifestStore(STORE));
      const client = await clientFor(t, server, { caFile: undefined });
      const ping = await client.ping(deadline());
      assert.deepEqual([ping.ok, ping.availability], [false, 'tls']);
      assert.equal(server.requests.length, 0);
    });

    it('fails to build with a CA file that holds no certificate', async () => {
      const notPem = join(dir, 'not-a-ca.pem');
      await writeFile(notPem, 'hello');
      await assert.rejects(
        createRegistryClient({ registry: '127.0.0.1:1', settings: { caFile: notPem } }),
        (error: unknown) => error instanceof RegistrySetupError && error.code === 'ca-file-invalid',
      );
    });

    it('fails to build with a CA file whose PEM armour holds no parseable certificate', async () => {
      const garbage = join(dir, 'garbage-ca.pem');
      await writeFile(
        garbage,
        '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGUgYXQgYWxs\n-----END CERTIFICATE-----\n',
      );
      await assert.rejects(
        createRegistryClient({ registry: '127.0.0.1:1', settings: { caFile: garbage } }),
        (error: unknown) =>
          error instanceof RegistrySetupError &&
          error.code === 'ca-file-invalid' &&
          /no parseable PEM certificate/.test(error.message),
      );
    });

    it('builds with a CA bundle of which one certificate parses', async () => {
      const bundle = join(dir, 'mixed-ca.pem');
      const ca = await readFile(pki.caFile, 'utf8');
      await writeFile(bundle, `-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n${ca}`);
      const client = await createRegistryClient({ registry: '127.0.0.1:1', settings: { caFile: bundle } });
      await client.close();
    });
  });

  describe('plain HTTP', () => {
    it('is used only when the registry is marked insecure', async (t) => {
      const server = await startHttp(manifestStore(STORE));
      t.after(() => server.close());

      const secure = await clientFor(t, server);
      assert.equal(secure.origin, `https://${server.host}`);
      const refused = await secure.ping(deadline());
      assert.equal(refused.ok, false);
      assert.equal(refused.availability, 'tls');
      assert.equal(server.requests.length, 0);

      const insecure = await clientFor(t, server, { insecure: true });
      assert.equal(insecure.origin, `http://${server.host}`);
      assert.equal((await insecure.ping(deadline())).ok, true);
      assert.equal((await insecure.headManifest('team/app', 'v1', deadline())).kind, 'found');
    });

    it('maps Docker Hub to its API host', () => {
      assert.equal(originOf('docker.io'), 'https://registry-1.docker.io');
      assert.equal(originOf('registry.local:5000'), 'https://registry.local:5000');
      assert.equal(originOf('registry.local:5000', true), 'http://registry.local:5000');
    });
  });

  describe('secrecy', () => {
    it('never puts the password in a result, an event or a rendering of the client', async (t) => {
      const { server } = await serveWithTokens(t, {
        credentials: [USER, 'the real one'],
        echoSecretsOnDenial: true,
      });
      const events: RequestEvent[] = [];
      const client = await clientFor(t, server, withPassword(), { onRequest: (e) => events.push(e) });
      const shown = [
        JSON.stringify(await client.ping(deadline())),
        JSON.stringify(await client.headManifest('team/app', 'v1', deadline())),
        JSON.stringify(await client.headManifest('team/app', 'v1', { signal: AbortSignal.abort() })),
        JSON.stringify(events),
        JSON.stringify(client),
        JSON.stringify({ client }),
        String(client),
        inspect(client, { showHidden: true, depth: 10 }),
      ];
      const encoded = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
      for (const text of shown) {
        assert.ok(!text.includes(PASSWORD), text);
        assert.ok(!text.includes(encoded), text);
      }
    });

    it('never puts the password in a message when credentials come from a dockerconfigjson', async (t) => {
      const configFile = join(dir, 'dockerconfig.json');
      const { server } = await serveWithTokens(t, {
        credentials: [USER, 'the real one'],
        echoSecretsOnDenial: true,
      });
      await writeFile(
        configFile,
        JSON.stringify({ auths: { [server.host]: { username: USER, password: PASSWORD } } }),
      );
      const client = await clientFor(t, server, { auth: { dockerConfigJson: configFile } });
      const result = await client.headManifest('team/app', 'v1', deadline());
      assert.equal(result.kind === 'error' && result.availability, 'auth');
      assert.ok(!JSON.stringify(result).includes(PASSWORD));
      assert.ok(!inspect(client).includes(PASSWORD));
    });
  });

  describe('request events', () => {
    it('reports every request with its operation, status and outcome', async (t) => {
      const { server } = await serveWithTokens(t, { credentials: [USER, PASSWORD] });
      const events: RequestEvent[] = [];
      const client = await clientFor(t, server, withPassword(), { onRequest: (e) => events.push(e) });
      await client.headManifest('team/app', 'v1', deadline());
      await client.headManifest('team/app', 'missing', deadline());
      assert.deepEqual(
        events.map((e) => [e.operation, e.method, e.status, e.outcome]),
        [
          ['manifest', 'HEAD', 401, 'auth'],
          ['token', 'GET', 200, 'available'],
          ['manifest', 'HEAD', 200, 'available'],
          ['manifest', 'HEAD', 404, 'not-found'],
        ],
      );
      for (const event of events) {
        assert.equal(event.registry, server.host);
        assert.ok(event.durationMs >= 0);
      }
    });

    it('says who asked: a probe, or a lookup unless told otherwise, its token exchange included', async (t) => {
      const { server } = await serveWithTokens(t, { credentials: [USER, PASSWORD] });
      const events: RequestEvent[] = [];
      const client = await clientFor(t, server, withPassword(), { onRequest: (e) => events.push(e) });
      await client.headManifest('team/app', 'v1', { ...deadline(), kind: 'probe' });
      await client.headManifest('team/app', 'missing', deadline());
      assert.deepEqual(
        events.map((e) => [e.operation, e.status, e.kind]),
        [
          ['manifest', 401, 'probe'],
          ['token', 200, 'probe'],
          ['manifest', 200, 'probe'],
          ['manifest', 404, 'lookup'],
        ],
      );
    });

    it('survives a hook that throws', async (t) => {
      const server = await serve(t, manifestStore(STORE));
      const client = await clientFor(
        t,
        server,
        {},
        {
          onRequest: () => {
            throw new Error('metrics broke');
          },
        },
      );
      assert.equal((await client.ping(deadline())).ok, true);
    });
  });

  describe('use', () => {
    it('is busy while a call is under way, and says when it is idle again', async (t) => {
      let received: () => void = () => {};
      const arrived = new Promise<void>((resolve) => {
        received = resolve;
      });
      const server = await serve(t, () => received());
      const client = await clientFor(t, server);
      assert.equal(client.busy, false);
      const controller = new AbortController();
      const pending = client.headManifest('team/app', 'v1', { signal: controller.signal });
      assert.equal(client.busy, true, 'busy from the moment the call is made');
      await arrived;
      const idle = client.whenIdle();
      controller.abort();
      await pending;
      await idle;
      assert.equal(client.busy, false);
    });
  });

  describe('close', () => {
    it('destroys the pools: later calls fail as values', async (t) => {
      const server = await serve(t, manifestStore(STORE));
      const client = await clientFor(t, server);
      assert.equal((await client.ping(deadline())).ok, true);
      await client.close();
      const ping = await client.ping(deadline());
      assert.equal(ping.ok, false);
      const result = await client.headManifest('team/app', 'v1', deadline());
      assert.equal(result.kind, 'error');
    });
  });
});
