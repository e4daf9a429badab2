// The prober over scripted clients: when a probe's clock starts, how a first failure is confirmed, what readiness
// waits for, and that limits of our own never count against a registry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Config } from '../../../src/config/schema.js';
import type { PingResult } from '../../../src/registry/index.js';
import type { ClientOrFailure, ClientPool } from '../../../src/state/clients.js';
import { ContentSamples, SAMPLES_PER_REGISTRY } from '../../../src/state/content-samples.js';
import { HealthTracker } from '../../../src/state/health.js';
import type { LoopLag } from '../../../src/state/loop-lag.js';
import { type ProbeResult, Prober } from '../../../src/state/prober.js';

const silent = pino({ level: 'silent' });
const REGISTRY = 'mirror.local:5000';

const up: PingResult = { ok: true, status: 200, latencyMs: 1, availability: 'available' };
const refused: PingResult = {
  ok: false,
  latencyMs: 1,
  availability: 'unreachable',
  error: 'ECONNREFUSED: connect ECONNREFUSED',
};

/** A client whose pings answer from `script` in turn (the last answer repeats), counting them. */
function scriptedClient(script: ((signal: AbortSignal) => Promise<PingResult> | PingResult)[]) {
  const client = {
    pings: 0,
    ping: async ({ signal }: { signal: AbortSignal }) => {
      const answer = script[Math.min(client.pings, script.length - 1)];
      client.pings += 1;
      return answer ? answer(signal) : up;
    },
  };
  return client;
}

/** A pool holding one registry's client, made when `made` settles. */
function poolOf(made: Promise<ClientOrFailure> | ClientOrFailure): ClientPool {
  const pending = Promise.resolve(made);
  return {
    get: () => pending,
    peek: () => pending,
    registries: () => [REGISTRY],
  } as unknown as ClientPool;
}

const ok = (client: unknown): ClientOrFailure => ({ ok: true, client: client as never });

function proberOf(pool: ClientPool, probe: Record<string, number> = {}) {
  const config = Config.parse({ probe: { timeoutMs: 1000, failureThreshold: 3, ...probe } });
  const tracker = new HealthTracker(config.probe);
  const results: ProbeResult[] = [];
  const prober = new Prober(config, pool, tracker, silent, (r) => results.push(r));
  return { prober, tracker, results };
}

