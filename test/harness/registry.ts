// Real distribution registries (Debian's docker-registry, v2.8) on loopback: config, process, restarts.

import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Dispatcher, request } from 'undici';
import { stringify } from 'yaml';
import type { HarnessCA } from './ca.js';
import { spawnTracked, terminate } from './children.js';
import type { Credentials, RegistryEndpoint } from './client.js';
import { freePort, LOOPBACK, sleep } from './ports.js';
import type { TokenIssuer } from './token-issuer.js';

const REGISTRY_BINARY = process.env.REGROUTE_DOCKER_REGISTRY ?? 'docker-registry';
const READY_TIMEOUT_MS = 15_000;
const LOG_LIMIT = 64 * 1024;

export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; username?: string; password?: string }
  /** `credentials`: what clients present to the issuer for this registry; default: the issuer's first user. */
  | { kind: 'token'; issuer: TokenIssuer; service?: string; credentials?: Credentials };

export interface RegistryOptions {
  /** For logs and the token service name; default registry-N. */
  name?: string;
  auth?: RegistryAuth;
  /**
   * Makes this registry a pull-through cache (read-only) of another harness registry or fault proxy,
   * with that upstream's credentials. The upstream must be up when this registry starts: distribution
   * discovers the upstream's token realm once, at startup.
   */
  proxyOf?: RegistryEndpoint;
}

export interface RegistryContext {
  ca: HarnessCA;
  /** The harness temp dir; the registry keeps its config and storage in a subdirectory. */
  dir: string;
  dispatcher: Dispatcher;
}

export interface Registry extends RegistryEndpoint {
  name: string;
  /** `127.0.0.1:PORT`: the registry part of an image reference. */
  host: string;
  port: number;
  /** `https://127.0.0.1:PORT` */
  url: string;
  caFile: string;
  /** The undici dispatcher trusting the harness CA. */
  dispatcher: Dispatcher;
  auth: RegistryAuth['kind'];
  /** Basic credentials (htpasswd), or the credentials to present to the token issuer (token). */
  credentials?: Credentials;
  /** Token auth: the service (token audience) and realm the registry's challenge names. */
  service?: string;
  realm?: string;
  /** Pull-through cache: the upstream URL. */
  upstream?: string;
  configFile: string;
  storageDir: string;
  readonly running: boolean;
  /** The process's recent stderr/stdout, for failure messages. */
  logs(): string;
  /** Stops the process (SIGTERM, SIGKILL after 2 s); the port then refuses connections. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same storage; resolves once GET /v2/ answers. */
  start(): Promise<void>;
}

let registryCount = 0;

async function bcryptHtpasswd(username: string, password: string): Promise<string> {
  // -C 4: the lowest bcrypt cost; distribution checks it on every request, and these are test secrets.
  const { stdout } = await promisify(execFile)('htpasswd', ['-nbB', '-C', '4', username, password]);
  return stdout.trim();
}

/**
 * distribution 2.8 hands proxy.username/password only to the token realms it found by pinging the upstream
 * at startup, never to a Basic challenge. Credentials in the remote URL's userinfo reach a Basic upstream:
 * Go's HTTP client turns them into an Authorization header, and every URL built from the base keeps them.
 */
function proxyConfig(upstream: RegistryEndpoint): Record<string, string> {
  const remoteurl = new URL(upstream.url);
  if (upstream.credentials === undefined) return { remoteurl: remoteurl.toString() };
  const { username, password } = upstream.credentials;
  // A token upstream ignores the Basic header this adds: it answers with its Bearer challenge as before.
  remoteurl.username = encodeURIComponent(username);
  remoteurl.password = encodeURIComponent(password);
  return { remoteurl: remoteurl.toString().replace(/\/$/, ''), username, password };
}

