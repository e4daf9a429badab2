// What pods and workloads say about tags: tag → digest pairs, each with where it was read and how far it is trusted.
import { originalImages, type PodRecord } from '../kube/pod-record.js';
import { effectiveTag, parseReference, type Reference } from '../reference/index.js';

/**
 * Where a digest for a tag was read, most trusted first:
 * - `rewritten`: a pod regroute pinned at admission (the annotation names the tag image, the spec the digest the
 *   source named for it then);
 * - `pinned`: an image written `name:tag@digest` in a pod or workload template, the user's own statement;
 * - `running`: the digest a node's runtime reports in `imageID` for a container started from the tag. containerd
 *   reports the digest the tag resolved to (an index for a multi-platform image); CRI-O may report the platform
 *   manifest's (see docs/decisions.md, "What regroute learns").
 */
export const ORIGINS = ['rewritten', 'pinned', 'running'] as const;
export type Origin = (typeof ORIGINS)[number];

export interface Lesson {
  /** The image by tag: no digest, `tag` set (latest when the image named none). */
  readonly reference: Reference;
  readonly digest: string;
  readonly origin: Origin;
  /** When it was seen to hold (a container's start, epoch ms; 0 when unknown): the newest wins within an origin. */
  readonly at: number;
}

/** `registry/repository:tag`, the key lessons about one tag share. */
export const lessonKey = (reference: Reference): string =>
  `${reference.registry}/${reference.repository}:${reference.tag}`;

const parsed = (image: string): Reference | undefined => {
  const result = parseReference(image);
  return result.ok ? result.reference : undefined;
};

/** The reference by tag alone, or undefined for an image without a tag to speak of. */
function byTag(reference: Reference): Reference | undefined {
  const tag = effectiveTag({ ...reference, digest: null });
  if (reference.digest !== null && reference.tag === null) return undefined;
  return tag === null ? undefined : { ...reference, tag, digest: null };
}

/**
 * The digest in a container status's `imageID`: `repo@digest`, after the `docker-pullable://` scheme the
 * dockershim used to add. A bare `sha256:…` is a local image ID (the config's digest), not a manifest: none.
 */
export function digestOfImageID(imageID: string | undefined): string | undefined {
  if (!imageID) return undefined;
  const withoutScheme = imageID.replace(/^[a-z-]+:\/\//, '');
  if (!withoutScheme.includes('@')) return undefined;
  const reference = parsed(withoutScheme);
  return reference?.digest ?? undefined;
}

/** Every lesson one pod teaches, from each of its containers (ephemeral ones included: they run images too). */
export function lessonsOfPod(pod: PodRecord): Lesson[] {
  const originals = originalImages(pod);
  const lessons: Lesson[] = [];
  for (const container of pod.containers) {
    const current = parsed(container.image);
    if (!current) continue;
    const original = Object.hasOwn(originals, container.name) ? originals[container.name] : undefined;
    if (original !== undefined && original !== container.image) {
      // Rewritten at admission: the original tag image, pinned to the digest its source named.
      const from = parsed(original);
      const tagged = from && from.digest === null ? byTag(from) : undefined;
      if (tagged && current.digest) {
        lessons.push({
          reference: tagged,
          digest: current.digest,
          origin: 'rewritten',
          at: container.startedAt,
        });
      }
      continue;
    }
    if (current.digest !== null) {
      const tagged = current.tag !== null ? byTag(current) : undefined;
      if (tagged)
        lessons.push({
          reference: tagged,
          digest: current.digest,
          origin: 'pinned',
          at: container.startedAt,
        });
      continue;
    }
    const digest = digestOfImageID(container.imageID);
    const tagged = byTag(current);
    if (digest && tagged)
      lessons.push({ reference: tagged, digest, origin: 'running', at: container.startedAt });
  }
  return lessons;
}

/** What workload templates teach: only their images pinned by tag and digest. */
export function lessonsOfImages(images: Iterable<string>): Lesson[] {
  const lessons: Lesson[] = [];
  for (const image of images) {
    const reference = parsed(image);
    if (!reference?.digest || reference.tag === null) continue;
    const tagged = byTag(reference);
    if (tagged) lessons.push({ reference: tagged, digest: reference.digest, origin: 'pinned', at: 0 });
  }
  return lessons;
}

const rank = (origin: Origin): number => ORIGINS.indexOf(origin);

/** True when `candidate` is to be believed over `held`: a more trusted origin, or the same one seen later. */
export function outranks(candidate: Lesson, held: Lesson | undefined): boolean {
  if (!held) return true;
  if (rank(candidate.origin) !== rank(held.origin)) return rank(candidate.origin) < rank(held.origin);
  return candidate.at > held.at;
}

/** The lesson to believe for each tag. */
export function bestLessons(
  lessons: Iterable<Lesson>,
  into = new Map<string, Lesson>(),
): Map<string, Lesson> {
  for (const lesson of lessons) {
    const key = lessonKey(lesson.reference);
    if (outranks(lesson, into.get(key))) into.set(key, lesson);
  }
  return into;
}
