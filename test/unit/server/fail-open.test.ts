// Fail open, end to end through POST /mutate: an internal error, or a patch that would not apply, admits the pod
// unchanged with a warning, and each is counted as an error in the metrics and logged.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import type { RegistryState } from '../../../src/state/state.js';
import { testApp } from '../../helpers/app.js';
import { digestOf } from '../../helpers/digests.js';
import { fixture } from '../../helpers/fixtures.js';

const config = parseConfig(
  {
    registries: { 'mirror.local:5000': { pullSecret: 'mirror-pull' } },
    routes: [{ prefix: 'docker.io', registries: ['docker.io', 'mirror.local:5000/hub'] }],
  },
  'test',
);
const nginx = digestOf('nginx');
/** docker.io down, the mirror holding nginx: the fixture's nginx:1.27 is rerouted. */
const hubDown = () =>
  new MemoryState()
    .setHealth('docker.io', 'unhealthy')
    .setHealth('mirror.local:5000', 'healthy')
    .putLastKnownTag({ registry: 'docker.io', repository: 'library/nginx' }, '1.27', nginx)
    .putManifest({ registry: 'mirror.local:5000', repository: 'hub/library/nginx' }, nginx);

const review = () =>
  fixture<{ request: { uid: string; object: Record<string, unknown> } }>(
    'admission/pod-create-replicaset.json',
  );

async function admissions(app: ReturnType<typeof testApp>, result: string): Promise<number> {
  const text = await app.metrics.registry.metrics();
  return Number(
    new RegExp(`^regroute_admission_requests_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text)?.[1] ??
      0,
  );
}

describe('fail open', () => {
  it('admits the pod unchanged, with a warning, when routing throws; counts result="error" and logs it', async () => {
    // A state that breaks its own contract (never reject): what an internal bug looks like from the handler.
    const broken: RegistryState = {
      health: () => {
        throw new Error('state exploded');
      },
      knownPresence: () => 'unknown',
      resolveTag: async () => ({ kind: 'absent' }),
      hasManifest: async () => 'unknown',
    };
    const t = testApp(config, broken);
    try {
      const sent = review();
      const res = await t.app.inject({ method: 'POST', url: '/mutate', payload: sent });
      assert.equal(res.statusCode, 200, 'an answer, not a 5xx the failurePolicy would have to decide on');
      assert.deepEqual(res.json().response, {
        uid: sent.request.uid,
        allowed: true,
        warnings: ['regroute: internal error; pod admitted unchanged'],
        auditAnnotations: { decision: 'error' },
      });
      assert.equal(await admissions(t, 'error'), 1);
      assert.equal(await admissions(t, 'patched'), 0);
      const logged = t.logs.find((l) => l.msg === 'admission failed; pod admitted unchanged');
      assert.equal(logged?.uid, sent.request.uid);
      assert.match(JSON.stringify(logged?.err), /state exploded/);
    } finally {
      await t.app.close();
    }
  });

  it('admits the pod unchanged when its patch would not apply, says so in the audit, and counts result="error"', async () => {
    const t = testApp(config, hubDown());
    // No JSON body makes regroute's own patch fail to apply (it is built for the pod it reads), so the test puts
    // in the pod an annotations map that cannot be read: proving the patch then fails, as a patch that does not
    // apply would, and the path after it runs as it would in production.
    const unreadable = () => {
      throw new Error('annotations cannot be read');
    };
    t.app.addHook('preHandler', async (request) => {
      const object = (request.body as { request: { object: { metadata: Record<string, unknown> } } }).request
        .object;
      object.metadata.annotations = new Proxy(
        {},
        { ownKeys: unreadable, getOwnPropertyDescriptor: unreadable },
      );
    });
    try {
      const sent = review();
      const res = await t.app.inject({ method: 'POST', url: '/mutate', payload: sent });
      assert.equal(res.statusCode, 200);
      const { response } = res.json();
      assert.equal(response.allowed, true);
      assert.equal(response.patch, undefined, 'no patch leaves: the apiserver would reject the pod for it');
      assert.equal(response.auditAnnotations.decision, 'patch-failed');
      assert.ok(
        response.warnings.includes('regroute: internal error building the patch; pod admitted unchanged'),
      );
      assert.equal(await admissions(t, 'error'), 1);
      assert.equal(await admissions(t, 'patched'), 0);
      const text = await t.metrics.registry.metrics();
      assert.doesNotMatch(text, /^regroute_rewrites_total\{/m, 'no rewrite counted for a patch not sent');
      const failed = t.logs.find((l) => l.msg === 'patch did not apply');
      assert.match(String(failed?.error), /annotations cannot be read/);
      const audit = t.logs.find((l) => (l.audit as { container?: string } | undefined)?.container === 'web')
        ?.audit as Record<string, unknown> | undefined;
      assert.equal(audit?.to, null, 'the audit says the image stayed');
      assert.match(String(audit?.error), /^patch not applied: /);
    } finally {
      await t.app.close();
    }
  });
});
