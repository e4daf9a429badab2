// POST /mutate over real TLS on loopback: what inject cannot show. Bodies over the limit on the wire, slow clients
// (slowloris) that must be timed out while others are served, many connections at once, and clients that vanish or
// do not speak HTTP. The server must answer every client it can and outlive every one it cannot.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpsRequest } from 'node:https';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { createCA, createServingCert } from '../../src/certs/generate.js';
import { BODY_LIMIT_BYTES } from '../../src/server/app.js';
import { type Answer, assertWellFormed, fuzzApp, goodReview } from '../helpers/admission-fuzz.js';
import { fuzzCases } from '../helpers/runs.js';

/** What buildApp configures: the longest a client may take to send one whole request. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Fresh TLS connections open at once: more than an apiserver opens, few enough for a 2-core machine. */
const CONCURRENT = 200;

const ca = createCA('regroute transport test CA');
const serving = createServingCert(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
const { app } = fuzzApp({ cert: serving.certPem, key: serving.keyPem });
let port = 0;

before(async () => {
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
after(() => app.close());

/** One request on a fresh TLS connection, as a new apiserver replica would open it. */
function post(
  body: string | Buffer,
  headers: Record<string, string | number> = {},
  timeoutMs = 15_000,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/mutate',
        ca: ca.certPem,
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...headers,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in time')));
    req.on('error', reject);
    req.end(body);
  });
}

const good = JSON.stringify(goodReview);

async function assertServesGoodReview(): Promise<number> {
  const started = performance.now();
  const answer = await post(good);
  assert.equal(answer.status, 200);
  assert.equal(assertWellFormed(answer, goodReview), 'patched');
  return performance.now() - started;
}

/** A raw TLS connection to the server, for clients no HTTP library would be. */
async function rawTls(): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.certPem });
  await once(socket, 'secureConnect');
  return socket;
}

/** Everything the server sends on a socket until it closes it, and when it did (ms after `since`). */
function untilClosed(socket: TLSSocket, since: number): Promise<{ received: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve({ received, closedAfterMs: performance.now() - since }));
  });
}

