import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../../src/audit/metrics.js';
import { parseConfig } from '../../../src/config/load.js';
import { type RunningServer, startServer } from '../../../src/server/run.js';
import { MemoryState } from '../../../src/state/memory-state.js';
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

const nginx = digestOf('nginx');

describe('graceful shutdown', () => {
  let certs: CertDir;
  let server: RunningServer;
  const gated = new GatedState(
    new MemoryState()
      .setHealth('docker.io', 'unhealthy')
      .setHealth('mirror.local:5000', 'healthy')
      .putLastKnownTag({ registry: 'docker.io', repository: 'library/nginx' }, '1.27', nginx)
      .putManifest({ registry: 'mirror.local:5000', repository: 'hub/library/nginx' }, nginx),
  );
  const handle = handleOf(gated);

  before(async () => {
    certs = await certDir();
    await certs.install(certs.issue());
    server = await startServer({
      config: parseConfig(
        {
          server: { tlsCert: certs.certFile, tlsKey: certs.keyFile },
          // A review held at the gate must not run into its deadline on a busy machine.
          admission: { deadlineMs: 20_000 },
          routes: [{ prefix: 'docker.io', registries: ['docker.io', 'mirror.local:5000/hub'] }],
        },
        'test',
      ),
      state: handle,
      log: captureLog().log,
      metrics: new Metrics({ defaultMetrics: false }),
      port: 0,
      host: '127.0.0.1',
    });
  });
  after(() => certs.dispose());

  it('answers a review in flight after close() starts, refuses new connections, then releases registry state', async () => {
    const agent = keepAliveAgent();
    try {
      gated.close();
      const inFlight = postReview(server.port, fixture('admission/pod-create-replicaset.json'), agent);
      await gated.entered;

      const closing = server.close();
      assert.equal(await accepts(server.port), false, 'the port no longer accepts connections');
      assert.equal(handle.closed, false, 'registry state stays open while a review uses it');

      gated.open();
      const answered = await inFlight;
      assert.equal(answered.status, 200);
      assert.ok(answered.body.response.patch);
      // The client keeps the connection the review came on alive; the answer tells it to close, so shutdown does
      // not wait for it to idle out (72 s). A close() that waited would fail this test by its timeout.
      assert.equal(answered.headers.connection, 'close');
      await closing;
      assert.equal(handle.closed, true);
    } finally {
      gated.open();
      await agent.close();
    }
  });

  it('closes once, however often it is asked, and a close after the end is a no-op', async () => {
    let closes = 0;
    const counted = {
      ...handleOf(new MemoryState()),
      close: async () => {
        closes += 1;
      },
    };
    const own = await startServer({
      config: parseConfig({ server: { tlsCert: certs.certFile, tlsKey: certs.keyFile } }, 'test'),
      state: counted,
      log: captureLog().log,
      metrics: new Metrics({ defaultMetrics: false }),
      port: 0,
      host: '127.0.0.1',
    });
    assert.equal(await accepts(own.port), true);
    const [first, second] = [own.close(), own.close()];
    assert.equal(first, second, 'one shutdown, however many callers');
    await Promise.all([first, second]);
    assert.equal(closes, 1, 'registry state closed once');
    assert.equal(await accepts(own.port), false);
    await own.close();
    assert.equal(closes, 1, 'a close after the end closes nothing again');
  });
});

describe('shutdown: the delay after SIGTERM', () => {
  let certs: CertDir;
  before(async () => {
    certs = await certDir();
    await certs.install(certs.issue());
  });
  after(() => certs.dispose());

  /** A server whose shutdown delay lasts until the test ends it, and what the delay was asked to last. */
  async function delayedServer(shutdownDelaySeconds: number) {
    let end: () => void = () => {};
    const waited: number[] = [];
    const handle = handleOf(new MemoryState());
    const server = await startServer({
      config: parseConfig(
        { server: { tlsCert: certs.certFile, tlsKey: certs.keyFile, shutdownDelaySeconds } },
        'test',
      ),
      state: handle,
      log: captureLog().log,
      metrics: new Metrics({ defaultMetrics: false }),
      port: 0,
      metricsPort: 0,
      healthPort: 0,
      host: '127.0.0.1',
      delay: (ms) => {
        waited.push(ms);
        return new Promise<void>((resolve) => {
          end = resolve;
        });
      },
    });
    return { server, handle, waited, endDelay: () => end() };
  }

  it('answers on a connection kept alive from before, and ends it by its answer instead of closing it under the client', async () => {
    const { server, handle, waited, endDelay } = await delayedServer(7);
    const agent = keepAliveAgent();
    try {
      const first = await postReview(server.port, fixture('admission/pod-create-replicaset.json'), agent);
      assert.notEqual(first.headers.connection, 'close', 'kept alive before shutdown');
      const stopping = server.shutdown();
      assert.deepEqual(waited, [7000], 'waits server.shutdownDelaySeconds');
      // The same connection (the agent holds one): closed under the client, this review would meet a reset.
      const second = await postReview(server.port, fixture('admission/pod-create-replicaset.json'), agent);
      assert.equal(second.status, 200);
      assert.equal(second.headers.connection, 'close');
      assert.equal(handle.closed, false);
      endDelay();
      await stopping;
      assert.equal(await accepts(server.port), false);
      assert.equal(handle.closed, true);
    } finally {
      endDelay();
      await agent.close();
    }
  });

  it('accepts new connections during the delay, answers them and the probes, and stops listening only after it', async () => {
    const { server, endDelay } = await delayedServer(5);
    try {
      const stopping = server.shutdown();
      assert.equal(server.shutdown(), stopping, 'one shutdown, however many callers');
      const agent = keepAliveAgent();
      const answered = await postReview(server.port, fixture('admission/pod-create-replicaset.json'), agent);
      await agent.close();
      assert.equal(answered.status, 200);
      assert.equal(answered.headers.connection, 'close');
      const probe = await fetch(`http://127.0.0.1:${server.healthPort}/readyz`);
      assert.equal(probe.status, 200, 'still ready: Kubernetes falls back on terminating pods that serve');
      assert.equal(probe.headers.get('connection'), 'close');
      const scrape = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`);
      assert.equal(scrape.status, 200);
      assert.equal(scrape.headers.get('connection'), 'close');
      endDelay();
      await stopping;
      for (const port of [server.port, server.healthPort, server.metricsPort])
        assert.equal(await accepts(port), false, `port ${port} closed`);
    } finally {
      endDelay();
    }
  });

  it('waits no delay when close() is called instead, as a test or an operator at a terminal does', async () => {
    const { server, waited, endDelay } = await delayedServer(5);
    try {
      await server.close();
      assert.deepEqual(waited, []);
      assert.equal(await accepts(server.port), false);
    } finally {
      endDelay();
    }
  });
});
