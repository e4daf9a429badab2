// What the server tests share: serving certificates on disk, an HTTPS client that can see the peer certificate,
// registry state that holds a review in flight until told, and a log read back as parsed lines.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { type Logger, pino } from 'pino';
import { Agent, request } from 'undici';
import { createCA, createServingCert, type KeyPair } from '../../../src/certs/generate.js';
import type { RegistryState, StateHandle } from '../../../src/state/state.js';

export interface CertDir {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** A new serving pair for 127.0.0.1 from the same CA: what cert-manager hands out on renewal. */
  issue(): KeyPair;
  /** Replaces both files at once, as kubelet's symlink swap does, with a rename each. */
  install(pair: { certPem: string; keyPem: string }): Promise<void>;
  dispose(): Promise<void>;
}

export async function certDir(): Promise<CertDir> {
  const ca = createCA('regroute server test CA');
  const dir = await mkdtemp(join(tmpdir(), 'regroute-server-test-'));
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  const issue = () => createServingCert(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const install = async (pair: { certPem: string; keyPem: string }) => {
    await writeFile(`${certFile}.new`, pair.certPem);
    await writeFile(`${keyFile}.new`, pair.keyPem);
    await rename(`${certFile}.new`, certFile);
    await rename(`${keyFile}.new`, keyFile);
  };
  return { dir, certFile, keyFile, issue, install, dispose: () => rm(dir, { recursive: true, force: true }) };
}

export const serialOf = (pair: KeyPair): string => new X509Certificate(pair.certPem).serialNumber;

/** The certificate a new TLS connection to the port is shown. */
export function servedCertificate(port: number): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const certificate = socket.getPeerCertificate();
      socket.end();
      resolve(certificate);
    });
    socket.on('error', reject);
  });
}

/** The serial of the certificate a new TLS connection to the port is shown. */
export const servedSerial = async (port: number): Promise<string> =>
  (await servedCertificate(port)).serialNumber;

/** Keeps connections open between requests, like the apiserver's client does. */
export const keepAliveAgent = (): Agent =>
  new Agent({ connect: { rejectUnauthorized: false }, keepAliveTimeout: 30_000, connections: 1 });

export async function postReview(
  port: number,
  review: unknown,
  dispatcher: Agent,
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { response: { uid: string; allowed: boolean; patch?: string } };
}> {
  const res = await request(`https://127.0.0.1:${port}/mutate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(review),
    dispatcher,
  });
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as never };
}

/**
 * Registry state that answers like `inner`, except that every lookup waits at the gate while it is closed: a review
 * is in flight for as long as a test wants, without sleeping.
 */
export class GatedState implements RegistryState {
  #open: Promise<void> = Promise.resolve();
  #openGate: () => void = () => {};
  #entered: () => void = () => {};
  /** Resolves when a lookup reaches the closed gate. */
  entered: Promise<void> = Promise.resolve();

  constructor(private readonly inner: RegistryState) {}

  close(): void {
    this.#open = new Promise((resolve) => {
      this.#openGate = resolve;
    });
    this.entered = new Promise((resolve) => {
      this.#entered = resolve;
    });
  }

  open(): void {
    this.#openGate();
  }

  health(registry: string) {
    return this.inner.health(registry);
  }

  knownPresence(...args: Parameters<RegistryState['knownPresence']>) {
    return this.inner.knownPresence(...args);
  }

  async resolveTag(...args: Parameters<RegistryState['resolveTag']>) {
    this.#entered();
    await this.#open;
    return this.inner.resolveTag(...args);
  }

  async hasManifest(...args: Parameters<RegistryState['hasManifest']>) {
    this.#entered();
    await this.#open;
    return this.inner.hasManifest(...args);
  }
}

/** A state handle over in-memory state that records whether it was closed. */
export function handleOf(state: RegistryState, ready = true): StateHandle & { closed: boolean } {
  const handle = {
    state,
    closed: false,
    isReady: () => ready,
    async close() {
      handle.closed = true;
    },
  };
  return handle;
}

export interface CapturedLog {
  readonly log: Logger;
  readonly lines: Record<string, unknown>[];
  /** Every line as written, for asserting what must never appear. */
  readonly raw: string[];
  /** Resolves with the first line, logged so far or later, that matches: a test waits on the log, never on a clock. */
  waitFor(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

export function captureLog(): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const waiters = new Set<{
    match: (line: Record<string, unknown>) => boolean;
    resolve: (line: Record<string, unknown>) => void;
  }>();
  const log = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        raw.push(line);
        const parsed = JSON.parse(line) as Record<string, unknown>;
        lines.push(parsed);
        for (const waiter of waiters) {
          if (!waiter.match(parsed)) continue;
          waiters.delete(waiter);
          waiter.resolve(parsed);
        }
      },
    },
  );
  const waitFor = (match: (line: Record<string, unknown>) => boolean) => {
    const seen = lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve) => waiters.add({ match, resolve }));
  };
  return { log, lines, raw, waitFor };
}

export async function scrape(metricsPort: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  return res.text();
}

/** Whether a TCP connection to the port is accepted. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}
