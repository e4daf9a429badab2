import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import fastJsonPatch from 'fast-json-patch';
import { buildPatch, type PatchPlan, proveApplies } from '../../../src/admission/patch.js';
import { imageSites } from '../../../src/admission/pod.js';
import { pod } from '../../helpers/generated-pods.js';
import { checkProperty } from '../../helpers/runs.js';

const image = fc.constantFrom(
  'nginx:1.27',
  'quay.io/x/y:v1',
  `registry.local:5000/team/app@sha256:${'a'.repeat(64)}`,
);

/** A plan as mutate builds it: some containers rewritten, pull secrets added, the record written or not. */
const podAndPlan = pod(image, { maxPerKind: 8 }).chain((generated) => {
  const sites = imageSites(generated);
  return fc
    .record({
      rewritten: fc.subarray(sites),
      pullSecrets: fc.uniqueArray(fc.constantFrom('mirror-pull', 'other-pull'), { maxLength: 2 }),
      record: fc.boolean(),
    })
    .map(({ rewritten, pullSecrets, record }) => {
      const plan: PatchPlan = {
        rewrites: rewritten.map((site) => ({
          site,
          target: `mirror.local:5000/${site.index}@sha256:${'b'.repeat(64)}`,
        })),
        pullSecrets,
        originalImages: record ? Object.fromEntries(rewritten.map((s) => [s.name, String(s.image)])) : null,
      };
      return { generated, plan };
    });
});

describe('proveApplies', () => {
  it('proves a patch exactly as applying it to a deep copy would, and never changes the pod it is given', async (t) => {
    await checkProperty(
      t,
      podAndPlan,
      ({ generated, plan }) => {
        const before = structuredClone(generated);
        const ops = buildPatch(generated, plan);
        const proof = proveApplies(generated, ops);
        let expected: { ok: true; result: unknown } | { ok: false };
        try {
          expected = {
            ok: true,
            result: fastJsonPatch.applyPatch(structuredClone(generated), ops, true, false).newDocument,
          };
        } catch {
          expected = { ok: false };
        }
        // Same verdict as a deep copy (a container without an image cannot have it replaced), same result.
        assert.equal(proof.ok, expected.ok);
        if (proof.ok && expected.ok) assert.deepEqual(proof.result, expected.result);
        assert.deepEqual(generated, before, 'the pod under admission is untouched');
        return proof.ok
          ? `applies (${ops.length} ops)`.replace(/\d+ ops/, ops.length > 3 ? 'many ops' : 'few ops')
          : 'refused';
      },
      300,
    );
  });

  it('refuses a patch that does not apply, leaving the pod as it was', () => {
    const subject = { spec: { containers: [{ name: 'a', image: 'x' }] } };
    const before = structuredClone(subject);
    for (const ops of [
      [{ op: 'replace' as const, path: '/spec/containers/3/image', value: 'y' }],
      [{ op: 'add' as const, path: '/metadata/annotations/x', value: 'y' }],
      [
        { op: 'replace' as const, path: '/spec/containers/0/image', value: 'y' },
        { op: 'test' as const, path: '/spec/containers/0/image', value: 'x' },
      ],
    ]) {
      assert.equal(proveApplies(subject, ops).ok, false, JSON.stringify(ops));
      assert.deepEqual(subject, before);
    }
  });
});
