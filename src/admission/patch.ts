// The JSON patch regroute returns: explicit operations built by hand, and proven by applying them before they leave.
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { type ImageSite, imageFieldOf, isObject, metadataOf, specOf } from './pod.js';

export const ORIGINAL_IMAGES_ANNOTATION = 'regroute.io/original-images';

/**
 * Where the annotation records image volumes: under this one key, as an object of volume name → original reference
 * (`{"app":"nginx:1.27","spec.volumes":{"models":"registry.example/models:v3"}}`). Containers keep their entries
 * of name → image at the top level, as every version of regroute wrote them. A reader that knows only containers
 * keeps the string entries and skips this object, so it neither misreads a volume as a container nor takes the
 * key for a renamed container; no container can be named so (a container name is a DNS label, without dots).
 */
export const VOLUMES_RECORD_KEY = 'spec.volumes';

/** What the annotation records: the image each rewritten container and image volume had before regroute. */
export interface OriginalImages {
  readonly containers: Readonly<Record<string, string>>;
  readonly volumes: Readonly<Record<string, string>>;
}

export const NO_ORIGINALS: OriginalImages = { containers: {}, volumes: {} };

const stringEntries = (value: Record<string, unknown>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );

/** The record an earlier invocation wrote, tolerating anything else found in the annotation. */
export function parseOriginalImages(raw: string | undefined): OriginalImages {
  if (!raw) return NO_ORIGINALS;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!isObject(parsed)) return NO_ORIGINALS;
    const volumes = Object.hasOwn(parsed, VOLUMES_RECORD_KEY) ? parsed[VOLUMES_RECORD_KEY] : undefined;
    return { containers: stringEntries(parsed), volumes: isObject(volumes) ? stringEntries(volumes) : {} };
  } catch {
    return NO_ORIGINALS;
  }
}

/** The annotation's value: containers at the top level, image volumes (when any) under VOLUMES_RECORD_KEY. */
export function formatOriginalImages(record: OriginalImages): string {
  // Built from entries, so that a container named __proto__ is an entry like any other.
  const entries: [string, unknown][] = Object.entries(record.containers);
  if (Object.keys(record.volumes).length > 0) {
    // The volumes' object wins over a container of that name, which the apiserver would refuse anyway.
    const at = entries.findIndex(([name]) => name === VOLUMES_RECORD_KEY);
    if (at !== -1) entries.splice(at, 1);
    entries.push([VOLUMES_RECORD_KEY, Object.fromEntries(Object.entries(record.volumes))]);
  }
  return JSON.stringify(Object.fromEntries(entries));
}

/** One segment of an RFC 6901 pointer: `~` and `/` are escaped, in that order (most segments have neither). */
const escaped = (segment: string | number): string => {
  const text = String(segment);
  return text.includes('~') || text.includes('/') ? text.replaceAll('~', '~0').replaceAll('/', '~1') : text;
};

/** An RFC 6901 pointer. */
export const pointer = (...segments: (string | number)[]): string => `/${segments.map(escaped).join('/')}`;

export interface PatchPlan {
  readonly rewrites: readonly { readonly site: ImageSite; readonly target: string }[];
  /** Secret names to append to imagePullSecrets, already free of the pod's own. */
  readonly pullSecrets: readonly string[];
  /** The annotation's new record, or null to leave it alone. */
  readonly originalImages: OriginalImages | null;
}

export function buildPatch(pod: unknown, plan: PatchPlan): Operation[] {
  const ops: Operation[] = plan.rewrites.map(({ site, target }) => ({
    op: 'replace',
    path: pointer(...imageFieldOf(site)),
    value: target,
  }));

  if (plan.pullSecrets.length > 0) {
    const existing = specOf(pod)?.imagePullSecrets;
    const entries = plan.pullSecrets.map((name) => ({ name }));
    if (Array.isArray(existing)) {
      for (const entry of entries)
        ops.push({ op: 'add', path: pointer('spec', 'imagePullSecrets', '-'), value: entry });
    } else {
      ops.push({ op: 'add', path: pointer('spec', 'imagePullSecrets'), value: entries });
    }
  }

  if (plan.originalImages) {
    const value = formatOriginalImages(plan.originalImages);
    const metadata = metadataOf(pod);
    // RFC 6902 `add` cannot create intermediate objects: a pod without annotations gets the whole map.
    if (!metadata) {
      ops.push({
        op: 'add',
        path: pointer('metadata'),
        value: { annotations: { [ORIGINAL_IMAGES_ANNOTATION]: value } },
      });
    } else if (!isObject(metadata.annotations)) {
      ops.push({
        op: 'add',
        path: pointer('metadata', 'annotations'),
        value: { [ORIGINAL_IMAGES_ANNOTATION]: value },
      });
    } else {
      ops.push({ op: 'add', path: pointer('metadata', 'annotations', ORIGINAL_IMAGES_ANNOTATION), value });
    }
  }
  return ops;
}

