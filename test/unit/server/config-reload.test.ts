import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../../src/audit/metrics.js';
import { parseConfig, parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import {
  ConfigReloader,
  changedServerSettings,
  referencedFiles,
  registryStateKey,
} from '../../../src/server/config-reload.js';
import { type RunningServer, startServer } from '../../../src/server/run.js';
import { Runtime } from '../../../src/server/runtime.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import type { RegistryState } from '../../../src/state/state.js';
import { digestOf } from '../../helpers/digests.js';
import { fixture } from '../../helpers/fixtures.js';
import {
  type CapturedLog,
  type CertDir,
  captureLog,
  certDir,
  GatedState,
  handleOf,
  keepAliveAgent,
  postReview,
  scrape,
} from './support.js';

const HOUR_MS = 3_600_000;
const nginx = digestOf('nginx');
const hub = { registry: 'docker.io', repository: 'library/nginx' };
const mirror = { registry: 'mirror.local:5000', repository: 'hub/library/nginx' };
const review = () => fixture('admission/pod-create-replicaset.json');

/** docker.io down, the mirror holding nginx: the fixture's nginx is rerouted (a patch) under the mirror route. */
const hubDown = () =>
  new MemoryState()
    .setHealth('docker.io', 'unhealthy')
    .setHealth('mirror.local:5000', 'healthy')
    .putLastKnownTag(hub, '1.27', nginx)
    .putManifest(mirror, nginx);

/** docker.io up and holding nginx: the image stays where it is (no patch). */
const hubUp = () =>
  new MemoryState()
    .setHealth('docker.io', 'healthy')
    .setHealth('mirror.local:5000', 'healthy')
    .putTag(hub, '1.27', nginx);

let certs: CertDir;
before(async () => {
  certs = await certDir();
  await certs.install(certs.issue());
});
after(() => certs.dispose());

// A review held at a gate must not run into its deadline on a busy machine.
const serverYaml = (deadlineMs: number | string = 20_000) =>
  `server: { tlsCert: ${certs.certFile}, tlsKey: ${certs.keyFile} }\nadmission: { deadlineMs: ${deadlineMs} }\n`;
const mirrorRoute = 'routes: [{ prefix: docker.io, registries: [docker.io, mirror.local:5000/hub] }]\n';
/** The same registries, but nginx (docker.io/library/nginx) no longer matches: no patch. */
const otherPrefixRoute =
  'routes: [{ prefix: docker.io/other, registries: [docker.io, mirror.local:5000/hub] }]\n';

interface Harness {
  readonly server: RunningServer;
  readonly file: string;
  readonly captured: CapturedLog;
  readonly metrics: Metrics;
  readonly initial: ReturnType<typeof handleOf>;
  /** Every state the reloads built, in order. */
  readonly built: ReturnType<typeof handleOf>[];
  write(text: string): Promise<void>;
}

/** A server over `yaml`, whose rebuilt registry states come from `nextState`. */
async function serve(
  name: string,
  yaml: string,
  options: { initialState?: RegistryState; nextState?: () => RegistryState; interval?: number } = {},
): Promise<Harness> {
  const file = join(certs.dir, `${name}.yaml`);
  await writeFile(file, yaml);
  const captured = captureLog();
  const metrics = new Metrics({ defaultMetrics: false });
  const initial = handleOf(options.initialState ?? hubDown());
  const built: ReturnType<typeof handleOf>[] = [];
  const server = await startServer({
    config: parseConfigText(yaml, file),
    state: initial,
    configFile: file,
    createState: () => {
      const handle = handleOf((options.nextState ?? hubUp)());
      built.push(handle);
      return handle;
    },
    log: captured.log,
    metrics,
    port: 0,
    metricsPort: 0,
    host: '127.0.0.1',
    reloadIntervalMs: options.interval ?? HOUR_MS,
  });
  return { server, file, captured, metrics, initial, built, write: (text) => writeFile(file, text) };
}

async function patched(port: number): Promise<boolean> {
  const agent = keepAliveAgent();
  try {
    const answered = await postReview(port, review(), agent);
    assert.equal(answered.status, 200);
    return answered.body.response.patch !== undefined;
  } finally {
    await agent.close();
  }
}

describe('what a config change needs', () => {
  const base = parseConfigText(mirrorRoute, 'base');

  it('keeps registry state for a change of routes or admission settings', () => {
    const next = parseConfigText(`${otherPrefixRoute}admission: { unverifiedTags: deny }\n`, 'next');
    assert.equal(registryStateKey(next), registryStateKey(base));
  });

  it('keeps registry state when only a pull secret name changes', () => {
    const a = parseConfigText(`${mirrorRoute}registries: { mirror.local:5000: { pullSecret: a } }`, 'a');
    const b = parseConfigText(`${mirrorRoute}registries: { mirror.local:5000: { pullSecret: b } }`, 'b');
    assert.equal(registryStateKey(a), registryStateKey(b));
  });

  it('rebuilds registry state for credentials, a CA, probe or cache settings, or another set of registries', () => {
    for (const extra of [
      'registries: { mirror.local:5000: { auth: { username: u, passwordFile: /p } } }',
      'registries: { mirror.local:5000: { caFile: /ca.crt } }',
      'probe: { timeoutMs: 700 }',
      'cache: { tagTtlSeconds: 5 }',
    ]) {
      assert.notEqual(
        registryStateKey(parseConfigText(`${mirrorRoute}${extra}`, extra)),
        registryStateKey(base),
        extra,
      );
    }
    const newHost = parseConfigText(
      'routes: [{ prefix: docker.io, registries: [docker.io, other.local/hub] }]',
      'h',
    );
    assert.notEqual(registryStateKey(newHost), registryStateKey(base));
    const fewer = parseConfigText('routes: [{ prefix: docker.io, registries: [docker.io] }]', 'fewer');
    assert.notEqual(registryStateKey(fewer), registryStateKey(base));
  });

  it('watches the password, docker config and CA files the config names', () => {
    const config = parseConfig(
      {
        registries: {
          'a.io': { auth: { username: 'u', passwordFile: '/secrets/a/password' }, caFile: '/ca/a.crt' },
          'b.io': { auth: { dockerConfigJson: '/secrets/b/.dockerconfigjson' } },
          'c.io': { pullSecret: 'c' },
        },
      },
      'files',
    );
    assert.deepEqual(referencedFiles(config), [
      '/secrets/a/password',
      '/ca/a.crt',
      '/secrets/b/.dockerconfigjson',
    ]);
  });

  it('names the server settings that only a restart applies', () => {
    const next = parseConfig({ server: { port: 9443, tlsCert: '/other.crt' } }, 'next');
    assert.deepEqual(changedServerSettings(parseConfig({}, 'running'), next), ['port', 'tlsCert']);
  });
});

describe('config reload on a running server', () => {
  it('applies a valid change of routes to the next review, keeping registry state', async () => {
    const h = await serve('routes', serverYaml() + mirrorRoute);
    try {
      assert.equal(await patched(h.server.port), true);
      await h.write(serverYaml() + otherPrefixRoute);
      assert.equal(await h.server.reloadConfig(), 'applied');
      assert.equal(await patched(h.server.port), false, 'no route takes nginx any more');
      assert.equal(h.built.length, 0);
      assert.equal(h.initial.closed, false);
      assert.ok(
        h.captured.lines.some((l) => l.msg === 'config reloaded' && l.registryStateRebuilt === false),
      );
      assert.match(await scrape(h.server.metricsPort), /^regroute_config_reloads_total 1$/m);
    } finally {
      await h.server.close();
    }
  });

  it('keeps the running config when the new one is invalid, logs why once, and counts it', async () => {
    const h = await serve('invalid', serverYaml() + mirrorRoute);
    try {
      await h.write(serverYaml('soon') + otherPrefixRoute);
      assert.equal(await h.server.reloadConfig(), 'rejected');
      assert.equal(await patched(h.server.port), true, 'the mirror route is still in force');

      const errors = h.captured.lines.filter((l) => l.level === 50);
      assert.equal(errors.length, 1);
      assert.equal(errors[0]?.msg, 'config not reloaded; the running config stays');
      assert.ok(String(errors[0]?.error).includes(h.file), 'the error names the file');
      assert.match(String(errors[0]?.error), /admission\.deadlineMs/);
      let text = await scrape(h.server.metricsPort);
      assert.match(text, /^regroute_config_reload_errors_total 1$/m);
      assert.match(text, /^regroute_config_last_reload_successful 0$/m);

      assert.equal(await h.server.reloadConfig(), 'unchanged', 'the same broken file is reported once');
      assert.equal(h.captured.lines.filter((l) => l.level === 50).length, 1);

      await h.write(serverYaml() + otherPrefixRoute);
      assert.equal(await h.server.reloadConfig(), 'applied');
      assert.equal(await patched(h.server.port), false);
      text = await scrape(h.server.metricsPort);
      assert.match(text, /^regroute_config_last_reload_successful 1$/m);
      assert.match(text, /^regroute_config_reload_errors_total 1$/m);
    } finally {
      await h.server.close();
    }
  });

  it('keeps the running config when the file disappears', async () => {
    const h = await serve('missing', serverYaml() + mirrorRoute);
    try {
      await rm(h.file);
      assert.equal(await h.server.reloadConfig(), 'rejected');
      assert.match(
        String(h.captured.lines.find((l) => l.level === 50)?.error),
        /cannot read config .*ENOENT/,
      );
      assert.equal(await patched(h.server.port), true);
    } finally {
      await h.server.close();
    }
  });

  it('never echoes the offending line of a file that is not YAML', async () => {
    const h = await serve('secret-line', serverYaml() + mirrorRoute);
    try {
      await h.write(`${serverYaml()}registries: { a.io: { auth: { username: u, password: hunter2: x } } }\n`);
      assert.equal(await h.server.reloadConfig(), 'rejected');
      await h.write(`${serverYaml()}registries: { a.io: { auth: { username: u, password: hunter2 } } }\n`);
      assert.equal(await h.server.reloadConfig(), 'rejected');
      assert.equal(h.captured.lines.filter((l) => l.level === 50).length, 2);
      assert.ok(!h.captured.raw.join('').includes('hunter2'));
      assert.ok(!(await scrape(h.server.metricsPort)).includes('hunter2'));
    } finally {
      await h.server.close();
    }
  });

  it('warns that changed server settings wait for a restart, and applies the rest', async () => {
    const h = await serve('server', serverYaml() + mirrorRoute);
    try {
      const running = h.server.config.server;
      await h.write(
        `server: { port: 9443, tlsCert: ${certs.certFile}, tlsKey: ${certs.keyFile} }\n${otherPrefixRoute}`,
      );
      assert.equal(await h.server.reloadConfig(), 'applied');
      const warning = h.captured.lines.find(
        (l) => l.msg === 'server settings changed; they apply on restart',
      );
      assert.deepEqual(warning?.settings, ['server.port']);
      assert.deepEqual(h.server.config.server, running);
      assert.equal(await patched(h.server.port), false);
    } finally {
      await h.server.close();
    }
  });

  it('warns that changed cluster settings wait for a restart, keeping the running ones in force', async () => {
    const h = await serve('cluster', serverYaml() + mirrorRoute);
    try {
      const running = h.server.config.cluster;
      await h.write(`${serverYaml()}cluster: { repair: { ratePerMinute: 7 } }\n${otherPrefixRoute}`);
      assert.equal(await h.server.reloadConfig(), 'applied');
      const warning = h.captured.lines.find(
        (l) => l.msg === 'cluster settings changed; they apply on restart',
      );
      assert.deepEqual(warning?.settings, ['cluster.repair']);
      assert.deepEqual(h.server.config.cluster, running);
      assert.equal(await patched(h.server.port), false, 'the rest of the file applies');
    } finally {
      await h.server.close();
    }
  });

  it('warns that a changed admission.events waits for a restart, applying the other admission settings', async () => {
    const h = await serve('events', serverYaml() + mirrorRoute);
    try {
      assert.equal(h.server.config.admission.events.enabled, false);
      await h.write(
        `${serverYaml(1500).replace('deadlineMs: 1500', 'deadlineMs: 1500, events: { enabled: true }')}${otherPrefixRoute}`,
      );
      assert.equal(await h.server.reloadConfig(), 'applied');
      const warning = h.captured.lines.find(
        (l) => l.msg === 'admission events setting changed; it applies on restart',
      );
      assert.deepEqual(warning?.settings, ['admission.events']);
      assert.equal(h.server.config.admission.events.enabled, false, 'the running setting stays');
      assert.equal(h.server.config.admission.deadlineMs, 1500);
    } finally {
      await h.server.close();
    }
  });

  it('treats an edit that changes nothing as no reload', async () => {
    const h = await serve('comment', serverYaml() + mirrorRoute);
    try {
      await h.write(`# a comment\n${serverYaml()}${mirrorRoute}`);
      assert.equal(await h.server.reloadConfig(), 'unchanged');
      assert.ok(!h.captured.lines.some((l) => l.msg === 'config reloaded'));
    } finally {
      await h.server.close();
    }
  });

  it('swaps in new registry state for new registry settings, closing the old once its last review is answered', async () => {
    const gated = new GatedState(hubDown());
    const h = await serve('rebuild', serverYaml() + mirrorRoute, { initialState: gated });
    const agent = keepAliveAgent();
    try {
      gated.close();
      const inFlight = postReview(h.server.port, review(), agent);
      await gated.entered;

      await h.write(`${serverYaml() + mirrorRoute}probe: { timeoutMs: 700 }\n`);
      assert.equal(await h.server.reloadConfig(), 'applied');
      assert.equal(h.built.length, 1);
      assert.equal(h.initial.closed, false, 'a review still uses the replaced state');
      assert.equal(await patched(h.server.port), false, 'the next review runs on the new state');

      gated.open();
      const answered = await inFlight;
      assert.equal(answered.status, 200);
      assert.ok(answered.body.response.patch, 'the review in flight finished on the state it started with');
      assert.equal(h.initial.closed, true);
      assert.equal(h.built[0]?.closed, false);
      assert.ok(h.captured.lines.some((l) => l.msg === 'config reloaded' && l.registryStateRebuilt === true));
    } finally {
      gated.open();
      await agent.close();
      await h.server.close();
    }
    assert.equal(h.built[0]?.closed, true, 'shutdown closes the state in force');
  });

  it('rebuilds registry state when a password file the config names changes', async () => {
    const password = join(certs.dir, 'mirror-password');
    await writeFile(password, 'first\n');
    const yaml = `${serverYaml() + mirrorRoute}registries: { mirror.local:5000: { auth: { username: u, passwordFile: ${password} } } }\n`;
    const h = await serve('password', yaml);
    try {
      assert.equal(await h.server.reloadConfig(), 'unchanged');
      await writeFile(password, 'second\n');
      assert.equal(await h.server.reloadConfig(), 'applied');
      assert.equal(h.built.length, 1);
      assert.equal(h.initial.closed, true);
      assert.equal(await h.server.reloadConfig(), 'unchanged');
    } finally {
      await h.server.close();
    }
  });

  const watched = {
    'CA file': {
      name: 'mirror-ca.crt',
      setting: (file: string) => `caFile: ${file}`,
      // The CA bundle gains the next CA's certificate, as a rotation begins.
      contents: () => [certs.issue().certPem, `${certs.issue().certPem}${certs.issue().certPem}`],
    },
    'docker config file': {
      name: 'mirror-docker-config.json',
      setting: (file: string) => `auth: { dockerConfigJson: ${file} }`,
      // The credentials in it are rotated: u:first, then u:second.
      contents: () =>
        ['dTpmaXJzdA==', 'dTpzZWNvbmQ='].map((auth) =>
          JSON.stringify({ auths: { 'mirror.local:5000': { auth } } }),
        ),
    },
  };
  for (const [kind, { name, setting, contents }] of Object.entries(watched)) {
    it(`rebuilds registry state on its own timer when the ${kind} the config names changes`, async () => {
      const file = join(certs.dir, name);
      const [first, second] = contents();
      await writeFile(file, first ?? '');
      const yaml = `${serverYaml() + mirrorRoute}registries: { mirror.local:5000: { ${setting(file)} } }\n`;
      const h = await serve(name, yaml, { interval: 20 });
      try {
        await writeFile(file, second ?? '');
        const reloaded = await h.captured.waitFor((l) => l.msg === 'config reloaded');
        assert.equal(reloaded.registryStateRebuilt, true);
        assert.equal(h.built.length, 1);
        assert.equal(h.initial.closed, true, 'the state built from the old file is closed');
        assert.match(await scrape(h.server.metricsPort), /^regroute_config_reloads_total 1$/m);
      } finally {
        await h.server.close();
      }
    });
  }

  it('keeps registry state when a password file the config names vanishes for a moment, and counts it once', async () => {
    const password = join(certs.dir, 'vanishing-password');
    await writeFile(password, 'first\n');
    const yaml = `${serverYaml() + mirrorRoute}registries: { mirror.local:5000: { auth: { username: u, passwordFile: ${password} } } }\n`;
    const h = await serve('vanishing', yaml);
    try {
      await rm(password);
      assert.equal(await h.server.reloadConfig(), 'rejected');
      assert.equal(h.built.length, 0, 'no registry state is built without the file');
      assert.equal(h.initial.closed, false);
      assert.equal(await patched(h.server.port), true, 'reviews still run on the running state');
      const errors = h.captured.lines.filter((l) => l.level === 50);
      assert.equal(errors.length, 1);
      assert.match(JSON.stringify(errors[0]?.unreadable), /vanishing-password.*ENOENT/);
      assert.match(JSON.stringify(errors[0]?.unreadable), /mirror\.local:5000/);
      let text = await scrape(h.server.metricsPort);
      assert.match(text, /^regroute_config_reload_errors_total 1$/m);
      assert.match(text, /^regroute_config_last_reload_successful 0$/m);

      assert.equal(await h.server.reloadConfig(), 'unchanged', 'a file that stays missing is reported once');
      await writeFile(password, 'first\n');
      assert.equal(await h.server.reloadConfig(), 'unchanged', 'the file back as it was is no change');
      assert.equal(h.built.length, 0);
      assert.ok(h.captured.lines.some((l) => /can be read again/.test(String(l.msg))));
      text = await scrape(h.server.metricsPort);
      assert.match(text, /^regroute_config_reload_errors_total 1$/m);
      assert.match(text, /^regroute_config_last_reload_successful 1$/m);

      await writeFile(password, 'second\n');
      assert.equal(await h.server.reloadConfig(), 'applied', 'a changed file still rebuilds');
      assert.equal(h.built.length, 1);
    } finally {
      await h.server.close();
    }
  });

  it('answers every review while reloads swap config and registry state underneath', async () => {
    const h = await serve('busy', serverYaml() + mirrorRoute, { nextState: hubDown });
    const agent = keepAliveAgent();
    try {
      const variants = [
        serverYaml() + otherPrefixRoute,
        `${serverYaml() + mirrorRoute}probe: { timeoutMs: 700 }\n`,
        serverYaml() + mirrorRoute,
        `${serverYaml() + otherPrefixRoute}probe: { timeoutMs: 900 }\n`,
      ];
      const reviews: Promise<{ status: number; body: { response: { allowed: boolean } } }>[] = [];
      for (const text of variants) {
        for (let i = 0; i < 10; i += 1) reviews.push(postReview(h.server.port, review(), agent));
        await h.write(text);
        assert.equal(await h.server.reloadConfig(), 'applied');
      }
      const answers = await Promise.all(reviews);
      assert.ok(answers.every((a) => a.status === 200 && a.body.response.allowed === true));
      assert.equal(h.built.length, 3);
      assert.equal(h.initial.closed, true);
      assert.deepEqual(
        h.built.map((b) => b.closed),
        [true, true, false],
      );
      assert.ok(!h.captured.lines.some((l) => l.level === 50));
    } finally {
      await agent.close();
      await h.server.close();
    }
  });

  it('notices a changed file on its own timer', async () => {
    const h = await serve('timer', serverYaml() + mirrorRoute, { interval: 20 });
    try {
      await h.write(serverYaml() + otherPrefixRoute);
      await h.captured.waitFor((l) => l.msg === 'config reloaded');
      assert.equal(h.server.config.routes[0]?.prefix, 'docker.io/other');
    } finally {
      await h.server.close();
    }
  });
});

describe('new registry state before it is put in force', () => {
  async function reloaderFor(name: string, ready: () => boolean, readyTimeoutMs: number) {
    const file = join(certs.dir, `${name}.yaml`);
    await writeFile(file, mirrorRoute);
    const captured = captureLog();
    const runtime = new Runtime(parseConfigText(mirrorRoute, file), handleOf(hubDown()), captured.log);
    const next = Object.assign(handleOf(hubUp()), { isReady: ready });
    const reloader = await ConfigReloader.create({
      file,
      runtime,
      createState: (_config: Config) => next,
      log: captured.log,
      readyTimeoutMs: () => readyTimeoutMs,
      readyPollMs: 5,
    });
    await writeFile(file, `${mirrorRoute}probe: { timeoutMs: 100 }\n`);
    return { runtime, reloader, next, captured };
  }

  it('waits for its first probe round, so the next review sees fresh health', async () => {
    let polls = 0;
    const { runtime, reloader, next } = await reloaderFor('ready', () => ++polls > 3, 5_000);
    assert.equal(await reloader.check(), 'applied');
    assert.ok(polls > 3);
    assert.equal(runtime.state, next);
  });

  it('puts it in force anyway, with a warning, when probing takes longer than its timeout', async () => {
    const { runtime, reloader, next, captured } = await reloaderFor('slow', () => false, 30);
    assert.equal(await reloader.check(), 'applied');
    assert.equal(runtime.state, next);
    assert.ok(captured.lines.some((l) => l.level === 40 && /not probed in time/.test(String(l.msg))));
    assert.equal(runtime.isReady(), true, 'a replica that was ready stays ready through a reload');
  });

  it('abandons a rebuild when stopped, closing what it built', async () => {
    let polled: () => void = () => {};
    const waiting = new Promise<void>((resolve) => {
      polled = resolve;
    });
    const { runtime, reloader, next } = await reloaderFor(
      'stopped',
      () => {
        polled();
        return false;
      },
      5_000,
    );
    const checking = reloader.check();
    await waiting; // the rebuild now waits for the new state's first probe round
    await reloader.stop();
    assert.equal(await checking, 'unchanged');
    assert.notEqual(runtime.state, next);
    assert.equal(next.closed, true);
  });
});
