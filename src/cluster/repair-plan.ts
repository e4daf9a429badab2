// Which containers of a pod are stuck pulling, what routing them means, and the patch and Events that say so. Pure.
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';
import { buildPatch, parseOriginalImages, pointer } from '../admission/patch.js';
import type { ImageSite } from '../admission/pod.js';
import type { Config } from '../config/schema.js';
import type { ContainerRecord, PodRecord } from '../kube/pod-record.js';
import { parseReference, type Reference } from '../reference/index.js';
import type { Decision } from '../routing/decision.js';
import { type Candidate, matchRoute, type RouteMatch } from '../routing/route.js';

/** The waiting reasons of a container whose image cannot be pulled (kubelet `images.ErrImagePull`, `ErrImagePullBackOff`). */
export const PULL_FAILURES: ReadonlySet<string> = new Set(['ErrImagePull', 'ImagePullBackOff']);

/** Event reasons, as `kubectl describe pod` and `kubectl get events` show them. */
export const REROUTED = 'ImageRerouted';
export const NOT_REROUTED = 'ImageNotRerouted';

export type PodSkip = 'skip-label' | 'mirror-pod' | 'done';

/** Why repair leaves the whole pod alone, or null when it may look at its containers. */
export function podSkip(pod: PodRecord): PodSkip | null {
  if (pod.skip) return 'skip-label';
  if (pod.mirror) return 'mirror-pod';
  if (pod.done) return 'done';
  return null;
}

/**
 * Containers and init containers waiting on a failed pull. Never a running container (changing its image would
 * restart it), never an ephemeral one (its image cannot be changed).
 */
export function stuckContainers(pod: PodRecord): ContainerRecord[] {
  if (podSkip(pod) !== null) return [];
  return pod.containers.filter(
    (c) =>
      (c.kind === 'containers' || c.kind === 'initContainers') &&
      !c.running &&
      c.waiting !== undefined &&
      PULL_FAILURES.has(c.waiting),
  );
}

export interface RepairSubject {
  readonly container: ContainerRecord;
  /** The image as the pod names it now: what the decision keeps or moves. */
  readonly reference: Reference;
  /**
   * The route of the image before regroute first changed it (or of the image itself): candidates in order, `isOwn`
   * marking where the pod points now.
   */
  readonly match: RouteMatch;
  /** What the regroute.io/original-images annotation records for the container. */
  readonly original: string;
}

/**
 * What the decision is about for one stuck container, or undefined when no route takes its image. A container
 * regroute rewrote before is routed by its original image's route, pinned to the digest it was given.
 */
export function repairSubject(
  container: ContainerRecord,
  originals: Readonly<Record<string, string>>,
  routes: Config['routes'],
): RepairSubject | undefined {
  const parsed = parseReference(container.image);
  if (!parsed.ok) return undefined;
  const reference = parsed.reference;
  const recorded = Object.hasOwn(originals, container.name) ? originals[container.name] : undefined;
  const original = recorded ?? container.image;
  const routed = recorded !== undefined ? parseReference(recorded) : parsed;
  const match = routed.ok ? matchRoute(routed.reference, routes) : null;
  if (!match) return undefined;
  const isOwn = (c: Candidate) => c.registry === reference.registry && c.repository === reference.repository;
  return {
    container,
    reference,
    match: { ...match, candidates: match.candidates.map((c) => ({ ...c, isOwn: isOwn(c) })) },
    original,
  };
}

/** True when the pod can pull from `candidate`: it needs no pull secret, or the pod already names it. */
export function canPullFrom(
  pod: Pick<PodRecord, 'pullSecrets'>,
  registries: Config['registries'],
  candidate: Candidate,
): boolean {
  const secret = registries[candidate.registry]?.pullSecret;
  return secret === undefined || pod.pullSecrets.includes(secret);
}

export interface Rewrite {
  readonly container: ContainerRecord;
  readonly target: string;
  /** The original image recorded in the annotation for this container. */
  readonly original: string;
}

/**
 * The JSON patch of a repair. Its first operation sets `metadata.resourceVersion` to the one the pod was read at:
 * the API server applies the patch to the stored pod and refuses the update with 409 Conflict when the result's
 * resourceVersion is not the stored one, so a pod changed since it was read is never patched blind.
 */
