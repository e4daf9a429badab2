// Report mode (admission.mode: report): a review decided as enforce decides it, answered without its patch.
import { auditAnnotationsOf } from './audit-annotations.js';
import { type MutateOutcome, warningsOf } from './mutate.js';

/**
 * The outcome report mode answers with: the decisions enforce made, the response without patchType and patch, its
 * warnings telling each rewrite as one that would be made, its audit annotations marking the targets not applied,
 * and `reported` set so that the audit lines and the metrics say nothing was applied. Everything else (fault
 * warnings, a patch that could not be proven, a skipped pod) is answered as enforce answers it.
 */
export function reportOnly(outcome: MutateOutcome): MutateOutcome {
  if (outcome.response.patch === undefined) return { ...outcome, reported: true };
  const { patch: _patch, patchType: _patchType, warnings: _warnings, ...rest } = outcome.response;
  const warnings = warningsOf(outcome.decisions, false);
  const response = { ...rest, ...(warnings.length > 0 ? { warnings } : {}) };
  const reported: MutateOutcome = { ...outcome, response, reported: true };
  // Their decision `reported`, the rewrites that would have been made counted, the targets marked not applied.
  const auditAnnotations = auditAnnotationsOf(reported);
  return auditAnnotations ? { ...reported, response: { ...response, auditAnnotations } } : reported;
}
