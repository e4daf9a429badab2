// The Event about a pod rerouted at admission, built from the review and its outcome: what it says and what it is
// attached to. Pure; admission-events.ts posts it.
import type { CoreV1Event } from '@kubernetes/client-node';
import { type MutateOutcome, printable } from '../admission/mutate.js';
import { isObject, metadataOf } from '../admission/pod.js';
import type { AdmissionRequest } from '../admission/review.js';

/** The Event's reason, as `kubectl get events` shows it. Repair of a running pod says ImageRerouted. */
export const REROUTED_AT_ADMISSION = 'Rerouted';

/** Reasons an Event is not made for a rewritten pod. */
export const EVENT_SKIPS = ['dry-run', 'unnamed', 'no-namespace'] as const;
export type EventSkip = (typeof EVENT_SKIPS)[number];

/** An Event's message stays short: `kubectl describe` prints it on one line, and events.k8s.io caps notes at 1 KiB. */
export const MAX_MESSAGE_CHARS = 1024;

type Json = Record<string, unknown>;
type Reference = NonNullable<CoreV1Event['related']>;

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;

/** The controller among the owner references, when it names itself completely (the uid makes `describe` find it). */
function controllerOf(metadata: Json | null, namespace: string): Reference | undefined {
  const owners = Array.isArray(metadata?.ownerReferences) ? metadata.ownerReferences : [];
  const owner = owners.find((o: unknown) => isObject(o) && o.controller === true);
  if (!isObject(owner)) return undefined;
  const [apiVersion, kind, name, uid] = [
    str(owner.apiVersion),
    str(owner.kind),
    str(owner.name),
    str(owner.uid),
  ];
  return apiVersion && kind && name && uid ? { apiVersion, kind, name, uid, namespace } : undefined;
}

/**
 * What the Event is about. A pod being created has no uid yet, and one made from generateName no name either: the
 * apiserver fills both in after admission. So:
 * - a pod with a name: the Pod by namespace and name (and its uid when it has one: an ephemeral container's pod);
 *   `kubectl events --for pod/NAME` and `kubectl get events --field-selector involvedObject.name=NAME` find it,
 *   while `kubectl describe pod`, which matches uids too, does not list it. Its controller is the related object.
 * - a pod from generateName: its controller (ReplicaSet, Job…, named with its uid in ownerReferences), which
 *   `kubectl describe` does list it under; the message names the pod by its generateName.
 * - neither: no Event (skipped `unnamed`).
 */
function subjectOf(
  request: AdmissionRequest,
  namespace: string,
): { involved: Reference; related?: Reference; pod: string } | EventSkip {
  const metadata = metadataOf(request.object);
  const controller = controllerOf(metadata, namespace);
  const name = str(metadata?.name) ?? str(request.name);
  if (name) {
    const uid = str(metadata?.uid);
    const involved = { apiVersion: 'v1', kind: 'Pod', name, namespace, ...(uid ? { uid } : {}) };
    return controller ? { involved, related: controller, pod: name } : { involved, pod: name };
  }
  const generateName = str(metadata?.generateName);
  if (controller && generateName) return { involved: controller, pod: `${generateName}*` };
  return 'unnamed';
}

/** Event names are DNS subdomains; this one is unique per review and subject, so a retried post is a 409, not two. */
function eventName(subject: string, uid: string): string {
  let hash = 0x811c9dc5;
  for (const char of `${uid}|${subject}`)
    hash = Math.imul(hash ^ (char.codePointAt(0) ?? 0), 0x01000193) >>> 0;
  return `${subject.slice(0, 200).replace(/[^a-z0-9.-]/g, '-')}.regroute-${hash.toString(16).padStart(8, '0')}`;
}

/** `from -> to (reason)` per rewritten image, cut to MAX_MESSAGE_CHARS with the count of those left out. */
function messageOf(pod: string, rewrites: MutateOutcome['decisions']): string {
  const head = `regroute rerouted ${rewrites.length} image${rewrites.length === 1 ? '' : 's'} of pod ${pod} at admission: `;
  let message = head;
  for (const [i, { site, decision }] of rewrites.entries()) {
    const entry = `${i === 0 ? '' : '; '}${site.kind}/${printable(site.name)} ${printable(site.image)} -> ${decision.target} (${decision.reason})`;
    const more = `; … ${rewrites.length - i} more in regroute's audit log`;
    const room = MAX_MESSAGE_CHARS - (i === rewrites.length - 1 ? 0 : more.length);
    if (message.length + entry.length > room) return `${message}${i === 0 ? more.slice(2) : more}`;
    message += entry;
  }
  return message;
}

export interface EventContext {
  readonly now: Date;
  /** This replica, for `reportingInstance`. */
  readonly instance: string;
}

/**
 * The Event for a review's outcome: null when nothing was rewritten (an answer without a patch), a skip when the pod
 * was rewritten but no Event can or may be made for it (a dry run is never told about: nothing was created).
 */
export function admissionEvent(
  request: AdmissionRequest,
  outcome: Pick<MutateOutcome, 'response' | 'decisions' | 'skipped' | 'patchError'>,
  context: EventContext,
): { namespace: string; event: CoreV1Event } | EventSkip | null {
  if (!outcome.response.patch || outcome.skipped || outcome.patchError !== undefined) return null;
  const rewrites = outcome.decisions.filter((d) => d.decision.target !== null);
  if (rewrites.length === 0) return null;
  if (request.dryRun === true) return 'dry-run';
  const namespace = str(request.namespace) ?? str(metadataOf(request.object)?.namespace);
  if (!namespace) return 'no-namespace';
  const subject = subjectOf(request, namespace);
  if (typeof subject === 'string') return subject;
  // A source that is down (or whose tag was taken from the mirrors while it was) is worth a look.
  const sourceDown = rewrites.some(
    ({ decision }) => decision.reason === 'source-unhealthy' || decision.reason === 'unverified-tag',
  );
  const message = messageOf(printable(subject.pod), rewrites).slice(0, MAX_MESSAGE_CHARS);
  return {
    namespace,
    event: {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: eventName(subject.involved.name ?? subject.pod, request.uid), namespace },
      involvedObject: subject.involved,
      ...(subject.related ? { related: subject.related } : {}),
      type: sourceDown ? 'Warning' : 'Normal',
      reason: REROUTED_AT_ADMISSION,
      action: 'Admit',
      message,
      source: { component: 'regroute' },
      reportingComponent: 'regroute',
      reportingInstance: context.instance,
      firstTimestamp: context.now,
      lastTimestamp: context.now,
      count: 1,
    },
  };
}
