// Metrics and logs after registry traffic over HTTP, from scripted stand-ins on loopback (not real registries: they
// do what distribution cannot be made to do, such as echo the credentials sent into a refusal): one behind basic auth,
// one down, one refusing, one closed port.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../../src/audit/metrics.js';
import { parseConfig } from '../../../src/config/load.js';
import { buildApp, buildMetricsApp } from '../../../src/server/app.js';
import { createStateHandle, type LiveStateHandle } from '../../../src/state/create.js';
import { captureLog } from '../server/support.js';

const USER = 'puller';
const PASSWORD = 'Zq8-never-in-a-log-line';
const BASIC = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }));
const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function serve(handler: Handler): Promise<{ host: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A registry holding `cache/app:1.0` behind basic auth for `password`. Refusals echo the Authorization header sent,
 * in the body and a header, as a careless registry might: none of it may reach a log line.
 */
const mirror =
  (password: string): Handler =>
  (req, res) => {
    const sent = req.headers.authorization ?? '';
    if (sent !== `Basic ${Buffer.from(`${USER}:${password}`).toString('base64')}`) {
      res
        .writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'x-you-sent': sent })
        .end(`bad: ${sent}`);
      return;
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } else if (path === '/v2/cache/app/manifests/1.0' || path === `/v2/cache/app/manifests/${digest}`) {
      res.writeHead(200, {
        'content-type': OCI_MANIFEST,
        'docker-content-digest': digest,
        'content-length': manifest.length,
      });
      res.end(req.method === 'HEAD' ? undefined : manifest);
    } else {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
    }
  };

function review(images: string[]) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '11111111-2222-4333-8444-555555555555',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'alice' },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'app-0', namespace: 'shop' },
        spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) },
      },
    },
  };
}

