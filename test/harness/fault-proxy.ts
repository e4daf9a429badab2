// A loopback proxy in front of a harness registry that fails on demand, one mode at a time.
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { HarnessCA } from './ca.js';
import type { Credentials, RegistryEndpoint } from './client.js';
import { freePort, LOOPBACK, sleep } from './ports.js';

export type FaultMode =
  | 'pass'
  | 'refuse'
  | 'reset'
  | 'blackhole'
  | 'slow'
  | 'status'
  | 'rate-limit'
  | 'bad-tls'
  | 'wrong-digest';

export const FAULT_MODES: readonly FaultMode[] = [
  'pass',
  'refuse',
  'reset',
  'blackhole',
  'slow',
  'status',
  'rate-limit',
  'bad-tls',
  'wrong-digest',
];

export interface FaultOptions {
  /** slow: delay before forwarding; default 1000 ms. */
  delayMs?: number;
  /** status: the status every request gets; default 503. */
  status?: number;
  /** rate-limit: the Retry-After value in seconds; default 1. */
  retryAfterSeconds?: number;
  /** wrong-digest: the Docker-Content-Digest to answer with; default a digest derived from the real one. */
  digest?: string;
  /**
   * HTTP modes (slow, status, rate-limit, wrong-digest): act only on requests whose path matches, and pass the rest
   * (a registry whose manifests fail while GET /v2/ answers); default every request.
   */
  paths?: RegExp;
}

export interface FaultProxyContext {
  ca: HarnessCA;
  dispatcher: Dispatcher;
}

export interface FaultProxy extends RegistryEndpoint {
  host: string;
  port: number;
  url: string;
  caFile: string;
  dispatcher: Dispatcher;
  /** The upstream's credentials: the proxy is used as if it were the registry. */
  credentials?: Credentials;
  upstream: string;
  readonly mode: FaultMode;
  readonly options: FaultOptions;
  /**
   * Switches mode. Entering or leaving a mode that acts on connections (refuse, reset, blackhole, bad-tls)
   * drops every open connection, so that the next request meets the new mode rather than a kept-alive socket.
   */
  setMode(mode: FaultMode, options?: FaultOptions): Promise<void>;
  /** TCP connections accepted, by the mode in force when each was accepted (refuse: none, by definition). */
  readonly connections: Readonly<Record<FaultMode, number>>;
  /** HTTP requests received, by the mode in force when each arrived (reset and blackhole: none). */
  readonly requests: Readonly<Record<FaultMode, number>>;
  /** Requests that reached the upstream registry (pass, slow, bad-tls, wrong-digest). */
  readonly forwarded: number;
  /** Resolves once `count` requests received since start (or resetCounts) have ended: answered, or left by their client. */
  untilSettled(count: number): Promise<void>;
  /** Resolves once `count` requests have arrived since start (or resetCounts), whatever the mode did with them. */
  untilReceived(count: number): Promise<void>;
  resetCounts(): void;
  stop(): Promise<void>;
}

const CONNECTION_MODES: ReadonlySet<FaultMode> = new Set(['refuse', 'reset', 'blackhole', 'bad-tls']);

// Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own business on each leg.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const kept: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name)) kept[name] = value;
  return kept;
}

function zeroCounts(): Record<FaultMode, number> {
  return Object.fromEntries(FAULT_MODES.map((mode) => [mode, 0])) as Record<FaultMode, number>;
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message, detail: 'regroute harness fault proxy' }] });
}

