// A loopback stand-in for kube-apiserver: scripted answers per route, watch streams held open for the test. The
// answers are hand-written in the shape of kube-apiserver's (test/fixtures/kube/README.md names what each follows);
// none was recorded from a running apiserver. Answers to writes are made as the apiserver makes them: a new uid and
// creationTimestamp on create, a resourceVersion above every one handed out before, managedFields for the writer.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';

/** A hand-written answer from test/fixtures/kube, parsed afresh so that tests may change their copy. */
// biome-ignore lint/suspicious/noExplicitAny: fixtures are Kubernetes objects of many shapes, read by tests.
export const fixture = (name: string): any =>
  JSON.parse(readFileSync(new URL(`../../fixtures/kube/${name}`, import.meta.url), 'utf8'));

export interface ApiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: request bodies are asserted field by field.
  body: any;
}

export interface Reply {
  status: number;
  body: unknown;
}

export type Responder = Reply | ((request: ApiRequest) => Reply);

export interface WatchStream {
  request: ApiRequest;
  /** Writes one event as the apiserver does: a JSON object on its own line. */
  send(event: unknown): void;
  /** Ends the response, as the apiserver does when a watch times out. */
  end(): void;
  closed: Promise<void>;
}

/** A hand-written answer from test/fixtures/kube, with the HTTP status the apiserver sends with it. */
export const answer = (status: number, name: string): Reply => ({ status, body: fixture(name) });

/**
 * resourceVersion is one counter for the whole apiserver (etcd's revision): every write gets a higher one. It starts
 * above every resourceVersion the fixtures carry.
 */
let lastResourceVersion = 60_000;
/** The resourceVersion of the last write answered. */
export const latestResourceVersion = (): string => String(lastResourceVersion);
const nextResourceVersion = (): string => String(++lastResourceVersion);

/** RFC 3339 to the second, as metav1.Time serializes. */
const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The fields of `body` in FieldsV1 form (`f:<name>`, `.` for a map the writer set as a whole), as managedFields lists them. */
function fieldsV1(body: Record<string, unknown>): Record<string, unknown> {
  const map = (value: unknown): Record<string, unknown> =>
    Object.fromEntries([
      ['.', {}],
      ...Object.keys(value as Record<string, unknown>).map((key) => [`f:${key}`, {}]),
    ]);
  const metadata = (body.metadata ?? {}) as Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  if (body.data) fields['f:data'] = map(body.data);
  const meta: Record<string, unknown> = {};
  if (metadata.annotations) meta['f:annotations'] = map(metadata.annotations);
  if (metadata.labels) meta['f:labels'] = map(metadata.labels);
  if (Object.keys(meta).length > 0) fields['f:metadata'] = meta;
  if (body.type) fields['f:type'] = {};
  return fields;
}

/**
 * The managedFields entry the apiserver writes for a create or update: the manager named by the `fieldManager`
 * query parameter, operation Update (POST and PUT are both "Update"; only server-side apply is "Apply").
 */
const managedBy = (request: ApiRequest, time: string) => ({
  manager: request.query.get('fieldManager') ?? 'unknown',
  operation: 'Update',
  apiVersion: 'v1',
  time,
  fieldsType: 'FieldsV1',
  fieldsV1: fieldsV1(request.body),
});

/**
 * What the apiserver answers to a successful POST: the object as stored, with kind and apiVersion, a uid and
 * creationTimestamp it assigns, a new resourceVersion and the writer's managedFields.
 */
export const created = (request: ApiRequest): Reply => {
  const time = now();
  const { apiVersion, kind, metadata, ...rest } = request.body;
  return {
    status: 201,
    body: {
      kind: kind ?? 'Secret',
      apiVersion: apiVersion ?? 'v1',
      metadata: {
        ...metadata,
        uid: randomUUID(),
        resourceVersion: nextResourceVersion(),
        creationTimestamp: time,
        managedFields: [managedBy(request, time)],
      },
      ...rest,
    },
  };
};

/**
 * What the apiserver answers to a successful PUT: the object with its uid and creationTimestamp kept, a new
 * resourceVersion, and managedFields: a PUT that sends none keeps the stored entries, and the writer's is
 * brought up to date (here the writer's is the only one the stand-in knows of).
 */
export const replaced = (request: ApiRequest): Reply => {
  const { apiVersion, kind, metadata, ...rest } = request.body;
  return {
    status: 200,
    body: {
      kind: kind ?? 'Secret',
      apiVersion: apiVersion ?? 'v1',
      metadata: {
        ...metadata,
        resourceVersion: nextResourceVersion(),
        managedFields: [managedBy(request, now())],
      },
      ...rest,
    },
  };
};

/**
 * A stored object answering JSON patches (application/json-patch+json) as the API server does: the patch is applied
 * to the stored object; a result whose resourceVersion is not the stored one is refused with 409 Conflict (the
 * patch named the resourceVersion it was read at, and the object changed since); otherwise it is stored with a new
 * resourceVersion and a managedFields entry for the writer, and answered. `current()` is the object as stored.
 */
