import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fingerprintFiles, pollEvery } from '../../../src/server/poll.js';

describe('pollEvery', () => {
  it('never starts a tick before the last one ended, and stops when told', async () => {
    let running = 0;
    let overlapped = false;
    let ticks = 0;
    const polling = pollEvery(1, async () => {
      running += 1;
      overlapped ||= running > 1;
      ticks += 1;
      await sleep(10);
      running -= 1;
    });
    await sleep(60);
    polling.stop();
    const stoppedAt = ticks;
    await sleep(30);
    assert.ok(stoppedAt >= 2);
    assert.ok(ticks <= stoppedAt + 1, 'at most the tick under way finishes');
    assert.equal(overlapped, false);
  });

  it('reports a tick that throws and keeps going', async () => {
    const errors: unknown[] = [];
    let ticks = 0;
    const polling = pollEvery(
      1,
      async () => {
        ticks += 1;
        throw new Error('boom');
      },
      (error) => errors.push(error),
    );
    while (ticks < 3) await sleep(5);
    polling.stop();
    assert.ok(errors.length >= 2);
  });
});

describe('fingerprintFiles', () => {
  it('changes when a file behind a swapped symlink changes, as kubelet updates a mounted Secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regroute-poll-test-'));
    try {
      await writeFile(join(dir, 'v1'), 'one');
      await writeFile(join(dir, 'v2'), 'two');
      await symlink(join(dir, 'v1'), join(dir, 'data'));
      const before = await fingerprintFiles([join(dir, 'data')]);
      assert.equal(await fingerprintFiles([join(dir, 'data')]), before);
      await symlink(join(dir, 'v2'), join(dir, 'data.new'));
      await rename(join(dir, 'data.new'), join(dir, 'data'));
      assert.notEqual(await fingerprintFiles([join(dir, 'data')]), before);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stands for an unreadable file by its error, never throwing', async () => {
    const print = await fingerprintFiles(['/nonexistent/regroute/password']);
    assert.match(print, /unreadable:ENOENT/);
  });
});
