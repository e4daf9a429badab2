// The whole product in one pipeline: an admission request in, an admission response and its decisions out.
import { LRUCache } from 'lru-cache';
import type { Config, Route } from '../config/schema.js';
import { type ParsedReference, parseReference, type Reference } from '../reference/index.js';
import { type Decision, decide, LEFT_FOR_A_FAULT, type Observation, unchanged } from '../routing/decision.js';
import { observe } from '../routing/observe.js';
import { type Candidate, matchRoute, type RouteMatch } from '../routing/route.js';
import { type Deadline, deadlineOf } from '../state/deadline.js';
import type { RegistryState } from '../state/state.js';
import { auditAnnotationsOf } from './audit-annotations.js';
import {
  buildPatch,
  ORIGINAL_IMAGES_ANNOTATION,
  type OriginalImages,
  type PatchPlan,
  parseOriginalImages,
  proveApplies,
} from './patch.js';
import { annotationOf, type ImageSite, imageSites, labelOf, pullSecretNames, VOLUME_KIND } from './pod.js';
import type { AdmissionRequest, AdmissionResponse } from './review.js';

export const SKIP_LABEL = 'regroute.io/skip';

/**
 * Images routed per review. A real pod names a few dozen at most; a review naming thousands must not hold registry
 * lookups, memory and the event loop for the small reviews queued behind it. Images past the cap stay as they are
 * (reason image-cap) and the audit says how many were cut.
 */
export const MAX_IMAGES_PER_REVIEW = 256;
/**
 * Warnings per review: kubectl prints each one, and the apiserver cuts the whole set past 4 KiB anyway. The last
 * one says how many more images were left unchanged or moved (the audit log has them all).
 */
export const MAX_WARNINGS = 10;
const MAX_WARNING_LENGTH = 300;
const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

export interface MutateDeps {
  readonly config: Pick<Config, 'routes' | 'registries' | 'admission'>;
  readonly state: RegistryState;
}

export interface ImageDecision {
  readonly site: ImageSite;
  readonly decision: Decision;
  /** The parsed image, when it parsed. */
  readonly reference?: Reference;
  /** Why the reference did not parse, for invalid-reference decisions. */
  readonly error?: string;
}

export type PodSkip = 'not-a-pod' | 'operation' | 'skip-label' | 'mirror-pod';

export interface MutateOutcome {
  readonly response: AdmissionResponse;
  readonly decisions: readonly ImageDecision[];
  readonly skipped: PodSkip | null;
  /** Set when a patch was computed but could not be proven to apply: the pod is admitted unchanged. */
  readonly patchError?: string;
  /** Set when answered in report mode (admission.mode): decided as enforce would, answered without the patch. */
  readonly reported?: boolean;
}

/**
 * Pods repeat the same few images admission after admission, and parsing is pure: each distinct string is parsed
 * once. Bounded, since image strings come from users; the answers are read-only values, safe to share.
 */
const parsedImages = new LRUCache<string, ParsedReference>({ max: 4096 });
function parseImage(image: string): ParsedReference {
  let parsed = parsedImages.get(image);
  if (parsed === undefined) {
    parsed = parseReference(image);
    parsedImages.set(image, parsed);
  }
  return parsed;
}

const allowed = (uid: string, warnings: string[] = []): AdmissionResponse =>
  warnings.length > 0 ? { uid, allowed: true, warnings } : { uid, allowed: true };

/** Which containers a request may change: every kind on CREATE, only new ephemeral containers on their subresource. */
function sitesToRoute(request: AdmissionRequest): ImageSite[] | PodSkip {
  if (request.kind.kind !== 'Pod' || request.resource.resource !== 'pods') return 'not-a-pod';
  if (request.operation === 'CREATE' && !request.subResource) return imageSites(request.object);
  if (request.operation === 'UPDATE' && request.subResource === 'ephemeralcontainers') {
    const before = new Set(imageSites(request.oldObject, ['ephemeralContainers']).map((site) => site.name));
    return imageSites(request.object, ['ephemeralContainers']).filter((site) => !before.has(site.name));
  }
  return 'operation';
}

/** The part of the record that names a site's kind: image volumes apart from containers. */
const recordOf = (originals: OriginalImages, site: ImageSite): Readonly<Record<string, string>> =>
  site.kind === VOLUME_KIND ? originals.volumes : originals.containers;

/**
 * Whether a container or image volume the record names is missing from the pod: another webhook renamed it after
 * regroute rewrote it, so it is no longer found by its name in the record.
 */
function renamedSince(originals: OriginalImages, sites: readonly ImageSite[]): boolean {
  const missing = (recorded: Readonly<Record<string, string>>, names: Set<string>) =>
    Object.keys(recorded).some((name) => !names.has(name));
  const named = (volumes: boolean) =>
    new Set(sites.filter((site) => (site.kind === VOLUME_KIND) === volumes).map((site) => site.name));
  return missing(originals.containers, named(false)) || missing(originals.volumes, named(true));
}