export function patchable<T extends { metadata: { resourceVersion: string; name: string } }>(
  stored: T,
): {
  respond: (request: ApiRequest) => Reply;
  current: () => T;
  /** Changes the stored object as another writer would, giving it a new resourceVersion. */
  change: (edit: (object: T) => void) => void;
} {
  let object = structuredClone(stored);
  return {
    respond(request) {
      if (request.headers['content-type'] !== 'application/json-patch+json') {
        return { status: 415, body: { kind: 'Status', code: 415, reason: 'UnsupportedMediaType' } };
      }
      const result = fastJsonPatch.applyPatch(structuredClone(object), request.body, true, false).newDocument;
      if (result.metadata.resourceVersion !== object.metadata.resourceVersion) {
        return {
          status: 409,
          body: {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message: `Operation cannot be fulfilled on pods "${object.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
            reason: 'Conflict',
            details: { name: object.metadata.name, kind: 'pods' },
            code: 409,
          },
        };
      }
      result.metadata.resourceVersion = nextResourceVersion();
      object = result;
      return { status: 200, body: object };
    },
    current: () => object,
    change(edit) {
      edit(object);
      object.metadata.resourceVersion = nextResourceVersion();
    },
  };
}

const NOT_FOUND = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'the server could not find the requested resource',
  reason: 'NotFound',
  details: {},
  code: 404,
};

/**
 * How long waitFor gives up after: only to name what never came and list what did, well before the test runner's
 * own timeout; generous, since a loaded 2-core machine may take seconds over what takes milliseconds alone.
 */
const WAIT_LIMIT_MS = 30_000;

interface Waiter {
  ready: () => boolean;
  resolve: () => void;
}

export class FakeApiserver {
  readonly requests: ApiRequest[] = [];
  readonly watches: WatchStream[] = [];
  readonly #routes = new Map<string, Responder[]>();
  readonly #watchFailures = new Map<string, Reply[]>();
  readonly #waiters = new Set<Waiter>();
  readonly #server: http.Server;
  #port = 0;

  private constructor() {
    this.#server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => this.#handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
  }

  static async start(): Promise<FakeApiserver> {
    const fake = new FakeApiserver();
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    fake.#port = (fake.#server.address() as AddressInfo).port;
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** client-node refuses plain http unless skipTLSVerify is set, even though there is no TLS to verify. */
  kubeConfig(): KubeConfig {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'loopback', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'regroute' }],
      contexts: [{ name: 'loopback', cluster: 'loopback', user: 'regroute' }],
      currentContext: 'loopback',
    });
    return kubeConfig;
  }

  /** Answers for `method path`, one per request in order; the last one keeps answering. */
  on(method: string, path: string, ...responders: Responder[]): this {
    this.#routes.set(`${method} ${path}`, responders);
    return this;
  }

  /** The next watches on `path` get these answers instead of a stream, one each. */
  failWatch(path: string, ...replies: Reply[]): this {
    this.#watchFailures.set(path, replies);
    return this;
  }

  /** Resolves with the `count`-th request matching, once it has arrived. */
  async waitFor(match: (request: ApiRequest) => boolean, count = 1): Promise<ApiRequest> {
    const matching = () => this.requests.filter(match);
    await this.#until(() => matching().length >= count, `request #${count} matching ${match}`);
    return matching()[count - 1] as ApiRequest;
  }

  /** Resolves with the `count`-th watch stream opened on `path`. */
  async waitForWatch(path: string, count = 1): Promise<WatchStream> {
    const matching = () => this.watches.filter((w) => w.request.path === path);
    await this.#until(() => matching().length >= count, `watch #${count} on ${path}`);
    return matching()[count - 1] as WatchStream;
  }

  /** Requests other than list and watch: the reads and writes of Secrets in target namespaces. */
  targetCalls(): string[] {
    return this.requests
      .filter((r) => /\/secrets\/|\/namespaces\/(?!regroute-system)[^/]+\/secrets$/.test(r.path))
      .map((r) => `${r.method} ${r.path}`);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #until(ready: () => boolean, what: string): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        const seen = this.requests.map((r) => `${r.method} ${r.path}?${r.query}`).join('\n  ');
        reject(new Error(`timed out waiting for ${what}; requests seen:\n  ${seen}`));
      }, WAIT_LIMIT_MS);
      const waiter: Waiter = {
        ready,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiters.add(waiter);
    });
  }

  #notify(): void {
    for (const waiter of this.#waiters) {
      if (waiter.ready()) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse, text: string): void {
    const url = new URL(req.url ?? '/', this.url);
    const request: ApiRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: text === '' ? undefined : JSON.parse(text),
    };
    this.requests.push(request);
    if (url.searchParams.get('watch') === 'true') this.#watch(request, res);
    else this.#answer(request, res);
    this.#notify();
  }

  #answer(request: ApiRequest, res: http.ServerResponse): void {
    const responders = this.#routes.get(`${request.method} ${request.path}`);
    const responder = responders && responders.length > 1 ? responders.shift() : responders?.[0];
    const reply = typeof responder === 'function' ? responder(request) : responder;
    this.#send(res, reply ?? { status: 404, body: NOT_FOUND });
  }

  #send(res: http.ServerResponse, reply: Reply): void {
    res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
  }

  #watch(request: ApiRequest, res: http.ServerResponse): void {
    const failure = this.#watchFailures.get(request.path)?.shift();
    if (failure) {
      this.#send(res, failure);
      return;
    }
    // Headers go out at once: the client's watch call returns only when they arrive.
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const closed = new Promise<void>((resolve) => res.on('close', () => resolve()));
    this.watches.push({
      request,
      send: (event) => res.write(`${JSON.stringify(event)}\n`),
      end: () => res.end(),
      closed,
    });
  }
}
