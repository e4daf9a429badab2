// The public face of the image reference grammar: parseReference is the one the rest of regroute calls.
export { digestEncodedLength, type ParsedDigest, parseDigest } from './digest.js';
export type { ReferenceError, ReferenceErrorCode } from './errors.js';
export {
  isAlgorithmName,
  isDomainAndPort,
  isIdentifier,
  isOciDigest,
  isReferenceDigest,
  isTag,
  matchName,
  matchReference,
  type NameMatch,
  type ReferenceMatch,
} from './grammar.js';
export {
  type LiteralReference,
  literalName,
  literalString,
  type ParsedLiteral,
  parseLiteral,
  splitDomain,
  withDigest,
  withName,
  withTag,
} from './literal.js';
export { splitLocation } from './location.js';
export {
  effectiveTag,
  familiarName,
  familiarString,
  formatReference,
  type ParsedAnyReference,
  type ParsedReference,
  parseAnyReference,
  parseCanonical,
  parseDockerRef,
  parseReference,
  type Reference,
} from './normalize.js';
