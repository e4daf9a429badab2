import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../../src/audit/metrics.js';
import { parseConfig } from '../../../src/config/load.js';
import { type RunningServer, startServer } from '../../../src/server/run.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { digestOf } from '../../helpers/digests.js';
import { fixture } from '../../helpers/fixtures.js';
import {
  type CertDir,
  captureLog,
  certDir,
  GatedState,
  handleOf,
  keepAliveAgent,
  postReview,
} from './support.js';

const nginx = digestOf('nginx');

/** Whether a TCP connection to the port is accepted. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

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
