// A tiny registry that lies, for what a real one cannot do: it claims every manifest asked by digest (HEAD answers
// 200 with that digest), and serves bytes that hash to something else. Everything else answers 404.
import { createServer } from 'node:https';
import type { HarnessCA } from './ca.js';
import { freePort, LOOPBACK } from './ports.js';

export interface LyingRegistry {
  /** `host:port`, as an image reference names it. */
  host: string;
  /** Requests received, as `METHOD path`. */
  readonly requests: readonly string[];
  stop(): Promise<void>;
}

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const BODY = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST, layers: [] }));

export async function startLyingRegistry(ca: HarnessCA): Promise<LyingRegistry> {
  const requests: string[] = [];
  const server = createServer({ cert: ca.serving.certPem, key: ca.serving.keyPem }, (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.url === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const digest = /\/manifests\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '')?.[1];
    if (!digest) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
      return;
    }
    // The lie: whatever digest is asked for is the one announced; the bytes are always the same small manifest.
    res.writeHead(200, {
      'content-type': MANIFEST,
      'content-length': BODY.length,
      'docker-content-digest': digest,
    });
    res.end(req.method === 'HEAD' ? undefined : BODY);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, LOOPBACK, resolve));
  server.unref();
  return {
    host: `${LOOPBACK}:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
