// References as written, not normalized: distribution/reference's Parse, WithName, WithTag and WithDigest.
import { digestProblem } from './digest.js';
import { type ReferenceErrorCode, type Refused, refused } from './errors.js';
import { isReferenceDigest, isTag, matchName, matchReference, type NameMatch } from './grammar.js';

/** On the path only, as distribution/reference since aaca75ef (2024-02); containers/image adds the domain. */
const PATH_MAX = 255;

/** A reference exactly as written: no docker.io default, no library/ prefix. */
export interface LiteralReference {
  /** "" when the name has no domain, as for "ubuntu" or "library/ubuntu". */
  readonly domain: string;
  readonly path: string;
  readonly tag: string | null;
  readonly digest: string | null;
}

export type ParsedLiteral = { ok: true; reference: LiteralReference } | Refused;

/** Go's `Parse`: the full grammar, tag and digest included, nothing added. */
export function parseLiteral(input: string): ParsedLiteral {
  return parsed(literalOf(input), input);
}

/** Go's `WithName`: a bare repository name, no tag and no digest. */
export function withName(name: string): ParsedLiteral {
  const match = matchName(name);
  if (match === null) return parsed('reference-invalid-format', name);
  if (match.path.length > PATH_MAX) return parsed('name-too-long', name);
  return parsed({ ...match, tag: null, digest: null }, name);
}

/** Go's `WithTag`: replaces the tag, keeps any digest. */
export function withTag(reference: LiteralReference, tag: string): ParsedLiteral {
  return parsed(isTag(tag) ? { ...reference, tag } : 'tag-invalid', tag);
}

/**
 * Go's `WithDigest`: replaces the digest, keeps any tag. Like Go it checks the reference grammar only (any
 * algorithm, 32 or more hex digits), not the algorithm's length: a composed reference may not parse back.
 */
export function withDigest(reference: LiteralReference, digest: string): ParsedLiteral {
  return parsed(isReferenceDigest(digest) ? { ...reference, digest } : 'digest-invalid-format', digest);
}

/** Go's `splitDomain`: the domain is "" and the path the whole input when the name grammar refuses it. */
export function splitDomain(name: string): NameMatch {
  return matchName(name) ?? { domain: '', path: name };
}

/** Go's `Name()`: the repository name, domain included when there is one. */
export function literalName(reference: LiteralReference): string {
  return reference.domain === '' ? reference.path : `${reference.domain}/${reference.path}`;
}

/** Go's `String()`: name[:tag][@digest]. */
export function literalString(reference: LiteralReference): string {
  const tag = reference.tag === null ? '' : `:${reference.tag}`;
  const digest = reference.digest === null ? '' : `@${reference.digest}`;
  return `${literalName(reference)}${tag}${digest}`;
}

/** Parse's checks in Go's order: the reference, or the code of the first check broken (callers word it). */
export function literalOf(input: string): LiteralReference | ReferenceErrorCode {
  if (input === '') return 'name-empty';
  const match = matchReference(input);
  if (match === null) {
    const lower = lowerCaseAsGo(input);
    return lower !== input && matchReference(lower) !== null
      ? 'name-contains-uppercase'
      : 'reference-invalid-format';
  }
  if (match.path.length > PATH_MAX) return 'name-too-long';
  const problem = match.digest === '' ? null : digestProblem(match.digest);
  if (problem !== null) return problem;
  return {
    domain: match.domain,
    path: match.path,
    tag: match.tag === '' ? null : match.tag,
    digest: match.digest === '' ? null : match.digest,
  };
}

/**
 * Go's strings.ToLower wherever it matters here: the grammar is ASCII, so only characters that Go lowers
 * to ASCII can make the lowered input match: A–Z, the dotted capital I (U+0130) and the Kelvin sign
 * (U+212A). JavaScript lowers U+0130 to two characters, which would turn "İmage" into a format error.
 */
function lowerCaseAsGo(input: string): string {
  return input.replace(/[A-Z\u0130\u212A]/g, (c) =>
    c === '\u0130' ? 'i' : c === '\u212A' ? 'k' : c.toLowerCase(),
  );
}

function parsed(outcome: LiteralReference | ReferenceErrorCode, input: string): ParsedLiteral {
  return typeof outcome === 'string' ? refused(outcome, input) : { ok: true, reference: outcome };
}
