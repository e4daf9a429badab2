// The health prober against real registries: credentials, the deep manifest check, and the faults it must read right;
// `regroute probe`'s content checks at mirrors holding the index, one platform of it, or other content.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { probeCommand } from '../../src/cli/probe.js';
import { Config, type ConfigInput } from '../../src/config/schema.js';
import { createStateHandle } from '../../src/state/create.js';
import {
  type Harness,
  type PushedIndex,
  pushImage,
  pushIndexToAll,
  type Registry,
  startHarness,
  type TokenIssuer,
} from '../harness/index.js';

describe('health probes against real registries (distribution 2.8 on loopback)', () => {
  let harness: Harness;
  let issuer: TokenIssuer;
  let open: Registry;
  let basic: Registry;
  let token: Registry;

  before(async () => {
    harness = await startHarness();
    issuer = await harness.startTokenIssuer();
    [open, basic, token] = await Promise.all([
      harness.startRegistry({ name: 'open' }),
      harness.startRegistry({ name: 'basic', auth: { kind: 'htpasswd' } }),
      harness.startRegistry({ name: 'token', auth: { kind: 'token', issuer } }),
    ]);
    await pushImage(token, 'probe/present', 'v1');
  });
  after(() => harness?.stop());

  const secret = async (name: string, password: string) => {
    const path = join(harness.dir, `probe-${name}.password`);
    await writeFile(path, password);
    return path;
  };

  /** Probes each registry of `registries` once, as the background prober would, and answers health and error. */
  async function probeOnce(registries: ConfigInput['registries']) {
    const config = Config.parse({ probe: { timeoutMs: 1000 }, registries });
    const handle = createStateHandle(config, pino({ level: 'silent' }), { probe: false });
    try {
      const results = await handle.prober.probeAll();
      return Object.fromEntries(
        results.map((r) => [r.registry, { health: handle.tracker.health(r.registry), error: r.error }]),
      );
    } finally {
      await handle.close();
    }
  }

  it('calls an open registry healthy, and a Basic registry healthy only with the right password', async () => {
    const results = await probeOnce({
      [open.host]: { caFile: harness.caFile },
      [basic.host]: {
        caFile: harness.caFile,
        auth: {
          username: basic.credentials?.username ?? '',
          passwordFile: await secret('basic-wrong', 'nope'),
        },
      },
    });
    assert.equal(results[open.host]?.health, 'healthy');
    assert.equal(results[basic.host]?.health, 'unhealthy');
    assert.doesNotMatch(results[basic.host]?.error ?? '', /nope/, 'the password never shows in an error');

    const right = await probeOnce({
      [basic.host]: {
        caFile: harness.caFile,
        auth: {
          username: basic.credentials?.username ?? '',
          passwordFile: await secret('basic', basic.credentials?.password ?? ''),
        },
      },
    });
    assert.equal(right[basic.host]?.health, 'healthy');
  });

  it('calls a token registry healthy when its issuer grants a token, unhealthy when it refuses', async () => {
    const good = {
      caFile: harness.caFile,
      auth: {
        username: issuer.credentials.username,
        passwordFile: await secret('token', issuer.credentials.password),
      },
    };
    assert.equal((await probeOnce({ [token.host]: good }))[token.host]?.health, 'healthy');
    const refused = await probeOnce({
      [token.host]: {
        caFile: harness.caFile,
        auth: { username: issuer.credentials.username, passwordFile: await secret('token-wrong', 'nope') },
      },
    });
    assert.equal(refused[token.host]?.health, 'unhealthy');
  });

  it('with healthCheck, needs that manifest to be readable with the credentials', async () => {
    const auth = {
      username: issuer.credentials.username,
      passwordFile: await secret('token-deep', issuer.credentials.password),
    };
    const present = await probeOnce({
      [token.host]: {
        caFile: harness.caFile,
        auth,
        healthCheck: { repository: 'probe/present', reference: 'v1' },
      },
    });
    assert.equal(present[token.host]?.health, 'healthy');
    const missing = await probeOnce({
      [token.host]: {
        caFile: harness.caFile,
        auth,
        healthCheck: { repository: 'probe/missing', reference: 'v1' },
      },
    });
    assert.equal(missing[token.host]?.health, 'unhealthy');
    assert.match(missing[token.host]?.error ?? '', /probe\/missing:v1 not found/);
  });

  it('never trusts a registry whose certificate it cannot verify (no caFile: system roots only)', async () => {
    const results = await probeOnce({ [open.host]: {} });
    assert.equal(results[open.host]?.health, 'unhealthy');
  });

  describe('behind a fault proxy', () => {
    const modes = [
      { mode: 'refuse', health: 'unhealthy' },
      { mode: 'reset', health: 'unhealthy' },
      { mode: 'blackhole', health: 'unhealthy' },
      { mode: 'status', health: 'unhealthy' },
      { mode: 'rate-limit', health: 'rate-limited' },
      { mode: 'bad-tls', health: 'unhealthy' },
      { mode: 'pass', health: 'healthy' },
    ] as const;
    for (const { mode, health } of modes) {
      it(`reads ${mode} as ${health}`, async () => {
        const proxy = await harness.startFaultProxy(open);
        await proxy.setMode(mode, { retryAfterSeconds: 60, status: 503 });
        const results = await probeOnce({ [proxy.host]: { caFile: harness.caFile } });
        assert.equal(results[proxy.host]?.health, health);
        await proxy.stop();
      });
    }
  });
});

