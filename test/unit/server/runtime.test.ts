import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../../src/config/load.js';
import { Runtime } from '../../../src/server/runtime.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { handleOf } from './support.js';

const log = pino({ level: 'silent' });
const config = parseConfig({}, 'test');
const other = parseConfig({ admission: { unverifiedTags: 'deny' } }, 'other');

describe('Runtime', () => {
  it('hands each review the config and state in force', () => {
    const first = handleOf(new MemoryState());
    const runtime = new Runtime(config, first, log);
    const deps = runtime.acquire();
    assert.equal(deps.config, config);
    assert.equal(deps.state, first.state);
  });

  it('keeps the state when only the config changes', async () => {
    const first = handleOf(new MemoryState());
    const runtime = new Runtime(config, first, log);
    await runtime.swap(other, first);
    assert.equal(runtime.acquire().config, other);
    assert.equal(first.closed, false);
  });

  it('closes replaced state once the last review holding it is released', async () => {
    const first = handleOf(new MemoryState());
    const second = handleOf(new MemoryState());
    const runtime = new Runtime(config, first, log);
    const [a, b] = [runtime.acquire(), runtime.acquire()];
    const retired = runtime.swap(other, second);
    assert.equal(runtime.acquire().state, second.state);
    runtime.release(a);
    assert.equal(first.closed, false);
    runtime.release(b);
    await retired;
    assert.equal(first.closed, true);
    assert.equal(second.closed, false);
  });

  it('closes replaced state at once when no review holds it', async () => {
    const first = handleOf(new MemoryState());
    const runtime = new Runtime(config, first, log);
    runtime.release(runtime.acquire());
    await runtime.swap(other, handleOf(new MemoryState()));
    assert.equal(first.closed, true);
  });

  it('closes every state still open on close', async () => {
    const first = handleOf(new MemoryState());
    const second = handleOf(new MemoryState());
    const runtime = new Runtime(config, first, log);
    runtime.acquire();
    void runtime.swap(other, second);
    await runtime.close();
    assert.deepEqual([first.closed, second.closed], [true, true]);
  });

  it('stays ready through a swap to state still probing, but a new replica waits for its first round', async () => {
    const runtime = new Runtime(config, handleOf(new MemoryState(), false), log);
    assert.equal(runtime.isReady(), false);
    await runtime.swap(config, handleOf(new MemoryState(), true));
    assert.equal(runtime.isReady(), true);
    await runtime.swap(config, handleOf(new MemoryState(), false));
    assert.equal(runtime.isReady(), true);
  });
});
