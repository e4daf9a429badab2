import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ManifestResult } from '../../../src/registry/index.js';
import type { ClientPool } from '../../../src/state/clients.js';
import { HealthTracker } from '../../../src/state/health.js';
import { LiveState } from '../../../src/state/live-state.js';
import { digestOf } from '../../helpers/digests.js';

const loc = { registry: 'source.local', repository: 'team/app' };
const D1 = digestOf('1');
const D2 = digestOf('2');
const TTL_MS = 30_000;

/** A registry whose manifest answers the test hands out one by one, counting what was asked. */
function scriptedRegistry() {
  const pending: ((result: ManifestResult) => void)[] = [];
  const asked: string[] = [];
  const client = {
    headManifest: (_repository: string, reference: string) => {
      asked.push(reference);
      return new Promise<ManifestResult>((resolve) => pending.push(resolve));
    },
  };
  const pool = { get: async () => ({ ok: true, client }) } as unknown as ClientPool;
  const answer = (digest: string) =>
    pending.shift()?.({ kind: 'found', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
  return { pool, asked, answer };
}

function liveState(pool: ClientPool, clock: { t: number }) {
  const tracker = new HealthTracker({ failureThreshold: 3, successThreshold: 1 }, () => clock.t);
  return new LiveState(pool, tracker, {
    ttls: { tagTtlMs: TTL_MS, presentTtlMs: 3_600_000, absentTtlMs: 15_000, maxEntries: 100 },
    requestTimeoutMs: 5000,
    now: () => clock.t,
  });
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('LiveState tag resolution', () => {
  it('answers a just-expired tag at once and refreshes it in the background for the next pod', async () => {
    const clock = { t: 0 };
    const registry = scriptedRegistry();
    const state = liveState(registry.pool, clock);
    state.tags.record(loc, 'v1', D1);

    clock.t = TTL_MS + 5_000; // expired, within one more TTL
    const answer = await state.resolveTag(loc, 'v1', AbortSignal.timeout(1000));
    assert.deepEqual(answer, { kind: 'digest', digest: D1, from: 'cache' });
    await settle();
    assert.deepEqual(registry.asked, ['v1'], 'one refresh was sent');

    registry.answer(D2); // the tag moved meanwhile
    await settle();
    assert.deepEqual(await state.resolveTag(loc, 'v1', AbortSignal.timeout(1000)), {
      kind: 'digest',
      digest: D2,
      from: 'cache',
    });
  });

  it('waits for the registry when the answer is older than twice the TTL', async () => {
    const clock = { t: 0 };
    const registry = scriptedRegistry();
    const state = liveState(registry.pool, clock);
    state.tags.record(loc, 'v1', D1);

    clock.t = 2 * TTL_MS;
    const resolving = state.resolveTag(loc, 'v1', AbortSignal.timeout(1000));
    await settle();
    registry.answer(D2);
    assert.deepEqual(await resolving, { kind: 'digest', digest: D2, from: 'registry' });
  });
});