describe('Prober', () => {
  it('starts a probe clock only once the client exists: slow set-up is not the registry failing (scripted client)', async () => {
    let finishSetup: (made: ClientOrFailure) => void = () => {};
    const setup = new Promise<ClientOrFailure>((resolve) => {
      finishSetup = resolve;
    });
    const client = scriptedClient([
      (signal) => (signal.aborted ? { ...refused, availability: 'timeout' } : up),
    ]);
    const { prober, tracker } = proberOf(poolOf(setup), { timeoutMs: 50 });
    const probing = prober.probe(REGISTRY);
    // Building the client (reading files, TLS contexts) outlasts the probe's timeout on a loaded machine.
    await sleep(200);
    finishSetup(ok(client));
    const result = await probing;
    assert.equal(result.ok, true);
    assert.equal(tracker.health(REGISTRY), 'healthy');
  });

  it('confirms a first failure with a quick re-probe before calling a registry down (scripted client)', async () => {
    const client = scriptedClient([() => refused, () => up]);
    const { prober, tracker, results } = proberOf(poolOf(ok(client)));
    const result = await prober.probe(REGISTRY);
    assert.equal(client.pings, 2, 'the first failure was probed again at once');
    assert.equal(result.ok, true);
    assert.equal(tracker.health(REGISTRY), 'healthy');
    assert.deepEqual(
      results.map((r) => r.ok),
      [false, true],
    );
  });

  it('calls a registry down within one probe call once its re-probes fail too (scripted client)', async () => {
    const client = scriptedClient([() => refused]);
    const { prober, tracker } = proberOf(poolOf(ok(client)), { failureThreshold: 3 });
    const result = await prober.probe(REGISTRY);
    assert.equal(client.pings, 3);
    assert.equal(result.ok, false);
    assert.equal(tracker.health(REGISTRY), 'unhealthy');
    await prober.probe(REGISTRY);
    assert.equal(client.pings, 4, 'a registry with a verdict is probed once a round');
  });

  it('is not ready while a first failure awaits its confirmation (scripted client)', async (t) => {
    let confirming: () => void = () => {};
    const reached = new Promise<void>((resolve) => {
      confirming = resolve;
    });
    let answer: (ping: PingResult) => void = () => {};
    const client = scriptedClient([
      () => refused,
      () => {
        confirming();
        return new Promise<PingResult>((resolve) => {
          answer = resolve;
        });
      },
    ]);
    const { prober, tracker } = proberOf(poolOf(ok(client)));
    t.after(() => prober.stop());
    prober.start();
    await reached;
    assert.equal(prober.ready, false, 'one failure is no verdict to be ready on');
    assert.equal(tracker.health(REGISTRY), 'suspect');
    answer(up);
    await prober.probeAll();
    assert.equal(prober.ready, true);
    assert.equal(tracker.health(REGISTRY), 'healthy');
  });

  it('leaves health alone when no client can be had for a reason of ours (scripted client)', async () => {
    const { prober, tracker, results } = proberOf(
      poolOf({ ok: false, error: 'registry client pool full', local: true }),
    );
    tracker.succeeded(REGISTRY);
    const result = await prober.probe(REGISTRY);
    assert.equal(result.local, true);
    assert.equal(tracker.health(REGISTRY), 'healthy');
    assert.deepEqual(results, [], 'no probe was made, so none is reported');
  });

  it('counts a registry whose own set-up failed as failing (a missing password file)', async () => {
    const { prober, tracker } = proberOf(
      poolOf({ ok: false, error: 'registry mirror.local:5000: cannot read /p (ENOENT)', local: false }),
    );
    await prober.probe(REGISTRY);
    assert.equal(tracker.health(REGISTRY), 'unhealthy');
  });
});

describe('Prober under a late event loop (scripted client, injected lateness)', () => {
  /** A registry that never answers: its ping ends only when the probe's signal aborts, as a timeout. */
  const hung = () =>
    scriptedClient([
      (signal) =>
        new Promise<PingResult>((resolve) =>
          signal.addEventListener('abort', () =>
            resolve({ ok: false, latencyMs: 1, availability: 'timeout', error: 'timed out' }),
          ),
        ),
    ]);
  /** The event loop ran late by `ms` over every stretch a probe measures. */
  const lateBy = (ms: number): LoopLag => ({ since: () => () => ms });

  function lateProber(lag: LoopLag) {
    const config = Config.parse({ probe: { timeoutMs: 20, failureThreshold: 2 } });
    const tracker = new HealthTracker(config.probe);
    const results: ProbeResult[] = [];
    const prober = new Prober(
      config,
      poolOf(ok(hung())),
      tracker,
      silent,
      (r) => results.push(r),
      undefined,
      lag,
    );
    return { prober, tracker, results };
  }

  it('holds no timeout against a registry while the process itself ran late by as much', async () => {
    const { prober, tracker, results } = lateProber(lateBy(10_000));
    tracker.succeeded(REGISTRY);
    const result = await prober.probe(REGISTRY);
    assert.equal(result.local, true);
    assert.match(result.error ?? '', /event loop ran late/);
    assert.equal(tracker.health(REGISTRY), 'healthy', 'not even suspect');
    assert.deepEqual(results, [], 'no verdict reported');
  });

  it('still counts a timeout when the event loop was on time', async () => {
    const { prober, tracker } = lateProber(lateBy(0));
    tracker.succeeded(REGISTRY);
    const result = await prober.probe(REGISTRY);
    assert.equal(result.local, undefined);
    assert.equal(tracker.health(REGISTRY), 'unhealthy', 'suspected, then confirmed');
  });
});

