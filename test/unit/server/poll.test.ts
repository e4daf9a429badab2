import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fingerprintFiles, pollEvery } from '../../../src/server/poll.js';

/** A promise and the function that settles it. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('pollEvery', () => {
  // pollEvery's timers do not hold the process open (shutdown owes nothing to them); this one does, while a test waits.
  let keepAlive: NodeJS.Timeout;
  beforeEach(() => {
    keepAlive = setInterval(() => {}, 60_000);
  });
  afterEach(() => clearInterval(keepAlive));

  it('never starts a tick before the last one ended, and stops when told', async () => {
    let running = 0;
    let overlapped = false;
    const started = [deferred(), deferred(), deferred()];
    const release = [deferred(), deferred(), deferred()];
    let ticks = 0;
    const polling = pollEvery(1, async () => {
      const n = ticks;
      ticks += 1;
      running += 1;
      overlapped ||= running > 1;
      started[n]?.resolve();
      await release[n]?.promise;
      running -= 1;
    });
    // Each tick is held open until released: a timer of 1 ms firing meanwhile must not start another.
    for (const n of [0, 1]) {
      await started[n]?.promise;
      await sleep(20); // twenty intervals while the tick is held
      assert.equal(ticks, n + 1, 'no tick starts while one runs');
      release[n]?.resolve();
    }
    await started[2]?.promise;
    polling.stop();
    release[2]?.resolve();
    await sleep(20); // twenty intervals after stop()
    assert.equal(ticks, 3, 'the tick under way finished and no other started');
    assert.equal(overlapped, false);
  });

  it('reports a tick that throws and keeps going', async () => {
    const errors: unknown[] = [];
    const third = deferred();
    const polling = pollEvery(
      1,
      async () => {
        throw new Error('boom');
      },
      (error) => {
        errors.push(error);
        if (errors.length === 3) third.resolve();
      },
    );
    await third.promise;
    polling.stop();
    assert.equal(errors.length, 3);
    assert.match(String(errors[0]), /boom/);
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
