// The whole product in one pipeline: an admission request in, an admission response and its decisions out.
import { setMaxListeners } from 'node:events';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config/schema.js';
import { type ParsedReference, parseReference, type Reference } from '../reference/index.js';
import { type Decision, decide, LEFT_FOR_A_FAULT, unchanged } from '../routing/decision.js';
import { observe } from '../routing/observe.js';
import { type Candidate, matchRoute } from '../routing/route.js';
import type { RegistryState } from '../state/state.js';
import { buildPatch, ORIGINAL_IMAGES_ANNOTATION, type PatchPlan, proveApplies } from './patch.js';
import { annotationOf, type ImageSite, imageSites, isObject, labelOf, pullSecretNames } from './pod.js';
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

/** The annotation regroute wrote on an earlier invocation, tolerating anything else found there. */
function recordedOriginals(pod: unknown): Record<string, string> {
  const raw = annotationOf(pod, ORIGINAL_IMAGES_ANNOTATION);
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!isObject(parsed)) return {};
    return Object.fromEntries(
      Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
    );
  } catch {
    return {};
  }
}

const shortDigest = (digest: string | null) => (digest ? digest.slice(0, digest.indexOf(':') + 13) : '');

/** Text from the pod, made safe to print: no control characters (a terminal would obey them), bounded length. */
function printable(value: unknown): string {
  let out = '';
  const text = typeof value === 'string' ? value : `(${typeof value})`;
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

function warningOf({ site, decision }: ImageDecision): string | null {
  const what = `regroute: ${site.kind} "${printable(site.name)}" image ${printable(site.image)}`;
  if (decision.target) {
    const lastKnown =
      decision.lastKnownAgeMs !== undefined
        ? `, the source's last-known digest from ${age(decision.lastKnownAgeMs)} ago`
        : '';
    return `${what} rerouted to ${decision.candidate?.registry}/${decision.candidate?.repository} (${shortDigest(decision.digest)}${lastKnown}; ${decision.reason})`.slice(
      0,
      MAX_WARNING_LENGTH,
    );
  }
  if (LEFT_FOR_A_FAULT.has(decision.reason)) {
    return `${what} left unchanged (${decision.reason})`.slice(0, MAX_WARNING_LENGTH);
  }
  return null;
}

/** At most MAX_WARNINGS, the last of them counting what was left out. */
function capWarnings(all: string[]): string[] {
  if (all.length <= MAX_WARNINGS) return all;
  const kept = all.slice(0, MAX_WARNINGS - 1);
  return [
    ...kept,
    `regroute: ${all.length - kept.length} more images rerouted or left unchanged; see regroute's audit log`,
  ];
}

export async function mutate(
  request: AdmissionRequest,
  deps: MutateDeps,
  signal: AbortSignal,
): Promise<MutateOutcome> {
  // Every lookup of every image listens for the deadline: dozens of listeners on one signal are expected, and
  // Node's leak warning would otherwise be printed for each large pod while a registry is slow.
  setMaxListeners(0, signal);
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
  const originals = recordedOriginals(pod);
  // A container another webhook renamed after regroute rewrote it is no longer found by its name in the record; a
  // recorded name missing from the pod says that happened, and a digest-pinned image is then taken as rewritten
  // rather than routed again (which could move it along a chained route and add a second pull secret).
  const podNames = new Set(isEphemeralUpdate ? [] : imageSites(pod).map((site) => site.name));
  const renamed = !isEphemeralUpdate && Object.keys(originals).some((name) => !podNames.has(name));
  // An ephemeral container cannot bring a pull secret with it: the subresource changes nothing else in the pod.
  const canUse = (candidate: Candidate): boolean => {
    const secret = registries[candidate.registry]?.pullSecret;
    return !isEphemeralUpdate || secret === undefined || podSecrets.includes(secret);
  };

  // Pods repeat images (sidecars, init containers): observe each distinct image once.
  const observations = new Map<string, ReturnType<typeof observe>>();
  const decisions = await Promise.all(
    sites.map(async (site, index): Promise<ImageDecision> => {
      if (index >= MAX_IMAGES_PER_REVIEW) return { site, decision: unchanged('image-cap') };
      if (typeof site.image !== 'string') {
        return { site, decision: unchanged('invalid-reference'), error: 'image is not a string' };
      }
      // Own entries only: a container named `constructor` was not recorded by anyone.
      const recorded = Object.hasOwn(originals, site.name) ? originals[site.name] : undefined;
      if (recorded !== undefined && recorded !== site.image)
        return { site, decision: unchanged('already-rewritten') };
      const parsed = parseImage(site.image);
      if (!parsed.ok) return { site, decision: unchanged('invalid-reference'), error: parsed.error.message };
      if (recorded === undefined && renamed && parsed.reference.digest)
        return { site, reference: parsed.reference, decision: unchanged('already-rewritten') };
      const match = matchRoute(parsed.reference, routes);
      const reference = parsed.reference;
      if (!match) return { site, reference, decision: unchanged('no-route') };
      let observation = observations.get(site.image);
      if (!observation) {
        observation = observe(parsed.reference, match, deps.state, signal, admission.unverifiedTags);
        observations.set(site.image, observation);
      }
      const decision = decide(parsed.reference, match, await observation, {
        unverifiedTags: admission.unverifiedTags,
        canUse,
      });
      return { site, reference, decision };
    }),
  );

  const rewrites = decisions.flatMap(({ site, decision }) =>
    decision.target ? [{ site, target: decision.target }] : [],
  );
  const warnings = capWarnings(decisions.map(warningOf).filter((w): w is string => w !== null));
  if (rewrites.length === 0) return { response: allowed(request.uid, warnings), decisions, skipped: null };

  const pullSecrets = isEphemeralUpdate
    ? []
    : [
        ...new Set(
          decisions.flatMap(({ decision }) => {
            const secret = decision.candidate
              ? registries[decision.candidate.registry]?.pullSecret
              : undefined;
            return secret && !podSecrets.includes(secret) ? [secret] : [];
          }),
        ),
      ];
  const plan: PatchPlan = {
    rewrites,
    pullSecrets,
    // The ephemeralcontainers subresource ignores metadata changes, so the record goes only on CREATE.
    originalImages: isEphemeralUpdate
      ? null
      : { ...originals, ...Object.fromEntries(rewrites.map(({ site }) => [site.name, String(site.image)])) },
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
