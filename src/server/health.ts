// The kubelet's side of a replica: /healthz and /readyz on a plain-HTTP port of their own, and the answers that end
// their connection while the replica drains.
import Fastify, { type FastifyInstance } from 'fastify';

/**
 * The probes' listener. Apart from the admission port, a probe waits neither for a TLS handshake nor behind a
 * storm of reviews queued there, so a busy replica is not taken for a dead one, and two busy replicas are not both
 * taken out of the Service at once (every pod would then be admitted unrouted).
 */
export function buildHealthApp(isReady: () => boolean): FastifyInstance {
  const app = Fastify();
  app.get('/healthz', async () => ({ status: 'ok' }));
  // Stays ready while draining: Kubernetes has already taken a terminating pod out of the Service, and keeps
  // sending to terminating endpoints only while they report serving and nothing else is ready.
  app.get('/readyz', async (_request, reply) =>
    isReady() ? { status: 'ready' } : reply.code(503).send({ status: 'waiting for the first probe round' }),
  );
  return app;
}

/**
 * While `draining()`, every answer says `Connection: close`: the client closes the connection once it has read the
 * answer, and sends its next request on a new one, which the Service no longer routes here. A connection is never
 * closed under a client that may be sending on it, which resets the request.
 */
export function closeConnectionsWhile(app: FastifyInstance, draining: () => boolean): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    if (draining()) reply.header('connection', 'close');
    return payload;
  });
}
