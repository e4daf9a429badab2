// A connection that never starts TLS is closed by the webhook, not held for node's default two minutes.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Metrics } from '../../../src/audit/metrics.js';
import { parseConfig } from '../../../src/config/load.js';
import { HANDSHAKE_TIMEOUT_MS } from '../../../src/server/app.js';
import { type RunningServer, startServer } from '../../../src/server/run.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { type CertDir, certDir, handleOf } from './support.js';

describe('TLS handshake timeout', () => {
  let certs: CertDir;
  let server: RunningServer;
  before(async () => {
    certs = await certDir();
    await certs.install(certs.issue());
    server = await startServer({
      config: parseConfig({ server: { tlsCert: certs.certFile, tlsKey: certs.keyFile } }, 'test'),
      state: handleOf(new MemoryState()),
      log: pino({ level: 'silent' }),
      metrics: new Metrics({ defaultMetrics: false }),
      port: 0,
      metricsPort: 0,
      host: '127.0.0.1',
    });
  });
  after(async () => {
    await server?.close();
    await certs?.dispose();
  });

  // The server's own timeout decides; the test only needs to outlast it.
  const outlast = { timeout: HANDSHAKE_TIMEOUT_MS * 6 };

  it('closes a connection that sends nothing once the handshake timeout passes', outlast, async (t) => {
    const socket = connect({ host: '127.0.0.1', port: server.port });
    t.after(() => socket.destroy());
    // How the server ended it: a FIN ('end') or a reset; this side never ends or writes.
    let ended = '';
    socket.on('end', () => {
      ended ||= 'end';
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      ended ||= error.code ?? 'error';
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    assert.ok(['end', 'ECONNRESET'].includes(ended), `closed by the server (${ended})`);
    assert.equal(socket.bytesWritten, 0, 'the client never sent a byte');
  });
});
