// A TCP gate in front of a loopback registry: passes bytes through while open, refuses connections while shut.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { LOOPBACK } from './ports.js';

export interface Gate {
  /** The port clients connect to; it stays the same whether the gate is open or shut. */
  readonly port: number;
  readonly isOpen: boolean;
  /** Refuses every new connection (nothing listens on the port) and drops the open ones, as a dead host would. */
  shut(): Promise<void>;
  /** Listens again on the same port and passes connections through. */
  open(): Promise<void>;
  /** Shuts the gate for good. */
  stop(): Promise<void>;
}

/**
 * Byte for byte, so TLS runs end to end between the client and the registry behind: the gate never sees a request.
 * Shutting it closes the listening socket, so a connection attempt meets ECONNREFUSED, exactly what a client sees
 * of a registry whose process died or whose host is gone.
 */
export async function startGate(upstreamPort: number, port = 0): Promise<Gate> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A reset on one leg just ends both: the client sees its connection drop, as it would without the gate.
    socket.on('error', () => socket.destroy());
  };
  // Half-open allowed on both legs: a client that ends its side still gets the upstream's answer, as without a gate.
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    track(client);
    const upstream = connect({ port: upstreamPort, host: LOOPBACK, allowHalfOpen: true });
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  let boundPort = port;
  let stopped = false;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(boundPort, LOOPBACK, () => {
        server.off('error', reject);
        const address = server.address();
        if (address !== null && typeof address === 'object') boundPort = address.port;
        resolve();
      });
    });
  const close = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  await listen();
  return {
    get port() {
      return boundPort;
    },
    get isOpen() {
      return server.listening;
    },
    async shut() {
      await close();
    },
    async open() {
      if (stopped) throw new Error('the gate is stopped');
      if (!server.listening) await listen();
    },
    async stop() {
      stopped = true;
      await close();
    },
  };
}
