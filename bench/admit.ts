// The orchestrator's own HTTPS client to the webhook, for admissions timed one by one (cold path, faults, registry
// load): keep-alive connections as the apiserver holds them, and the response decoded for checks.
import { Pool } from 'undici';
import type { AdmissionResponse } from '../src/admission/review.js';
import { bodyOf, type Review } from './pods.js';

export interface Admitted {
  /** Client-observed: request written to response fully read. */
  readonly ms: number;
  readonly statusCode: number;
  readonly response: AdmissionResponse;
}

const TIMEOUT_MS = 30_000;

export class AdmissionClient {
  readonly #pool: Pool;

  constructor(port: number, caPem: string, connections = 1) {
    this.#pool = new Pool(`https://127.0.0.1:${port}`, {
      connect: { ca: caPem },
      connections,
      keepAliveTimeout: 60_000,
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    });
  }

  /** Opens the connection(s) with GET /healthz, so that a timed admission does not pay the TLS handshake. */
  async connect(connections = 1): Promise<void> {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        const answer = await this.#pool.request({ method: 'GET', path: '/healthz' });
        await answer.body.dump();
      }),
    );
  }

  async admit(review: Review): Promise<Admitted> {
    const body = bodyOf(review);
    const started = performance.now();
    const answer = await this.#pool.request({
      method: 'POST',
      path: '/mutate',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await answer.body.text();
    const ms = performance.now() - started;
    const parsed = JSON.parse(text) as { response?: AdmissionResponse };
    if (!parsed.response)
      throw new Error(`/mutate answered ${answer.statusCode} without a response: ${text.slice(0, 300)}`);
    return { ms, statusCode: answer.statusCode, response: parsed.response };
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

/** The images a response's patch sets, by JSON pointer (`/spec/containers/0/image` → value). */
export function patchedImages(response: AdmissionResponse): Map<string, string> {
  const images = new Map<string, string>();
  if (!response.patch) return images;
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as {
    op: string;
    path: string;
    value?: unknown;
  }[];
  for (const op of ops) {
    if (op.op === 'replace' && op.path.endsWith('/image') && typeof op.value === 'string')
      images.set(op.path, op.value);
  }
  return images;
}

/** Every image rewritten to a candidate, nothing late: what an answer from warm or reachable registries is. */
export function expectAllRouted(response: AdmissionResponse, sites: number, what: string): void {
  const routed = patchedImages(response).size;
  const late = (response.warnings ?? []).filter((warning) => warning.includes('(deadline)'));
  if (!response.allowed || routed !== sites || late.length > 0) {
    throw new Error(
      `${what}: expected all ${sites} images rerouted, got ${routed}: ${JSON.stringify(response.warnings ?? [])}`,
    );
  }
}