export function repairPatch(
  pod: PodRecord,
  originals: Readonly<Record<string, string>>,
  rewrites: readonly Rewrite[],
): Operation[] {
  const sites: ImageSite[] = rewrites.map(({ container }) => ({
    kind: container.kind,
    index: container.index,
    name: container.name,
    image: container.image,
  }));
  // The smallest pod buildPatch needs: whether metadata.annotations exists decides how the annotation is added.
  const shape = { metadata: pod.hasAnnotations ? { annotations: {} } : {}, spec: {} };
  const ops = buildPatch(shape, {
    rewrites: rewrites.map(({ target }, i) => ({ site: sites[i] as ImageSite, target })),
    // A pod's imagePullSecrets cannot change after it is created.
    pullSecrets: [],
    originalImages: {
      containers: {
        ...originals,
        ...Object.fromEntries(rewrites.map(({ container, original }) => [container.name, original])),
      },
      // What admission recorded of image volumes stays as it was.
      volumes: parseOriginalImages(pod.originals).volumes,
    },
  });
  return [
    { op: 'replace', path: pointer('metadata', 'resourceVersion'), value: pod.resourceVersion },
    ...ops,
  ];
}

const shortDigest = (digest: string | null) => (digest ? digest.slice(0, digest.indexOf(':') + 13) : '');

/** Where a decision would take the image, whether or not that is where the pod points now. */
export function chosenLocation(decision: Decision): string | undefined {
  return decision.verdicts.find((v) => v.verdict === 'chosen')?.location;
}

/** The pull secret a candidate that holds the digest needs and the pod lacks, for the Event saying so. */
export function missingSecrets(
  decision: Decision,
  subject: RepairSubject,
  registries: Config['registries'],
): { location: string; secret: string }[] {
  const unavailable = new Set(
    decision.verdicts.filter((v) => v.verdict === 'pull-secret-unavailable').map((v) => v.location),
  );
  return subject.match.candidates.flatMap((c) => {
    const location = `${c.registry}/${c.repository}`;
    const secret = registries[c.registry]?.pullSecret;
    return unavailable.has(location) && secret ? [{ location, secret }] : [];
  });
}

/** Why a stuck container is left as it is, in words for the pod's Event. */
export function whyNotRerouted(
  decision: Decision,
  subject: RepairSubject,
  registries: Config['registries'],
): string {
  const image = subject.container.image;
  const candidates = decision.verdicts.map((v) => `${v.location}=${v.verdict}`).join(', ');
  const secrets = missingSecrets(decision, subject, registries);
  if (secrets.length > 0) {
    const [first] = secrets;
    return (
      `regroute cannot move ${subject.container.name} (${image}) to ${first?.location}, which holds its digest: ` +
      `pulling from it needs the pull secret "${first?.secret}", which the pod does not name, and a pod's ` +
      'imagePullSecrets cannot change after it is created. Delete the pod: the new one its controller makes gets ' +
      `the secret at admission. Candidates: ${candidates}`
    );
  }
  const because: Partial<Record<Decision['reason'], string>> = {
    'no-candidate': 'no healthy candidate holds its digest',
    'stale-mirror-skipped': 'the candidates that are up hold other content under its tag',
    'unverified-denied': 'no digest of its tag is known and admission.unverifiedTags is deny',
    'unverified-conflict': "no digest of its tag is known and the candidates' tags name different content",
    deadline: 'registry state could not be learned in time',
  };
  return `regroute cannot move ${subject.container.name} (${image}) off its registry, which is down or lacks it: ${
    because[decision.reason] ?? decision.reason
  }. Candidates: ${candidates}`;
}

export function reroutedMessage(rewrite: Rewrite, decision: Decision): string {
  return `regroute moved ${rewrite.container.name} from ${rewrite.container.image} to ${rewrite.target} (${shortDigest(
    decision.digest,
  )}; ${decision.reason}); the kubelet pulls it at its next try`;
}

/** `spec.containers{name}`, the fieldPath the kubelet's own Events name a container by. */
const fieldPath = (container: ContainerRecord) => `spec.${container.kind}{${container.name}}`;

/** An Event name unique per pod, container and message: a second replica recording the same one gets 409. */
function eventName(pod: PodRecord, key: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return `${pod.name.slice(0, 200)}.regroute-${hash.toString(16).padStart(8, '0')}`;
}

export interface EventInput {
  readonly pod: PodRecord;
  readonly container: ContainerRecord;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
  readonly now: Date;
  /** This replica, for `reportingInstance`. */
  readonly instance: string;
}

/** A core/v1 Event on the pod, as `kubectl describe pod` lists them. */
export function podEvent(input: EventInput): CoreV1Event {
  const { pod, container, now } = input;
  const message = input.message.slice(0, 1024);
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      name: eventName(pod, `${pod.uid}|${container.name}|${input.reason}|${message}`),
      namespace: pod.namespace,
    },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Pod',
      name: pod.name,
      namespace: pod.namespace,
      uid: pod.uid,
      resourceVersion: pod.resourceVersion,
      fieldPath: fieldPath(container),
    },
    type: input.type,
    reason: input.reason,
    message,
    source: { component: 'regroute' },
    reportingComponent: 'regroute',
    reportingInstance: input.instance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}