export async function startRegistry(
  context: RegistryContext,
  options: RegistryOptions = {},
): Promise<Registry> {
  registryCount++;
  const name = options.name ?? `registry-${registryCount}`;
  const dir = join(context.dir, `${name}-${randomBytes(3).toString('hex')}`);
  const storageDir = join(dir, 'storage');
  await mkdir(storageDir, { recursive: true });
  const port = await freePort();
  const host = `${LOOPBACK}:${port}`;
  const url = `https://${host}`;
  const authOption = options.auth ?? { kind: 'none' };

  let auth: Record<string, unknown> | undefined;
  let credentials: Credentials | undefined;
  let service: string | undefined;
  let realm: string | undefined;
  if (authOption.kind === 'htpasswd') {
    credentials = {
      username: authOption.username ?? 'harness-user',
      password: authOption.password ?? randomBytes(12).toString('hex'),
    };
    const htpasswdFile = join(dir, 'htpasswd');
    await writeFile(htpasswdFile, `${await bcryptHtpasswd(credentials.username, credentials.password)}\n`);
    auth = { htpasswd: { realm: `regroute-harness-${name}`, path: htpasswdFile } };
  } else if (authOption.kind === 'token') {
    credentials = authOption.credentials ?? authOption.issuer.credentials;
    service = authOption.service ?? `regroute-harness-${name}`;
    realm = authOption.issuer.realm;
    auth = {
      token: {
        realm,
        service,
        issuer: authOption.issuer.issuer,
        rootcertbundle: authOption.issuer.rootCertBundle,
      },
    };
  }

  const config = {
    version: 0.1,
    log: { level: 'warn', formatter: 'text', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: host,
      // A fixed secret keeps upload state valid across a restart on the same port.
      secret: randomBytes(16).toString('hex'),
      tls: { certificate: context.ca.serving.certFile, key: context.ca.serving.keyFile },
    },
    ...(auth ? { auth } : {}),
    ...(options.proxyOf ? { proxy: proxyConfig(options.proxyOf) } : {}),
  };
  const configFile = join(dir, 'config.yml');
  await writeFile(configFile, stringify(config));

  // A clean environment: no proxy variables (all traffic is loopback) and the harness CA as Go's trust store,
  // which a pull-through cache needs to reach its upstream and the upstream's token issuer.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, SSL_CERT_FILE: context.ca.caFile };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;

  let child: ChildProcess | undefined;
  let log = '';
  const append = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-LOG_LIMIT);
  };

  const waitUntilReady = async (proc: ChildProcess, spawnFailed: () => boolean) => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (spawnFailed() || proc.exitCode !== null || proc.signalCode !== null) {
        const how = proc.exitCode ?? proc.signalCode ?? 'spawn failed';
        throw new Error(`registry ${name} exited (${how}) while starting:\n${log}`);
      }
      try {
        const response = await request(`${url}/v2/`, {
          dispatcher: context.dispatcher,
          signal: AbortSignal.timeout(1000),
        });
        await response.body.dump();
        if (response.statusCode === 200 || response.statusCode === 401) return;
        lastError = new Error(`GET /v2/ answered ${response.statusCode}`);
      } catch (error) {
        lastError = error;
      }
      await sleep(15);
    }
    throw new Error(
      `registry ${name} did not answer GET /v2/ within ${READY_TIMEOUT_MS} ms (${lastError}):\n${log}`,
    );
  };

  const start = async () => {
    if (child !== undefined) return;
    const spawned = spawnTracked(REGISTRY_BINARY, ['serve', configFile], env);
    spawned.stdout?.on('data', append);
    spawned.stderr?.on('data', append);
    let spawnFailed = false;
    spawned.once('error', (error) => {
      spawnFailed = true;
      append(
        Buffer.from(`cannot run ${REGISTRY_BINARY} (npm test's pretest installs it): ${error.message}\n`),
      );
    });
    spawned.once('exit', () => {
      if (child === spawned) child = undefined;
    });
    child = spawned;
    try {
      await waitUntilReady(spawned, () => spawnFailed);
    } catch (error) {
      await terminate(spawned);
      throw error;
    }
  };

  const stop = async () => {
    const current = child;
    child = undefined;
    if (current === undefined) return;
    await terminate(current);
    // Lets clients in this process see their kept-alive sockets close: their next request is then refused.
    await sleep(10);
  };

  await start();
  return {
    name,
    host,
    port,
    url,
    caFile: context.ca.caFile,
    dispatcher: context.dispatcher,
    auth: authOption.kind,
    ...(credentials ? { credentials } : {}),
    ...(service ? { service } : {}),
    ...(realm ? { realm } : {}),
    ...(options.proxyOf ? { upstream: options.proxyOf.url } : {}),
    configFile,
    storageDir,
    get running() {
      return child !== undefined;
    },
    logs: () => log,
    stop,
    start,
  };
}
