// The JSON patch regroute returns: explicit operations built by hand, and proven by applying them before they leave.
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { type ImageSite, isObject, metadataOf, specOf } from './pod.js';

export const ORIGINAL_IMAGES_ANNOTATION = 'regroute.io/original-images';

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
  /** The annotation's new value (container name → original image), or null to leave it alone. */
  readonly originalImages: Readonly<Record<string, string>> | null;
}

export function buildPatch(pod: unknown, plan: PatchPlan): Operation[] {
  const ops: Operation[] = plan.rewrites.map(({ site, target }) => ({
    op: 'replace',
    path: pointer('spec', site.kind, site.index, 'image'),
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
    const value = JSON.stringify(plan.originalImages);
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
  const segments = path.split('/').slice(1);
  return path.includes('~') ? segments.map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~')) : segments;
};

const shallowCopy = (value: unknown): unknown =>
  Array.isArray(value) ? value.slice() : isObject(value) ? { ...value } : value;

/**
 * A copy of `doc` in which every object and array on the way to each op's target is a copy of its own, while
 * everything else is shared. Applying the ops to it changes only copies, so it proves the patch as a deep copy
 * would, at the cost of a few shallow copies instead of cloning the whole pod (the largest cost of an admission).
 */
function copyAlong(doc: unknown, ops: readonly Operation[]): unknown {
  const root = shallowCopy(doc);
  const copied = new Set<unknown>([root]);
  for (const op of ops) {
    const parents = segmentsOf(op.path).slice(0, -1);
    let node = root as Record<string, unknown>;
    for (const segment of parents) {
      const child = node?.[segment];
      if (!isObject(child) && !Array.isArray(child)) break; // the op fails validation below, as it should
      if (!copied.has(child)) {
        const copy = shallowCopy(child);
        node[segment] = copy;
        copied.add(copy);
        node = copy as Record<string, unknown>;
      } else {
        node = child as Record<string, unknown>;
      }
    }
  }
  return root;
}

/**
 * Applies the patch to a copy of the pod as the apiserver would. The apiserver rejects the pod outright when a
 * returned patch does not apply, whatever the failurePolicy, so a patch that fails here must never be sent.
 */
export function proveApplies(
  pod: unknown,
  ops: readonly Operation[],
): { ok: true; result: unknown } | { ok: false; error: string } {
  try {
    // Only the paths regroute writes are ever copied; `from` operations (move, copy) would read elsewhere.
    const copy = ops.every((op) => !('from' in op)) ? copyAlong(pod, ops) : structuredClone(pod);
    const result = fastJsonPatch.applyPatch(copy, ops as Operation[], true, true).newDocument;
    return { ok: true, result };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}
