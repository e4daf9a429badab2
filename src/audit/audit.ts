// The audit trail: one structured log line per image whose routing matters, and the pod-level summary fields.
import type { Logger } from 'pino';
import type { ImageDecision, MutateOutcome } from '../admission/mutate.js';
import { isObject, metadataOf } from '../admission/pod.js';
import type { AdmissionRequest } from '../admission/review.js';
import type { AdmissionMode } from '../config/schema.js';
import { LEFT_FOR_A_FAULT, type Reason } from '../routing/decision.js';

export interface AuditRecord {
  readonly uid: string;
  readonly namespace: string | undefined;
  readonly pod: string | undefined;
  readonly owner: string | undefined;
  readonly container: string;
  readonly containerKind: string;
  readonly from: string;
  readonly to: string | null;
  readonly digest: string | null;
  readonly reason: Reason;
  readonly candidates: string;
  readonly dryRun: boolean;
  readonly decisionMs: number;
  /** Set when the pinned digest is the source's last-known answer (the source failing): how old it is. */
  readonly lastKnownAgeMs?: number;
  /** Why the image could not be parsed, or why the patch rewriting it was not applied. */
  readonly error?: string;
  /** `report` when the review was answered in report mode: `to` is where the image would have gone; nothing was. */
  readonly mode?: AdmissionMode;
}

/** Unchanged images worth a line: something was down, stale or late, so an operator wants to know. */
const NOTEWORTHY: ReadonlySet<Reason> = new Set([...LEFT_FOR_A_FAULT, 'invalid-reference']);
// (image-cap images are summed up in one line of their own, below.)

function podIdentity(request: AdmissionRequest): { pod: string | undefined; owner: string | undefined } {
  const metadata = metadataOf(request.object);
  const name = typeof metadata?.name === 'string' ? metadata.name : undefined;
  const generateName = typeof metadata?.generateName === 'string' ? `${metadata.generateName}*` : undefined;
  const owners = Array.isArray(metadata?.ownerReferences) ? metadata.ownerReferences : [];
  const controller = owners.find((o: unknown) => isObject(o) && o.controller === true) ?? owners[0];
  const owner =
    isObject(controller) && typeof controller.kind === 'string' && typeof controller.name === 'string'
      ? `${controller.kind}/${controller.name}`
      : undefined;
  return { pod: name ?? request.name ?? generateName, owner };
}

export function auditRecords(
  request: AdmissionRequest,
  outcome: MutateOutcome,
  decisionMs: number,
): AuditRecord[] {
  const { pod, owner } = podIdentity(request);
  const worth = (d: ImageDecision) => d.decision.target !== null || NOTEWORTHY.has(d.decision.reason);
  const records: AuditRecord[] = outcome.decisions
    .filter(worth)
    .map(({ site, decision, error: parseError }) => {
      // A rewrite whose patch was not applied leaves the image as it was: the line says so, and why.
      const error =
        decision.target && outcome.patchError ? `patch not applied: ${outcome.patchError}` : parseError;
      return {
        uid: request.uid,
        namespace: request.namespace,
        pod,
        owner,
        container: site.name,
        containerKind: site.kind,
        // A non-string image (never sent by the apiserver) must not throw here and cost the whole pod its routing.
        from: typeof site.image === 'string' ? site.image : `(${typeof site.image})`,
        to: outcome.patchError ? null : decision.target,
        digest: decision.digest,
        reason: decision.reason,
        candidates: decision.verdicts.map((v) => `${v.location}=${v.verdict}`).join(','),
        dryRun: request.dryRun === true,
        decisionMs,
        ...(decision.lastKnownAgeMs !== undefined ? { lastKnownAgeMs: decision.lastKnownAgeMs } : {}),
        ...(error ? { error } : {}),
        ...(outcome.reported ? { mode: 'report' as const } : {}),
      };
    });
  // Images past the per-review cap get one line for all of them, saying what was cut.
  const cut = outcome.decisions.filter((d) => d.decision.reason === 'image-cap').length;
  if (cut > 0) {
    records.push({
      uid: request.uid,
      namespace: request.namespace,
      pod,
      owner,
      container: '*',
      containerKind: 'review',
      from: `${cut} images past the first ${outcome.decisions.length - cut}`,
      to: null,
      digest: null,
      reason: 'image-cap',
      candidates: '',
      dryRun: request.dryRun === true,
      decisionMs,
      ...(outcome.reported ? { mode: 'report' as const } : {}),
    });
  }
  return records;
}

export function writeAudit(log: Logger, records: readonly AuditRecord[]): void {
  for (const record of records) {
    if (record.to)
      log.info({ audit: record }, record.mode === 'report' ? 'image would be rerouted' : 'image rerouted');
    else log.warn({ audit: record }, 'image left unchanged');
  }
}
