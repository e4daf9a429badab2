// A rolling update under load, shaped as Kubernetes rolls the webhook: two `regroute serve` processes behind a
// round-robin TCP balancer (kube-proxy: a removed endpoint gets no new connection, connections already open keep
// going to it), keep-alive clients sending reviews without pause (the apiserver), and each old replica replaced by a
// new one that joins once ready. Every review must get its answer: a connection reset is a pod the apiserver admits
// without regroute (failurePolicy Ignore).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.js';
import { type Harness, startHarness } from '../harness/index.js';
import { sleep } from '../harness/ports.js';
import { fixture } from '../helpers/fixtures.js';
import { type ServeProcess, serveCerts, startServe } from '../helpers/serve-process.js';

/** Keep-alive connections the clients hold through the balancer, each with one review in flight at a time. */
const CLIENTS = 8;
/** Between an answer and a client's next review: about 1,000 reviews a second in all on 2 cores. */
const PAUSE_MS = 1;
/** How long Kubernetes takes to take a deleted pod's endpoint out of every node's kube-proxy rules. */
const ENDPOINT_REMOVAL_MS = 1000;

/**
 * kube-proxy in miniature: each new connection goes to the next member, and stays with it for its life. A member
 * taken out gets no new connection; its open ones carry on. A backend that refuses or resets a connection has the
 * client's connection reset too, as a DNAT'ed TCP connection would be.
 */
class Balancer {
  readonly members: number[] = [];
  /** Client connections reset because their backend refused or reset theirs. */
  resets = 0;
  #next = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor() {
    this.#server = createServer((client) => this.#route(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as { port: number }).port;
  }

  add(port: number): void {
    this.members.push(port);
  }

  remove(port: number): void {
    this.members.splice(this.members.indexOf(port), 1);
  }

  #route(client: Socket): void {
    const port = this.members[this.#next++ % this.members.length];
    const backend = tcpConnect({ host: '127.0.0.1', port: port ?? 9 });
    for (const socket of [client, backend]) {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    }
    client.pipe(backend);
    backend.pipe(client);
    backend.on('error', () => {
      if (!client.destroyed) {
        this.resets += 1;
        client.resetAndDestroy();
      }
    });
    client.on('error', () => backend.destroy());
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

interface Tally {
  sent: number;
  answered: number;
  /** Answers that told the client to close the connection: a draining replica's. */
  closing: number;
  failures: Map<string, number>;
}

/** CLIENTS loops, each sending a review as soon as the last was answered, until stopped. */
function load(origin: string, dispatcher: Agent, review: { request: { uid: string } }) {
  const tally: Tally = { sent: 0, answered: 0, closing: 0, failures: new Map() };
  let running = true;
  const loop = async (client: number) => {
    for (let n = 0; running; n += 1) {
      const uid = `roll-${client}-${n}`;
      const body = JSON.stringify({ ...review, request: { ...review.request, uid } });
      tally.sent += 1;
      try {
        const res = await request(`${origin}/mutate`, {
          method: 'POST',
          dispatcher,
          headers: { 'content-type': 'application/json' },
          body,
        });
        const answer = (await res.body.json()) as { response?: { uid?: string } };
        if (res.statusCode === 200 && answer.response?.uid === uid) tally.answered += 1;
        else
          tally.failures.set(
            `HTTP ${res.statusCode}`,
            (tally.failures.get(`HTTP ${res.statusCode}`) ?? 0) + 1,
          );
        if (res.headers.connection === 'close') tally.closing += 1;
      } catch (error) {
        const code = (error as { code?: string }).code ?? String(error);
        tally.failures.set(code, (tally.failures.get(code) ?? 0) + 1);
      }
      await sleep(PAUSE_MS);
    }
  };
  const loops = Array.from({ length: CLIENTS }, (_, client) => loop(client));
  return {
    tally,
    async stop(): Promise<Tally> {
      running = false;
      await Promise.all(loops);
      return tally;
    },
  };
}

describe('a rolling update of two replicas under keep-alive load', () => {
  let harness: Harness;
  let configFile: string;
  let caCert: string;
  const running = new Set<ServeProcess>();

  before(async () => {
    harness = await startHarness();
    const certs = await serveCerts(harness.dir);
    caCert = certs.caCert;
    // No routes: every review is answered from the config alone, so the load measures the transport.
    const config: ConfigInput = {
      server: {
        host: '127.0.0.1',
        metricsPort: 0,
        healthPort: 0,
        tlsCert: certs.tlsCert,
        tlsKey: certs.tlsKey,
      },
    };
    configFile = join(harness.dir, 'serve.yaml');
    await writeFile(configFile, stringify(config));
  });
  after(async () => {
    await Promise.all([...running].map((serve) => serve.stop()));
    await harness?.stop();
  });

  async function replica(): Promise<ServeProcess> {
    const serve = await startServe(configFile, caCert, { keepLogs: false });
    running.add(serve);
    return serve;
  }

  /**
   * Replaces both replicas one after the other, as a Deployment with maxSurge 1 and maxUnavailable 0 does: a new
   * replica starts and joins the balancer once ready; then the old one is deleted. Deletion sends SIGTERM after
   * `preStopMs` (the preStop hook), and takes the endpoint out of the balancer after ENDPOINT_REMOVAL_MS.
   */
  async function rollout(preStopMs: number) {
    const balancer = new Balancer();
    const port = await balancer.listen();
    const replicas = [await replica(), await replica()];
    for (const serve of replicas) balancer.add(serve.port);
    const dispatcher = new Agent({
      connect: { ca: await readFile(caCert, 'utf8') },
      connections: CLIENTS,
      keepAliveTimeout: 30_000,
    });
    const review = fixture<{ request: { uid: string } }>('admission/pod-create-replicaset.json');
    const traffic = load(`https://127.0.0.1:${port}`, dispatcher, review);
    const exits: { code: number | null; signal: NodeJS.Signals | null }[] = [];
    try {
      for (const old of replicas) {
        const fresh = await replica();
        balancer.add(fresh.port);
        const before = traffic.tally.answered;
        const removed = sleep(ENDPOINT_REMOVAL_MS).then(() => balancer.remove(old.port));
        await sleep(preStopMs);
        old.kill('SIGTERM');
        await removed;
        exits.push(await old.exited);
        running.delete(old);
        await old.stop();
        assert.ok(traffic.tally.answered > before, 'reviews were answered while the replica went');
      }
    } finally {
      await traffic.stop();
      await dispatcher.close();
      await balancer.close();
    }
    return { tally: traffic.tally, exits, balancerResets: balancer.resets };
  }

  function assertNothingLost(t: TestContext, result: Awaited<ReturnType<typeof rollout>>) {
    const { tally } = result;
    const summary = `${tally.sent} sent, ${tally.answered} answered, ${tally.closing} with connection: close, failures ${JSON.stringify(Object.fromEntries(tally.failures))}, ${result.balancerResets} reset by the balancer`;
    t.diagnostic(summary);
    assert.deepEqual(Object.fromEntries(tally.failures), {}, summary);
    assert.equal(tally.answered, tally.sent, summary);
    assert.equal(result.balancerResets, 0, summary);
    assert.ok(tally.closing >= 1, 'a draining replica ended its connections by its answers');
    assert.deepEqual(result.exits, [
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
  }

  it('loses no review as deploy/ rolls it: SIGTERM when deletion starts, the endpoint gone a second later', async (t) => {
    assertNothingLost(t, await rollout(0));
  });

  it('loses no review behind a preStop sleep: the endpoint gone after a second, SIGTERM after the sleep', async (t) => {
    assertNothingLost(t, await rollout(2000));
  });
});
