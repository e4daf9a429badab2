// The image as the cluster runs it: the Dockerfile built on a base of the Node major it names (scripts/image-base.sh,
// since no public registry is reachable here), run by podman with runc under the Deployment's constraints (read-only
// root, no capabilities, no privilege escalation, its memory limit, the config and TLS Secret mounted read-only),
// then probed, sent reviews, and stopped with SIGTERM while one is in flight. Needs root: `npm run test:image`.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { parse, stringify } from 'yaml';
import type { AdmissionResponse } from '../../src/admission/review.js';
import { certSetPaths, writeCertSet } from '../../src/certs/files.js';
import { freePort, LOOPBACK } from '../harness/ports.js';
import { fixture } from '../helpers/fixtures.js';
import {
  baseImage,
  buildImage,
  type Container,
  type Podman,
  podman,
  repoRoot,
  runContainer,
} from './podman.js';

const TAG = 'localhost/regroute:image-test';
const SHUTTING_DOWN = 'shutting down: draining requests in flight';
const DEV_ONLY = ['typescript', 'tsx', '@biomejs/biome', 'fast-check', 'kubernetes-models', 'autocannon'];

interface Review {
  request: { uid: string; object: { spec: { containers: { name: string; image: string }[] } } };
}

const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;

/** A registry whose API root answers and whose manifest requests are held unanswered: a review waits on it. */
async function hangingRegistry(): Promise<{
  server: Server;
  host: string;
  manifestRequested: Promise<void>;
}> {
  let requested!: () => void;
  const manifestRequested = new Promise<void>((resolve) => {
    requested = resolve;
  });
  const server = createServer((req, res) => {
    if (req.url?.includes('/manifests/')) {
      requested();
      return; // held until the server closes
    }
    res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  return { server, host: `${LOOPBACK}:${(server.address() as AddressInfo).port}`, manifestRequested };
}

describe('the image', { skip: process.getuid?.() !== 0 && 'podman and mmdebstrap run as root here' }, () => {
  let run: Podman;
  let base: string;
  let dir: string;
  let registry: Awaited<ReturnType<typeof hangingRegistry>>;
  let container: Container;
  let dispatcher: Agent;
  let origin: string;
  let metricsPort: number;

  const post = async (path: string, body: unknown) => {
    const res = await request(`${origin}${path}`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    return {
      statusCode: res.statusCode,
      response: ((await res.body.json()) as { response: AdmissionResponse }).response,
    };
  };

  before(async () => {
    run = await podman();
    let started = performance.now();
    base = await baseImage(run.env);
    const baseMs = performance.now() - started;
    started = performance.now();
    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    await buildImage(run, { base, tag: TAG, buildArgs: { VERSION: pkg.version } });
    const buildMs = performance.now() - started;
    const [size, baseSize] = await Promise.all(
      [TAG, base].map(async (image) =>
        Number(await run(['image', 'inspect', '--format', '{{.Size}}', image])),
      ),
    );
    console.log(
      `image ${TAG}: ${mb(size ?? 0)}, of which the base ${mb(baseSize ?? 0)} and regroute ${mb((size ?? 0) - (baseSize ?? 0))}` +
        ` (base ready in ${Math.round(baseMs / 1000)} s, build in ${Math.round(buildMs / 1000)} s)`,
    );

    // What the Deployment mounts: the regroute-config ConfigMap and the regroute-tls Secret, readable by 1000.
    dir = await mkdtemp(join(tmpdir(), 'regroute-image-test-'));
    await chmod(dir, 0o755);
    const tlsDir = join(dir, 'tls');
    const configDir = join(dir, 'config');
    await mkdir(configDir);
    const caCert = (
      await writeCertSet(certSetPaths(tlsDir), { service: 'regroute', namespace: 'regroute-system' })
    ).caCertPem;
    await chmod(tlsDir, 0o755);
    await chmod(certSetPaths(tlsDir).tlsKey, 0o644); // a Secret volume's default mode
    await rm(certSetPaths(tlsDir).caKey);

    registry = await hangingRegistry();
    const port = await freePort();
    metricsPort = await freePort();
    const healthPort = await freePort();
    // The install's own config and environment (ports, TLS paths, heap cap: deploy/base/environment.yaml), on
    // loopback ports of the host's network, with one route to the hanging registry.
    const config = parse(await readFile(join(repoRoot, 'deploy/base/config.yaml'), 'utf8')) ?? {};
    config.server = { host: LOOPBACK };
    const environment = (
      parse(await readFile(join(repoRoot, 'deploy/base/environment.yaml'), 'utf8')) as {
        data: Record<string, string>;
      }
    ).data;
    Object.assign(environment, {
      REGROUTE_PORT: String(port),
      REGROUTE_METRICS_PORT: String(metricsPort),
      REGROUTE_HEALTH_PORT: String(healthPort),
    });
    config.registries = { [registry.host]: { insecure: true } };
    config.routes = [{ prefix: `${registry.host}/team`, registries: [`${registry.host}/team`] }];
    await writeFile(join(configDir, 'config.yaml'), stringify(config));

    container = runContainer(run, `regroute-image-test-${process.pid}`, [
      '--network=host',
      '--read-only',
      '--read-only-tmpfs=false',
      '--cap-drop=ALL',
      '--security-opt=no-new-privileges',
      '--memory=320m',
      ...Object.entries(environment).map(([name, value]) => `--env=${name}=${value}`),
      `--volume=${configDir}:/etc/regroute/config:ro`,
      `--volume=${tlsDir}:/etc/regroute/tls:ro`,
      TAG,
    ]);
    await container.waitForStderr(/listening on https:\/\//);
    dispatcher = new Agent({ connect: { ca: caCert } });
    origin = `https://${LOOPBACK}:${port}`;
  });

  after(async () => {
    await container?.remove();
    await dispatcher?.close();
    registry?.server.closeAllConnections();
    registry?.server.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('carries the OCI labels, its version and its base', async () => {
    const labels = JSON.parse(await run(['image', 'inspect', '--format', '{{json .Labels}}', TAG])) as Record<
      string,
      string
    >;
    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8'));
    assert.equal(labels['org.opencontainers.image.title'], pkg.name);
    assert.equal(labels['org.opencontainers.image.version'], pkg.version);
    assert.equal(labels['org.opencontainers.image.licenses'], pkg.license);
    assert.equal(labels['org.opencontainers.image.description'], pkg.description);
    assert.equal(labels['org.opencontainers.image.base.name'], base);
  });

  it('runs node as PID 1 under uid and gid 1000, with the default command serving the mounted config', async () => {
    const status = await container.exec(['cat', '/proc/1/status']);
    assert.match(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    assert.match(status, /^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
    assert.match(status, /^CapEff:\s+0+$/m, 'no capabilities');
    const cmdline = (await container.exec(['cat', '/proc/1/cmdline'])).split('\0').filter(Boolean);
    assert.deepEqual(cmdline, [
      'node',
      'dist/cli.js',
      'serve',
      '--config',
      '/etc/regroute/config/config.yaml',
    ]);
  });

  it('runs on the Node major the Dockerfile names', async () => {
    const major = /^ARG BASE=node:(\d+)/m.exec(await readFile(join(repoRoot, 'Dockerfile'), 'utf8'))?.[1];
    assert.ok(major, 'the Dockerfile names its Node major in ARG BASE');
    assert.match(await container.exec(['node', '--version']), new RegExp(`^v${major}\\.`));
  });

  it('writes nothing to its root filesystem', async () => {
    await assert.rejects(container.exec(['touch', '/app/x']), /Read-only file system/);
  });

  it('takes no dev dependency into the runtime image', async () => {
    const present = (names: string[]) =>
      container.exec([
        'sh',
        '-c',
        'for p; do [ -e "node_modules/$p" ] && echo "$p"; done; true',
        'sh',
        ...names,
      ]);
    assert.equal(await present(DEV_ONLY), '');
    assert.equal(await present(['fastify', 'undici']), 'fastify\nundici');
  });

  it('answers /healthz over TLS with the mounted certificate, and serves metrics', async () => {
    const health = await request(`${origin}/healthz`, { dispatcher, signal: AbortSignal.timeout(10_000) });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(await health.body.json(), { status: 'ok' });
    const metrics = await request(`http://${LOOPBACK}:${metricsPort}/metrics`, {
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(metrics.statusCode, 200);
    assert.match(await metrics.body.text(), /^regroute_/m);
  });

  it('answers a review from the fixtures: allowed, its uid echoed', async () => {
    const review = fixture<Review>('admission/pod-create-replicaset.json');
    const { statusCode, response } = await post('/mutate', review);
    assert.equal(statusCode, 200);
    assert.equal(response.uid, review.request.uid);
    assert.equal(response.allowed, true);
  });

  it('on SIGTERM answers the review in flight, then exits 0', async () => {
    const review = fixture<Review>('admission/pod-create-replicaset.json');
    const [web] = review.request.object.spec.containers;
    assert.ok(web);
    web.image = `${registry.host}/team/app:v1`;
    const inFlight = post('/mutate', review);
    await registry.manifestRequested;
    await container.signal('SIGTERM');
    await container.waitForLog((l) => l.msg === SHUTTING_DOWN && l.signal === 'SIGTERM');
    const answered = await inFlight;
    assert.equal(answered.statusCode, 200);
    assert.equal(answered.response.uid, review.request.uid);
    assert.equal(answered.response.allowed, true);
    assert.equal(await container.exited, 0);
    const order = (match: (l: Record<string, unknown>) => boolean) => container.logs.findIndex(match);
    const audit = order((l) => (l.audit as { uid?: string } | undefined)?.uid === review.request.uid);
    assert.ok(audit > order((l) => l.msg === SHUTTING_DOWN), 'the review was answered after shutdown began');
    assert.ok(order((l) => l.msg === 'stopped') > audit, 'and the process stopped after answering it');
  });
});
