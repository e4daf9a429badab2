// A distribution registry process on a free loopback port, serving TLS with the demo's certificate from a temp dir.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Dispatcher, request } from 'undici';
import { stringify } from 'yaml';
import type { Cleanup } from './cleanup.js';
import { freeLoopbackPort, LOOPBACK } from './ports.js';

const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 2000;
const LOG_LIMIT = 16 * 1024;

export interface RegistryProcessOptions {
  /** The registry binary (findRegistryBinary). */
  readonly binary: string;
  /** Names the registry in messages and its directory under `dir`. */
  readonly name: string;
  /** A directory of the demo's; the registry's config and storage go in `dir/name`. */
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Trusts the certificate: used to ask the registry whether it is up. */
  readonly dispatcher: Dispatcher;
  /** Stops the process with the rest of the demo. */
  readonly cleanup: Cleanup;
  readonly signal?: AbortSignal;
}

export interface RegistryProcess {
  readonly name: string;
  readonly port: number;
  /** `127.0.0.1:PORT`: the registry part of an image reference. */
  readonly host: string;
  /** `https://127.0.0.1:PORT` */
  readonly url: string;
  readonly pid: number | undefined;
  /** The process's recent output, for error messages. */
  logs(): string;
  /** SIGTERM, then SIGKILL after 2 s; resolves once the process has exited. */
  stop(): Promise<void>;
}

/** distribution's config: filesystem storage, TLS on loopback, logs quiet enough to keep in memory. */
export function registryConfig(options: {
  addr: string;
  storage: string;
  certFile: string;
  keyFile: string;
}) {
  return {
    version: 0.1,
    log: { level: 'warn', formatter: 'text', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: options.storage },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: options.addr,
      secret: randomBytes(16).toString('hex'),
      tls: { certificate: options.certFile, key: options.keyFile },
    },
  };
}

function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts the registry and resolves once GET /v2/ answers; the process is stopped by `cleanup` at the latest. */
export async function startRegistryProcess(options: RegistryProcessOptions): Promise<RegistryProcess> {
  const dir = join(options.dir, options.name);
  const storage = join(dir, 'storage');
  await mkdir(storage, { recursive: true });
  const port = await freeLoopbackPort();
  const host = `${LOOPBACK}:${port}`;
  const url = `https://${host}`;
  const configFile = join(dir, 'config.yml');
  await writeFile(
    configFile,
    stringify(registryConfig({ addr: host, storage, certFile: options.certFile, keyFile: options.keyFile })),
  );

  // All its traffic is loopback: no proxy variables, nothing of the caller's environment but PATH.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '' };
  const child = spawn(options.binary, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env });
  options.cleanup.trackChild(child);
  options.cleanup.add(`stop the ${options.name} registry`, () => terminate(child));
  let log = '';
  const append = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-LOG_LIMIT);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    if (spawnError) throw new Error(`cannot run ${options.binary}: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `the ${options.name} registry exited (${child.exitCode ?? child.signalCode}) while starting:\n${log}`,
      );
    }
    try {
      const response = await request(`${url}/v2/`, {
        dispatcher: options.dispatcher,
        signal: AbortSignal.timeout(1000),
      });
      await response.body.dump();
      if (response.statusCode === 200) break;
      lastError = new Error(`GET /v2/ answered ${response.statusCode}`);
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the ${options.name} registry did not answer within ${READY_TIMEOUT_MS / 1000} s (${String(lastError)}):\n${log}`,
      );
    }
    await sleep(20);
  }
  return {
    name: options.name,
    port,
    host,
    url,
    pid: child.pid,
    logs: () => log,
    stop: () => terminate(child),
  };
}
