// Events on pods rerouted at admission: built while the review is answered, posted afterwards off its path, through
// a bounded queue that drops (and counts) what it cannot hold, never holding up or failing an admission.
import { hostname } from 'node:os';
import type { CoreV1Event, KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { MutateOutcome } from '../admission/mutate.js';
import type { AdmissionRequest } from '../admission/review.js';
import { admissionEvent } from './admission-event.js';
import type { ApiResult } from './api-failure.js';
import { type Backoff, defaultBackoff } from './backoff.js';
import { coreApi } from './client.js';
import { podApi } from './pod-api.js';

export const EVENT_OUTCOMES = ['posted', 'failed', 'dropped', 'skipped'] as const;
export type EventOutcome = (typeof EVENT_OUTCOMES)[number];

/** Events waiting to be posted, at most: past it the newest are dropped and counted. */
export const DEFAULT_QUEUE_CAPACITY = 256;
/** Posts at a time: an apiserver that answers slowly must not be met with a burst. */
const DEFAULT_CONCURRENCY = 2;
/** Ceiling of one post. */
export const POST_TIMEOUT_MS = 5_000;
/** A few quick tries per Event (0.2 s, 0.4 s between them), then it is given up and counted failed. */
export const EVENT_BACKOFF: Omit<Backoff, 'sleep' | 'random'> = { baseMs: 200, maxMs: 2_000, attempts: 3 };

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
