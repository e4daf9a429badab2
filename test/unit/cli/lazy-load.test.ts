// What each command loads: `regroute serve` must not carry the modules of the other commands (the Kubernetes
// client, the demo, the import parsers), and `regroute help` no command module at all.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { certDir } from '../server/support.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CLI = join(ROOT, 'src', 'cli.ts');
const RECORD = join(ROOT, 'test', 'helpers', 'record-modules.mjs');

/** Starts the command as its own process, recording every module it resolves into `modulesFile`. */
function start(modulesFile: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--import', RECORD, CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, REGROUTE_TEST_MODULES_FILE: modulesFile },
  });
}

const loaded = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter(Boolean);

describe('command modules are loaded when their command runs', () => {
  it('regroute help prints every command without loading any command module', async () => {
    const dir = await certDir();
    try {
      const modules = join(dir.dir, 'modules');
      await writeFile(modules, '');
      const child = start(modules, ['help']);
      let stdout = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
      });
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
      for (const command of [
        'serve',
        'sync-pull-secrets',
        'review',
        'explain',
        'probe',
        'certs',
        'import',
        'demo',
      ])
        assert.match(stdout, new RegExp(`^regroute ${command}\\b`, 'm'));
      const urls = await loaded(modules);
      assert.ok(
        urls.some((url) => url.endsWith('/src/cli/usage.ts')),
        'the recording works',
      );
      assert.deepEqual(
        urls.filter((url) => /\/src\/cli\/(?!usage|io)[a-z-]+\.ts$/.test(url)),
        [],
      );
    } finally {
      await dir.dispose();
    }
  });

  it('regroute serve loads neither the Kubernetes client nor the demo, import or cluster modules', async () => {
    const certs = await certDir();
    try {
      await certs.install(certs.issue());
      const config = join(certs.dir, 'config.yaml');
      await writeFile(
        config,
        `server: { host: 127.0.0.1, metricsPort: 0, tlsCert: ${certs.certFile}, tlsKey: ${certs.keyFile} }\n`,
      );
      const modules = join(certs.dir, 'modules');
      await writeFile(modules, '');
      const child = start(modules, ['serve', '--config', config, '--port', '0']);
      let stderr = '';
      await new Promise<void>((resolve, reject) => {
        child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
          stderr += chunk;
          if (stderr.includes('listening on')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
      });
      child.kill('SIGINT');
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
      const urls = await loaded(modules);
      assert.ok(
        urls.some((url) => url.endsWith('/src/cli/serve.ts')),
        'the recording works',
      );
      assert.deepEqual(
        urls.filter((url) =>
          /@kubernetes\/client-node|node-forge|\/src\/(demo|import|cluster)\/|\/src\/cli\/(?!serve|usage|io|config-option)/.test(
            url,
          ),
        ),
        [],
      );
    } finally {
      await certs.dispose();
    }
  });
});

describe('usage text', () => {
  it('names the caBundle patch file regroute certs --kustomize writes', async () => {
    const { CA_BUNDLE_PATCH_FILE } = await import('../../../src/certs/files.js');
    const { certsUsage } = await import('../../../src/cli/usage.js');
    assert.ok(certsUsage.includes(`DIR/${CA_BUNDLE_PATCH_FILE}`));
  });
});
