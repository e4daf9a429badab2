// The registry client pool: configured hosts kept, other hosts evicted when too many, limits of ours reported as
// such, and a reload's pool keeping clients whose files vanished.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Config } from '../../../src/config/schema.js';
import { ClientPool, MAX_UNCONFIGURED_CLIENTS } from '../../../src/state/clients.js';
import { startSilent } from '../registry/loopback.js';

const silent = pino({ level: 'silent' });
const MIRROR = 'mirror.local:5000';
/** A wildcard route: pods may name any host under wild.test, none of which the config lists. */
const wildcard = (registries: Config['registries'] = {}) =>
  Config.parse({
    registries,
    routes: [{ prefix: '*.wild.test', registries: [`${MIRROR}/wild`] }],
  });

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regroute-clients-test-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('ClientPool', () => {
  it('makes room for a pod naming hundreds of hosts by evicting the least recently used, never a configured one', async (t) => {
    const pool = new ClientPool(wildcard(), silent);
    t.after(() => pool.close());
    const mirror = await pool.get(MIRROR);
    assert.ok(mirror.ok);
    const hosts = Array.from({ length: MAX_UNCONFIGURED_CLIENTS + 44 }, (_, i) => `h${i}.wild.test`);
    const first = await pool.get(hosts[0] ?? '');
    const made = [];
    for (const host of hosts) made.push(await pool.get(host));
    assert.deepEqual(
      made.filter((m) => !m.ok),
      [],
      'every host got a client',
    );
    const held = pool.registries();
    assert.equal(held.length, 1 + MAX_UNCONFIGURED_CLIENTS);
    assert.ok(held.includes(MIRROR), 'the configured mirror is kept');
    assert.equal(held.includes('h0.wild.test'), false, 'the least recently used host went first');
    assert.ok(held.includes(hosts.at(-1) ?? ''));
    const again = await pool.get(MIRROR);
    assert.ok(again.ok && again.client === mirror.client && !mirror.client.closed);
    await nextTurn();
    assert.ok(first.ok && first.client.closed, 'an evicted client is closed once idle');
  });

  it('keeps a host used again over one used longer ago', async (t) => {
    const pool = new ClientPool(wildcard(), silent, { maxUnconfigured: 2 });
    t.after(() => pool.close());
    await pool.get('a.wild.test');
    await pool.get('b.wild.test');
    await pool.get('a.wild.test');
    await pool.get('c.wild.test');
    assert.deepEqual(pool.registries().sort(), [MIRROR, 'a.wild.test', 'c.wild.test'].sort());
  });

  it('tells its own limit apart from a registry failure: a full pool of clients in use sends nothing', async (t) => {
    let connected: () => void = () => {};
    const arrived = new Promise<void>((resolve) => {
      connected = resolve;
    });
    const blackhole = await startSilent(() => connected());
    t.after(() => blackhole.close());
    const pool = new ClientPool(wildcard(), silent, { maxUnconfigured: 1 });
    t.after(() => pool.close());
    const busy = await pool.get(blackhole.host);
    assert.ok(busy.ok);
    const controller = new AbortController();
    const call = busy.client.ping({ signal: controller.signal });
    await arrived;

    const refused = await pool.get('other.wild.test');
    assert.deepEqual({ ...refused, error: undefined }, { ok: false, error: undefined, local: true });
    assert.match(refused.ok ? '' : refused.error, /pool full/);

    controller.abort();
    await call;
    const made = await pool.get('other.wild.test');
    assert.equal(made.ok, true, 'an idle client makes room again');
  });

  it('reports a registry whose own set-up failed as not local (a missing password file)', async (t) => {
    const pool = new ClientPool(
      Config.parse({
        registries: { [MIRROR]: { auth: { username: 'u', passwordFile: join(dir, 'missing') } } },
      }),
      silent,
    );
    t.after(() => pool.close());
    const made = await pool.get(MIRROR);
    assert.equal(made.ok, false);
    assert.equal(!made.ok && made.local, false);
  });

  it("keeps the replaced pool's client for a registry whose password file cannot be read now", async (t) => {
    const passwordFile = join(dir, 'password');
    await writeFile(passwordFile, 'secret\n');
    const config = Config.parse({ registries: { [MIRROR]: { auth: { username: 'u', passwordFile } } } });
    const running = new ClientPool(config, silent);
    const before = await running.get(MIRROR);
    assert.ok(before.ok);

    await rm(passwordFile);
    const next = new ClientPool(config, silent, { previous: running });
    t.after(() => next.close());
    const kept = await next.get(MIRROR);
    assert.ok(kept.ok && kept.client === before.client, 'the running client is kept');

    await running.close();
    assert.equal(before.client.closed, false, 'closing the replaced pool leaves a kept client open');
    await next.close();
    assert.equal(before.client.closed, true);
  });
});
