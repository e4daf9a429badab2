// The closed set of reasons an image reference is refused, and the error values that carry them.

/**
 * One code per sentinel error of distribution/reference and go-digest, so logs, metrics and warnings can
 * count refusals by kind; `name-is-identifier` is ParseNormalizedNamed's unnamed 64-hex rule.
 */
export type ReferenceErrorCode =
  | 'reference-invalid-format'
  | 'name-empty'
  | 'name-too-long'
  | 'name-contains-uppercase'
  | 'name-not-canonical'
  | 'name-is-identifier'
  | 'tag-invalid'
  | 'digest-invalid-format'
  | 'digest-invalid-length'
  | 'digest-unsupported';

export interface ReferenceError {
  readonly code: ReferenceErrorCode;
  readonly message: string;
}

/** The Error() texts of the Go sentinels, kept word for word so messages can be compared with Go tools. */
const DESCRIPTIONS: Readonly<Record<ReferenceErrorCode, string>> = {
  'reference-invalid-format': 'invalid reference format',
  'name-empty': 'repository name must have at least one component',
  'name-too-long': 'repository name must not be more than 255 characters',
  'name-contains-uppercase': 'repository name must be lowercase',
  'name-not-canonical': 'repository name must be canonical',
  'name-is-identifier': 'invalid repository name, cannot specify 64-byte hexadecimal strings',
  'tag-invalid': 'invalid tag format',
  'digest-invalid-format': 'invalid checksum digest format',
  'digest-invalid-length': 'invalid checksum digest length',
  'digest-unsupported': 'unsupported digest algorithm',
};

/** Messages end up in kubectl warnings and log lines, where a pod's 10 kB garbage image must not. */
const QUOTED_INPUT_MAX = 256;

/** The failing side of every parse result in this module. */
export type Refused = { ok: false; error: ReferenceError };

export function refused(code: ReferenceErrorCode, input: string): Refused {
  return { ok: false, error: { code, message: `${DESCRIPTIONS[code]}: ${quote(input)}` } };
}

function quote(input: string): string {
  if (input.length <= QUOTED_INPUT_MAX) return JSON.stringify(input);
  return `${JSON.stringify(input.slice(0, QUOTED_INPUT_MAX))}… (${input.length} characters)`;
}