describe('Prober deep checks by default (scripted client)', () => {
  const D = `sha256:${'d'.repeat(64)}`;
  const CHILD = `sha256:${'c'.repeat(64)}`;
  const BLOB = `sha256:${'b'.repeat(64)}`;

  function contentClient(blob: () => 'found' | 'error') {
    const asked: string[] = [];
    return {
      asked,
      ping: async () => {
        asked.push('ping');
        return up;
      },
      headManifest: async (_repository: string, reference: string) => {
        asked.push(`HEAD ${reference}`);
        return { kind: 'found', digest: reference, mediaType: 'application/vnd.oci.image.index.v1+json' };
      },
      getManifest: async (_repository: string, reference: string) => {
        asked.push(`GET ${reference}`);
        return reference === D
          ? { kind: 'found', digest: D, mediaType: 'x', children: [CHILD] }
          : { kind: 'found', digest: CHILD, mediaType: 'x', children: [], blobs: [BLOB] };
      },
      headBlob: async (_repository: string, digest: string) => {
        asked.push(`HEAD blob ${digest}`);
        return blob() === 'found'
          ? { kind: 'found' }
          : {
              kind: 'error',
              availability: 'server-error',
              status: 503,
              message: 'blob HEAD answered HTTP 503',
            };
      },
    };
  }

  function deepProber(client: unknown) {
    const config = Config.parse({ probe: { timeoutMs: 1000, failureThreshold: 2 } });
    const tracker = new HealthTracker(config.probe);
    const samples = new ContentSamples();
    const prober = new Prober(config, poolOf(ok(client)), tracker, silent, undefined, samples);
    return { prober, tracker, samples };
  }

  it('only pings a registry it knows no content of', async () => {
    const client = contentClient(() => 'found');
    const { prober, tracker } = deepProber(client);
    await prober.probe(REGISTRY);
    assert.deepEqual(client.asked, ['ping']);
    assert.equal(tracker.health(REGISTRY), 'healthy');
  });

  it('checks a manifest found there and one of its blobs, learning the blob once from the index’s first child', async () => {
    const client = contentClient(() => 'found');
    const { prober, samples } = deepProber(client);
    samples.add({ registry: REGISTRY, repository: 'team/app' }, D);
    await prober.probe(REGISTRY);
    await prober.probe(REGISTRY);
    assert.deepEqual(client.asked, [
      `HEAD ${D}`,
      `GET ${D}`,
      `GET ${CHILD}`,
      `HEAD blob ${BLOB}`,
      `HEAD ${D}`,
      `HEAD blob ${BLOB}`,
    ]);
  });

  it('calls a registry whose storage fails down although its manifests and /v2/ answer', async () => {
    let storage: 'found' | 'error' = 'found';
    const client = contentClient(() => storage);
    const { prober, tracker, samples } = deepProber(client);
    samples.add({ registry: REGISTRY, repository: 'team/app' }, D);
    await prober.probe(REGISTRY);
    assert.equal(tracker.health(REGISTRY), 'healthy');
    storage = 'error';
    await prober.probe(REGISTRY);
    assert.equal(tracker.health(REGISTRY), 'unhealthy', 'suspected, then confirmed at once');
    assert.match(tracker.snapshot(REGISTRY).lastError ?? '', /blob .* HTTP 503/);
  });
});

describe('ContentSamples', () => {
  it('keeps a few samples per registry, rotating over them, and drops one the registry no longer holds', () => {
    const samples = new ContentSamples();
    const where = (repository: string) => ({ registry: REGISTRY, repository });
    for (let i = 0; i < SAMPLES_PER_REGISTRY + 2; i++)
      samples.add(where(`r${i}`), `sha256:${String(i).repeat(64).slice(0, 64)}`);
    samples.add(where('r9'), `sha256:${'9'.repeat(64)}`);
    assert.equal(samples.size(REGISTRY), SAMPLES_PER_REGISTRY, 'bounded, duplicates ignored');
    const first = samples.next(REGISTRY);
    const second = samples.next(REGISTRY);
    assert.notEqual(first, second);
    if (first) samples.drop(REGISTRY, first);
    assert.equal(samples.size(REGISTRY), SAMPLES_PER_REGISTRY - 1);
    assert.equal(samples.next('other.io'), undefined);
  });
});
