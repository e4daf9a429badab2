import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type Gate, startGate } from '../../../src/demo/gate.js';
import { LOOPBACK } from '../../../src/demo/ports.js';

/** Connects, sends `text`, and resolves with what comes back before the server closes the connection. */
function exchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, LOOPBACK, () => socket.end(text));
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
    });
    socket.once('error', reject);
    socket.once('close', () => resolve(received));
  });
}

describe('the TCP gate', () => {
  let upstream: Server;
  let gate: Gate;

  before(async () => {
    // Answers each connection with what it sent, upper-cased, then closes it.
    upstream = createServer((socket) => {
      let got = '';
      socket.on('data', (chunk) => {
        got += chunk.toString('utf8');
      });
      socket.once('end', () => socket.end(got.toUpperCase()));
    });
    upstream.listen(0, LOOPBACK);
    await once(upstream, 'listening');
    const address = upstream.address();
    assert.ok(address !== null && typeof address === 'object');
    gate = await startGate(address.port);
  });
  after(async () => {
    await gate.stop();
    upstream.close();
  });

  it('passes bytes through both ways while open', async () => {
    assert.equal(gate.isOpen, true);
    assert.equal(await exchange(gate.port, 'hello'), 'HELLO');
  });

  it('refuses connections while shut, on the same port, and drops those already open', async () => {
    const held: Socket = connect(gate.port, LOOPBACK);
    await once(held, 'connect');
    const port = gate.port;
    await gate.shut();
    assert.equal(gate.isOpen, false);
    await once(held, 'close');
    await assert.rejects(exchange(port, 'hello'), { code: 'ECONNREFUSED' });
  });

  it('passes connections again once reopened, on the same port', async () => {
    const port = gate.port;
    await gate.open();
    assert.equal(gate.port, port);
    assert.equal(await exchange(gate.port, 'again'), 'AGAIN');
  });

  it('cannot be opened once stopped', async () => {
    const other = await startGate(gate.port);
    await other.stop();
    await assert.rejects(other.open(), /stopped/);
  });
});
