// Exact content under failure, against real registries (distribution 2.8 on loopback) and the harness's lying
// registry: a pod is pinned only to the digest its source named, whatever the mirrors' tags say or claim.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { mutate } from '../../src/admission/mutate.js';
import { type AdmissionRequest, decodeReview } from '../../src/admission/review.js';
import { auditRecords } from '../../src/audit/audit.js';
import { Metrics } from '../../src/audit/metrics.js';
import { explainCommand } from '../../src/cli/explain.js';
import { Config, type ConfigInput } from '../../src/config/schema.js';
import { createStateHandle, type LiveStateHandle } from '../../src/state/create.js';
import {
  type FaultProxy,
  type Harness,
  type PushedIndex,
  pushImage,
  pushImageToAll,
  pushIndexToAll,
  type Registry,
  startHarness,
} from '../harness/index.js';
import { type LyingRegistry, startLyingRegistry } from '../harness/lying-registry.js';
import { fixture } from '../helpers/fixtures.js';

const DEADLINE_MS = 1500;

describe('exact content under failure, against real registries', () => {
  let harness: Harness;
  let source: FaultProxy;
  let stale: Registry;
  let good: Registry;
  let platform: Registry;
  let lying: LyingRegistry;
  let index: PushedIndex;
  const handles: LiveStateHandle[] = [];

  before(async () => {
    harness = await startHarness();
    const origin = await harness.startRegistry({ name: 'source' });
    source = await harness.startFaultProxy(origin);
    [stale, good, platform] = await Promise.all([
      harness.startRegistry({ name: 'stale' }),
      harness.startRegistry({ name: 'good' }),
      harness.startRegistry({ name: 'platform' }),
    ]);
    lying = await startLyingRegistry(harness.ca);
    // The source and the good mirror hold a two-platform index under the tag; the stale mirror other content; the
    // platform mirror one platform's manifest, as `docker pull` + `docker push` of one node's image leaves it.
    index = await pushIndexToAll([source, good], 'team/app', 'v1');
    await pushImage(stale, 'team/app', 'v1');
    const [amd64] = index.content.images;
    assert.ok(amd64);
    await pushImage(platform, 'team/app', 'v1', { content: amd64 });
  });

  after(async () => {
    await Promise.all(handles.map((h) => h.close()));
    await lying?.stop();
    await harness?.stop();
  });

  const registriesOf = (hosts: string[]): ConfigInput['registries'] =>
    Object.fromEntries(hosts.map((host) => [host, { caFile: harness.caFile }]));

  function config(mirrors: string[], extra: Partial<ConfigInput> = {}): Config {
    return Config.parse({
      admission: { deadlineMs: DEADLINE_MS, unverifiedTags: 'allow' },
      probe: { timeoutMs: 1000, failureThreshold: 1, successThreshold: 1 },
      registries: registriesOf([source.host, ...mirrors]),
      routes: [
        {
          prefix: `${source.host}/team`,
          registries: [`${source.host}/team`, ...mirrors.map((m) => `${m}/team`)],
        },
      ],
      ...extra,
    });
  }

  /** A new replica: no cache, no history; probes run until each registry has its first verdict. */
  async function replica(cfg: Config, metrics?: Metrics): Promise<LiveStateHandle> {
    const handle = createStateHandle(cfg, pino({ level: 'silent' }), {
      probe: false,
      ...(metrics ? { metrics } : {}),
    });
    handles.push(handle);
    for (let round = 0; round < 3; round++) await handle.prober.probeAll();
    return handle;
  }

  function request(...images: string[]): AdmissionRequest {
    const review = fixture<{
      request: { object: { spec: { containers: unknown[]; initContainers?: unknown } } };
    }>('admission/pod-create-replicaset.json');
    review.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }));
    delete review.request.object.spec.initContainers;
    const decoded = decodeReview(review);
    assert.ok(decoded.ok);
    return decoded.review.request;
  }

  async function admit(cfg: Config, handle: LiveStateHandle, ...images: string[]) {
    const admission = request(...images);
    const outcome = await mutate(
      admission,
      { config: cfg, state: handle.state },
      AbortSignal.timeout(cfg.admission.deadlineMs),
    );
    return { outcome, audit: auditRecords(admission, outcome, 0) };
  }

  describe('a replica started while the source is down (nothing of it known)', () => {
    before(() => source.setMode('refuse'));
    after(() => source.setMode('pass'));

    it('leaves a tag whose mirrors disagree (a stale mirror listed first), naming the conflict', async () => {
      const cfg = config([stale.host, good.host]);
      const handle = await replica(cfg);
      assert.equal(handle.tracker.health(source.host), 'unhealthy');
      const { outcome } = await admit(cfg, handle, `${source.host}/team/app:v1`);
      const decision = outcome.decisions[0]?.decision;
      assert.equal(decision?.reason, 'unverified-conflict', JSON.stringify(decision?.verdicts));
      assert.equal(decision?.target, null);
      assert.deepEqual(
        decision?.verdicts.map((v) => v.verdict),
        ['unhealthy', 'conflict', 'conflict'],
      );
    });

    it('pins the index, not the one platform a mirror listed first holds under the tag', async () => {
      const cfg = config([platform.host, good.host]);
      const handle = await replica(cfg);
      const { outcome, audit } = await admit(cfg, handle, `${source.host}/team/app:v1`);
      const decision = outcome.decisions[0]?.decision;
      assert.equal(decision?.reason, 'unverified-tag', JSON.stringify(decision?.verdicts));
      assert.equal(decision?.target, `${good.host}/team/app:v1@${index.digest}`);
      assert.deepEqual(
        decision?.verdicts.map((v) => v.verdict),
        ['unhealthy', 'single-platform', 'chosen'],
      );
      assert.equal(audit[0]?.candidates.includes('=single-platform'), true);
    });

    it('routes a tag the candidates agree on to the first of them, by its digest', async () => {
      const cfg = config([good.host]);
      const handle = await replica(cfg);
      const { outcome } = await admit(cfg, handle, `${source.host}/team/app:v1`);
      assert.equal(outcome.decisions[0]?.decision.target, `${good.host}/team/app:v1@${index.digest}`);
    });

    it('passes over a mirror caught serving other bytes for the digest, and remembers it', async () => {
      const cfg = config([lying.host, good.host]);
      const metrics = new Metrics();
      const handle = await replica(cfg, metrics);
      const image = `${source.host}/team/app@${index.digest}`;
      const { outcome } = await admit(cfg, handle, image);
      const decision = outcome.decisions[0]?.decision;
      assert.equal(decision?.target, `${good.host}/team/app@${index.digest}`);
      assert.equal(decision?.reason, 'source-unhealthy');
      assert.deepEqual(
        decision?.verdicts.map((v) => v.verdict),
        ['unhealthy', 'mismatch', 'chosen'],
      );
      // Its bytes were read (a GET), not its word taken (a HEAD).
      assert.ok(lying.requests.includes(`GET /v2/team/app/manifests/${index.digest}`), lying.requests.join());
      const asked = lying.requests.length;
      await admit(cfg, handle, image);
      assert.equal(lying.requests.length, asked, 'the mismatch is cached: the liar is not asked again');
      const reported = await metrics.registry.getSingleMetricAsString(
        'regroute_registry_digest_mismatches_total',
      );
      assert.match(reported, new RegExp(`registry="${lying.host.replace('.', '\\.')}"} 1$`, 'm'));
    });
  });

  it('explain tells a mirror holding one platform of the index from a stale one, and says how to copy them all', async () => {
    const file = join(harness.dir, 'explain-platform.json');
    await writeFile(
      file,
      JSON.stringify({
        registries: registriesOf([source.host, platform.host]),
        routes: [
          { prefix: `${source.host}/team`, registries: [`${platform.host}/team`, `${source.host}/team`] },
        ],
      }),
    );
    const lines: string[] = [];
    const io = { out: (line: string) => lines.push(line), err: () => {} };
    assert.equal(await explainCommand([`${source.host}/team/app:v1`, '--config', file, '--json'], io), 0);
    const explanation = JSON.parse(lines[0] ?? '{}');
    assert.equal(explanation.decision.candidates[`${platform.host}/team/app`], 'single-platform');
    assert.equal(explanation.decision.reason, 'source-healthy');
    assert.deepEqual(explanation.advice, [
      `${platform.host}/team/app holds one platform of the index ${source.host}/team/app@${index.digest} under the tag; copy every platform with: skopeo copy --all docker://${source.host}/team/app@${index.digest} docker://${platform.host}/team/app:v1`,
    ]);
  });

  it('keeps a tag image on a source that is healthy but slower than the deadline, though a mirror holds its old digest', async () => {
    const cfg = config([good.host], {
      admission: { deadlineMs: 300, unverifiedTags: 'allow' },
      probe: { timeoutMs: 5000, failureThreshold: 1, successThreshold: 1 },
      cache: { tagTtlSeconds: 0.05 },
    });
    const moving = await pushImageToAll([source, good], 'team/moving', 'v1');
    const handle = await replica(cfg);
    // The tag learned first, with time to spare on a loaded machine: only the later admission has the tight deadline.
    const first = await admit(
      { ...cfg, admission: { ...cfg.admission, deadlineMs: 10_000 } },
      handle,
      `${source.host}/team/moving:v1`,
    );
    assert.equal(first.outcome.decisions[0]?.decision.reason, 'source-healthy');
    assert.equal(first.outcome.decisions[0]?.decision.digest, moving.digest);
    // The tag moves at the source; the mirror keeps the old content. Then the source turns slow.
    await pushImage(source, 'team/moving', 'v1');
    await new Promise((resolve) => setTimeout(resolve, 100)); // past the 50 ms tag TTL
    await source.setMode('slow', { delayMs: 1500 });
    try {
      await handle.prober.probeAll();
      assert.equal(handle.tracker.health(source.host), 'healthy', 'its probes pass, slowly');
      const { outcome } = await admit(cfg, handle, `${source.host}/team/moving:v1`);
      const decision = outcome.decisions[0]?.decision;
      assert.equal(decision?.target, null, 'not pinned to the digest the tag had before');
      assert.equal(decision?.reason, 'deadline');
    } finally {
      await source.setMode('pass');
    }
  });

  it('answers a review of 2,000 new images by asking about at most the capped number, three at once', async () => {
    const cfg = config([good.host]);
    const handle = await replica(cfg);
    source.resetCounts();
    const images = (n: number) =>
      Array.from({ length: 2000 }, (_, i) => `${source.host}/team/absent-${n}-${i}:v1`);
    const outcomes = await Promise.all(
      [1, 2, 3].map((n) => admit(cfg, handle, ...images(n)).then(({ outcome }) => outcome)),
    );
    for (const outcome of outcomes) {
      const reasons = outcome.decisions.map((d) => d.decision.reason);
      assert.equal(reasons.filter((r) => r === 'image-cap').length, 2000 - 256);
      assert.ok(reasons.slice(0, 256).every((r) => r === 'no-candidate' || r === 'deadline'));
    }
    // One tag lookup per routed image at most: nothing is asked about the images past the cap.
    const asked = source.requests.pass;
    assert.ok(asked <= 3 * 256 + 3, `${asked} requests reached the source`);
    assert.ok(asked > 0);
  });
});