describe('POST /mutate over TLS on loopback', () => {
  it('answers a review on a fresh connection', async (t) => {
    t.diagnostic(`answered in ${(await assertServesGoodReview()).toFixed(0)} ms`);
  });

  it('answers 413 to bodies over 7 MiB sent on the wire, declared or chunked, and keeps serving', async () => {
    const over = Buffer.alloc(BODY_LIMIT_BYTES + 1024, 0x20);
    over.write('{"x":"');
    over.write('"}', over.length - 2);
    const declared = await post(over);
    assert.equal(declared.status, 413);
    assertWellFormed(declared, undefined);

    const chunked = await new Promise<Answer>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/mutate',
          ca: ca.certPem,
          agent: false,
          headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
        },
      );
      // The server may answer and close before the client has written everything: that is the point.
      req.on('error', (error) =>
        error.message.includes('EPIPE') || error.message.includes('ECONNRESET') ? undefined : reject(error),
      );
      const piece = Buffer.alloc(1024 * 1024, 0x20);
      for (let i = 0; i < 9; i++) req.write(piece);
      req.end();
    });
    assert.equal(chunked.status, 413);
    assertWellFormed(chunked, undefined);
    await assertServesGoodReview();
  });

  // No clock decides the outcome: the server's own request timeout cuts the slow clients (their closing is awaited,
  // bounded by this test's timeout), and the reviews sent meanwhile are counted, not timed.
  it('times out slow clients (slowloris) while it keeps answering others', { timeout: 60_000 }, async (t) => {
    const slowClients = 8;
    const started = performance.now();
    const sockets = await Promise.all(Array.from({ length: slowClients }, rawTls));
    let slowClientsConnected = slowClients;
    const closed = sockets.map((socket) =>
      untilClosed(socket, started).then((outcome) => {
        slowClientsConnected -= 1;
        return outcome;
      }),
    );
    for (const socket of sockets) {
      socket.write(
        'POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n',
      );
    }
    // A byte a second from each, for as long as the server lets them; with each drip, one review from another client.
    let whileHeld = 0;
    const reviews: Promise<void>[] = [];
    const drip = setInterval(() => {
      for (const socket of sockets) if (!socket.destroyed) socket.write('[');
      if (slowClientsConnected < slowClients) return;
      reviews.push(
        assertServesGoodReview().then(() => {
          if (slowClientsConnected === slowClients) whileHeld += 1;
        }),
      );
    }, 1000);
    const outcomes = await Promise.all(closed);
    clearInterval(drip);
    await Promise.all(reviews);
    t.diagnostic(
      `${reviews.length} reviews sent while slow clients were connected, ${whileHeld} answered before any was cut`,
    );
    assert.ok(whileHeld >= 3, `only ${whileHeld} reviews answered while every slow client held a socket`);

    for (const { received, closedAfterMs } of outcomes) {
      t.diagnostic(
        `slow client cut after ${(closedAfterMs / 1000).toFixed(1)} s: ${received.split('\r\n')[0]}`,
      );
      // A lower bound only: a loaded machine can make it later, never earlier.
      assert.ok(closedAfterMs >= REQUEST_TIMEOUT_MS - 1000, 'not before its time');
      if (received !== '') assert.match(received, /^HTTP\/1\.1 408 /);
    }
    await assertServesGoodReview();
  });

  it('answers many concurrent connections, each with its own review', async (t) => {
    const total = fuzzCases(CONCURRENT);
    const started = performance.now();
    for (let sent = 0; sent < total; sent += CONCURRENT) {
      await Promise.all(
        Array.from({ length: Math.min(CONCURRENT, total - sent) }, async (_, i) => {
          const review = structuredClone(goodReview) as { request: { uid: string } };
          review.request.uid = `concurrent-${sent + i}`;
          const answer = await post(JSON.stringify(review));
          assert.equal(answer.status, 200);
          assert.equal(assertWellFormed(answer, review), 'patched');
        }),
      );
    }
    const ms = performance.now() - started;
    t.diagnostic(`${total} connections, ${CONCURRENT} at a time, answered in ${ms.toFixed(0)} ms`);
    await assertServesGoodReview();
  });

  it('outlives clients that vanish mid-request, do not speak HTTP, or do not finish the handshake', async (t) => {
    const misbehaving: [string, () => Promise<void>][] = [
      [
        'half a body, then gone',
        async () => {
          const socket = await rawTls();
          socket.write(
            `POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${good.length}\r\n\r\n${good.slice(0, 100)}`,
          );
          socket.destroy();
        },
      ],
      [
        'headers, then gone',
        async () => {
          const socket = await rawTls();
          socket.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n');
          socket.end();
        },
      ],
      [
        'not HTTP at all',
        async () => {
          const socket = await rawTls();
          const answered = untilClosed(socket, performance.now());
          socket.write('\u0000\u0001garbage\r\n\r\n');
          const { received } = await answered;
          if (received !== '') assert.match(received, /^HTTP\/1\.1 4\d\d /);
        },
      ],
      [
        'a header larger than the server reads',
        async () => {
          const socket = await rawTls();
          const answered = untilClosed(socket, performance.now());
          socket.write(`POST /mutate HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
          const { received } = await answered;
          if (received !== '') assert.match(received, /^HTTP\/1\.1 4\d\d /);
        },
      ],
      [
        'plain HTTP to the TLS port',
        async () => {
          const socket = tcpConnect(port, '127.0.0.1');
          await once(socket, 'connect');
          socket.on('error', () => {});
          socket.end('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
          await once(socket, 'close');
        },
      ],
      [
        'a TCP connection closed before the handshake',
        async () => {
          const socket = tcpConnect(port, '127.0.0.1');
          await once(socket, 'connect');
          socket.destroy();
        },
      ],
    ];
    for (const [name, misbehave] of misbehaving) {
      await misbehave();
      await assertServesGoodReview();
      t.diagnostic(`${name}: served the next review`);
    }
    const health = await new Promise<number>((resolve, reject) => {
      httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca: ca.certPem, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(health, 200);
  });
});