describe('metrics and logs after traffic with scripted registry stand-ins', () => {
  const { log, lines, raw } = captureLog();
  const metrics = new Metrics({ defaultMetrics: false });
  const servers: { host: string; close: () => Promise<void> }[] = [];
  let dir: string;
  let handle: LiveStateHandle;
  let app: ReturnType<typeof buildApp>;
  let source: string;
  let good: string;
  let refusing: string;
  let closed: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regroute-audit-test-'));
    const passwordFile = join(dir, 'password');
    await writeFile(passwordFile, `${PASSWORD}\n`);
    const down = await serve((_req, res) => res.writeHead(503).end());
    const mirrorServer = await serve(mirror(PASSWORD));
    const refusingServer = await serve(mirror('another password'));
    const gone = await serve(() => {});
    servers.push(down, mirrorServer, refusingServer);
    await gone.close();
    [source, good, refusing, closed] = [down.host, mirrorServer.host, refusingServer.host, gone.host];
    const auth = { username: USER, passwordFile };
    const config = parseConfig(
      {
        probe: { timeoutMs: 2000 },
        registries: {
          [source]: { insecure: true },
          [good]: { insecure: true, auth, pullSecret: 'mirror-pull' },
          [refusing]: { insecure: true, auth },
          [closed]: { insecure: true },
        },
        routes: [
          { prefix: source, registries: [source, `${refusing}/cache`, `${closed}/cache`, `${good}/cache`] },
        ],
      },
      'test',
    );
    metrics.configureRegistries([source, good, refusing, closed]);
    // One probe round, run here rather than on the prober's timer: the test goes on once it is done, not after a wait.
    handle = createStateHandle(config, log, { metrics, probe: false });
    assert.equal((await handle.prober.probeAll()).length, 4, 'the first probe round finished');
    const mutateDeps = { config, state: handle.state };
    app = buildApp({ mutateDeps: () => mutateDeps, metrics, log, isReady: () => true });
  });

  after(async () => {
    await app.close();
    await handle.close();
    await Promise.all(servers.map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  const post = async (images: string[]) => {
    const res = await app.inject({
      method: 'POST',
      url: '/mutate',
      payload: review(images),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.statusCode, 200);
    return res.json().response as { patch?: string };
  };

  const scrape = async () => {
    const metricsApp = buildMetricsApp(metrics);
    try {
      return (await metricsApp.inject({ url: '/metrics' })).body;
    } finally {
      await metricsApp.close();
    }
  };

  it('reroutes past a down source, a refusing mirror and a closed port to the mirror that answers', async () => {
    const answer = await post([`${source}/app:1.0`, `${source}/app@${digest}`]);
    assert.ok(answer.patch);
    const audits = lines
      .filter((l) => l.msg === 'image rerouted')
      .map((l) => l.audit as Record<string, unknown>);
    assert.deepEqual(
      audits.map((a) => [a.to, a.reason]),
      [
        [`${good}/cache/app:1.0@${digest}`, 'unverified-tag'],
        [`${good}/cache/app@${digest}`, 'source-unhealthy'],
      ],
    );
    await post([`${source}/app:1.0`]);
  });

  it('exports registry health, probe time, request outcomes by status, cache use and rewrites', async () => {
    const text = await scrape();
    const line = (pattern: string) => assert.match(text, new RegExp(`^${pattern}$`, 'm'), pattern);
    line(`regroute_registry_up\\{registry="${good}"\\} 1`);
    line(`regroute_registry_up\\{registry="${source}"\\} 0`);
    line(`regroute_registry_up\\{registry="${refusing}"\\} 0`);
    line(`regroute_registry_up\\{registry="${closed}"\\} 0`);
    line(`regroute_registry_probe_duration_seconds_count\\{registry="${good}"\\} [1-9]\\d*`);
    line(
      `regroute_registry_requests_total\\{registry="${good}",operation="ping",outcome="auth",status="401",kind="probe"\\} [1-9]\\d*`,
    );
    line(
      `regroute_registry_requests_total\\{registry="${good}",operation="ping",outcome="available",status="200",kind="probe"\\} [1-9]\\d*`,
    );
    line(
      `regroute_registry_requests_total\\{registry="${good}",operation="manifest",outcome="available",status="200",kind="lookup"\\} [1-9]\\d*`,
    );
    line(
      `regroute_registry_requests_total\\{registry="${source}",operation="ping",outcome="server-error",status="503",kind="probe"\\} [1-9]\\d*`,
    );
    line(
      `regroute_registry_requests_total\\{registry="${closed}",operation="ping",outcome="unreachable",status="none",kind="probe"\\} [1-9]\\d*`,
    );
    line('regroute_cache_lookups_total\\{cache="tag",result="miss"\\} [1-9]\\d*');
    line('regroute_cache_lookups_total\\{cache="tag",result="hit"\\} [1-9]\\d*');
    line('regroute_cache_lookups_total\\{cache="presence",result="miss"\\} [1-9]\\d*');
    line('regroute_cache_entries\\{cache="tag"\\} [1-9]\\d*');
    line('regroute_cache_entries\\{cache="presence"\\} [1-9]\\d*');
    line(`regroute_rewrites_total\\{from="${source}",to="${good}",reason="unverified-tag"\\} 2`);
    line(`regroute_rewrites_total\\{from="${source}",to="${good}",reason="source-unhealthy"\\} 1`);
    assert.ok(!text.includes('/app') && !text.includes('sha256:'), 'no image or digest in a label');
  });

  it('never writes the password, or the basic credentials made of it, to a log line or a metric', async () => {
    assert.ok(
      lines.some((l) => l.msg === 'registry health changed' && l.registry === refusing),
      'the refused credentials were logged about',
    );
    const everything = `${raw.join('')}\n${await scrape()}`;
    for (const secret of [PASSWORD, BASIC, Buffer.from(PASSWORD).toString('base64')])
      assert.ok(!everything.includes(secret), `"${secret}" leaked`);
  });
});