const shortDigest = (digest: string | null) => (digest ? digest.slice(0, digest.indexOf(':') + 13) : '');

/** C0 and C1 control characters, which a terminal printing a warning would obey. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Text from the pod, made safe to print: no control characters (a terminal would obey them), bounded length. */
export function printable(value: unknown): string {
  let out = '';
  const text = typeof value === 'string' ? value : `(${typeof value})`;
  // Names and images almost never hold one: then the text is kept as it is, without walking it character by character.
  if (!CONTROL.test(text)) return text.slice(0, 120);
  for (const char of text.slice(0, 120)) {
    const code = char.codePointAt(0) ?? 0;
    out += code < 0x20 || (code >= 0x7f && code <= 0x9f) ? '?' : char;
  }
  return out;
}

const age = (ms: number): string =>
  ms < 120_000
    ? `${Math.round(ms / 1000)}s`
    : ms < 7_200_000
      ? `${Math.round(ms / 60_000)}m`
      : `${Math.round(ms / 3_600_000)}h`;

/** The warning for an image that moved (or, not applied, would have), or stayed for a fault (see warns). */
function warningOf({ site, decision }: ImageDecision, applied: boolean): string {
  const what = `regroute: ${site.kind} "${printable(site.name)}" image ${printable(site.image)}`;
  if (!decision.target) return `${what} left unchanged (${decision.reason})`.slice(0, MAX_WARNING_LENGTH);
  const lastKnown =
    decision.lastKnownAgeMs !== undefined
      ? `, the source's last-known digest from ${age(decision.lastKnownAgeMs)} ago`
      : '';
  return `${what} ${applied ? 'rerouted' : 'would reroute'} to ${decision.candidate?.registry}/${decision.candidate?.repository} (${shortDigest(decision.digest)}${lastKnown}; ${decision.reason})`.slice(
    0,
    MAX_WARNING_LENGTH,
  );
}

/** Whether an image's decision is told to the user: it moved, or it stayed because something was wrong. */
const warns = (decision: Decision): boolean =>
  Boolean(decision.target) || LEFT_FOR_A_FAULT.has(decision.reason);

/**
 * At most MAX_WARNINGS, the last of them counting what was left out. Only the warnings sent are built: a pod of
 * dozens of rerouted images would otherwise format every one of them to send ten. `applied` is false when the
 * patch is not sent (report mode): the rewrites are then told as what would be done.
 */
export function warningsOf(decisions: readonly ImageDecision[], applied = true): string[] {
  const warnings: string[] = [];
  let notSent = 0;
  for (const decided of decisions) {
    if (!warns(decided.decision)) continue;
    if (warnings.length < MAX_WARNINGS) warnings.push(warningOf(decided, applied));
    else notSent++;
  }
  if (notSent === 0) return warnings;
  const kept = warnings.slice(0, MAX_WARNINGS - 1);
  return [
    ...kept,
    `regroute: ${warnings.length + notSent - kept.length} more images ${applied ? 'rerouted or left unchanged' : 'that would reroute or stay unchanged'}; see regroute's audit log`,
  ];
}

/**
 * The route of each image, per routes in force (a reload brings a new array, and the old one's answers go with it).
 * Pure like parsing, and as repetitive: the same few images meet the same routes admission after admission.
 */
const routeMatches = new WeakMap<readonly Route[], LRUCache<string, { match: RouteMatch | null }>>();
function routeOf(image: string, reference: Reference, routes: readonly Route[]): RouteMatch | null {
  let matches = routeMatches.get(routes);
  if (matches === undefined) {
    matches = new LRUCache({ max: 4096 });
    routeMatches.set(routes, matches);
  }
  let known = matches.get(image);
  if (known === undefined) {
    known = { match: matchRoute(reference, routes) };
    matches.set(image, known);
  }
  return known.match;
}

/** An image that needs the registry state: its route, and the observation it shares with its repeats in the pod. */
interface Routed {
  readonly site: ImageSite;
  readonly reference: Reference;
  readonly match: RouteMatch;
  readonly image: string;
}

/** The record with the rewritten sites' original images added, each under its kind's part. */
function recordWith(originals: OriginalImages, rewrites: readonly { site: ImageSite }[]): OriginalImages {
  const added = (volumes: boolean) =>
    Object.fromEntries(
      rewrites
        .filter(({ site }) => (site.kind === VOLUME_KIND) === volumes)
        .map(({ site }) => [site.name, String(site.image)]),
    );
  return {
    containers: { ...originals.containers, ...added(false) },
    volumes: { ...originals.volumes, ...added(true) },
  };
}

/** The outcome of a review, its response carrying the audit annotations that summarise it. */
export async function mutate(
  request: AdmissionRequest,
  deps: MutateDeps,
  within: AbortSignal | Deadline,
): Promise<MutateOutcome> {
  const outcome = await routePod(request, deps, deadlineOf(within));
  const auditAnnotations = auditAnnotationsOf(outcome);
  return auditAnnotations ? { ...outcome, response: { ...outcome.response, auditAnnotations } } : outcome;
}

