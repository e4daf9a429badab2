// Loopback addresses and ports: everything the demo starts listens on 127.0.0.1 only.
import { createServer } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/** A port the kernel just handed out on loopback: free unless another program takes it first. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = address !== null && typeof address === 'object' ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port from the kernel'))));
    });
  });
}
