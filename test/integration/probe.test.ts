// The health prober against real registries: credentials, the deep manifest check, and the faults it must read right.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Config, type ConfigInput } from '../../src/config/schema.js';
import { createStateHandle } from '../../src/state/create.js';
import { type Harness, pushImage, type Registry, startHarness, type TokenIssuer } from '../harness/index.js';

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
