// `regroute sync-pull-secrets`: the sync alone, against hand-written Kubernetes API answers, until a signal ends it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Io } from '../../../src/cli/io.js';
import { syncPullSecretsCommand } from '../../../src/cli/sync-pull-secrets.js';
import { answer, created, FakeApiserver, fixture } from '../kube/fake-apiserver.js';
import { captureLog } from '../server/support.js';

const SOURCES = '/api/v1/namespaces/regroute-system/secrets';
const NAMESPACES = '/api/v1/namespaces';

function capture(): Io & { stderr: string[] } {
  const stderr: string[] = [];
  return { stderr, out: () => {}, err: (line) => stderr.push(line) };
}

describe('regroute sync-pull-secrets', () => {
  let dir: string;
  let fake: FakeApiserver;
  const config = (text: string) =>
    writeFile(join(dir, 'config.yaml'), text).then(() => join(dir, 'config.yaml'));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regroute-sync-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    fake = await FakeApiserver.start();
  });
  afterEach(() => fake.close());

  it('copies each configured pull secret into the opted-in namespaces, then stops on SIGTERM and exits 0', async () => {
    const list = fixture('namespace-list.json');
    fake
      .on('GET', NAMESPACES, { status: 200, body: { ...list, items: list.items.slice(0, 1) } })
      .on('GET', SOURCES, answer(200, 'secret-list-amsregcred.json'))
      .on(
        'GET',
        `/api/v1/namespaces/${list.items[0].metadata.name}/secrets/amsregcred`,
        answer(404, 'status-notfound.json'),
      )
      .on('POST', `/api/v1/namespaces/${list.items[0].metadata.name}/secrets`, created);
    const file = await config(
      [
        'registries: { ams.ocir.io: { pullSecret: amsregcred } }',
        // The webhook's switch: the command runs the sync whatever it says.
        'pullSecretSync: { enabled: false, namespace: regroute-system }',
        '',
      ].join('\n'),
    );
    const signals = new EventEmitter();
    const { log, lines } = captureLog();
    const exited = syncPullSecretsCommand(['--config', file], capture(), {
      signals,
      log,
      kubeConfig: fake.kubeConfig(),
    });
    const source = await fake.waitFor((r) => r.path === SOURCES);
    assert.equal(source.query.get('fieldSelector'), 'metadata.name=amsregcred');
    const write = await fake.waitFor((r) => r.method === 'POST');
    assert.equal(write.body.metadata.labels['app.kubernetes.io/managed-by'], 'regroute');

    signals.emit('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(
      lines.some((l) => l.msg === 'shutting down: stopping the pull secret sync' && l.signal === 'SIGTERM'),
    );
    assert.ok(lines.every((l) => l.component === 'pull-secret-sync'));
  });

  it('with no pull secret configured, contacts no apiserver and keeps running until SIGINT', async () => {
    const signals = new EventEmitter();
    const { log } = captureLog();
    let done = false;
    const exited = syncPullSecretsCommand(['--config', await config('registries: {}\n')], capture(), {
      signals,
      log,
      kubeConfig: fake.kubeConfig(),
    }).finally(() => {
      done = true;
    });
    await sleep(100);
    assert.equal(done, false, 'a Deployment would restart a container that exits');
    signals.emit('SIGINT');
    assert.equal(await exited, 0);
    assert.deepEqual(fake.requests, []);
  });

  it('logs at the level of log.level', async () => {
    const signals = new EventEmitter();
    const { log, lines } = captureLog();
    const exited = syncPullSecretsCommand(
      ['--config', await config('registries: {}\nlog: { level: warn }\n')],
      capture(),
      { signals, log, kubeConfig: fake.kubeConfig() },
    );
    while (signals.listenerCount('SIGINT') === 0) await sleep(10);
    signals.emit('SIGINT');
    assert.equal(await exited, 0);
    assert.equal(log.level, 'warn');
    assert.deepEqual(
      lines.filter((l) => (l.level as number) < 40),
      [],
    );
  });

  it('asks for --config', async () => {
    const io = capture();
    assert.equal(await syncPullSecretsCommand([], io), 2);
    assert.match(io.stderr.join('\n'), /regroute sync-pull-secrets --config FILE/);
  });

  it('is a command of the regroute CLI, listed in its usage', () => {
    const cli = fileURLToPath(new URL('../../../src/cli.ts', import.meta.url));
    const result = spawnSync(process.execPath, ['--import', 'tsx', cli, 'help'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^regroute sync-pull-secrets --config FILE$/m);
  });
});
