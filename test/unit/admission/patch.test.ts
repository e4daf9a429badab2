import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { buildPatch, type PatchPlan, proveApplies } from '../../../src/admission/patch.js';
import { imageSites } from '../../../src/admission/pod.js';
import { pod } from '../../helpers/generated-pods.js';
import { checkProperty } from '../../helpers/runs.js';

const image = fc.constantFrom(
  'nginx:1.27',
  'quay.io/x/y:v1',
  `registry.local:5000/team/app@sha256:${'a'.repeat(64)}`,
);

/** A plan as mutate builds it: some containers and image volumes rewritten, pull secrets added, the record or not. */
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
        originalImages: record
          ? {
              containers: Object.fromEntries(
                rewritten.filter((s) => s.kind !== 'volumes').map((s) => [s.name, String(s.image)]),
              ),
              volumes: Object.fromEntries(
                rewritten.filter((s) => s.kind === 'volumes').map((s) => [s.name, String(s.image)]),
              ),
            }
          : null,
      };
      return { generated, plan };
    });
});

/** The verdict of applying the ops to a deep copy, as the apiserver does. */
function onDeepCopy(subject: unknown, ops: Operation[]): { ok: true } | { ok: false; error: string } {
  try {
    fastJsonPatch.applyPatch(structuredClone(subject), ops, true, false);
    return { ok: true };
  } catch (error) {
    // Without the document it was applied to, which fast-json-patch appends (`tree: ...`).
    return {
      ok: false,
      error: (error instanceof Error ? error.message : String(error)).split('\ntree: ')[0] as string,
    };
  }
}

/** Paths through what a pod holds and what it does not: members, indices in and out of range, `-`, escapes. */
const segment = fc.constantFrom(
  'spec',
  'metadata',
  'containers',
  'initContainers',
  'ephemeralContainers',
  'imagePullSecrets',
  'volumes',
  'reference',
  'annotations',
  'labels',
  'image',
  'name',
  'env',
  '0',
  '1',
  '7',
  '-',
  '01',
  'a~1b',
  'a~0b',
  'constructor',
  'toString',
  '',
);
const oddOps: fc.Arbitrary<Operation[]> = fc.array(
  fc.record({
    op: fc.constantFrom('add' as const, 'replace' as const),
    path: fc.oneof(
      fc.array(segment, { minLength: 1, maxLength: 5 }).map((segments) => `/${segments.join('/')}`),
      fc.constantFrom(
        '/spec/containers/0/image',
        '/spec/containers/1/image',
        '/spec/containers/0',
        '/spec/containers/-',
        '/spec/containers/0/env/-',
        '/spec/initContainers/0/image',
        '/spec/volumes/0/image/reference',
        '/spec/volumes/1/image',
        '/spec/imagePullSecrets',
        '/spec/imagePullSecrets/-',
        '/spec/imagePullSecrets/0',
        '/metadata',
        '/metadata/annotations',
        '/metadata/annotations/a~1b',
        '/metadata/labels/app',
      ),
    ),
    value: fc.constantFrom<unknown>('v', { name: 's' }, [], {}),
  }) as fc.Arbitrary<Operation>,
  { minLength: 1, maxLength: 4 },
);

describe('proveApplies', () => {
  it('proves a patch exactly as applying it to a deep copy would, and never changes the pod it is given', async (t) => {
    await checkProperty(
      t,
      podAndPlan,
      ({ generated, plan }) => {
        const before = structuredClone(generated);
        const ops = buildPatch(generated, plan);
        const proof = proveApplies(generated, ops);
        // Same verdict as a deep copy (a container without an image cannot have it replaced).
        assert.deepEqual(proof, onDeepCopy(generated, ops));
        assert.deepEqual(generated, before, 'the pod under admission is untouched');
        return proof.ok
          ? `applies (${ops.length} ops)`.replace(/\d+ ops/, ops.length > 3 ? 'many ops' : 'few ops')
          : 'refused';
      },
      300,
    );
  });

  it('gives the verdict of a deep copy for any add and replace operations, however odd their paths', async (t) => {
    await checkProperty(
      t,
      pod(image, { maxPerKind: 3 }).chain((generated) =>
        fc.record({ generated: fc.constant(generated), ops: oddOps }),
      ),
      ({ generated, ops }) => {
        const before = structuredClone(generated);
        // Each application gets operations of its own: applying an op can change the value an earlier one added.
        const proof = proveApplies(generated, structuredClone(ops));
        assert.deepEqual(proof, onDeepCopy(generated, structuredClone(ops)));
        assert.deepEqual(generated, before, 'the pod under admission is untouched');
        return proof.ok ? 'applies' : 'refused';
      },
      1000,
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
