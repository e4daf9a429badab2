// Soak: steady admission load on `regroute serve` while registries flap, across a certificate rotation and a config
// reload. Short by default; REGROUTE_SOAK_SECONDS=600 npm run test:soak is the long form.
import assert from 'node:assert/strict';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { createCA, createServingCert } from '../../src/certs/generate.js';
import type { ConfigInput } from '../../src/config/schema.js';
import {
  type FaultMode,
  type FaultProxy,
  freePort,
  type Harness,
  pushImageToAll,
  startHarness,
} from '../harness/index.js';
import { applyResponse, assertValidPod } from '../helpers/apiserver.js';
import { fixture } from '../helpers/fixtures.js';
import { type ServeProcess, startServe } from '../helpers/serve-process.js';

const SOAK_MS = Number(process.env.REGROUTE_SOAK_SECONDS ?? '25') * 1000;
const WORKERS = 8;
const DEADLINE_MS = 800;
const MAX_CACHE_ENTRIES = 100;
const IMAGES = 40;
/** How often a registry changes its behaviour. */
const FLAP_MS = 700;
/** What the process may hold after the run: Node's baseline plus bounded caches and pools, with room to spare. */
const RSS_LIMIT_MB = 400;
/** How much RSS may grow from the warmed-up point to the end: a leak over minutes shows as steady growth. */
const RSS_GROWTH_LIMIT_MB = 120;

const FLAPS: { mode: FaultMode; options?: { status?: number; retryAfterSeconds?: number } }[] = [
  { mode: 'pass' },
  { mode: 'refuse' },
  { mode: 'pass' },
  { mode: 'blackhole' },
  { mode: 'pass' },
  { mode: 'status', options: { status: 503 } },
  { mode: 'pass' },
  { mode: 'rate-limit', options: { retryAfterSeconds: 1 } },
  { mode: 'reset' },
];

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return Math.round(kb / 1024);
}

