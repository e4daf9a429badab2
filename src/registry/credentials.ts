// A registry's configured credentials: loaded once from files, and never shown in errors, logs or serializations.
import { inspect } from 'node:util';
import type { Auth } from '../config/schema.js';
import { lookupConfigKeysForHost } from './keyring.js';
import { RegistrySetupError, readSetupFile } from './setup-error.js';

const REDACTED = '[credentials redacted]';

/** Username and password, held in private fields so that no serialization or inspection can reach them. */
export class Credentials {
  readonly #username: string;
  readonly #password: string;

  constructor(username: string, password: string) {
    this.#username = username;
    this.#password = password;
  }

  get username(): string {
    return this.#username;
  }

  /** The value of an `Authorization` header for HTTP Basic (RFC 7617). */
  basicAuthorization(): string {
    return `Basic ${Buffer.from(`${this.#username}:${this.#password}`, 'utf8').toString('base64')}`;
  }

  /** Strings that must never leave the process in a message: used to scrub text that came from elsewhere. */
  secrets(): string[] {
    const basic = this.basicAuthorization().slice('Basic '.length);
    return [this.#password, basic].filter((s) => s.length >= 4);
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/** One trailing newline is what `echo` and most editors add; anything else is part of the password. */
function trimOneNewline(text: string): string {
  if (text.endsWith('\r\n')) return text.slice(0, -2);
  if (text.endsWith('\n')) return text.slice(0, -1);
  return text;
}

interface DockerConfigEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
}

/**
 * Credentials of one dockerconfigjson entry, as the kubelet reads it: `auth` (base64 of `user:password`, split at
 * the first ':') wins over `username`/`password`.
 */
export function credentialsOfEntry(entry: DockerConfigEntry): Credentials | undefined {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return undefined;
    return new Credentials(decoded.slice(0, colon), decoded.slice(colon + 1));
  }
  if (typeof entry.username === 'string' && entry.username !== '' && typeof entry.password === 'string') {
    return new Credentials(entry.username, entry.password);
  }
  return undefined;
}

/**
 * Picks `registry`'s credentials from a parsed `.dockerconfigjson` (`{"auths": {...}}`) or legacy `.dockercfg`
 * (the map alone). The best-matching key with usable credentials wins.
 */
export function credentialsFromDockerConfig(config: unknown, registry: string): Credentials | undefined {
  if (config === null || typeof config !== 'object') return undefined;
  const auths = 'auths' in config ? (config as { auths: unknown }).auths : config;
  if (auths === null || typeof auths !== 'object') return undefined;
  const entries = auths as Record<string, unknown>;
  for (const key of lookupConfigKeysForHost(Object.keys(entries), registry)) {
    const entry = entries[key];
    if (entry === null || typeof entry !== 'object') continue;
    const credentials = credentialsOfEntry(entry as DockerConfigEntry);
    if (credentials) return credentials;
  }
  return undefined;
}

/**
 * Reads the credentials `auth` configures for `registry` (`host[:port]`, 'docker.io' for Docker Hub). Files are
 * read now and only now: a changed file takes effect when the config reload builds a new client.
 */
export async function loadCredentials(
  auth: Auth | undefined,
  registry: string,
): Promise<Credentials | undefined> {
  if (auth === undefined) return undefined;
  if ('passwordFile' in auth) {
    const password = trimOneNewline(
      await readSetupFile(auth.passwordFile, 'password-file-unreadable', registry),
    );
    if (password === '') {
      throw new RegistrySetupError('password-empty', `registry ${registry}: ${auth.passwordFile} is empty`);
    }
    return new Credentials(auth.username, password);
  }
  const text = await readSetupFile(auth.dockerConfigJson, 'docker-config-unreadable', registry);
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    // JSON.parse's own message quotes the input, which holds secrets.
    throw new RegistrySetupError(
      'docker-config-invalid',
      `registry ${registry}: ${auth.dockerConfigJson} is not JSON`,
    );
  }
  const credentials = credentialsFromDockerConfig(config, registry);
  if (!credentials) {
    throw new RegistrySetupError(
      'docker-config-no-entry',
      `registry ${registry}: ${auth.dockerConfigJson} has no usable credentials for this registry`,
    );
  }
  return credentials;
}
