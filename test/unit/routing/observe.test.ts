import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Reference } from '../../../src/reference/index.js';
import { observe } from '../../../src/routing/observe.js';
import { matchRoute, type RouteMatch } from '../../../src/routing/route.js';
import { untilAborted } from '../../../src/state/deadline.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import type { RegistryState, TagAnswer } from '../../../src/state/state.js';
import { digestOf } from '../../helpers/digests.js';

const D = digestOf('current');
const image: Reference = { registry: 'fra.ocir.io', repository: 'tenancy/app', tag: '1.0', digest: null };
const match = matchRoute(image, [
  {
    prefix: 'fra.ocir.io/tenancy',
    registries: ['fra.ocir.io/tenancy', 'ams.ocir.io/tenancy', 'cache.local:5000/tenancy'],
  },
]) as RouteMatch;
const fra = { registry: 'fra.ocir.io', repository: 'tenancy/app' };
const ams = { registry: 'ams.ocir.io', repository: 'tenancy/app' };
const cache = { registry: 'cache.local:5000', repository: 'tenancy/app' };
const never = () => new AbortController().signal;

describe('observe', () => {
  it('asks nothing beyond the source when the source vouches for the digest', async () => {
    const state = new MemoryState().setHealth('fra.ocir.io', 'healthy').putTag(fra, '1.0', D);
    const observation = await observe(image, match, state, never(), 'allow');
    assert.deepEqual(state.lookups, ['tag fra.ocir.io/tenancy/app:1.0']);
    assert.equal(observation.candidates[0]?.presence, 'present');
  });

  it('never contacts a registry the prober marked down, and uses the last known digest', async () => {
    const state = new MemoryState()
      .setHealth('fra.ocir.io', 'unhealthy')
      .putLastKnownTag(fra, '1.0', D)
      .putManifest(ams, D)
      .putManifest(cache, D);
    const observation = await observe(image, match, state, never(), 'allow');
    assert.deepEqual(observation.digest, { kind: 'digest', digest: D, from: 'last-known' });
    assert.ok(!state.lookups.some((l) => l.startsWith('manifest fra.ocir.io')));
    assert.equal(observation.candidates[1]?.presence, 'present');
  });

  it('asks a mirror whose manifest is absent what its tag points at, to tell a stale mirror', async () => {
    const state = new MemoryState()
      .setHealth('fra.ocir.io', 'unhealthy')
      .putLastKnownTag(fra, '1.0', D)
      .putTag(ams, '1.0', digestOf('old'));
    const observation = await observe(image, match, state, never(), 'allow');
    assert.equal(observation.candidates[1]?.presence, 'absent');
    assert.equal(observation.candidates[1]?.tag?.kind, 'digest');
  });

  it('answers at the deadline when a source the probes find healthy hangs, without its last-known digest', async () => {
    const state = new MemoryState()
      .setHealth('fra.ocir.io', 'healthy')
      .setDelay('fra.ocir.io', 60_000)
      .putTag(fra, '1.0', D)
      .putManifest(ams, D);
    const controller = new AbortController();
    const pending = observe(image, match, state, controller.signal, 'allow');
    setImmediate(() => controller.abort());
    const observation = await pending;
    // The tag may have moved since it was last seen, and the source still serves its pods: nothing is pinned.
    assert.deepEqual(observation.digest, { kind: 'unknown', cause: 'deadline' });
    assert.deepEqual(
      state.lookups,
      ['tag fra.ocir.io/tenancy/app:1.0'],
      'no lookup starts after the deadline',
    );
  });

  it('starts no lookup once the deadline has passed', async () => {
    const state = new MemoryState().putTag(fra, '1.0', D);
    const controller = new AbortController();
    controller.abort();
    const observation = await observe(image, match, state, controller.signal, 'allow');
    assert.deepEqual(state.lookups, []);
    assert.deepEqual(observation.digest, { kind: 'unknown', cause: 'deadline' });
  });

  it('asks every healthy candidate for the tag when no digest is known and unverified tags are allowed', async () => {
    const state = new MemoryState()
      .setHealth('fra.ocir.io', 'unhealthy')
      .setHealth('cache.local:5000', 'unhealthy');
    state.putTag(ams, '1.0', D);
    const observation = await observe(image, match, state, never(), 'allow');
    assert.equal(observation.digest.kind, 'unknown');
    // Read with its body, so that an index and one of its platforms under the same tag can be told apart.
    assert.deepEqual(observation.candidates[1]?.tag, {
      kind: 'digest',
      digest: D,
      from: 'registry',
      children: [],
    });
    assert.equal(observation.candidates[2]?.tag, undefined);
  });
});

