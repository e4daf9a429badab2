import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeReview } from '../../../src/admission/review.js';
import { admissionReview, demoPod, readAnswer } from '../../../src/demo/pod.js';

const encode = (ops: unknown) => Buffer.from(JSON.stringify(ops)).toString('base64');

describe('the demo pod and its review', () => {
  it('is an AdmissionReview v1 the webhook accepts: a CREATE of the pod', () => {
    const decoded = decodeReview(admissionReview(demoPod('127.0.0.1:5000/demo/hello:1.0'), 'uid-1'));
    assert.ok(decoded.ok);
    assert.equal(decoded.review.request.operation, 'CREATE');
    assert.equal(decoded.review.request.uid, 'uid-1');
    assert.deepEqual(decoded.review.request.object, demoPod('127.0.0.1:5000/demo/hello:1.0'));
  });
});

describe('readAnswer', () => {
  const pod = demoPod('src.example:5000/demo/hello:1.0');

  it('reads an answer without a patch as the pod unchanged', () => {
    const answer = readAnswer(pod, { response: { uid: 'u', allowed: true } });
    assert.deepEqual(answer, { allowed: true, patch: [], pod, warnings: [] });
  });

  it('decodes the patch and applies it to a copy of the pod', () => {
    const ops = [
      { op: 'replace', path: '/spec/containers/0/image', value: 'mirror.example/demo/hello:1.0@sha256:ab' },
      { op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'mirror-pull' }] },
    ];
    const answer = readAnswer(pod, {
      response: { uid: 'u', allowed: true, patchType: 'JSONPatch', patch: encode(ops), warnings: ['moved'] },
    });
    assert.deepEqual(answer.patch, ops);
    assert.equal(answer.pod.spec.containers[0]?.image, 'mirror.example/demo/hello:1.0@sha256:ab');
    assert.deepEqual(answer.pod.spec.imagePullSecrets, [{ name: 'mirror-pull' }]);
    assert.deepEqual(answer.warnings, ['moved']);
    assert.equal(
      pod.spec.containers[0]?.image,
      'src.example:5000/demo/hello:1.0',
      'the pod sent is untouched',
    );
  });

  it('refuses what is not an answer, and a patch that does not apply', () => {
    assert.throws(() => readAnswer(pod, { kind: 'Status' }), /not an AdmissionReview answer/);
    const bad = encode([{ op: 'replace', path: '/spec/nothing/0', value: 1 }]);
    assert.throws(() => readAnswer(pod, { response: { uid: 'u', allowed: true, patch: bad } }));
  });
});
