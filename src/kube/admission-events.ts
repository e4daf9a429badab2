// Events on pods rerouted at admission: built while the review is answered, posted afterwards off its path, through
// a bounded queue that drops (and counts) what it cannot hold, never holding up or failing an admission.
import { hostname } from 'node:os';
import type { CoreV1Event, KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { type MutateOutcome, printable } from '../admission/mutate.js';
import { isObject, metadataOf } from '../admission/pod.js';
import type { AdmissionRequest } from '../admission/review.js';
import type { ApiResult } from './api-failure.js';
import { type Backoff, defaultBackoff } from './backoff.js';
import { coreApi } from './client.js';
import { podApi } from './pod-api.js';

/** The Event's reason, as `kubectl get events` shows it. Repair of a running pod says ImageRerouted. */
export const REROUTED_AT_ADMISSION = 'Rerouted';

/** Reasons an Event is not made for a rewritten pod. */
export const EVENT_SKIPS = ['dry-run', 'unnamed', 'no-namespace'] as const;
export type EventSkip = (typeof EVENT_SKIPS)[number];

export const EVENT_OUTCOMES = ['posted', 'failed', 'dropped', 'skipped'] as const;
export type EventOutcome = (typeof EVENT_OUTCOMES)[number];

/** An Event's message stays short: `kubectl describe` prints it on one line, and events.k8s.io caps notes at 1 KiB. */
export const MAX_MESSAGE_CHARS = 1024;

/** Events waiting to be posted, at most: past it the newest are dropped and counted. */
export const DEFAULT_QUEUE_CAPACITY = 256;
/** Posts at a time: an apiserver that answers slowly must not be met with a burst. */
const DEFAULT_CONCURRENCY = 2;
/** Ceiling of one post. */
export const POST_TIMEOUT_MS = 5_000;
/** A few quick tries per Event (0.2 s, 0.4 s between them), then it is given up and counted failed. */
export const EVENT_BACKOFF: Omit<Backoff, 'sleep' | 'random'> = { baseMs: 200, maxMs: 2_000, attempts: 3 };

type Json = Record<string, unknown>;
type Reference = NonNullable<CoreV1Event['related']>;

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;

/** The controller among the owner references, when it names itself completely (the uid makes `describe` find it). */
function controllerOf(metadata: Json | null, namespace: string): Reference | undefined {
  const owners = Array.isArray(metadata?.ownerReferences) ? metadata.ownerReferences : [];
  const owner = owners.find((o: unknown) => isObject(o) && o.controller === true);
  if (!isObject(owner)) return undefined;
  const [apiVersion, kind, name, uid] = [
    str(owner.apiVersion),
    str(owner.kind),
    str(owner.name),
    str(owner.uid),
  ];
  return apiVersion && kind && name && uid ? { apiVersion, kind, name, uid, namespace } : undefined;
}

/**
 * What the Event is about. A pod being created has no uid yet, and one made from generateName no name either: the
 * apiserver fills both in after admission. So:
 * - a pod with a name: the Pod by namespace and name (and its uid when it has one: an ephemeral container's pod);
 *   `kubectl events --for pod/NAME` and `kubectl get events --field-selector involvedObject.name=NAME` find it,
 *   while `kubectl describe pod`, which matches uids too, does not list it. Its controller is the related object.
 * - a pod from generateName: its controller (ReplicaSet, Job…, named with its uid in ownerReferences), which
 *   `kubectl describe` does list it under; the message names the pod by its generateName.
 * - neither: no Event (skipped `unnamed`).
 */
function subjectOf(
  request: AdmissionRequest,
  namespace: string,
): { involved: Reference; related?: Reference; pod: string } | EventSkip {
  const metadata = metadataOf(request.object);
  const controller = controllerOf(metadata, namespace);
  const name = str(metadata?.name) ?? str(request.name);
  if (name) {
    const uid = str(metadata?.uid);
    const involved = { apiVersion: 'v1', kind: 'Pod', name, namespace, ...(uid ? { uid } : {}) };
    return controller ? { involved, related: controller, pod: name } : { involved, pod: name };
  }
  const generateName = str(metadata?.generateName);
  if (controller && generateName) return { involved: controller, pod: `${generateName}*` };
  return 'unnamed';
}

/** Event names are DNS subdomains; this one is unique per review and subject, so a retried post is a 409, not two. */
function eventName(subject: string, uid: string): string {
  let hash = 0x811c9dc5;
  for (const char of `${uid}|${subject}`)
    hash = Math.imul(hash ^ (char.codePointAt(0) ?? 0), 0x01000193) >>> 0;
  return `${subject.slice(0, 200).replace(/[^a-z0-9.-]/g, '-')}.regroute-${hash.toString(16).padStart(8, '0')}`;
}

/** `from -> to (reason)` per rewritten image, cut to MAX_MESSAGE_CHARS with the count of those left out. */
function messageOf(pod: string, rewrites: MutateOutcome['decisions']): string {
  const head = `regroute rerouted ${rewrites.length} image${rewrites.length === 1 ? '' : 's'} of pod ${pod} at admission: `;
  let message = head;
  for (const [i, { site, decision }] of rewrites.entries()) {
    const entry = `${i === 0 ? '' : '; '}${site.kind}/${printable(site.name)} ${printable(site.image)} -> ${decision.target} (${decision.reason})`;
    const more = `; … ${rewrites.length - i} more in regroute's audit log`;
    const room = MAX_MESSAGE_CHARS - (i === rewrites.length - 1 ? 0 : more.length);
    if (message.length + entry.length > room) return `${message}${i === 0 ? more.slice(2) : more}`;
    message += entry;
  }
  return message;
}

export interface EventContext {
  readonly now: Date;
  /** This replica, for `reportingInstance`. */
  readonly instance: string;
}

/**
 * The Event for a review's outcome: null when nothing was rewritten (an answer without a patch), a skip when the pod
 * was rewritten but no Event can or may be made for it (a dry run is never told about: nothing was created).
 */
export function admissionEvent(
  request: AdmissionRequest,
  outcome: Pick<MutateOutcome, 'response' | 'decisions' | 'skipped' | 'patchError'>,
  context: EventContext,
): { namespace: string; event: CoreV1Event } | EventSkip | null {
  if (!outcome.response.patch || outcome.skipped || outcome.patchError !== undefined) return null;
  const rewrites = outcome.decisions.filter((d) => d.decision.target !== null);
  if (rewrites.length === 0) return null;
  if (request.dryRun === true) return 'dry-run';
  const namespace = str(request.namespace) ?? str(metadataOf(request.object)?.namespace);
  if (!namespace) return 'no-namespace';
  const subject = subjectOf(request, namespace);
  if (typeof subject === 'string') return subject;
  // A source that is down (or whose tag was taken from the mirrors while it was) is worth a look.
  const sourceDown = rewrites.some(
    ({ decision }) => decision.reason === 'source-unhealthy' || decision.reason === 'unverified-tag',
  );
  const message = messageOf(printable(subject.pod), rewrites).slice(0, MAX_MESSAGE_CHARS);
  return {
    namespace,
    event: {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: eventName(subject.involved.name ?? subject.pod, request.uid), namespace },
      involvedObject: subject.involved,
      ...(subject.related ? { related: subject.related } : {}),
      type: sourceDown ? 'Warning' : 'Normal',
      reason: REROUTED_AT_ADMISSION,
      action: 'Admit',
      message,
      source: { component: 'regroute' },
      reportingComponent: 'regroute',
      reportingInstance: context.instance,
      firstTimestamp: context.now,
      lastTimestamp: context.now,
      count: 1,
    },
  };
}

