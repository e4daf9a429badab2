// The health port: the kubelet's probes over plain HTTP on a listener of their own, apart from the admission port.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../../src/audit/metrics.js';
import { parseConfig } from '../../../src/config/load.js';
import type { ConfigInput } from '../../../src/config/schema.js';
import { type RunningServer, startServer } from '../../../src/server/run.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import type { RegistryState } from '../../../src/state/state.js';
import { freePort } from '../../harness/ports.js';
import { digestOf } from '../../helpers/digests.js';
import { fixture } from '../../helpers/fixtures.js';
import {
  accepts,
  type CertDir,
  captureLog,
  certDir,
  GatedState,
  handleOf,
  keepAliveAgent,
  postReview,
} from './support.js';

describe('the health port', () => {
  let certs: CertDir;
  const servers: RunningServer[] = [];
  before(async () => {
    certs = await certDir();
    await certs.install(certs.issue());
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await certs.dispose();
  });

  async function serve(
    ready: { value: boolean },
    { server = {}, ...rest }: ConfigInput = {},
    state: RegistryState = new MemoryState(),
  ) {
    const handle = { ...handleOf(state), isReady: () => ready.value };
    const running = await startServer({
      config: parseConfig(
        { ...rest, server: { tlsCert: certs.certFile, tlsKey: certs.keyFile, ...server } },
        'test',
      ),
      state: handle,
      log: captureLog().log,
      metrics: new Metrics({ defaultMetrics: false }),
      port: 0,
      metricsPort: 0,
      host: '127.0.0.1',
      ...('healthPort' in server ? {} : { healthPort: 0 }),
    });
    servers.push(running);
    return running;
  }

  it('answers /healthz and /readyz over plain HTTP, /readyz 503 until the first probe round', async () => {
    const ready = { value: false };
    const server = await serve(ready);
    assert.ok(server.healthPort > 0 && server.healthPort !== server.port);
    const get = (path: string) => fetch(`http://127.0.0.1:${server.healthPort}${path}`);
    assert.equal((await get('/healthz')).status, 200);
    const waiting = await get('/readyz');
    assert.equal(waiting.status, 503);
    assert.deepEqual(await waiting.json(), { status: 'waiting for the first probe round' });
    ready.value = true;
    const answered = await get('/readyz');
    assert.equal(answered.status, 200);
    assert.deepEqual(await answered.json(), { status: 'ready' });
  });

  it('serves nothing but the probes: no /mutate, no /metrics', async () => {
    const server = await serve({ value: true });
    const mutate = await fetch(`http://127.0.0.1:${server.healthPort}/mutate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(fixture('admission/pod-create-replicaset.json')),
    });
    assert.equal(mutate.status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${server.healthPort}/metrics`)).status, 404);
  });

  it('fails the start when its port is taken, leaving no other port open', async () => {
    const taken = await serve({ value: true });
    const port = await freePort();
    await assert.rejects(
      startServer({
        config: parseConfig({ server: { tlsCert: certs.certFile, tlsKey: certs.keyFile } }, 'test'),
        state: handleOf(new MemoryState()),
        log: captureLog().log,
        metrics: new Metrics({ defaultMetrics: false }),
        port,
        metricsPort: 0,
        healthPort: taken.healthPort,
        host: '127.0.0.1',
      }),
      /EADDRINUSE/,
    );
    assert.equal(await accepts(port), false, 'the admission port was closed again');
  });

  it('is off when server.healthPort is 0', async () => {
    const server = await serve({ value: true }, { server: { healthPort: 0 } });
    assert.equal(server.healthPort, 0);
  });

  it('answers its probes while every review on the admission port is held in flight', async () => {
    const gated = new GatedState(
      new MemoryState()
        .setHealth('docker.io', 'unhealthy')
        .setHealth('mirror.local:5000', 'healthy')
        .putLastKnownTag({ registry: 'docker.io', repository: 'library/nginx' }, '1.27', digestOf('nginx'))
        .putManifest({ registry: 'mirror.local:5000', repository: 'hub/library/nginx' }, digestOf('nginx')),
    );
    const server = await serve(
      { value: true },
      {
        admission: { deadlineMs: 20_000 },
        routes: [{ prefix: 'docker.io', registries: ['docker.io', 'mirror.local:5000/hub'] }],
      },
      gated,
    );
    const agents = Array.from({ length: 20 }, () => keepAliveAgent());
    gated.close();
    try {
      const review = fixture('admission/pod-create-replicaset.json');
      const inFlight = agents.map((agent) => postReview(server.port, review, agent));
      for (const answer of inFlight) answer.catch(() => {});
      await gated.entered;
      const probe = await fetch(`http://127.0.0.1:${server.healthPort}/readyz`);
      assert.equal(probe.status, 200);
      gated.open();
      for (const answer of await Promise.all(inFlight)) assert.equal(answer.status, 200);
    } finally {
      gated.open();
      await Promise.all(agents.map((agent) => agent.close()));
    }
  });
});
