// A trusted cache (node-local, or on the node network) that regroute cannot reach from its own pod: never probed,
// never asked, assumed healthy and holding what the source named.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { mutate } from '../../../src/admission/mutate.js';
import type { AdmissionRequest } from '../../../src/admission/review.js';
import { Config } from '../../../src/config/schema.js';
import { createStateHandle } from '../../../src/state/create.js';
import { digestOf } from '../../helpers/digests.js';
import { closedPort } from '../registry/loopback.js';

describe('a trusted registry', () => {
  it('is never probed or asked, and takes a pinned image when the source is down (nothing listens at either)', async (t) => {
    const source = await closedPort();
    const local = await closedPort();
    const config = Config.parse({
      registries: { [source]: { insecure: true }, [local]: { insecure: true, trusted: true } },
      routes: [{ prefix: `${source}/team`, registries: [`${source}/team`, `${local}/cache/team`] }],
    });
    const handle = createStateHandle(config, pino({ level: 'silent' }), { probe: false });
    t.after(() => handle.close());
    await handle.prober.probeAll();
    assert.equal(handle.tracker.health(source), 'unhealthy');
    assert.equal(handle.tracker.snapshot(local).checkedAt, null, 'never probed');

    const digest = digestOf('pinned');
    const request = {
      uid: 'trusted',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'default',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p' },
        spec: { containers: [{ name: 'app', image: `${source}/team/app@${digest}` }] },
      },
    } as unknown as AdmissionRequest;
    const outcome = await mutate(request, { config, state: handle.state }, AbortSignal.timeout(2000));
    const decision = outcome.decisions[0]?.decision;
    assert.equal(decision?.reason, 'source-unhealthy');
    assert.equal(decision?.target, `${local}/cache/team/app@${digest}`);
    assert.equal(handle.tracker.snapshot(local).checkedAt, null, 'never asked');
  });
});
