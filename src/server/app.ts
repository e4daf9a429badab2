// The webhook's HTTP surface: /mutate, /healthz, /readyz. Transport only: decode, call the pipeline, encode.
import type { SecureContextOptions } from 'node:tls';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type MutateDeps, type MutateOutcome, mutate } from '../admission/mutate.js';
import { reportOnly } from '../admission/report.js';
import { type AdmissionRequest, decodeReview, reviewOf, uidOf } from '../admission/review.js';
import { auditRecords, writeAudit } from '../audit/audit.js';
import type { Metrics } from '../audit/metrics.js';
import { LazyDeadline } from '../state/deadline.js';
import { inOneWrite } from './log.js';

/**
 * Same limit as controller-runtime: etcd stores objects up to 1.5 MiB and a review carries the object twice
 * (object and oldObject) plus JSON overhead; 7 MiB leaves room without letting a client exhaust memory.
 */
export const BODY_LIMIT_BYTES = 7 * 1024 * 1024;

export interface AppDeps {
  /** Read per request, so that a config reload takes effect for the next review. */
  readonly mutateDeps: () => MutateDeps;
  /** Told when a review is done with what mutateDeps gave it: replaced registry state is closed only after. */
  readonly release?: (deps: MutateDeps) => void;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** False until registry state can be trusted (the first probe round): a new replica never routes blind. */
  readonly isReady: () => boolean;
  /**
   * Told of each review's outcome once it is answered (the Events on rerouted pods). It must return at once; what
   * it throws is logged, never the admission's concern.
   */
  readonly answered?: (request: AdmissionRequest, outcome: MutateOutcome) => void;
}

/** The reason an admission's signal aborts with: made once, as AbortSignal.timeout's would be for each. */
const DEADLINE_PASSED = new DOMException('the admission deadline passed', 'TimeoutError');

/** An answer to something that is not a usable AdmissionReview: an HTTP 4xx, which a failurePolicy of Ignore admits. */
function rejection(uid: string, code: number, message: string) {
  return reviewOf({ uid, allowed: false, status: { code, message } });
}

/**
 * Once closing, every answer ends its connection. fastify closes the connections idle when close() starts, but one
 * busy then would, once answered, sit in keep-alive for keepAliveTimeout (72 s), holding shutdown past the pod's
 * grace period; the apiserver simply opens a new connection, to a replica still serving.
 */
function endConnectionsOnceClosing(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // A callback rather than an async function: this runs for every answer, and a promise each is not free.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
}

export interface AppOptions {
  /** Serve HTTPS with this certificate; plain HTTP without (tests that use inject only). */
  readonly https?: SecureContextOptions;
}

/** Slow or stalled clients must not hold sockets (slowloris); the apiserver sends a whole review at once. */
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * A connection that never completes its TLS handshake is held for 120 s by default (node's tls.Server): a few
 * hundred silent sockets would tie up the webhook. The apiserver's handshake takes milliseconds.
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Node enforces request timeouts only when it checks connections (every 30 s by default), and it takes the longer
 * of requestTimeout and headersTimeout (60 s by default): both are set, or a client trickling a body keeps its
 * socket for a minute and more.
 */
const SERVER_TIMEOUTS = {
  headersTimeout: REQUEST_TIMEOUT_MS,
  connectionsCheckingInterval: 1000,
  handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
};

export function buildApp(deps: AppDeps, options: AppOptions = {}): FastifyInstance {
  const app = Fastify({
    bodyLimit: BODY_LIMIT_BYTES,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // Keep-alive connections the apiserver holds open must not delay shutdown once in-flight requests are done.
    forceCloseConnections: 'idle',
    ...(options.https ? { https: { ...options.https, ...SERVER_TIMEOUTS } } : {}),
  }) as unknown as FastifyInstance;

  endConnectionsOnceClosing(app);
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const code =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (code === 500) deps.log.error({ err: error }, 'unexpected error serving a request');
    deps.metrics.recordRejected(code === 500 ? 'error' : 'invalid', 0);
    reply.code(code).send(rejection(uidOf(request.body), code, error.message));
  });

  app.post('/mutate', async (request, reply) => {
    const started = performance.now();
    const decoded = decodeReview(request.body);
    if (!decoded.ok) {
      deps.metrics.recordRejected('invalid', (performance.now() - started) / 1000);
      return reply.code(400).send(rejection(uidOf(request.body), 400, decoded.message));
    }
    const admissionRequest = decoded.review.request;
    const mutateDeps = deps.mutateDeps();
    // Armed only if a lookup waits (see LazyDeadline), from the review's arrival; its timer is cleared with the
    // answer. AbortSignal.timeout's would stay armed for the whole deadline after it, and abort a signal nobody
    // listens to any more (an exception object made each time).
    const deadline = new LazyDeadline(started + mutateDeps.config.admission.deadlineMs, DEADLINE_PASSED);
    try {
      const decided = await mutate(admissionRequest, mutateDeps, deadline);
      // Report mode decides as enforce does and withholds the patch: the same pipeline, another answer.
      const outcome = mutateDeps.config.admission.mode === 'report' ? reportOnly(decided) : decided;
      const seconds = (performance.now() - started) / 1000;
      deps.metrics.recordOutcome(outcome, seconds);
      const records = auditRecords(admissionRequest, outcome, Math.round(seconds * 1e6) / 1e3);
      inOneWrite(deps.log, () => writeAudit(deps.log, records));
      if (outcome.patchError)
        deps.log.error({ uid: admissionRequest.uid, error: outcome.patchError }, 'patch did not apply');
      try {
        deps.answered?.(admissionRequest, outcome);
      } catch (error) {
        deps.log.error({ err: error, uid: admissionRequest.uid }, 'after an admission');
      }
      return reviewOf(outcome.response);
    } catch (error) {
      // Fail open: whatever went wrong, the pod is admitted as it is, and the user is told.
      deps.log.error({ err: error, uid: admissionRequest.uid }, 'admission failed; pod admitted unchanged');
      deps.metrics.recordRejected('error', (performance.now() - started) / 1000);
      return reviewOf({
        uid: admissionRequest.uid,
        allowed: true,
        warnings: ['regroute: internal error; pod admitted unchanged'],
        auditAnnotations: { decision: 'error' },
      });
    } finally {
      deadline.clear();
      deps.release?.(mutateDeps);
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) =>
    deps.isReady()
      ? { status: 'ready' }
      : reply.code(503).send({ status: 'waiting for the first probe round' }),
  );
  return app;
}

/** The metrics endpoint, on its own port and plain HTTP, so scraping needs no webhook certificate. */
export function buildMetricsApp(metrics: Metrics): FastifyInstance {
  const app = Fastify();
  endConnectionsOnceClosing(app);
  app.get('/metrics', async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  return app;
}
