// Normalized references, read the way the kubelet and containerd read a Pod's image, and their short forms.
import { digestProblem } from './digest.js';
import { type ReferenceErrorCode, type Refused, refused } from './errors.js';
import { isIdentifier } from './grammar.js';
import { literalName, literalOf } from './literal.js';

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPOSITORY_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';

/**
 * An image reference with nothing left implicit: the docker.io default, the library/ prefix of a familiar
 * one-component name, and index.docker.io written as docker.io.
 */
export interface Reference {
  /** host[:port] as written (case kept), e.g. 'docker.io', 'registry.local:5000', '[::1]:5000'. */
  readonly registry: string;
  /** The path below the registry, e.g. 'library/nginx'. */
  readonly repository: string;
  readonly tag: string | null;
  /** 'sha256:<hex>' or 'sha512:<hex>'. */
  readonly digest: string | null;
}

export type ParsedReference = { ok: true; reference: Reference } | Refused;

export type ParsedAnyReference =
  | { ok: true; kind: 'named'; reference: Reference }
  | { ok: true; kind: 'digest'; digest: string }
  | Refused;

/** Go's `ParseNormalizedNamed`: what a Pod's image means to the kubelet and containerd. Never throws. */
export function parseReference(input: string): ParsedReference {
  // The image arrives from decoded JSON: a missing or non-string value must still come back as a value.
  if (typeof input !== 'string') return refused('reference-invalid-format', `(${typeof input})`);
  const outcome = normalizedOf(input);
  return typeof outcome === 'string' ? refused(outcome, input) : { ok: true, reference: outcome };
}

/** Go's `ParseNamed`: accepts only the fully qualified form, e.g. 'docker.io/library/foo' but not 'foo'. */
export function parseCanonical(input: string): ParsedReference {
  const parsed = parseReference(input);
  if (parsed.ok && formatReference(parsed.reference) !== input) return refused('name-not-canonical', input);
  return parsed;
}

/** Go's `ParseDockerRef`, containerd's pull reference: ':latest' when untagged; a digest outranks a tag. */
export function parseDockerRef(input: string): ParsedReference {
  const parsed = parseReference(input);
  if (!parsed.ok) return parsed;
  const { reference } = parsed;
  if (reference.digest !== null) return { ok: true, reference: { ...reference, tag: null } };
  return { ok: true, reference: { ...reference, tag: reference.tag ?? DEFAULT_TAG } };
}

/** Go's `ParseAnyReference`: a bare image ID or a digest stands alone; anything else is a normalized name. */
export function parseAnyReference(input: string): ParsedAnyReference {
  if (isIdentifier(input)) return { ok: true, kind: 'digest', digest: `sha256:${input}` };
  if (digestProblem(input) === null) return { ok: true, kind: 'digest', digest: input };
  const parsed = parseReference(input);
  return parsed.ok ? { ok: true, kind: 'named', reference: parsed.reference } : parsed;
}

/** Fully qualified: registry/repository[:tag][@digest]. */
export function formatReference(reference: Reference): string {
  return `${reference.registry}/${reference.repository}${suffix(reference)}`;
}

/**
 * Go's `FamiliarName`: the name as people write it, docker.io/ and a lone library/ left out. Unlike Go, it
 * keeps docker.io/ when the rest would read as another registry ('docker.io/localhost/app'): a short form
 * that names a different image is worse than a long one.
 */
export function familiarName(reference: Reference): string {
  const full = `${reference.registry}/${reference.repository}`;
  if (reference.registry !== DEFAULT_DOMAIN) return full;
  const { repository } = reference;
  const official = repository.startsWith(OFFICIAL_REPOSITORY_PREFIX)
    ? repository.slice(OFFICIAL_REPOSITORY_PREFIX.length)
    : null;
  if (official !== null && !official.includes('/')) return official;
  const slash = repository.indexOf('/');
  return slash >= 0 && namesRegistry(repository.slice(0, slash)) ? full : repository;
}

/**
 * Go's `FamiliarString`: 'nginx:1.27', 'quay.io/x/y@sha256:…'. Unlike Go, it keeps library/ before a name
 * that is 64 hex digits and nothing else, which would otherwise read as an image ID and be refused.
 */
export function familiarString(reference: Reference): string {
  const familiar = `${familiarName(reference)}${suffix(reference)}`;
  return isIdentifier(familiar) ? reference.repository : familiar;
}

/** The tag a runtime pulls: the given one, 'latest' when neither tag nor digest is given, else none. */
export function effectiveTag(reference: Reference): string | null {
  return reference.tag ?? (reference.digest === null ? DEFAULT_TAG : null);
}

function normalizedOf(input: string): Reference | ReferenceErrorCode {
  // A 64-hex name could be an image ID, which a runtime resolves locally instead of pulling library/<hex>.
  if (isIdentifier(input)) return 'name-is-identifier';
  const { registry, remainder } = splitRegistry(input);
  const tagColon = remainder.indexOf(':');
  if (hasUpperCase(tagColon < 0 ? remainder : remainder.slice(0, tagColon))) return 'name-contains-uppercase';
  const literal = literalOf(`${registry}/${remainder}`);
  if (typeof literal === 'string') return literal;
  // Go splits the name again with the domain grammar, and reports no domain for a first component that
  // normalization took for a registry but the grammar refuses ('foo_bar.com/app'). The accepted strings are
  // the same; containerd pulls such an image from 'foo_bar.com', so that stays the registry.
  const repository = literalName(literal).slice(registry.length + 1);
  return { registry, repository, tag: literal.tag, digest: literal.digest };
}

/** Go's `splitDockerDomain`: where the registry ends, with docker.io and library/ filled in. */
function splitRegistry(input: string): { registry: string; remainder: string } {
  const slash = input.indexOf('/');
  const first = slash < 0 ? '' : input.slice(0, slash);
  const explicit = slash >= 0 && namesRegistry(first);
  const registry = explicit && first !== LEGACY_DEFAULT_DOMAIN ? first : DEFAULT_DOMAIN;
  const remainder = explicit ? input.slice(slash + 1) : input;
  const official = registry === DEFAULT_DOMAIN && !remainder.includes('/');
  return { registry, remainder: official ? `${OFFICIAL_REPOSITORY_PREFIX}${remainder}` : remainder };
}

/** Docker's rule: a first component names a registry when it cannot be a Docker Hub namespace. */
function namesRegistry(component: string): boolean {
  return component === 'localhost' || /[.:]/.test(component) || hasUpperCase(component);
}

function hasUpperCase(s: string): boolean {
  return s.toLowerCase() !== s;
}

function suffix(reference: Reference): string {
  const tag = reference.tag === null ? '' : `:${reference.tag}`;
  return reference.digest === null ? tag : `${tag}@${reference.digest}`;
}
