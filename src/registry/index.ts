// The registry module's public surface: the OCI distribution client and the pieces callers and tests name.
export { AVAILABILITIES, type Availability, availabilityOf, parseRetryAfter } from './availability.js';
export { type Challenge, parseAuthParams, parseWwwAuthenticate } from './challenge.js';
export {
  type CallOptions,
  type ClientSettings,
  createRegistryClient,
  DEFAULT_CONNECTIONS,
  DEFAULT_TIMEOUTS,
  type ManifestResult,
  type Operation,
  originOf,
  type PingResult,
  RegistryClient,
  type RegistryClientOptions,
  type RequestEvent,
  type RequestKind,
  type Timeouts,
} from './client.js';
export { Credentials, credentialsFromDockerConfig, loadCredentials } from './credentials.js';
export { digestOf, isDigest, parseDigest } from './digest.js';
export {
  isDefaultRegistryMatch,
  lookupConfigKeys,
  lookupConfigKeysForHost,
  normalizeConfigKey,
  urlsMatch,
} from './keyring.js';
export {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  MANIFEST_ACCEPT,
  MANIFEST_MEDIA_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
} from './media-types.js';
export { RegistrySetupError, type RegistrySetupErrorCode } from './setup-error.js';
export {
  mergeScopes,
  parseTokenResponse,
  repositoryScope,
  type Token,
  TokenCache,
  tokenRequestUrl,
} from './token.js';
