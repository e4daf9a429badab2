// The first seconds of an outage, with the default probe settings, against real registries (distribution 2.8 on
// loopback) behind a fault proxy: each fault is noticed by the prober alone (the tag's digest is cached, so no
// admission asks the source), pods then go to the mirror holding the exact digest, and come back once it recovers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { mutate } from '../../src/admission/mutate.js';
import { type AdmissionRequest, decodeReview } from '../../src/admission/review.js';
import { Config } from '../../src/config/schema.js';
import type { Decision } from '../../src/routing/decision.js';
import { createStateHandle, type LiveStateHandle } from '../../src/state/create.js';
import {
  type FaultMode,
  type FaultOptions,
  type FaultProxy,
  type Harness,
  type PushedIndex,
  pushIndexToAll,
  type Registry,
  startHarness,
} from '../harness/index.js';
import { fixture } from '../helpers/fixtures.js';

/**
 * What the test waits for before calling a fault unnoticed. Not the target (2 s, measured by `npm run bench`'s
 * outage window on an idle machine): a bound that a loaded CI machine keeps, so the test fails on a regression to
 * the old 25–45 s, never on a slow moment.
 */
const HANG_GUARD_MS = 10_000;
/** How often a pod is admitted while waiting: the measurement sent one every 250 ms. */
const POD_EVERY_MS = 100;

const FAULTS: { name: string; mode: FaultMode; options?: FaultOptions }[] = [
  { name: 'blackhole', mode: 'blackhole' },
  { name: 'connection refused', mode: 'refuse' },
  { name: 'connection reset', mode: 'reset' },
  {
    name: 'manifests answer 503, /v2/ fine',
    mode: 'status',
    options: { status: 503, paths: /\/manifests\// },
  },
  {
    name: 'blobs answer 503, manifests and /v2/ fine',
    mode: 'status',
    options: { status: 503, paths: /\/blobs\// },
  },
  { name: '429', mode: 'rate-limit', options: { retryAfterSeconds: 60 } },
  { name: 'TLS failure', mode: 'bad-tls' },
];

describe('outage window with the default probe settings, against real registries', () => {
  let harness: Harness;
  let source: FaultProxy;
  let mirror: Registry;
  let image: PushedIndex;
  let handle: LiveStateHandle;
  let config: Config;

  before(async () => {
    harness = await startHarness();
    source = await harness.startFaultProxy(await harness.startRegistry({ name: 'source' }));
    mirror = await harness.startRegistry({ name: 'mirror' });
    image = await pushIndexToAll([source, mirror], 'team/app', 'v1');
    // Defaults everywhere but what names the registries.
    config = Config.parse({
      registries: Object.fromEntries([source.host, mirror.host].map((h) => [h, { caFile: harness.caFile }])),
      routes: [{ prefix: `${source.host}/team`, registries: [`${source.host}/team`, `${mirror.host}/team`] }],
    });
    handle = createStateHandle(config, pino({ level: 'silent' }));
    await until(() => handle.prober.ready, 'the first probe round');
    // The tag resolved once: from now on its digest is cached, and only the prober talks to the source.
    const first = await admit();
    assert.equal(first.reason, 'source-healthy');
    await until(() => handle.samples.size(source.host) > 0, 'a sample of the source for deep probes');
  });

  after(async () => {
    await handle?.close();
    await harness?.stop();
  });

  function review(): AdmissionRequest {
    const r = fixture<{ request: { object: { spec: { containers: unknown[]; initContainers?: unknown } } } }>(
      'admission/pod-create-replicaset.json',
    );
    r.request.object.spec.containers = [{ name: 'app', image: `${source.host}/team/app:v1` }];
    delete r.request.object.spec.initContainers;
    const decoded = decodeReview(r);
    assert.ok(decoded.ok);
    return decoded.review.request;
  }

  async function admit(): Promise<Decision> {
    const outcome = await mutate(
      review(),
      { config, state: handle.state },
      AbortSignal.timeout(config.admission.deadlineMs),
    );
    const decision = outcome.decisions[0]?.decision;
    assert.ok(decision);
    return decision;
  }

  /** Admits a pod every POD_EVERY_MS until `done` holds for one; every answer must keep the exact digest. */
  async function admitUntil(done: (d: Decision) => boolean, what: string) {
    const started = performance.now();
    let pods = 0;
    for (;;) {
      const decision = await admit();
      pods++;
      if (decision.target !== null) {
        assert.equal(decision.target, `${mirror.host}/team/app:v1@${image.digest}`, 'only the exact digest');
      }
      if (done(decision)) return { ms: performance.now() - started, pods, decision };
      if (performance.now() - started > HANG_GUARD_MS) assert.fail(`${what}: not within ${HANG_GUARD_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, POD_EVERY_MS));
    }
  }

  for (const fault of FAULTS) {
    it(`${fault.name}: noticed by the prober, pods routed around to the exact digest, and back after recovery`, async (t) => {
      await source.setMode(fault.mode, fault.options);
      const around = await admitUntil((d) => d.target !== null, 'routed around');
      assert.equal(around.decision.reason, 'source-unhealthy');
      assert.notEqual(handle.tracker.health(source.host), 'healthy');
      await source.setMode('pass');
      // A rate limit lasts as long as its Retry-After (capped) unless a manifest read lifts it: the deep probe.
      const back = await admitUntil((d) => d.reason === 'source-healthy', 'back to the source');
      t.diagnostic(
        `${fault.name}: routed around after ${around.ms.toFixed(0)} ms (${around.pods - 1} pods sent to the failing source); back after ${back.ms.toFixed(0)} ms`,
      );
    });
  }
});

async function until(condition: () => boolean, what: string): Promise<void> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > HANG_GUARD_MS) assert.fail(`${what}: not within ${HANG_GUARD_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
