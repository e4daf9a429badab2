// Registry state against real registries when the fault is a registry's answer or our own slowness: Retry-After
// without bound, a client slow to set up on a cold start, a password file that vanishes during a reload.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { open as openFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { Metrics } from '../../src/audit/metrics.js';
import { parseConfigText } from '../../src/config/load.js';
import { Config, type ConfigInput } from '../../src/config/schema.js';
import { ConfigReloader } from '../../src/server/config-reload.js';
import { Runtime } from '../../src/server/runtime.js';
import { createStateHandle, type LiveStateHandle } from '../../src/state/create.js';
import { MAX_RATE_LIMIT_MS } from '../../src/state/health.js';
import { type Harness, type PushedImage, pushImage, type Registry, startHarness } from '../harness/index.js';

const silent = pino({ level: 'silent' });
/** A year, as a registry may ask in Retry-After. */
const YEAR_SECONDS = 365 * 24 * 3600;

describe('registry state under faults of registries and of our own (distribution 2.8 on loopback)', () => {
  let harness: Harness;
  let open: Registry;
  let basic: Registry;
  let present: PushedImage;

  before(async () => {
    harness = await startHarness();
    [open, basic] = await Promise.all([
      harness.startRegistry({ name: 'open' }),
      harness.startRegistry({ name: 'basic', auth: { kind: 'htpasswd' } }),
    ]);
    present = await pushImage(open, 'probe/present', 'v1');
  });
  after(() => harness?.stop());

  const passwordFile = async (name: string) => {
    const path = join(harness.dir, `${name}.password`);
    await writeFile(path, `${basic.credentials?.password ?? ''}\n`);
    return path;
  };

  const basicSettings = (file: string) => ({
    caFile: harness.caFile,
    auth: { username: basic.credentials?.username ?? '', passwordFile: file },
  });

  describe('a 429 with Retry-After', () => {
    it('avoids a registry that asks for a year, on a manifest lookup, for at most MAX_RATE_LIMIT_MS', async (t) => {
      const proxy = await harness.startFaultProxy(open);
      t.after(() => proxy.stop());
      const handle = createStateHandle(
        Config.parse({ registries: { [proxy.host]: { caFile: harness.caFile } } }),
        silent,
        { probe: false },
      );
      t.after(() => handle.close());
      await handle.prober.probe(proxy.host);
      assert.equal(handle.tracker.health(proxy.host), 'healthy');

      await proxy.setMode('rate-limit', { retryAfterSeconds: YEAR_SECONDS });
      const location = { registry: proxy.host, repository: 'probe/present' };
      await handle.state.hasManifest(location, present.digest, AbortSignal.timeout(5000));
      const answered = Date.now();
      assert.equal(handle.tracker.health(proxy.host), 'rate-limited');
      const until = handle.tracker.snapshot(proxy.host).rateLimitedUntil ?? Number.POSITIVE_INFINITY;
      assert.ok(until <= answered + MAX_RATE_LIMIT_MS, `avoided until ${new Date(until).toISOString()}`);
    });

    it('is lifted once the healthCheck manifest can be read again, and not by /v2/ answering', async (t) => {
      const proxy = await harness.startFaultProxy(open);
      t.after(() => proxy.stop());
      const stateFor = (settings: ConfigInput['registries']) => {
        const handle = createStateHandle(Config.parse({ registries: settings }), silent, { probe: false });
        t.after(() => handle.close());
        return handle;
      };
      const deep = stateFor({
        [proxy.host]: {
          caFile: harness.caFile,
          healthCheck: { repository: 'probe/present', reference: 'v1' },
        },
      });
      const shallow = stateFor({ [proxy.host]: { caFile: harness.caFile } });

      await proxy.setMode('rate-limit', { retryAfterSeconds: 60 });
      await Promise.all([deep.prober.probe(proxy.host), shallow.prober.probe(proxy.host)]);
      assert.equal(deep.tracker.health(proxy.host), 'rate-limited');
      assert.equal(shallow.tracker.health(proxy.host), 'rate-limited');

      await proxy.setMode('pass');
      await Promise.all([deep.prober.probe(proxy.host), shallow.prober.probe(proxy.host)]);
      assert.equal(deep.tracker.health(proxy.host), 'healthy', 'the manifest HEAD succeeded');
      assert.equal(
        shallow.tracker.health(proxy.host),
        'rate-limited',
        'a ping proves nothing about the limit',
      );
    });
  });

  describe('a cold start', () => {
    it('does not charge a client slow to set up (its password file slow to read) to the first probe', async (t) => {
      // A FIFO: reading the "password file" takes as long as the test holds the write end.
      const fifo = join(harness.dir, 'slow.password');
      execFileSync('mkfifo', [fifo]);
      const handle = createStateHandle(
        Config.parse({ probe: { timeoutMs: 1000 }, registries: { [basic.host]: basicSettings(fifo) } }),
        silent,
        { probe: false },
      );
      t.after(() => handle.close());
      const probing = handle.prober.probe(basic.host);
      // Opening the write end waits for the reader: set-up is under way from here.
      const writer = await openFile(fifo, 'w');
      // The set-up outlasts the probe timeout, as it can on a loaded machine.
      await sleep(1500);
      await writer.writeFile(`${basic.credentials?.password ?? ''}\n`);
      await writer.close();
      const result = await probing;
      assert.equal(result.error, null);
      assert.equal(handle.tracker.health(basic.host), 'healthy');
    });
  });

  describe('a config reload while a password file is missing', () => {
    it("keeps the registry's running client, through a rebuild, until the file is back", async (t) => {
      const password = await passwordFile('vanishing');
      const file = join(harness.dir, 'vanishing.yaml');
      const yaml = (probe: ConfigInput['probe']) =>
        stringify({ probe, registries: { [basic.host]: basicSettings(password) } });
      await writeFile(file, yaml({ intervalSeconds: 3600 }));
      const metrics = new Metrics({ defaultMetrics: false });
      const built: LiveStateHandle[] = [];
      let latest: { config: Config; handle: LiveStateHandle } | undefined;
      // As the serve command does: each new state is built knowing the one it replaces.
      const createState = (config: Config) => {
        const handle = createStateHandle(config, silent, {
          metrics,
          ...(latest ? { previous: latest } : {}),
        });
        latest = { config, handle };
        built.push(handle);
        return handle;
      };
      const initial = parseConfigText(yaml({ intervalSeconds: 3600 }), file);
      const runtime = new Runtime(initial, createState(initial), silent);
      const reloader = await ConfigReloader.create({ file, runtime, createState, log: silent, metrics });
      t.after(async () => {
        await reloader.stop();
        await runtime.close();
      });
      const first = built[0];
      assert.ok(first);
      await first.prober.probeAll();
      assert.equal(first.tracker.health(basic.host), 'healthy');

      await rm(password);
      assert.equal(await reloader.check(), 'rejected');
      assert.equal(runtime.state, first, 'nothing is rebuilt for a file that vanished');

      // Another change while the file is still missing: new state is built, with the running client kept.
      await writeFile(file, yaml({ intervalSeconds: 3600, timeoutMs: 1500 }));
      assert.equal(await reloader.check(), 'applied');
      const rebuilt = built[1];
      assert.ok(rebuilt && runtime.state === rebuilt);
      assert.equal(rebuilt.tracker.health(basic.host), 'healthy');
      const [kept, running] = await Promise.all([
        rebuilt.clients.peek(basic.host),
        first.clients.peek(basic.host),
      ]);
      assert.ok(kept?.ok && running?.ok && kept.client === running.client);
      const errors = (await metrics.configReloadErrors.get()).values[0]?.value;
      assert.equal(errors, 1, 'the missing file is counted once');

      await writeFile(password, `${basic.credentials?.password ?? ''}\n`);
      assert.equal(await reloader.check(), 'unchanged', 'the file back as it was is no change');
      await rebuilt.prober.probeAll();
      assert.equal(rebuilt.tracker.health(basic.host), 'healthy');
    });
  });
});