/** Where Events go: the Kubernetes API (pod-api's recordEvent), or a test's stand-in. */
export type PostEvent = (namespace: string, event: CoreV1Event) => Promise<ApiResult<unknown>>;

export class EventMetrics {
  readonly events: Counter<'outcome'>;
  readonly queued: Gauge;

  constructor(registry: Registry) {
    this.events = new Counter({
      name: 'regroute_admission_events_total',
      help: 'Events about pods rerouted at admission, by outcome: posted, failed (the API refused or did not answer after a few tries), dropped (the queue was full, or regroute stopped), skipped (a dry run, or a pod with neither a name nor a controller).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    });
    this.queued = new Gauge({
      name: 'regroute_admission_events_queued',
      help: 'Events about pods rerouted at admission waiting to be posted.',
      registers: [registry],
    });
    for (const outcome of EVENT_OUTCOMES) this.events.inc({ outcome }, 0);
  }
}

export interface AdmissionEventsOptions {
  readonly post: PostEvent;
  readonly log: Logger;
  readonly instance?: string;
  readonly capacity?: number;
  readonly concurrency?: number;
  readonly now?: () => number;
  readonly metrics?: EventMetrics;
  /** Called by stop(): cuts the posts under way short (their retries and requests). */
  readonly abort?: () => void;
}

/** Takes outcomes as reviews are answered and posts their Events in the background. */
export class AdmissionEvents {
  readonly #queue: { namespace: string; event: CoreV1Event }[] = [];
  readonly #options: AdmissionEventsOptions;
  readonly #instance: string;
  readonly #capacity: number;
  readonly #concurrency: number;
  readonly #now: () => number;
  #posting = 0;
  #stopped = false;
  #idle: (() => void)[] = [];

  constructor(options: AdmissionEventsOptions) {
    this.#options = options;
    this.#instance = options.instance ?? process.env.HOSTNAME ?? hostname();
    this.#capacity = options.capacity ?? DEFAULT_QUEUE_CAPACITY;
    this.#concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.#now = options.now ?? Date.now;
  }

  /** Events waiting and being posted. */
  get pending(): number {
    return this.#queue.length + this.#posting;
  }

  /**
   * Called as a review is answered: builds the Event and queues it, and returns at once. Never throws: a fault here
   * is logged and the admission goes on.
   */
  offer(request: AdmissionRequest, outcome: MutateOutcome): void {
    try {
      const made = admissionEvent(request, outcome, { now: new Date(this.#now()), instance: this.#instance });
      if (made === null) return;
      if (typeof made === 'string') {
        this.#count('skipped');
        this.#options.log.debug({ uid: request.uid, why: made }, 'no Event for a rerouted pod');
        return;
      }
      if (this.#stopped || this.#queue.length >= this.#capacity) {
        this.#count('dropped');
        return;
      }
      this.#queue.push(made);
      this.#options.metrics?.queued.set(this.#queue.length);
      this.#drain();
    } catch (error) {
      this.#options.log.error(
        { err: error, uid: request.uid },
        'could not make the Event for a rerouted pod',
      );
    }
  }

  /** Resolves once nothing waits or is being posted (tests, shutdown). */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Takes no more Events, gives those waiting and being posted up to `graceMs` to go out, then drops what is left
   * (counted) and cuts the posts under way short (`abort`).
   */
  async stop(graceMs = 0): Promise<void> {
    this.#stopped = true;
    if (graceMs > 0 && this.pending > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.idle(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    this.#options.abort?.();
    const dropped = this.#queue.splice(0).length;
    if (dropped > 0) this.#options.metrics?.events.inc({ outcome: 'dropped' }, dropped);
    this.#options.metrics?.queued.set(0);
    await this.idle();
  }

  #count(outcome: EventOutcome): void {
    this.#options.metrics?.events.inc({ outcome });
  }

  #drain(): void {
    while (this.#posting < this.#concurrency && this.#queue.length > 0) {
      const next = this.#queue.shift() as { namespace: string; event: CoreV1Event };
      this.#options.metrics?.queued.set(this.#queue.length);
      this.#posting++;
      void this.#post(next).finally(() => {
        this.#posting--;
        this.#drain();
        if (this.pending === 0) for (const resolve of this.#idle.splice(0)) resolve();
      });
    }
  }

  async #post({ namespace, event }: { namespace: string; event: CoreV1Event }): Promise<void> {
    let result: ApiResult<unknown>;
    try {
      result = await this.#options.post(namespace, event);
    } catch (error) {
      result = { ok: false, failure: { reason: error instanceof Error ? error.message : String(error) } };
    }
    if (result.ok) {
      this.#count('posted');
      return;
    }
    this.#count('failed');
    this.#options.log.warn(
      { namespace, event: event.metadata?.name, ...result.failure },
      'could not post the Event of a rerouted pod',
    );
  }
}

/**
 * The Events part of `regroute serve`, posting through the Kubernetes API with a few tries per Event. Loaded only
 * when admission.events is on (the Kubernetes client costs memory the webhook otherwise never needs).
 */
export function startAdmissionEvents(options: {
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  readonly registry?: Registry;
  readonly instance?: string;
}): AdmissionEvents {
  const shutdown = new AbortController();
  const api = podApi(
    coreApi(options.kubeConfig, POST_TIMEOUT_MS, shutdown.signal),
    { ...defaultBackoff(), ...EVENT_BACKOFF },
    shutdown.signal,
  );
  return new AdmissionEvents({
    post: (namespace, event) => api.recordEvent(namespace, event),
    log: options.log,
    ...(options.registry ? { metrics: new EventMetrics(options.registry) } : {}),
    ...(options.instance ? { instance: options.instance } : {}),
    abort: () => shutdown.abort(),
  });
}
