// The AdmissionResponse's auditAnnotations: the decision on a pod, in a few short values the apiserver's audit log
// keeps beside the request (each key prefixed by the apiserver with the webhook's name: pods.regroute.io/decision).
import type { ImageDecision, MutateOutcome } from './mutate.js';

/** What became of the pod: its audit annotation `decision`. */
export type PodDecision = 'rewritten' | 'reported' | 'unchanged' | 'skipped' | 'patch-failed';

/**
 * Keys, each a qualified name's name part (at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends), as
 * the apiserver requires once it has put the webhook's name before it:
 * - `decision`: rewritten, unchanged, skipped or patch-failed (a patch was built but could not be proven to apply);
 *   `reported` in report mode for a pod enforce would have rewritten; the server answers `error` when routing threw
 *   and the pod was admitted unchanged
 * - `skip-reason`: why a skipped pod was not routed (operation, skip-label, mirror-pod)
 * - `images`: one entry per image, in the pod's order (containers of each kind, then image volumes):
 *   `<kind>/<name> <reason> <image>`, and ` -> <target>` after a rewritten one; entries are joined by `; ` and the
 *   value is cut at MAX_AUDIT_VALUE_BYTES with a last entry `… <n> more`
 * - `rewrites`: how many images the patch rewrites, when it was sent (reported: would have rewritten)
 * - `reasons`: how many images had each reason, `<reason>=<count>` joined by `,` in order of first appearance:
 *   complete even when `images` was cut
 */
export const AUDIT_KEYS = ['decision', 'skip-reason', 'images', 'rewrites', 'reasons'] as const;
export type AuditKey = (typeof AUDIT_KEYS)[number];

/**
 * A bound on each value, in UTF-8 bytes. Audit backends keep every annotation of every request (a pod admission is
 * logged at least at Metadata level in most clusters), and the apiserver truncates audit annotation values of its
 * own policies at 10 KB: 4 KiB keeps a pod's annotations well under that while holding a few dozen images.
 */
export const MAX_AUDIT_VALUE_BYTES = 4096;
/** A name or image longer than this is cut in the summary: one hostile image must not take the whole budget. */
const MAX_FIELD_CHARS = 256;

/** C0 and C1 control characters: an audit line read in a terminal must not carry them. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

const field = (value: unknown): string => {
  const text = typeof value === 'string' ? value : `(${typeof value})`;
  const cut = text.length > MAX_FIELD_CHARS ? `${text.slice(0, MAX_FIELD_CHARS)}…` : text;
  return cut.replace(CONTROL, '?');
};

const entryOf = ({ site, decision }: ImageDecision, applied: boolean): string => {
  const head = `${site.kind}/${field(site.name)} ${decision.reason} ${field(site.image)}`;
  if (!decision.target) return head;
  return `${head} -> ${decision.target}${applied ? '' : ' (not applied)'}`;
};

/**
 * The per-image summary, cut to the byte bound with a marker saying how many entries were left out. `applied` is
 * false when the patch was not sent: the targets then say so.
 */
export function imagesSummary(decisions: readonly ImageDecision[], applied = true): string {
  let out = '';
  let bytes = 0;
  for (const [i, decided] of decisions.entries()) {
    const entry = (i === 0 ? '' : '; ') + entryOf(decided, applied);
    const size = Buffer.byteLength(entry);
    // Room is kept for the marker, so that a cut summary still ends by saying so.
    const marker = `; … ${decisions.length - i} more`;
    const last = i === decisions.length - 1;
    if (bytes + size > MAX_AUDIT_VALUE_BYTES - (last ? 0 : Buffer.byteLength(marker))) {
      return `${out}${i === 0 ? marker.slice(2) : marker}`;
    }
    out += entry;
    bytes += size;
  }
  return out;
}

/** `<reason>=<count>` per reason, in order of first appearance: at most one entry per reason, so always short. */
function reasonCounts(decisions: readonly ImageDecision[]): string {
  const counts = new Map<string, number>();
  for (const { decision } of decisions) counts.set(decision.reason, (counts.get(decision.reason) ?? 0) + 1);
  return [...counts].map(([reason, count]) => `${reason}=${count}`).join(',');
}

/**
 * What became of the pod, the one rule the audit annotations and the metrics share. A reported review (report mode)
 * is one enforce would have patched exactly when some image has a target.
 */
export function podDecisionOf(
  outcome: Pick<MutateOutcome, 'skipped' | 'patchError' | 'response' | 'decisions' | 'reported'>,
): PodDecision {
  if (outcome.skipped) return 'skipped';
  if (outcome.patchError !== undefined) return 'patch-failed';
  if (outcome.reported)
    return outcome.decisions.some((d) => d.decision.target !== null) ? 'reported' : 'unchanged';
  return outcome.response.patch ? 'rewritten' : 'unchanged';
}

/**
 * The audit annotations of an outcome. None for an object that is not a pod: regroute does not look at it, and the
 * webhook's rules never send one.
 */
export function auditAnnotationsOf(
  outcome: Pick<MutateOutcome, 'skipped' | 'patchError' | 'response' | 'decisions' | 'reported'>,
): Partial<Record<AuditKey, string>> | undefined {
  if (outcome.skipped === 'not-a-pod') return undefined;
  const decision = podDecisionOf(outcome);
  if (outcome.skipped) return { decision, 'skip-reason': outcome.skipped };
  const annotations: Partial<Record<AuditKey, string>> = { decision };
  // Targets are marked not applied unless a patch was sent (a pod left unchanged has none to mark).
  if (outcome.decisions.length > 0)
    annotations.images = imagesSummary(outcome.decisions, decision === 'rewritten');
  if (decision === 'rewritten' || decision === 'reported')
    annotations.rewrites = String(outcome.decisions.filter((d) => d.decision.target !== null).length);
  if (outcome.decisions.length > 0) annotations.reasons = reasonCounts(outcome.decisions);
  return annotations;
}