export async function startFaultProxy(
  context: FaultProxyContext,
  upstream: Pick<RegistryEndpoint, 'url' | 'credentials'>,
  initial: { mode?: FaultMode; options?: FaultOptions } = {},
): Promise<FaultProxy> {
  const upstreamUrl = new URL(upstream.url);
  const upstreamAgent = new HttpsAgent({ keepAlive: true, ca: context.ca.certPem });
  const port = await freePort();
  const host = `${LOOPBACK}:${port}`;

  let mode: FaultMode = initial.mode ?? 'pass';
  let options: FaultOptions = initial.options ?? {};
  let connections = zeroCounts();
  let requests = zeroCounts();
  let forwarded = 0;
  let settled = 0;
  const settleWaiters = new Set<{ count: number; resolve: () => void }>();
  let received = 0;
  const receiveWaiters = new Set<{ count: number; resolve: () => void }>();
  let stopped = false;
  const sockets = new Set<Socket>();

  const forward = (request: IncomingMessage, response: ServerResponse, rewriteDigest: boolean) => {
    if (request.destroyed || response.destroyed) return;
    forwarded++;
    const outgoing = httpsRequest(
      {
        protocol: upstreamUrl.protocol,
        hostname: upstreamUrl.hostname,
        port: upstreamUrl.port,
        method: request.method,
        path: request.url,
        // The client's Host is kept: distribution builds upload Locations from it, so they lead back here.
        headers: endToEnd(request.headers),
        agent: upstreamAgent,
      },
      (upstreamResponse) => {
        const headers = endToEnd(upstreamResponse.headers);
        const digest = headers['docker-content-digest'];
        if (rewriteDigest && typeof digest === 'string') {
          headers['docker-content-digest'] =
            options.digest ?? `sha256:${createHash('sha256').update(`not ${digest}`).digest('hex')}`;
        }
        response.writeHead(upstreamResponse.statusCode ?? 502, headers);
        upstreamResponse.pipe(response);
      },
    );
    outgoing.on('error', (error) => {
      if (response.headersSent) {
        response.destroy(error);
      } else {
        response.writeHead(502, { 'content-type': 'application/json' });
        response.end(errorBody('UNAVAILABLE', `upstream: ${error.message}`));
      }
    });
    request.pipe(outgoing);
  };

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const current = options.paths && !options.paths.test(request.url ?? '') ? 'pass' : mode;
    requests[current]++;
    received++;
    for (const waiter of receiveWaiters) {
      if (received < waiter.count) continue;
      receiveWaiters.delete(waiter);
      waiter.resolve();
    }
    const counted = requests;
    response.once('close', () => {
      if (counted !== requests) return; // counted before a resetCounts
      settled++;
      for (const waiter of settleWaiters) {
        if (settled < waiter.count) continue;
        settleWaiters.delete(waiter);
        waiter.resolve();
      }
    });
    switch (current) {
      case 'status': {
        const status = options.status ?? 503;
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(
          request.method === 'HEAD' ? undefined : errorBody('UNAVAILABLE', `fault proxy: ${status}`),
        );
        return;
      }
      case 'rate-limit':
        response.writeHead(429, {
          'content-type': 'application/json',
          'retry-after': String(options.retryAfterSeconds ?? 1),
        });
        response.end(
          request.method === 'HEAD' ? undefined : errorBody('TOOMANYREQUESTS', 'too many requests'),
        );
        return;
      case 'slow': {
        const timer = setTimeout(() => forward(request, response, false), options.delayMs ?? 1000);
        response.once('close', () => clearTimeout(timer));
        return;
      }
      case 'wrong-digest':
        forward(request, response, true);
        return;
      case 'pass':
      case 'bad-tls':
        forward(request, response, false);
        return;
      default:
        // A connection mode met on a connection opened before the switch; setMode drops those, this is a backstop.
        request.socket.destroy();
    }
  };

  const goodTls = createHttpsServer(
    { cert: context.ca.serving.certPem, key: context.ca.serving.keyPem },
    handle,
  );
  const wrong = context.ca.wrongName();
  const badTls = createHttpsServer({ cert: wrong.certPem, key: wrong.keyPem }, handle);

  const tcp: Server = createTcpServer((socket) => {
    connections[mode]++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    switch (mode) {
      case 'reset':
        socket.resetAndDestroy();
        return;
      case 'blackhole':
        // Held open, never read: the client's connect (TLS handshake) never completes.
        return;
      case 'bad-tls':
        badTls.emit('connection', socket);
        return;
      default:
        goodTls.emit('connection', socket);
    }
  });

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      if (tcp.listening) return resolve();
      tcp.once('error', reject);
      tcp.listen(port, LOOPBACK, () => {
        tcp.off('error', reject);
        // A forgotten stop() must not keep the test process alive; open connections still do while in use.
        tcp.unref();
        resolve();
      });
    });
  const unlisten = () =>
    new Promise<void>((resolve) => {
      if (!tcp.listening) return resolve();
      tcp.close(() => resolve());
      dropConnections();
    });
  const dropConnections = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  const setMode = async (next: FaultMode, nextOptions: FaultOptions = {}) => {
    if (stopped) throw new Error('fault proxy stopped');
    const previous = mode;
    mode = next;
    options = nextOptions;
    if (next === 'refuse') {
      await unlisten();
    } else {
      await listen();
    }
    if (CONNECTION_MODES.has(previous) || CONNECTION_MODES.has(next)) {
      dropConnections();
      // Lets clients in this process see the close before they pick a pooled socket for the next request.
      await sleep(10);
    }
  };

  if (mode !== 'refuse') await listen();
  return {
    host,
    port,
    url: `https://${host}`,
    caFile: context.ca.caFile,
    dispatcher: context.dispatcher,
    ...(upstream.credentials ? { credentials: upstream.credentials } : {}),
    upstream: upstream.url,
    get mode() {
      return mode;
    },
    get options() {
      return options;
    },
    setMode,
    get connections() {
      return connections;
    },
    get requests() {
      return requests;
    },
    get forwarded() {
      return forwarded;
    },
    untilSettled(count) {
      if (settled >= count) return Promise.resolve();
      return new Promise((resolve) => settleWaiters.add({ count, resolve }));
    },
    untilReceived(count) {
      if (received >= count) return Promise.resolve();
      return new Promise((resolve) => receiveWaiters.add({ count, resolve }));
    },
    resetCounts() {
      connections = zeroCounts();
      requests = zeroCounts();
      forwarded = 0;
      settled = 0;
      received = 0;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await unlisten();
      dropConnections();
      goodTls.close();
      badTls.close();
      upstreamAgent.destroy();
    },
  };
}
