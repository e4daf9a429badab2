// A pod as regroute keeps it in memory: only what learning and repair read, with repeated strings shared.
import { SKIP_LABEL } from '../admission/mutate.js';
import { ORIGINAL_IMAGES_ANNOTATION, parseOriginalImages } from '../admission/patch.js';
import { type ContainerKind, isObject } from '../admission/pod.js';

/** The annotation the kubelet puts on a static pod's mirror (as admission skips it, so does repair). */
export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

export interface ContainerRecord {
  readonly kind: ContainerKind;
  readonly index: number;
  readonly name: string;
  /** The image the spec names. */
  readonly image: string;
  /** What the runtime says it runs (`status.*ContainerStatuses[].imageID`), when it says. */
  readonly imageID: string | undefined;
  /** Why the container waits (ErrImagePull, ImagePullBackOff, ContainerCreating…); undefined when not waiting. */
  readonly waiting: string | undefined;
  readonly running: boolean;
  /** When it last started (epoch ms), 0 when not known. */
  readonly startedAt: number;
}

export interface PodRecord {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  /** `Kind/name` of the pod's controller, when it has one. */
  readonly owner: string | undefined;
  /** Labelled regroute.io/skip=true: regroute leaves it alone. */
  readonly skip: boolean;
  /** A static pod's mirror (kubernetes.io/config.mirror): its spec lives in a file on the node. */
  readonly mirror: boolean;
  /** Being deleted, or Succeeded/Failed: nothing will pull for it any more. */
  readonly done: boolean;
  readonly hasAnnotations: boolean;
  /** The regroute.io/original-images annotation as written, when present. */
  readonly originals: string | undefined;
  readonly pullSecrets: readonly string[];
  readonly containers: readonly ContainerRecord[];
}

/**
 * Shares equal strings between records: thousands of pods name the same few images, namespaces, owners and pull
 * secrets. Bounded: past `max` entries it starts afresh (records keep the strings they hold; only sharing is lost).
 */
export class Interner {
  readonly #strings = new Map<string, string>();
  readonly #lists = new Map<string, readonly string[]>();

  constructor(private readonly max = 50_000) {}

  string(value: string): string {
    const known = this.#strings.get(value);
    if (known !== undefined) return known;
    if (this.#strings.size >= this.max) this.#strings.clear();
    this.#strings.set(value, value);
    return value;
  }

  list(values: readonly string[]): readonly string[] {
    if (values.length === 0) return EMPTY;
    const key = values.join('\n');
    const known = this.#lists.get(key);
    if (known) return known;
    if (this.#lists.size >= this.max) this.#lists.clear();
    const shared = Object.freeze(values.map((value) => this.string(value)));
    this.#lists.set(key, shared);
    return shared;
  }
}

const EMPTY: readonly string[] = Object.freeze([]);

type Json = Record<string, unknown>;
const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const obj = (value: unknown): Json | undefined => (isObject(value) ? value : undefined);
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** A metav1.Time: a string in watch events, a Date once client-node has deserialized a list. */
function epochMs(value: unknown): number {
  if (value instanceof Date) return value.getTime();
  const parsed = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isNaN(parsed) ? 0 : parsed;
}

const STATUS_FIELD: Readonly<Record<ContainerKind, string>> = {
  initContainers: 'initContainerStatuses',
  containers: 'containerStatuses',
  ephemeralContainers: 'ephemeralContainerStatuses',
};

/**
 * The record of a pod from the API (a watch event's object or a list item), or undefined when it is not a pod
 * regroute can read. Never throws: the object comes from the API server, but its shape is not ours to trust.
 */
export function podRecord(pod: unknown, interner: Interner): PodRecord | undefined {
  const metadata = obj(obj(pod)?.metadata);
  const spec = obj(obj(pod)?.spec);
  const status = obj(obj(pod)?.status);
  const namespace = str(metadata?.namespace);
  const name = str(metadata?.name);
  if (!metadata || !spec || !namespace || !name) return undefined;
  const labels = obj(metadata.labels);
  const annotations = obj(metadata.annotations);
  const owners = list(metadata.ownerReferences).flatMap((o): Json[] => {
    const owner = obj(o);
    return owner ? [owner] : [];
  });
  const controller = owners.find((o) => o.controller === true) ?? owners[0];
  const ownerKind = str(controller?.kind);
  const ownerName = str(controller?.name);
  const phase = str(status?.phase);

  const containers: ContainerRecord[] = [];
  for (const kind of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    const statuses = new Map<string, Json>();
    for (const s of list(status?.[STATUS_FIELD[kind]])) {
      const entry = obj(s);
      const statusName = str(entry?.name);
      if (entry && statusName) statuses.set(statusName, entry);
    }
    list(spec[kind]).forEach((c, index) => {
      const container = obj(c);
      const containerName = str(container?.name);
      const image = str(container?.image);
      if (!containerName || !image) return;
      const seen = statuses.get(containerName);
      const state = obj(seen?.state);
      const waiting = str(obj(state?.waiting)?.reason);
      const running = obj(state?.running);
      const imageID = str(seen?.imageID);
      containers.push({
        kind,
        index,
        name: interner.string(containerName),
        image: interner.string(image),
        imageID: imageID ? interner.string(imageID) : undefined,
        waiting: waiting ? interner.string(waiting) : undefined,
        running: running !== undefined,
        startedAt: epochMs(running?.startedAt ?? obj(state?.terminated)?.startedAt),
      });
    });
  }

  const originals = str(annotations?.[ORIGINAL_IMAGES_ANNOTATION]);
  return {
    namespace: interner.string(namespace),
    name,
    uid: str(metadata.uid) ?? '',
    resourceVersion: str(metadata.resourceVersion) ?? '',
    owner: ownerKind && ownerName ? interner.string(`${ownerKind}/${ownerName}`) : undefined,
    skip: str(labels?.[SKIP_LABEL]) === 'true',
    mirror: annotations?.[MIRROR_POD_ANNOTATION] !== undefined,
    done:
      metadata.deletionTimestamp !== undefined &&
      metadata.deletionTimestamp !== null &&
      metadata.deletionTimestamp !== ''
        ? true
        : phase === 'Succeeded' || phase === 'Failed',
    hasAnnotations: annotations !== undefined,
    originals: originals !== undefined ? interner.string(originals) : undefined,
    pullSecrets: interner.list(
      list(spec.imagePullSecrets).flatMap((s) => {
        const secret = str(obj(s)?.name);
        return secret ? [secret] : [];
      }),
    ),
    containers,
  };
}

export const podKey = (pod: { namespace: string; name: string }): string => `${pod.namespace}/${pod.name}`;

/**
 * The regroute.io/original-images annotation read back: container name → the image before regroute changed it
 * (image volumes, recorded apart, cannot change once the pod exists).
 */
export function originalImages(pod: Pick<PodRecord, 'originals'>): Record<string, string> {
  return { ...parseOriginalImages(pod.originals).containers };
}
