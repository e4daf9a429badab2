// The demo's pod as the apiserver sends it to the webhook, and the webhook's answer read back as a user would.
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { ADMISSION_API_VERSION, type AdmissionResponse } from '../admission/review.js';

export const DEMO_NAMESPACE = 'demo';
export const DEMO_POD = 'hello';

export interface DemoPod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec: {
    containers: { name: string; image: string }[];
    imagePullSecrets?: { name: string }[];
  };
}

export function demoPod(image: string): DemoPod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: DEMO_POD, namespace: DEMO_NAMESPACE },
    spec: { containers: [{ name: DEMO_POD, image }] },
  };
}

/** The AdmissionReview the apiserver sends for `kubectl apply` of `pod`; `uid` tells one admission from the next. */
export function admissionReview(pod: DemoPod, uid: string) {
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: pod.metadata.name,
      namespace: pod.metadata.namespace,
      operation: 'CREATE',
      userInfo: { username: 'demo-user' },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

export interface ReadAnswer {
  readonly allowed: boolean;
  /** The JSON patch, decoded from base64; [] when the pod is admitted as it is. */
  readonly patch: Operation[];
  /** The pod with the patch applied: what is stored, and what the kubelet pulls. */
  readonly pod: DemoPod;
  readonly warnings: readonly string[];
}

/** Reads a webhook's AdmissionReview answer for `pod`, as the apiserver does: decode the patch, then apply it. */
export function readAnswer(pod: DemoPod, body: unknown): ReadAnswer {
  const response = (body as { response?: AdmissionResponse } | null)?.response;
  if (!response || typeof response.allowed !== 'boolean') {
    throw new Error(`not an AdmissionReview answer: ${JSON.stringify(body).slice(0, 300)}`);
  }
  const patch: Operation[] = response.patch
    ? (JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[])
    : [];
  const patched = fastJsonPatch.applyPatch(structuredClone(pod), patch, true, false).newDocument;
  return { allowed: response.allowed, patch, pod: patched, warnings: response.warnings ?? [] };
}