describe(`soak: ${SOAK_MS / 1000} s of admissions while registries flap`, () => {
  let harness: Harness;
  let serve: ServeProcess;
  let source: FaultProxy;
  let mirrorB: FaultProxy;
  let metricsPort: number;
  let configFile: string;
  let config: ConfigInput;
  const pool: string[] = [];
  const ca = createCA('soak CA');
  const stats = {
    answers: 0,
    patched: 0,
    errors: [] as string[],
    slowestMs: 0,
    rssWarmMb: 0,
    rssEndMb: 0,
    rotatedAt: 0,
    reloadedAt: 0,
  };

  const servingFiles = (dir: string) => ({ cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') });
  /** Writes a new serving pair the way the kubelet updates a mounted Secret: whole files, swapped in at once. */
  async function writeServing(dir: string) {
    const pair = createServingCert(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const files = servingFiles(dir);
    await writeFile(`${files.key}.new`, pair.keyPem);
    await writeFile(`${files.cert}.new`, pair.certPem);
    await rename(`${files.key}.new`, files.key);
    await rename(`${files.cert}.new`, files.cert);
  }

  /** The values of a metric's series, those whose labels include `labels` when given. */
  const metric = async (name: string, labels = ''): Promise<number[]> => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await res.text();
    return [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))]
      .filter((m) => (m[1] ?? '').includes(labels))
      .map((m) => Number(m[2]));
  };
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

  before(async () => {
    harness = await startHarness();
    const [origin, a, b] = await Promise.all([
      harness.startRegistry({ name: 'soak-source' }),
      harness.startRegistry({ name: 'soak-mirror-a' }),
      harness.startRegistry({ name: 'soak-mirror-b' }),
    ]);
    source = await harness.startFaultProxy(origin);
    mirrorB = await harness.startFaultProxy(b);
    for (let i = 0; i < IMAGES; i++) {
      const holders = i % 2 === 0 ? [origin, a, b] : [origin, b];
      const pushed = await pushImageToAll(holders, `soak/app-${i}`, 'v1');
      pool.push(`${source.host}/soak/app-${i}:v1`, `${source.host}/soak/app-${i}@${pushed.digest}`);
    }

    await writeFile(join(harness.dir, 'ca.crt'), ca.certPem);
    await writeServing(harness.dir);
    metricsPort = await freePort();
    const files = servingFiles(harness.dir);
    config = {
      server: { metricsPort, host: '127.0.0.1', tlsCert: files.cert, tlsKey: files.key },
      admission: { deadlineMs: DEADLINE_MS },
      probe: { intervalSeconds: 0.3, timeoutMs: 500, failureThreshold: 2, successThreshold: 1 },
      cache: { tagTtlSeconds: 2, absentTtlSeconds: 1, maxEntries: MAX_CACHE_ENTRIES },
      registries: Object.fromEntries(
        [source.host, a.host, mirrorB.host].map((host) => [host, { caFile: harness.caFile }]),
      ),
      routes: [
        {
          prefix: `${source.host}/soak`,
          registries: [`${source.host}/soak`, `${a.host}/soak`, `${mirrorB.host}/soak`],
        },
      ],
    };
    configFile = join(harness.dir, 'soak.yaml');
    await writeFile(configFile, stringify(config));
    serve = await startServe(configFile, join(harness.dir, 'ca.crt'), {
      reloadIntervalMs: 250,
      keepLogs: false,
    });
  });

  after(async () => {
    await serve?.stop();
    await harness?.stop();
  });

  it('answers every review with a patch that applies, or none, within the deadline', async (t) => {
    const started = Date.now();
    const end = started + SOAK_MS;
    let uid = 0;

    const worker = async () => {
      while (Date.now() < end) {
        const review = fixture<{
          request: {
            uid: string;
            object: { spec: { containers: { image: string }[]; initContainers: { image: string }[] } };
          };
        }>('admission/pod-create-replicaset.json');
        review.request.uid = `soak-${++uid}`;
        const spec = review.request.object.spec;
        for (const container of [...spec.containers, ...spec.initContainers]) {
          container.image = pool[Math.floor(Math.random() * pool.length)] ?? '';
        }
        try {
          const { response, statusCode, elapsedMs } = await serve.mutate(review);
          stats.answers++;
          stats.slowestMs = Math.max(stats.slowestMs, elapsedMs);
          if (statusCode !== 200 || response.uid !== review.request.uid || response.allowed !== true) {
            stats.errors.push(`${review.request.uid}: ${statusCode} ${JSON.stringify(response)}`);
            continue;
          }
          if (response.patch) {
            stats.patched++;
            assertValidPod(applyResponse(review.request.object, response));
          }
        } catch (error) {
          stats.errors.push(`${review.request.uid}: ${(error as Error).message}`);
        }
      }
    };

    const flapper = async () => {
      for (let i = 0; Date.now() < end; i++) {
        const flap = FLAPS[i % FLAPS.length] ?? { mode: 'pass' };
        await source.setMode(flap.mode, flap.options);
        // The last mirror fails less often, out of step with the source.
        if (i % 3 === 1) await mirrorB.setMode('refuse');
        else await mirrorB.setMode('pass');
        await new Promise((resolve) => setTimeout(resolve, FLAP_MS));
        // Warm once the heap has reached its working size at the soak's rate (a few thousand answers a second
        // since admissions no longer wait out a failing registry): growth after that would be a leak.
        if (!stats.rssWarmMb && Date.now() - started > SOAK_MS * 0.5)
          stats.rssWarmMb = await rssMb(serve.pid);
        if (!stats.rotatedAt && Date.now() - started > SOAK_MS * 0.4) {
          await writeServing(harness.dir);
          stats.rotatedAt = Date.now() - started;
        }
        if (!stats.reloadedAt && Date.now() - started > SOAK_MS * 0.6) {
          // A config edit that changes routing settings: the next reviews must use it, none may fail meanwhile.
          await writeFile(configFile, stringify({ ...config, admission: { deadlineMs: DEADLINE_MS + 100 } }));
          stats.reloadedAt = Date.now() - started;
        }
      }
      await source.setMode('pass');
      await mirrorB.setMode('pass');
    };

    await Promise.all([flapper(), ...Array.from({ length: WORKERS }, worker)]);
    stats.rssEndMb = await rssMb(serve.pid);
    t.diagnostic(
      `soak: ${stats.answers} answers (${stats.patched} patched), ${stats.errors.length} errors, slowest ` +
        `${stats.slowestMs.toFixed(0)} ms, RSS ${stats.rssWarmMb} MB warm → ${stats.rssEndMb} MB end`,
    );
    assert.deepEqual(stats.errors.slice(0, 5), []);
    assert.ok(stats.answers > WORKERS * 10, `load was applied (${stats.answers} answers)`);
    assert.ok(stats.patched > 0, 'some pods were rerouted while the source was down');
    // The deadline bounds the wait for registries, measured where it applies: in the server, whose histogram
    // counts every answer (the client's figure above adds the machine's load, and is only reported).
    const answered = sum(await metric('regroute_admission_duration_seconds_count'));
    const withinTwoSeconds = sum(await metric('regroute_admission_duration_seconds_bucket', 'le="2"'));
    assert.ok(answered >= stats.answers, `the server counted ${answered} answers`);
    assert.equal(
      withinTwoSeconds,
      answered,
      'every answer within 2 s of its arrival, server-side (deadline 0.9 s)',
    );
  });

  it('took the certificate rotation and the config reload without a failed request', async () => {
    assert.ok(stats.rotatedAt > 0 && stats.reloadedAt > 0);
    assert.ok(((await metric('regroute_tls_reloads_total'))[0] ?? 0) >= 1, 'the new certificate is served');
    assert.ok(((await metric('regroute_config_reloads_total'))[0] ?? 0) >= 1, 'the new config is in force');
    assert.equal(stats.errors.length, 0);
  });

  it('keeps its caches within cache.maxEntries and its memory within bounds', async () => {
    const entries = await metric('regroute_cache_entries');
    assert.equal(entries.length, 2);
    for (const size of entries) assert.ok(size <= MAX_CACHE_ENTRIES, `cache holds ${size} entries`);
    assert.ok(
      entries.some((size) => size >= MAX_CACHE_ENTRIES * 0.5),
      `caches were used: ${entries}`,
    );
    assert.ok(stats.rssEndMb < RSS_LIMIT_MB, `RSS ${stats.rssEndMb} MB`);
    assert.ok(
      stats.rssEndMb - stats.rssWarmMb < RSS_GROWTH_LIMIT_MB,
      `RSS grew ${stats.rssEndMb - stats.rssWarmMb} MB`,
    );
  });
});
