// The check behind every "leaves a valid Pod" assertion: the Kubernetes schema, and no field outside it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pod } from 'kubernetes-models/v1';
import { assertValidPod } from '../../helpers/apiserver.js';
import { admissionReviews } from '../../helpers/fixtures.js';

const pod = () => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', annotations: { a: 'b' } },
  spec: { imagePullSecrets: [{ name: 'mirror-pull' }], containers: [{ name: 'web', image: 'nginx:1.27' }] },
});

describe('the valid Pod check', () => {
  it('accepts every Pod of the AdmissionReview fixtures', () => {
    let pods = 0;
    for (const { review } of admissionReviews()) {
      const request = review.request as { kind: { kind: string }; object: unknown };
      if (request.kind.kind !== 'Pod') continue;
      assertValidPod(request.object);
      pods += 1;
    }
    assert.ok(pods >= 9, `${pods} pods checked`);
  });

  for (const [where, misspell] of [
    ['spec.imagePullSecret', (p: ReturnType<typeof pod>) => Object.assign(p.spec, { imagePullSecret: [] })],
    ['metadata.annotaions', (p: ReturnType<typeof pod>) => Object.assign(p.metadata, { annotaions: {} })],
    [
      'spec.containers[0].imagePullPolicyy',
      (p: ReturnType<typeof pod>) =>
        Object.assign(p.spec.containers[0] ?? {}, { imagePullPolicyy: 'Always' }),
    ],
  ] as const) {
    it(`rejects the misspelt field ${where}, which the schema validator alone lets through`, () => {
      const misspelt = pod();
      misspell(misspelt);
      assert.doesNotThrow(() => new Pod(misspelt as never).validate(), 'kubernetes-models accepts it');
      const path = `/${where.replace(/\[(\d+)\]/g, '/$1').replaceAll('.', '/')}`;
      assert.throws(
        () => assertValidPod(misspelt),
        (error: Error) =>
          error.message.includes('fields outside the Pod schema') && error.message.includes(path),
      );
    });
  }

  it('still rejects what the schema itself refuses', () => {
    const wrongType = pod() as { spec: { containers: unknown } };
    wrongType.spec.containers = 'nginx';
    assert.throws(() => assertValidPod(wrongType));
  });

  it('accepts keys of maps the schema leaves open (labels, annotations, resource quantities)', () => {
    const open = pod() as ReturnType<typeof pod> & { metadata: { labels?: Record<string, string> } };
    open.metadata.labels = { 'app.kubernetes.io/name': 'web' };
    Object.assign(open.spec.containers[0] ?? {}, { resources: { limits: { 'nvidia.com/gpu': '1' } } });
    assertValidPod(open);
  });
});
