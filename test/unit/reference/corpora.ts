// The corpora in test/fixtures/reference, shape-checked on load so no test reads a field that is not there.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { ReferenceErrorCode } from '../../../src/reference/index.js';

function load<T extends z.ZodType>(file: string, schema: T): z.infer<T> {
  const url = new URL(`../../fixtures/reference/${file}`, import.meta.url);
  return schema.parse(JSON.parse(readFileSync(url, 'utf8')));
}

/** The Go sentinel each case names, and the code regroute reports for it. */
export const CODE_OF_GO_ERROR = {
  ErrReferenceInvalidFormat: 'reference-invalid-format',
  ErrTagInvalidFormat: 'tag-invalid',
  ErrDigestInvalidFormat: 'digest-invalid-format',
  ErrNameContainsUppercase: 'name-contains-uppercase',
  ErrNameEmpty: 'name-empty',
  ErrNameTooLong: 'name-too-long',
  ErrNameNotCanonical: 'name-not-canonical',
  ErrDigestInvalidLength: 'digest-invalid-length',
  ErrDigestUnsupported: 'digest-unsupported',
} as const satisfies Record<string, ReferenceErrorCode>;

const GoError = z.enum(Object.keys(CODE_OF_GO_ERROR) as [keyof typeof CODE_OF_GO_ERROR]);

const ReferenceCase = z.object({
  function: z.string(),
  input: z.string(),
  valid: z.boolean(),
  name: z.string().optional(),
  domain: z.string().optional(),
  path: z.string().optional(),
  tag: z.string().optional(),
  digest: z.string().optional(),
  roundTrip: z.string().optional(),
  error: GoError.optional(),
  errorMessage: z.string().optional(),
  implementationSpecific: z.boolean().optional(),
  sourceTest: z.string(),
});

const Compose = z.object({
  operation: z.enum(['WithTag', 'WithDigest']),
  name: z.string(),
  tag: z.string().optional(),
  digest: z.string().optional(),
  order: z.string(),
  expectedString: z.string(),
});

const NameTooLongDifference = z.object({
  input: z.string(),
  head: z.object({ valid: z.literal(true), domain: z.string(), path: z.string(), tag: z.string() }),
});
const Ipv6Difference = z.object({
  topic: z.string(),
  inputs: z.array(z.string()),
  distributionReferenceHead: z.string(),
});

export const referenceParse = load(
  'reference-parse.json',
  z.object({
    errorMessages: z.record(GoError, z.string()),
    cases: z.array(ReferenceCase),
    compose: z.array(Compose),
    versionDifferences: z.tuple([NameTooLongDifference, Ipv6Difference]),
  }),
);

export const normalize = load(
  'normalize.json',
  z.object({
    parseNormalizedNamed: z.array(
      z.object({ input: z.string(), valid: z.boolean(), sourceTest: z.string() }),
    ),
    repositoryInfo: z.array(
      z.object({
        inputs: z.array(z.string()),
        fullName: z.string(),
        familiarName: z.string(),
        domain: z.string(),
        path: z.string(),
      }),
    ),
    parseAnyReference: z.array(
      z.object({ input: z.string(), string: z.string(), kind: z.literal('digestOnly').optional() }),
    ),
    normalizedSplitHostname: z.array(z.object({ input: z.string(), domain: z.string(), path: z.string() })),
    tagAndDigest: z.array(
      z.object({
        input: z.string(),
        string: z.string(),
        tagged: z.boolean(),
        digested: z.boolean(),
        familiarString: z.string(),
      }),
    ),
    invalidComponents: z.array(
      z.object({
        operation: z.enum(['ParseNormalizedNamed', 'WithTag', 'WithDigest', 'FamiliarMatch']),
        input: z.string().optional(),
        name: z.string().optional(),
        tag: z.string().optional(),
        digest: z.string().optional(),
        reference: z.string().optional(),
        pattern: z.string().optional(),
      }),
    ),
    familiarMatch: z.array(z.object({ reference: z.string(), pattern: z.string(), expected: z.boolean() })),
    parseDockerRef: z.array(z.object({ name: z.string(), input: z.string(), expected: z.string() })),
    kubeletParseImageName: z.array(
      z.union([
        z.object({ input: z.string(), repo: z.string(), tag: z.string(), digest: z.string() }),
        z.object({ input: z.string(), errorContains: z.string() }),
      ]),
    ),
  }),
);

export const referenceRegexp = load(
  'reference-regexp.json',
  z.object({
    domainAndPort: z.array(z.object({ input: z.string(), match: z.boolean() })),
    anchoredName: z.array(
      z.object({
        input: z.string(),
        match: z.boolean(),
        domain: z.string().optional(),
        path: z.string().optional(),
      }),
    ),
    reference: z.array(
      z.object({
        input: z.string(),
        match: z.boolean(),
        name: z.string().optional(),
        tag: z.string().optional(),
        digest: z.string().optional(),
      }),
    ),
    identifier: z.array(z.object({ input: z.string(), match: z.boolean() })),
  }),
);

export const digest = load(
  'digest.json',
  z.object({
    errorMessages: z.record(z.string(), z.string()),
    encodedLength: z.record(z.string(), z.number()),
    cases: z.array(
      z.object({
        input: z.string(),
        valid: z.boolean(),
        algorithm: z.string().optional(),
        encoded: z.string().optional(),
        error: GoError.optional(),
        grammarValid: z.boolean().optional(),
        requiresRegistered: z.array(z.string()).optional(),
        sourceTest: z.string(),
      }),
    ),
    algorithmNameGrammar: z.array(z.object({ name: z.string(), valid: z.boolean() })),
    knownDigests: z.array(z.object({ algorithm: z.string(), inputBytesHex: z.string(), digest: z.string() })),
  }),
);

/** A case's input as a test title: JSON-quoted, long inputs cut so the runner's output stays readable. */
export function show(input: string): string {
  return input.length <= 72
    ? JSON.stringify(input)
    : `${JSON.stringify(input.slice(0, 48))}… (${input.length} chars)`;
}

/** Go reports absent tags and digests as "", regroute as null. */
export const absentAsNull = (value: string | undefined): string | null =>
  value === undefined || value === '' ? null : value;

/** A parse result as one comparable word: 'accepted', or the error code. */
export const outcomeOf = (result: { ok: true } | { ok: false; error: { code: string } }): string =>
  result.ok ? 'accepted' : result.error.code;
