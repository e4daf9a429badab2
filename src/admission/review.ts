// AdmissionReview v1: the schema of what the apiserver sends, and the shape of what regroute answers.
import { z } from 'zod';

const GroupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() });
const GroupVersionResource = z.object({ group: z.string(), version: z.string(), resource: z.string() });

export const AdmissionRequest = z.object({
  uid: z.string().min(1),
  kind: GroupVersionKind,
  resource: GroupVersionResource,
  subResource: z.string().optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
  operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
  dryRun: z.boolean().optional(),
  // The object is kept as JSON: it is walked defensively, never trusted to be a valid Pod.
  object: z.unknown().optional(),
  oldObject: z.unknown().optional(),
});
export type AdmissionRequest = z.infer<typeof AdmissionRequest>;

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export const AdmissionReview = z.object({
  apiVersion: z.literal(ADMISSION_API_VERSION, {
    error: `only ${ADMISSION_API_VERSION} AdmissionReviews are served (configure admissionReviewVersions: [v1])`,
  }),
  kind: z.literal('AdmissionReview'),
  request: AdmissionRequest,
});
export type AdmissionReview = z.infer<typeof AdmissionReview>;

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
  /** Kept in the apiserver's audit event, each key prefixed with the webhook's name. */
  auditAnnotations?: Record<string, string>;
  status?: { code: number; message: string };
}

export type Decoded = { ok: true; review: AdmissionReview } | { ok: false; message: string };

export function decodeReview(body: unknown): Decoded {
  const parsed = AdmissionReview.safeParse(body);
  if (parsed.success) return { ok: true, review: parsed.data };
  return {
    ok: false,
    message: `not an AdmissionReview v1: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`,
  };
}

export const reviewOf = (response: AdmissionResponse) => ({
  apiVersion: ADMISSION_API_VERSION,
  kind: 'AdmissionReview',
  response,
});

/** The uid of whatever was sent, when it has one: an error answer still names the request it answers. */
export function uidOf(body: unknown): string {
  if (typeof body !== 'object' || body === null) return '';
  const request = (body as { request?: unknown }).request;
  if (typeof request !== 'object' || request === null) return '';
  const uid = (request as { uid?: unknown }).uid;
  return typeof uid === 'string' ? uid : '';
}
