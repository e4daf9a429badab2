// Proves the integration-test harness and records how real distribution 2.8 registries behave on loopback.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Agent, type Dispatcher, request } from 'undici';
import {
  ACCEPT_ALL_MANIFESTS,
  basicAuthorization,
  type FaultProxy,
  type Harness,
  MEDIA_TYPES,
  pushImage,
  pushImageToAll,
  pushIndex,
  type Registry,
  sha256,
  startHarness,
  type TokenIssuer,
  WRONG_DNS_NAME,
} from '../harness/index.js';

interface Answer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function send(
  url: string,
  options: {
    method?: Dispatcher.HttpMethod;
    headers?: Record<string, string>;
    dispatcher: Dispatcher;
    signal?: AbortSignal;
  },
): Promise<Answer> {
  const response = await request(url, {
    method: options.method ?? 'GET',
    headers: options.headers,
    dispatcher: options.dispatcher,
    signal: options.signal ?? AbortSignal.timeout(10_000),
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { statusCode: response.statusCode, headers: response.headers, body };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A token straight from the issuer, the way a registry client asks for one (token-auth.json). */
async function tokenFor(
  issuer: TokenIssuer,
  dispatcher: Dispatcher,
  params: { service: string; scope: string; credentials?: { username: string; password: string } },
) {
  const url = new URL(issuer.realm);
  url.searchParams.set('service', params.service);
  url.searchParams.set('scope', params.scope);
  const headers = params.credentials ? { authorization: basicAuthorization(params.credentials) } : undefined;
  const answer = await send(url.toString(), { dispatcher, ...(headers ? { headers } : {}) });
  return { statusCode: answer.statusCode, headers: answer.headers, json: JSON.parse(answer.body.toString()) };
}

describe('integration harness: real distribution registries on loopback', () => {
  let harness: Harness;
  let issuer: TokenIssuer;
  let open: Registry;
  let basic: Registry;
  let tokenRegistry: Registry;
  let startupMs = 0;
  const quickAgents: Agent[] = [];

  before(async () => {
    const started = performance.now();
    harness = await startHarness();
    issuer = await harness.startTokenIssuer();
    [open, basic, tokenRegistry] = await Promise.all([
      harness.startRegistry({ name: 'open' }),
      harness.startRegistry({ name: 'basic', auth: { kind: 'htpasswd' } }),
      harness.startRegistry({ name: 'token', auth: { kind: 'token', issuer } }),
    ]);
    startupMs = performance.now() - started;
  });

  after(async () => {
    await Promise.all(quickAgents.map((agent) => agent.close()));
    await harness?.stop();
  });

  /** A client with short timeouts for the faults that hang; closed with the suite. */
  const quickAgent = (options: { connectTimeoutMs?: number; headersTimeoutMs?: number } = {}) => {
    const agent = new Agent({
      connect: { ca: harness.ca.certPem, timeout: options.connectTimeoutMs ?? 2000 },
      headersTimeout: options.headersTimeoutMs ?? 5000,
    });
    quickAgents.push(agent);
    return agent;
  };

  it('starts three registries and a token issuer, each answering', (t) => {
    // How long it took is reported, not asserted: a loaded 2-core machine may take its time.
    t.diagnostic(`harness startup: ${startupMs.toFixed(0)} ms`);
    assert.ok(issuer.running);
    for (const registry of [open, basic, tokenRegistry]) {
      assert.ok(registry.running, `${registry.name} answers GET /v2/`);
      assert.match(registry.host, /^127\.0\.0\.1:\d+$/);
      assert.notEqual(registry.port, 5000, 'never the port the Debian package service uses');
    }
  });

  describe('authentication as the registries answer it', () => {
    it('an open registry answers GET /v2/ with 200', async () => {
      const answer = await send(`${open.url}/v2/`, { dispatcher: harness.dispatcher });
      assert.equal(answer.statusCode, 200);
    });

    it('a basic-auth registry answers 401 with a Basic challenge without credentials and 200 with them', async () => {
      const denied = await send(`${basic.url}/v2/`, { dispatcher: harness.dispatcher });
      assert.equal(denied.statusCode, 401);
      assert.match(String(denied.headers['www-authenticate']), /^Basic realm="[^"]+"$/);
      assert.ok(basic.credentials);
      const allowed = await send(`${basic.url}/v2/`, {
        dispatcher: harness.dispatcher,
        headers: { authorization: basicAuthorization(basic.credentials) },
      });
      assert.equal(allowed.statusCode, 200);
    });

    it('a token registry pings with a Bearer challenge naming realm and service, without scope', async () => {
      const answer = await send(`${tokenRegistry.url}/v2/`, { dispatcher: harness.dispatcher });
      assert.equal(answer.statusCode, 401);
      assert.equal(
        answer.headers['www-authenticate'],
        `Bearer realm="${issuer.realm}",service="${tokenRegistry.service}"`,
      );
    });

    it('a manifest HEAD on a token registry is challenged with the pull scope of its repository', async () => {
      const answer = await send(`${tokenRegistry.url}/v2/team/app/manifests/v1`, {
        method: 'HEAD',
        dispatcher: harness.dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS },
      });
      assert.equal(answer.statusCode, 401);
      assert.match(String(answer.headers['www-authenticate']), /scope="repository:team\/app:pull"/);
    });

    it('a token from the issuer for repository:<name>:pull opens a manifest HEAD', async () => {
      const pushed = await pushImage(tokenRegistry, 'team/token-app', 'v1');
      const token = await tokenFor(issuer, harness.dispatcher, {
        service: tokenRegistry.service ?? '',
        scope: 'repository:team/token-app:pull',
        credentials: issuer.credentials,
      });
      assert.equal(token.statusCode, 200);
      assert.deepEqual(Object.keys(token.json).sort(), ['access_token', 'expires_in', 'issued_at', 'token']);
      assert.equal(token.json.token, token.json.access_token);
      const head = await send(`${tokenRegistry.url}/v2/team/token-app/manifests/v1`, {
        method: 'HEAD',
        dispatcher: harness.dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS, ...bearer(token.json.token) },
      });
      assert.equal(head.statusCode, 200);
      assert.equal(head.headers['docker-content-digest'], pushed.digest);
    });

    it('a token minted for another service (audience) does not open the registry', async () => {
      await pushImage(tokenRegistry, 'team/audience', 'v1');
      const token = await tokenFor(issuer, harness.dispatcher, {
        service: 'some-other-registry',
        scope: 'repository:team/audience:pull',
        credentials: issuer.credentials,
      });
      const head = await send(`${tokenRegistry.url}/v2/team/audience/manifests/v1`, {
        method: 'HEAD',
        dispatcher: harness.dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS, ...bearer(token.json.token) },
      });
      assert.equal(head.statusCode, 401);
    });

    it('the issuer also answers the OAuth2 password grant (POST) with a token the registry accepts', async () => {
      const pushed = await pushImage(tokenRegistry, 'team/oauth', 'v1');
      const form = new URLSearchParams({
        grant_type: 'password',
        username: issuer.credentials.username,
        password: issuer.credentials.password,
        service: tokenRegistry.service ?? '',
        client_id: 'regroute-harness-test',
        scope: 'repository:team/oauth:pull',
      });
      const response = await request(issuer.realm, {
        method: 'POST',
        dispatcher: harness.dispatcher,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
      assert.equal(response.statusCode, 200);
      const { access_token: accessToken } = (await response.body.json()) as { access_token: string };
      const head = await send(`${tokenRegistry.url}/v2/team/oauth/manifests/v1`, {
        method: 'HEAD',
        dispatcher: harness.dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS, ...bearer(accessToken) },
      });
      assert.equal(head.headers['docker-content-digest'], pushed.digest);
    });

    it('the issuer refuses anonymous and wrong credentials with a Basic challenge', async () => {
      const service = tokenRegistry.service ?? '';
      const scope = 'repository:team/app:pull';
      const anonymous = await tokenFor(issuer, harness.dispatcher, { service, scope });
      assert.equal(anonymous.statusCode, 401);
      assert.match(String(anonymous.headers['www-authenticate']), /^Basic realm=/);
      const wrong = await tokenFor(issuer, harness.dispatcher, {
        service,
        scope,
        credentials: { username: issuer.credentials.username, password: 'wrong' },
      });
      assert.equal(wrong.statusCode, 401);
    });

    it('an issuer that allows anonymous access grants pull but not push', async () => {
      const anonymousIssuer = await harness.startTokenIssuer({ anonymous: true });
      const registry = await harness.startRegistry({
        name: 'anon',
        auth: { kind: 'token', issuer: anonymousIssuer },
      });
      const pushed = await pushImage(registry, 'public/app', 'v1');
      const service = registry.service ?? '';
      const pull = await tokenFor(anonymousIssuer, harness.dispatcher, {
        service,
        scope: 'repository:public/app:pull',
      });
      const head = await send(`${registry.url}/v2/public/app/manifests/v1`, {
        method: 'HEAD',
        dispatcher: harness.dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS, ...bearer(pull.json.token) },
      });
      assert.equal(head.headers['docker-content-digest'], pushed.digest);
      const push = await tokenFor(anonymousIssuer, harness.dispatcher, {
        service,
        scope: 'repository:public/app:pull,push',
      });
      const upload = await send(`${registry.url}/v2/public/app/blobs/uploads/`, {
        method: 'POST',
        dispatcher: harness.dispatcher,
        headers: bearer(push.json.token),
      });
      assert.equal(upload.statusCode, 401);
      await registry.stop();
      await anonymousIssuer.stop();
    });

    it('the issuer counts its requests, goes down (refused) and comes back on the same port', async () => {
      issuer.resetCounts();
      const params = {
        service: tokenRegistry.service ?? '',
        scope: 'repository:team/app:pull',
        credentials: issuer.credentials,
      };
      await tokenFor(issuer, harness.dispatcher, params);
      assert.equal(issuer.requests.length, 1);
      assert.deepEqual(issuer.requests[0]?.scopes, [
        { type: 'repository', name: 'team/app', actions: ['pull'] },
      ]);
      assert.equal(issuer.requests[0]?.account, issuer.credentials.username);
      await issuer.stop();
      try {
        await assert.rejects(tokenFor(issuer, harness.dispatcher, params), { code: 'ECONNREFUSED' });
      } finally {
        await issuer.start();
      }
      const again = await tokenFor(issuer, harness.dispatcher, params);
      assert.equal(again.statusCode, 200);
      assert.equal(issuer.tokensIssued, 2);
    });
  });

  describe('manifests as the registries serve them', () => {
    for (const format of ['oci', 'docker'] as const) {
      it(`a pushed ${format} manifest answers HEAD with its pushed digest when Accept lists the four types`, async () => {
        const pushed = await pushImage(open, `single/${format}`, 'v1', { format });
        const head = await send(`${open.url}/v2/single/${format}/manifests/v1`, {
          method: 'HEAD',
          dispatcher: harness.dispatcher,
          headers: { accept: ACCEPT_ALL_MANIFESTS },
        });
        assert.equal(head.statusCode, 200);
        assert.equal(head.headers['docker-content-digest'], pushed.digest);
        assert.equal(head.headers['content-type'], pushed.mediaType);
        assert.equal(Number(head.headers['content-length']), pushed.size);
        const get = await send(`${open.url}/v2/single/${format}/manifests/${pushed.digest}`, {
          dispatcher: harness.dispatcher,
          headers: { accept: ACCEPT_ALL_MANIFESTS },
        });
        assert.equal(sha256(get.body), pushed.digest, 'the digest is the sha256 of the exact bytes');
      });
    }

    it('every push of new content yields a distinct digest', async () => {
      const first = await pushImage(open, 'distinct/app', 'v1');
      const second = await pushImage(open, 'distinct/app', 'v2');
      assert.notEqual(first.digest, second.digest);
    });

    it('an OCI index answers HEAD with its digest when Accept lists the four types', async () => {
      const pushed = await pushIndex(open, 'multi/app', 'v1');
      assert.equal(pushed.images.length, 2);
      const head = await send(`${open.url}/v2/multi/app/manifests/v1`, {
        method: 'HEAD',
        dispatcher: harness.dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS },
      });
      assert.equal(head.statusCode, 200);
      assert.equal(head.headers['content-type'], MEDIA_TYPES.ociIndex);
      assert.equal(head.headers['docker-content-digest'], pushed.digest);
    });

    it('an OCI index HEAD whose Accept lists only the OCI manifest type gets 404, not a fallback', async () => {
      await pushIndex(open, 'multi/narrow', 'v1');
      const head = await send(`${open.url}/v2/multi/narrow/manifests/v1`, {
        method: 'HEAD',
        dispatcher: harness.dispatcher,
        headers: { accept: MEDIA_TYPES.ociManifest },
      });
      assert.equal(head.statusCode, 404);
    });

    it('a Docker manifest list answers HEAD with its own media type', async () => {
      const pushed = await pushIndex(open, 'multi/docker', 'v1', { format: 'docker' });
      const head = await send(`${open.url}/v2/multi/docker/manifests/v1`, {
        method: 'HEAD',
        dispatcher: harness.dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS },
      });
      assert.equal(head.headers['content-type'], MEDIA_TYPES.dockerManifestList);
      assert.equal(head.headers['docker-content-digest'], pushed.digest);
    });

    it('the same content pushed to several registries has one digest; a later push leaves a stale mirror', async () => {
      const source = await pushImageToAll([open, basic, tokenRegistry], 'same/app', 'v1');
      const digestOf = async (registry: Registry) => {
        const token =
          registry === tokenRegistry
            ? await tokenFor(issuer, harness.dispatcher, {
                service: registry.service ?? '',
                scope: 'repository:same/app:pull',
                credentials: issuer.credentials,
              })
            : undefined;
        const authorization = registry.credentials
          ? token
            ? `Bearer ${token.json.token}`
            : basicAuthorization(registry.credentials)
          : undefined;
        const head = await send(`${registry.url}/v2/same/app/manifests/v1`, {
          method: 'HEAD',
          dispatcher: harness.dispatcher,
          headers: { accept: ACCEPT_ALL_MANIFESTS, ...(authorization ? { authorization } : {}) },
        });
        return head.headers['docker-content-digest'];
      };
      assert.deepEqual(await Promise.all([open, basic, tokenRegistry].map(digestOf)), [
        source.digest,
        source.digest,
        source.digest,
      ]);
      const stale = await pushImage(basic, 'same/app', 'v1');
      assert.notEqual(stale.digest, source.digest);
      assert.equal(await digestOf(basic), stale.digest);
      assert.equal(await digestOf(open), source.digest);
    });
  });

  describe('content a real puller accepts', () => {
    it('skopeo (containers/image, as CRI-O pulls) copies a pushed image and a whole index out', async () => {
      const image = await pushImage(basic, 'pulled/app', 'v1', { format: 'docker' });
      const index = await pushIndex(basic, 'pulled/multi', 'v1');
      const out = await mkdtemp(join(tmpdir(), 'regroute-harness-skopeo-'));
      try {
        const creds = `${basic.credentials?.username}:${basic.credentials?.password}`;
        const copy = (args: string[]) =>
          promisify(execFile)('skopeo', [
            'copy',
            '--src-cert-dir',
            harness.ca.certDir,
            '--src-creds',
            creds,
            ...args,
          ]);
        await copy([`docker://${basic.host}/pulled/app:v1`, `dir:${join(out, 'image')}`]);
        const manifest = await readFile(join(out, 'image', 'manifest.json'));
        assert.equal(sha256(manifest), image.digest, 'copied unchanged, blobs verified on the way');
        await copy(['--all', `docker://${basic.host}/pulled/multi:v1`, `dir:${join(out, 'index')}`]);
        assert.equal(sha256(await readFile(join(out, 'index', 'manifest.json'))), index.digest);
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    });
  });

  describe('pull-through caches', () => {
    for (const upstreamKind of ['open', 'basic', 'token'] as const) {
      it(`a cache of a${upstreamKind === 'open' ? 'n' : ''} ${upstreamKind} upstream answers HEAD with the upstream digest`, async () => {
        const upstream = { open, basic, token: tokenRegistry }[upstreamKind];
        const pushed = await pushImage(upstream, `cached/${upstreamKind}`, 'v1');
        const cache = await harness.startRegistry({ name: `cache-of-${upstreamKind}`, proxyOf: upstream });
        assert.equal(cache.upstream, upstream.url);
        const head = await send(`${cache.url}/v2/cached/${upstreamKind}/manifests/v1`, {
          method: 'HEAD',
          dispatcher: harness.dispatcher,
          headers: { accept: ACCEPT_ALL_MANIFESTS },
        });
        assert.equal(head.statusCode, 200, cache.logs());
        assert.equal(head.headers['docker-content-digest'], pushed.digest);
        await cache.stop();
      });
    }
  });

  describe('a registry that goes down and comes back', () => {
    it('refuses connections once stopped and answers again after start on the same port, content kept', async () => {
      const registry = await harness.startRegistry({ name: 'restarting' });
      const pushed = await pushImage(registry, 'kept/app', 'v1');
      const { port } = registry;
      await registry.stop();
      assert.equal(registry.running, false);
      await assert.rejects(send(`${registry.url}/v2/`, { dispatcher: harness.dispatcher }), {
        code: 'ECONNREFUSED',
      });
      await registry.start();
      assert.equal(registry.port, port);
      const head = await send(`${registry.url}/v2/kept/app/manifests/v1`, {
        method: 'HEAD',
        dispatcher: harness.dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS },
      });
      assert.equal(head.headers['docker-content-digest'], pushed.digest);
      await registry.stop();
    });
  });

  describe('fault proxy in front of a real registry', () => {
    let proxy: FaultProxy;
    let digest: string;
    const headThroughProxy = (dispatcher: Dispatcher = harness.dispatcher, signal?: AbortSignal) =>
      send(`${proxy.url}/v2/faulty/app/manifests/v1`, {
        method: 'HEAD',
        dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS },
        ...(signal ? { signal } : {}),
      });

    before(async () => {
      proxy = await harness.startFaultProxy(open);
      digest = (await pushImage(open, 'faulty/app', 'v1')).digest;
    });

    it('pass forwards to the registry and counts what reached it', async () => {
      await proxy.setMode('pass');
      proxy.resetCounts();
      const head = await headThroughProxy();
      assert.equal(head.statusCode, 200);
      assert.equal(head.headers['docker-content-digest'], digest);
      assert.equal(proxy.requests.pass, 1);
      assert.equal(proxy.forwarded, 1);
    });

    it('pass carries a whole push, upload Locations included, through the proxy', async () => {
      await proxy.setMode('pass');
      const pushed = await pushImage(proxy, 'faulty/pushed', 'v1');
      const head = await send(`${open.url}/v2/faulty/pushed/manifests/v1`, {
        method: 'HEAD',
        dispatcher: harness.dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS },
      });
      assert.equal(head.headers['docker-content-digest'], pushed.digest);
    });

    it('refuse makes the port refuse connections (ECONNREFUSED) until another mode listens again', async () => {
      await proxy.setMode('refuse');
      await assert.rejects(headThroughProxy(), { code: 'ECONNREFUSED' });
      await proxy.setMode('pass');
      assert.equal((await headThroughProxy()).statusCode, 200);
    });

    it('reset accepts the connection and resets it (ECONNRESET) before anything reaches the registry', async () => {
      await proxy.setMode('reset');
      proxy.resetCounts();
      await assert.rejects(headThroughProxy(), { code: 'ECONNRESET' });
      assert.equal(proxy.connections.reset, 1);
      assert.equal(proxy.forwarded, 0);
    });

    it('blackhole accepts TCP and never answers: the client meets its own connect timeout', async () => {
      await proxy.setMode('blackhole');
      proxy.resetCounts();
      await assert.rejects(headThroughProxy(quickAgent({ connectTimeoutMs: 250 })), {
        code: 'UND_ERR_CONNECT_TIMEOUT',
      });
      assert.equal(proxy.connections.blackhole, 1);
      assert.equal(proxy.forwarded, 0);
    });

    it('slow forwards after the delay; a client that gives up first never reaches the registry', async () => {
      await proxy.setMode('slow', { delayMs: 300 });
      proxy.resetCounts();
      const started = performance.now();
      const head = await headThroughProxy();
      assert.ok(performance.now() - started >= 290);
      assert.equal(head.headers['docker-content-digest'], digest);
      await assert.rejects(headThroughProxy(harness.dispatcher, AbortSignal.timeout(100)), {
        name: 'TimeoutError',
      });
      // The abandoned request has ended at the proxy: its delayed forward is cancelled, not merely late.
      await proxy.untilSettled(2);
      assert.equal(proxy.requests.slow, 2);
      assert.equal(proxy.forwarded, 1);
    });

    for (const status of [503, 500]) {
      it(`status ${status} answers every request with ${status} and forwards none`, async () => {
        await proxy.setMode('status', { status });
        proxy.resetCounts();
        assert.equal((await headThroughProxy()).statusCode, status);
        assert.equal(proxy.requests.status, 1);
        assert.equal(proxy.forwarded, 0);
      });
    }

    it('rate-limit answers 429 with Retry-After and a TOOMANYREQUESTS error body', async () => {
      await proxy.setMode('rate-limit', { retryAfterSeconds: 7 });
      const head = await headThroughProxy();
      assert.equal(head.statusCode, 429);
      assert.equal(head.headers['retry-after'], '7');
      const get = await send(`${proxy.url}/v2/faulty/app/manifests/v1`, { dispatcher: harness.dispatcher });
      assert.equal(JSON.parse(get.body.toString()).errors[0].code, 'TOOMANYREQUESTS');
    });

    it('bad-tls serves a certificate for another name, still signed by the harness CA', async () => {
      await proxy.setMode('bad-tls');
      proxy.resetCounts();
      await assert.rejects(headThroughProxy(), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
      assert.equal(proxy.forwarded, 0);
      const trustingTheWrongName = new Agent({
        connect: { ca: harness.ca.certPem, servername: WRONG_DNS_NAME },
      });
      quickAgents.push(trustingTheWrongName);
      const head = await headThroughProxy(trustingTheWrongName);
      assert.equal(head.headers['docker-content-digest'], digest, 'only the name is wrong, not the chain');
    });

    it('wrong-digest forwards the manifest but answers another Docker-Content-Digest', async () => {
      await proxy.setMode('wrong-digest');
      const head = await headThroughProxy();
      assert.equal(head.statusCode, 200);
      assert.match(String(head.headers['docker-content-digest']), /^sha256:[0-9a-f]{64}$/);
      assert.notEqual(head.headers['docker-content-digest'], digest);
      const get = await send(`${proxy.url}/v2/faulty/app/manifests/v1`, {
        dispatcher: harness.dispatcher,
        headers: { accept: ACCEPT_ALL_MANIFESTS },
      });
      assert.equal(sha256(get.body), digest, 'the body is still the real manifest');
    });

    it('stop destroys held connections', async () => {
      const held = await harness.startFaultProxy(open, { mode: 'blackhole' });
      const socket = connect(held.port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => {});
      await held.stop();
      await closed;
      await assert.rejects(send(`${held.url}/v2/`, { dispatcher: harness.dispatcher }), {
        code: 'ECONNREFUSED',
      });
    });
  });
});
