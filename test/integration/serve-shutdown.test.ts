// `regroute serve` as a process, signalled: SIGTERM (Kubernetes deleting the pod) leaves it serving for
// server.shutdownDelaySeconds, new connections included, every answer ending its connection; SIGINT (a terminal)
// drains at once.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.js';
import { freePort } from '../harness/ports.js';
import { fixture } from '../helpers/fixtures.js';
import { type ServeProcess, serveCerts, startServe } from '../helpers/serve-process.js';

const SHUTTING_DOWN = 'shutting down: draining requests in flight';

describe('regroute serve, stopped by a signal', () => {
  let dir: string;
  let certs: { tlsCert: string; tlsKey: string; caCert: string };
  let serve: ServeProcess | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regroute-serve-shutdown-'));
    certs = await serveCerts(dir);
  });
  afterEach(async () => {
    await serve?.stop();
    serve = undefined;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A serving process whose shutdown delay outlasts any test: only what the test does ends it early. */
  async function serving() {
    const healthPort = await freePort();
    const config: ConfigInput = {
      server: {
        host: '127.0.0.1',
        metricsPort: 0,
        healthPort,
        tlsCert: certs.tlsCert,
        tlsKey: certs.tlsKey,
        shutdownDelaySeconds: 60,
      },
    };
    const configFile = join(dir, 'serve.yaml');
    await writeFile(configFile, stringify(config));
    serve = await startServe(configFile, certs.caCert);
    return { serve, healthPort };
  }

  it('on SIGTERM accepts new connections through the delay, and each answer closes its connection', async () => {
    const { serve, healthPort } = await serving();
    serve.kill('SIGTERM');
    const line = await serve.waitForLog((l) => l.msg === SHUTTING_DOWN);
    assert.equal(line.delaySeconds, 60);
    const dispatcher = new Agent({ connect: { ca: await readFile(certs.caCert, 'utf8') } });
    try {
      const review = fixture<{ request: { uid: string } }>('admission/pod-create-replicaset.json');
      const res = await request(`https://127.0.0.1:${serve.port}/mutate`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(review),
      });
      const answer = (await res.body.json()) as { response: { uid: string } };
      assert.equal(res.statusCode, 200);
      assert.equal(answer.response.uid, review.request.uid);
      assert.equal(res.headers.connection, 'close');
      const ready = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
      assert.equal(ready.status, 200, 'still ready while it serves');
    } finally {
      await dispatcher.close();
    }
    assert.ok(!serve.logs.some((l) => l.msg === 'stopped'), 'still running');
    serve.kill('SIGTERM');
    assert.deepEqual(
      await serve.exited,
      { code: null, signal: 'SIGTERM' },
      'a second signal ends it at once',
    );
  });

  it('on SIGINT drains at once and exits 0, with no delay', async () => {
    const { serve } = await serving();
    serve.kill('SIGINT');
    assert.deepEqual(await serve.exited, { code: 0, signal: null });
    const line = serve.logs.find((l) => l.msg === SHUTTING_DOWN);
    assert.equal(line?.signal, 'SIGINT');
    assert.equal(line?.delaySeconds, 0);
    assert.ok(serve.logs.some((l) => l.msg === 'stopped'));
  });
});
