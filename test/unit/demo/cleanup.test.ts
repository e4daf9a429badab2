import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Cleanup } from '../../../src/demo/cleanup.js';

describe('Cleanup', () => {
  it('undoes newest first, once, and keeps going past a failing action', async () => {
    const cleanup = new Cleanup();
    const done: string[] = [];
    cleanup.add('first', () => void done.push('first'));
    cleanup.add('second', () => {
      throw new Error('boom');
    });
    cleanup.add('third', async () => void done.push('third'));
    const errors = await cleanup.run();
    assert.deepEqual(done, ['third', 'first']);
    assert.deepEqual(
      errors.map((e) => e.message),
      ['second: boom'],
    );
    assert.deepEqual(await cleanup.run(), errors, 'a second run does nothing more');
    assert.deepEqual(done, ['third', 'first']);
    assert.throws(() => cleanup.add('late', () => {}), /already under way/);
  });

  it('removes a tracked directory with what it holds', async () => {
    const cleanup = new Cleanup();
    const dir = await mkdtemp(join(tmpdir(), 'regroute-cleanup-'));
    await writeFile(join(dir, 'file'), 'x');
    cleanup.trackDir(dir);
    assert.deepEqual(await cleanup.run(), []);
    assert.equal(existsSync(dir), false);
  });

  it('kills tracked processes and removes tracked directories at once, as the exit guard does', async () => {
    const cleanup = new Cleanup();
    const dir = await mkdtemp(join(tmpdir(), 'regroute-cleanup-'));
    cleanup.trackDir(dir);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    cleanup.trackChild(child);
    const exited = once(child, 'exit');
    cleanup.runNow();
    assert.deepEqual(await exited, [null, 'SIGKILL']);
    assert.equal(existsSync(dir), false);
  });

  it('installs the exit guard on process exit, and removes it', () => {
    const cleanup = new Cleanup();
    const before = process.listenerCount('exit');
    const unguard = cleanup.guardExit();
    assert.equal(process.listenerCount('exit'), before + 1);
    unguard();
    assert.equal(process.listenerCount('exit'), before);
  });
});
