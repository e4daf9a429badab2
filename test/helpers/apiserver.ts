// What the apiserver does with a webhook's answer: decode the base64 JSON patch, apply it (RFC 6902), and the
// Pod must still validate against the Kubernetes schema.
import assert from 'node:assert/strict';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { Pod } from 'kubernetes-models/v1';
import type { AdmissionResponse } from '../../src/admission/review.js';

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

/** Throws with the schema's message when the object is not a valid Pod. */
export function assertValidPod(pod: unknown): void {
  new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate();
}