describe('regroute probe: content at mirrors, against real registries (distribution 2.8 on loopback)', () => {
  let harness: Harness;
  let source: Registry;
  let good: Registry;
  let platform: Registry;
  let stale: Registry;
  let index: PushedIndex;

  before(async () => {
    harness = await startHarness();
    [source, good, platform, stale] = await Promise.all([
      harness.startRegistry({ name: 'source' }),
      harness.startRegistry({ name: 'good' }),
      harness.startRegistry({ name: 'platform' }),
      harness.startRegistry({ name: 'stale' }),
    ]);
    // The source and the good mirror hold a two-platform index under the tag; the platform mirror one platform's
    // manifest, as `docker pull` + `docker push` of one node's image leaves it; the stale mirror other content.
    index = await pushIndexToAll([source, good], 'team/app', 'v1');
    const [amd64] = index.content.images;
    assert.ok(amd64);
    await pushImage(platform, 'team/app', 'v1', { content: amd64 });
    await pushImage(stale, 'team/app', 'v1');
    await pushImage(source, 'team/tool', 'v2');
  });
  after(() => harness?.stop());

  /** Runs `regroute probe --json` over a config of the source and `mirrors`, each mirror's healthCheck its copy. */
  async function probe(mirrors: Registry[], images: string[] = []) {
    const file = join(harness.dir, `probe-content-${mirrors.map((m) => m.name).join('-')}.json`);
    const registries: ConfigInput['registries'] = { [source.host]: { caFile: harness.caFile } };
    for (const mirror of mirrors) {
      registries[mirror.host] = {
        caFile: harness.caFile,
        healthCheck: { repository: 'team/app', reference: 'v1' },
      };
    }
    await writeFile(
      file,
      JSON.stringify({
        probe: { timeoutMs: 2000 },
        admission: { deadlineMs: 5000 },
        registries,
        routes: [
          {
            prefix: `${source.host}/team`,
            registries: [`${source.host}/team`, ...mirrors.map((m) => `${m.host}/team`)],
          },
        ],
      }),
    );
    const out: string[] = [];
    const err: string[] = [];
    const code = await probeCommand([...images, '--config', file, '--json'], {
      out: (line) => out.push(line),
      err: (line) => err.push(line),
    });
    const lines = out.map((line) => JSON.parse(line) as Record<string, unknown>);
    return {
      code,
      err,
      health: Object.fromEntries(lines.filter((l) => 'registry' in l).map((l) => [l.registry, l.health])),
      checks: lines.filter((l) => 'candidate' in l),
    };
  }

  it("checks each mirror's healthCheck image as the source image it mirrors, and says which cannot serve it", async () => {
    const { code, health, checks } = await probe([good, platform, stale]);
    assert.deepEqual(
      Object.values(health),
      ['healthy', 'healthy', 'healthy', 'healthy'],
      'every registry is up',
    );
    const image = `${source.host}/team/app:v1`;
    const of = (mirror: Registry) => checks.find((c) => c.candidate === `${mirror.host}/team/app`);
    assert.deepEqual(of(good), {
      image,
      candidate: `${good.host}/team/app`,
      verdict: 'chosen',
      digest: index.digest,
      problem: false,
    });
    assert.equal(of(platform)?.verdict, 'single-platform');
    assert.equal(of(platform)?.problem, true);
    assert.deepEqual(of(platform)?.advice, [
      `${platform.host}/team/app holds one platform of the index ${source.host}/team/app@${index.digest} under the tag; copy every platform with: skopeo copy --all docker://${source.host}/team/app@${index.digest} docker://${platform.host}/team/app:v1`,
    ]);
    assert.equal(of(stale)?.verdict, 'stale', 'its tag names other content: a digest mismatch');
    assert.equal(of(stale)?.problem, true);
    assert.equal(checks.length, 3, 'one check per mirror: the healthCheck images are one source image');
    assert.equal(code, 1, 'a mirror that cannot serve an image it was checked for fails the probe');
  });

  it('exits 0 when every mirror holds what the source names, and checks images given on the command line', async () => {
    const { code, checks, err } = await probe([good], [`${source.host}/team/tool:v2`]);
    assert.deepEqual(err, []);
    assert.deepEqual(
      checks.map((c) => [c.image, c.verdict]),
      [
        [`${source.host}/team/app:v1`, 'chosen'],
        [`${source.host}/team/tool:v2`, 'absent'],
      ],
    );
    assert.equal(code, 0, 'a mirror not yet holding an image is no content problem');
  });

  it('refuses an image no route takes', async () => {
    const { code, err } = await probe([good], ['elsewhere.example/x:1']);
    assert.deepEqual(err, ['elsewhere.example/x:1: no route takes it']);
    assert.equal(code, 2);
  });
});
