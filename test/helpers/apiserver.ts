// What the apiserver does with a webhook's answer: decode the base64 JSON patch, apply it (RFC 6902), and the
// Pod must still validate against the Kubernetes schema, with no field the schema lacks.
import assert from 'node:assert/strict';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import type { AdmissionResponse } from '../../src/admission/review.js';
import { assertStrictlyValidPod } from './strict-schema.js';

export function patchOf(response: AdmissionResponse): Operation[] {
  if (response.patch === undefined) return [];
  assert.equal(response.patchType, 'JSONPatch');
  const ops: unknown = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
  assert.ok(Array.isArray(ops), 'the patch is a JSON array of operations');
  return ops as Operation[];
}

/** Applies the response's patch to a copy of the pod exactly as the apiserver would; throws when it does not apply. */
export function applyResponse(pod: unknown, response: AdmissionResponse): Record<string, unknown> {
  const ops = patchOf(response);
  const copy = structuredClone(pod);
  return fastJsonPatch.applyPatch(copy, ops, true, false).newDocument as Record<string, unknown>;
}

/**
 * Throws with the schema's message when the object is not a valid Pod, and names any field outside the Pod schema:
 * a patch that wrote `imagePullSecret` or `annotaions` would otherwise pass, and the apiserver drop the field.
 */
export function assertValidPod(pod: unknown): void {
  assertStrictlyValidPod(pod);
}