describe('untilAborted', () => {
  it('resolves to the fallback when the signal aborts before a hung promise settles', async () => {
    const controller = new AbortController();
    const pending = untilAborted(new Promise<string>(() => {}), controller.signal, 'fallback');
    controller.abort();
    assert.equal(await pending, 'fallback');
  });

  it('resolves to the fallback when the promise rejects', async () => {
    assert.equal(await untilAborted(Promise.reject(new Error('x')), never(), 'fallback'), 'fallback');
  });
});

describe('observe at a cache miss', () => {
  const preferred = matchRoute(image, [
    {
      prefix: 'fra.ocir.io/tenancy',
      registries: ['ams.ocir.io/tenancy', 'fra.ocir.io/tenancy', 'cache.local:5000/tenancy'],
    },
  ]) as RouteMatch;

  /** A state whose source answers only when the test says so, recording what is asked and in which order. */
  function gatedState() {
    const asked: string[] = [];
    let open: (answer: TagAnswer) => void = () => {};
    const sourceAnswer = new Promise<TagAnswer>((resolve) => {
      open = resolve;
    });
    const present = new Set<string>();
    const state: RegistryState = {
      health: () => 'healthy',
      knownTag: () => undefined,
      knownPresence: (location, digest) =>
        present.has(`${location.registry}@${digest}`) ? 'present' : 'unknown',
      resolveTag: async (location, _tag, _signal, withBody) => {
        asked.push(`tag ${location.registry}${withBody ? ' (body)' : ''}`);
        if (location.registry === 'fra.ocir.io') return sourceAnswer;
        // The mirror's tag names the same digest: its bytes hashed to it, so it is recorded as present.
        present.add(`${location.registry}@${D}`);
        return { kind: 'digest', digest: D, from: 'registry', children: [] };
      },
      hasManifest: async (location) => {
        asked.push(`manifest ${location.registry}`);
        return 'absent';
      },
    };
    return { state, asked, open };
  }

  it('asks the candidates before the source for the tag at the same time as the source, in one round trip', async () => {
    const { state, asked, open } = gatedState();
    const pending = observe(image, preferred, state, never(), 'allow');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      asked,
      ['tag ams.ocir.io (body)', 'tag fra.ocir.io'],
      'both asked before the source answered',
    );
    open({ kind: 'digest', digest: D, from: 'registry' });
    const observation = await pending;
    assert.equal(observation.candidates[0]?.presence, 'present', 'its tag matched: no second request');
    assert.deepEqual(asked, ['tag ams.ocir.io (body)', 'tag fra.ocir.io']);
  });

  it('asks a candidate whose tag names other content for the digest itself (a second request)', async () => {
    const { state, asked, open } = gatedState();
    const pending = observe(image, preferred, state, never(), 'allow');
    open({ kind: 'digest', digest: digestOf('moved on'), from: 'registry' });
    const observation = await pending;
    assert.deepEqual(asked, ['tag ams.ocir.io (body)', 'tag fra.ocir.io', 'manifest ams.ocir.io']);
    assert.equal(observation.candidates[0]?.presence, 'absent');
    assert.equal(observation.candidates[0]?.tag?.kind, 'digest', 'and it knows why: a stale mirror');
  });
});