async function routePod(
  request: AdmissionRequest,
  deps: MutateDeps,
  deadline: Deadline,
): Promise<MutateOutcome> {
  const pod = request.object;
  const sites = sitesToRoute(request);
  if (typeof sites === 'string') return { response: allowed(request.uid), decisions: [], skipped: sites };
  if (labelOf(pod, SKIP_LABEL) === 'true')
    return { response: allowed(request.uid), decisions: [], skipped: 'skip-label' };
  if (annotationOf(pod, MIRROR_POD_ANNOTATION) !== undefined) {
    return { response: allowed(request.uid), decisions: [], skipped: 'mirror-pod' };
  }

  const { routes, registries, admission } = deps.config;
  const isEphemeralUpdate = request.operation === 'UPDATE';
  const podSecrets = pullSecretNames(pod);
  const originals = parseOriginalImages(annotationOf(pod, ORIGINAL_IMAGES_ANNOTATION));
  // A container or volume another webhook renamed after regroute rewrote it is no longer found by its name in the
  // record; a recorded name missing from the pod says that happened, and a digest-pinned image is then taken as
  // rewritten rather than routed again (which could move it along a chained route and add a second pull secret).
  // On CREATE the sites are every container and image volume of the pod.
  const renamed = !isEphemeralUpdate && renamedSince(originals, sites);
  // An ephemeral container cannot bring a pull secret with it: the subresource changes nothing else in the pod.
  const canUse = (candidate: Candidate): boolean => {
    const secret = registries[candidate.registry]?.pullSecret;
    return !isEphemeralUpdate || secret === undefined || podSecrets.includes(secret);
  };

  // First what each image needs, without waiting: most are decided by the pod alone or share an image with an
  // earlier container (sidecars, init containers), and each distinct image is observed once, all at the same time.
  const observations = new Map<string, Observation | Promise<Observation>>();
  const pending: (ImageDecision | Routed)[] = sites.map((site, index) => {
    if (index >= MAX_IMAGES_PER_REVIEW) return { site, decision: unchanged('image-cap') };
    if (typeof site.image !== 'string') {
      return { site, decision: unchanged('invalid-reference'), error: 'image is not a string' };
    }
    // Own entries only: a container named `constructor` was not recorded by anyone.
    const record = recordOf(originals, site);
    const recorded = Object.hasOwn(record, site.name) ? record[site.name] : undefined;
    if (recorded !== undefined && recorded !== site.image)
      return { site, decision: unchanged('already-rewritten') };
    const parsed = parseImage(site.image);
    if (!parsed.ok) return { site, decision: unchanged('invalid-reference'), error: parsed.error.message };
    const { reference } = parsed;
    if (recorded === undefined && renamed && reference.digest)
      return { site, reference, decision: unchanged('already-rewritten') };
    const match = routeOf(site.image, reference, routes);
    if (!match) return { site, reference, decision: unchanged('no-route') };
    if (!observations.has(site.image)) {
      observations.set(site.image, observe(reference, match, deps.state, deadline, admission.unverifiedTags));
    }
    return { site, reference, match, image: site.image };
  });
  // A wait only for images whose observation needs a registry (all of them at the same time); a warm pod's
  // observations are all made already. Then the decisions, which are pure.
  for (const [image, observation] of observations) {
    if (observation instanceof Promise) observations.set(image, await observation);
  }
  const decisions = pending.map((item): ImageDecision => {
    if (!('match' in item)) return item;
    const { site, reference, match, image } = item;
    const decision = decide(reference, match, observations.get(image) as Observation, {
      unverifiedTags: admission.unverifiedTags,
      canUse,
    });
    return { site, reference, decision };
  });

  const rewrites: { site: ImageSite; target: string }[] = [];
  // Each secret once, in the order the pods' images first need them.
  const needed = new Set<string>();
  for (const { site, decision } of decisions) {
    if (decision.target) rewrites.push({ site, target: decision.target });
    const secret = decision.candidate ? registries[decision.candidate.registry]?.pullSecret : undefined;
    if (secret && !podSecrets.includes(secret)) needed.add(secret);
  }
  const warnings = warningsOf(decisions);
  if (rewrites.length === 0) return { response: allowed(request.uid, warnings), decisions, skipped: null };

  const pullSecrets = isEphemeralUpdate ? [] : [...needed];
  const plan: PatchPlan = {
    rewrites,
    pullSecrets,
    // The ephemeralcontainers subresource ignores metadata changes, so the record goes only on CREATE.
    originalImages: isEphemeralUpdate ? null : recordWith(originals, rewrites),
  };
  const ops = buildPatch(pod, plan);
  const proof = proveApplies(pod, ops);
  if (!proof.ok) {
    const warning = 'regroute: internal error building the patch; pod admitted unchanged';
    return { response: allowed(request.uid, [warning]), decisions, skipped: null, patchError: proof.error };
  }
  return {
    response: {
      uid: request.uid,
      allowed: true,
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
      warnings,
    },
    decisions,
    skipped: null,
  };
}
