// Report mode (admission.mode: report): a review decided as enforce decides it, answered without its patch.
import { auditAnnotationsOf, imagesSummary, type PodDecision } from './audit-annotations.js';
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
  const annotations = auditAnnotationsOf(reported);
  if (!annotations) return reported;
  return {
    ...reported,
    response: {
      ...response,
      // `reported`: the pod enforce would have rewritten, with the rewrites it would have made.
      auditAnnotations: {
        ...annotations,
        decision: 'reported' satisfies PodDecision,
        images: imagesSummary(outcome.decisions, false),
        rewrites: String(outcome.decisions.filter((d) => d.decision.target !== null).length),
      },
    },
  };
}