/** The segments of an RFC 6901 pointer, unescaped (`~1` before `~0`, as the RFC orders it). */
const segmentsOf = (path: string): string[] => {
  const segments = path.split('/');
  // The pointer starts with '/': what comes before it is no segment.
  segments.shift();
  return path.includes('~') ? segments.map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~')) : segments;
};

/**
 * What applying `ops` reads and writes of `doc`, and nothing else: every object on the way to an op's target is a
 * new object holding only the members on those ways, every array there a copy of the whole array (its length and
 * indices matter), and each target's current value is kept. Applying add and replace operations reads only those
 * members, so the verdict is the one a deep copy of the pod would give, for a few small objects instead of copying
 * the pod's containers whole (the largest cost of an admission once they were copied member by member).
 */
function skeletonAlong(doc: unknown, ops: readonly Operation[]): unknown {
  const copies = new Map<object, Record<string, unknown> | unknown[]>();
  const copyOf = (node: Record<string, unknown> | unknown[]) => {
    let copy = copies.get(node);
    if (copy === undefined) {
      copy = Array.isArray(node) ? node.slice() : {};
      copies.set(node, copy);
    }
    return copy;
  };
  if (!isObject(doc) && !Array.isArray(doc)) return doc;
  const root = copyOf(doc);
  for (const op of ops) {
    const segments = segmentsOf(op.path);
    let original: unknown = doc;
    let copy = root as Record<string, unknown>;
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i] as string;
      // An array's copy already holds its members; an object's gets each member on a way, or the target's value.
      if (!Array.isArray(original) && !isObject(original)) break;
      if (!Array.isArray(original) && !Object.hasOwn(original, segment)) break;
      const child = (original as Record<string, unknown>)[segment];
      const last = i === segments.length - 1;
      if (last || (!isObject(child) && !Array.isArray(child))) {
        // A target another op's way goes through is that way's copy already: the original is never written.
        if (!Array.isArray(original)) {
          copy[segment] = isObject(child) || Array.isArray(child) ? (copies.get(child) ?? child) : child;
        }
        break;
      }
      copy[segment] = copyOf(child);
      original = child;
      copy = copy[segment] as Record<string, unknown>;
    }
  }
  return root;
}

/**
 * An operation that reads nothing of the pod beyond its way: a replace, or an add that does not insert into an array
 * at an index (which moves the members after it, and with them the ways of later operations).
 */
const readsOnlyItsWay = (op: Operation): boolean =>
  op.op === 'replace' || (op.op === 'add' && !/\/\d+$/.test(op.path));

/**
 * Applies the patch as the apiserver would, to what it reads of the pod (see skeletonAlong), or to a deep copy for
 * operations that read more (test, move, copy, an insert into an array). The apiserver rejects the pod outright when a returned patch does
 * not apply, whatever the failurePolicy, so a patch that fails here must never be sent.
 */
export function proveApplies(
  pod: unknown,
  ops: readonly Operation[],
): { ok: true } | { ok: false; error: string } {
  try {
    const subject = ops.every(readsOnlyItsWay) ? skeletonAlong(pod, ops) : structuredClone(pod);
    fastJsonPatch.applyPatch(subject, ops as Operation[], true, true);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: withoutTree(error instanceof Error ? error.message : String(error)) };
  }
}

/**
 * fast-json-patch ends its messages with the whole document it was applying to (`tree: {...}`): the reason, the
 * operation and its index are what an audit line and a log need, not a pod of up to megabytes.
 */
const withoutTree = (message: string): string => {
  const tree = message.indexOf('\ntree: ');
  return tree === -1 ? message : message.slice(0, tree);
};
