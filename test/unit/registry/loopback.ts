// Scripted registry stand-ins on 127.0.0.1 for client tests: HTTPS or HTTP servers whose handlers answer what a test
// needs, and a silent port. Not real registries: test/harness starts those (Debian's distribution).
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, createServingCert, type KeyPair } from '../../../src/certs/generate.js';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

export interface Loopback {
  /** `127.0.0.1:<port>`: the registry key a client is built for. */
  host: string;
  origin: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export interface TestPki {
  /** A CA file to give as `caFile`. */
  caFile: string;
  /** Valid for 127.0.0.1 and localhost, signed by the CA. */
  loopback: KeyPair;
  /** Signed by the same CA for another name only. */
  wrongName: KeyPair;
  dispose(): Promise<void>;
}

export async function createTestPki(): Promise<TestPki> {
  const ca = createCA('regroute test CA');
  const dir = await mkdtemp(join(tmpdir(), 'regroute-registry-test-'));
  const caFile = join(dir, 'ca.crt');
  await writeFile(caFile, ca.certPem);
  return {
    caFile,
    loopback: createServingCert(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }),
    wrongName: createServingCert(ca, { dnsNames: ['wrong.example'] }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

async function listen(
  server: http.Server | https.Server,
  scheme: 'http' | 'https',
  requests: RecordedRequest[],
) {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  const loopback: Loopback = {
    host,
    origin: `${scheme}://${host}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return loopback;
}

function recording(handler: Handler, requests: RecordedRequest[]): Handler {
  return (req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    handler(req, res);
  };
}

export async function startHttps(keyPair: KeyPair, handler: Handler): Promise<Loopback> {
  const requests: RecordedRequest[] = [];
  const server = https.createServer(
    { cert: keyPair.certPem, key: keyPair.keyPem },
    recording(handler, requests),
  );
  return listen(server, 'https', requests);
}

export async function startHttp(handler: Handler): Promise<Loopback> {
  const requests: RecordedRequest[] = [];
  return listen(http.createServer(recording(handler, requests)), 'http', requests);
}

/** Accepts TCP connections and never sends a byte: a blackholed registry. */
export async function startSilent(onConnection: () => void = () => {}): Promise<Loopback> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    onConnection();
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    origin: `https://127.0.0.1:${port}`,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

export const sha256 = (body: Buffer | string): string =>
  `sha256:${createHash('sha256').update(body).digest('hex')}`;

export interface StoredManifest {
  mediaType: string;
  body: Buffer;
}

export interface ManifestStoreOptions {
  /** Leave out Docker-Content-Digest, as some older registries do. */
  omitDigest?: boolean;
  /** Announce this digest instead of the real one. */
  announceDigest?: string;
  /** Answer HEAD with 405 Method Not Allowed. */
  headNotAllowed?: boolean;
}

/**
 * The manifest endpoints of a registry holding `manifests` (keyed `name:tag` and `name@digest`), answering 200 to
 * /v2/ and distribution's MANIFEST_UNKNOWN error body to a GET for anything it lacks.
 */
export function manifestStore(
  manifests: Record<string, StoredManifest>,
  options: ManifestStoreOptions = {},
): Handler {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://registry');
    if (url.pathname === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const match = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (!match) {
      res.writeHead(404).end();
      return;
    }
    const [, name, reference] = match;
    if (req.method === 'HEAD' && options.headNotAllowed) {
      res.writeHead(405).end();
      return;
    }
    const key = reference?.includes(':') ? `${name}@${reference}` : `${name}:${reference}`;
    const manifest = manifests[key];
    if (!manifest) {
      const body = JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const headers: Record<string, string | number> = {
      'content-type': manifest.mediaType,
      'content-length': manifest.body.length,
    };
    if (!options.omitDigest)
      headers['docker-content-digest'] = options.announceDigest ?? sha256(manifest.body);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : manifest.body);
  };
}
