// The repair controller: pods stuck pulling from a registry that is down get their waiting images moved.

import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ApiFailure } from '../kube/api-failure.js';
import type { PodApi } from '../kube/pod-api.js';
import { type Interner, originalImages, type PodRecord, podKey, podRecord } from '../kube/pod-record.js';
import { type Decision, decide } from '../routing/decision.js';
import { observe } from '../routing/observe.js';
import { isFailing, type RegistryState } from '../state/state.js';
import {
  canPullFrom,
  NOT_REROUTED,
  podEvent,
  REROUTED,
  type RepairSubject,
  type Rewrite,
  repairPatch,
  repairSubject,
  reroutedMessage,
  stuckContainers,
  whyNotRerouted,
} from './repair-plan.js';

/** What became of one look at a stuck pod, for metrics (regroute_repairs_total{outcome}). */
export const REPAIR_OUTCOMES = [
  'repaired', // its waiting images were patched
  'unrepairable', // its registry is down or lacks the digest, and no candidate the pod can use holds it: Event
  'conflict', // the pod changed since it was read (409): read again and looked at afresh
  'gone', // the pod was deleted meanwhile (404)
  'failed', // the API server refused or did not answer; tried again later
  'deferred', // the repair rate was used up; tried again on a later tick
  'reported', // admission.mode is report: what a repair would patch is logged, nothing is patched
] as const;
export type RepairOutcome = (typeof REPAIR_OUTCOMES)[number];

/** The audit line of a repair: the fields of an admission's audit record that apply, and `action: repair`. */
export interface RepairAudit {
  readonly action: 'repair';
  /** Set in report mode (admission.mode: report): the line tells a repair that would be made. */
  readonly mode?: 'report';
  readonly uid: string;
  readonly namespace: string;
  readonly pod: string;
  readonly owner: string | undefined;
  readonly container: string;
  readonly containerKind: string;
  readonly from: string;
  readonly to: string | null;
  readonly digest: string | null;
  readonly reason: Decision['reason'];
  readonly candidates: string;
}

/** What a repair reads of the context in force: the config, registry state, and which registries it knows. */
export interface RepairContext {
  readonly config: Config;
  readonly handle: { readonly state: RegistryState; readonly tracker: { registries(): string[] } };
}

export interface RepairerOptions {
  readonly current: () => RepairContext;
  readonly api: PodApi;
  readonly log: Logger;
  /** Pods patched per minute at most. */
  readonly ratePerMinute: number;
  /** Shares strings of pods read back after a conflict with those the watch keeps. */
  readonly interner: Interner;
  readonly onOutcome?: (outcome: RepairOutcome) => void;
  /** This replica's name, for Events' reportingInstance. */
  readonly instance: string;
  readonly now?: () => number;
  /** How long one pod's decisions may take; the admission deadline by default. */
  readonly deadlineMs?: number;
}

/** How often a stuck pod nothing changed about is looked at again: a mirror may have been filled meanwhile. */
export const RECHECK_MS = 30_000;

/**
 * A token bucket: `perMinute` tokens a minute, as many at most in reserve, so a burst of stuck pods after an outage
 * starts is patched at once up to that many, then at the rate.
 */
export class RateLimit {
  #tokens: number;
  #at: number;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#tokens = perMinute;
    this.#at = now();
  }

  take(): boolean {
    const now = this.now();
    this.#tokens = Math.min(this.perMinute, this.#tokens + ((now - this.#at) / 60_000) * this.perMinute);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

interface Stuck {
  readonly key: string;
  /** The record last looked at (resourceVersion) and the health it was looked at under. */
  lookedAt: string;
  lookedAtMs: number;
}

/**
 * Keeps the set of stuck pods from the watch and looks at each when it changes, when the health of any registry
 * changes, and every RECHECK_MS otherwise. Every decision is admission's own (observe + decide), from the pod's image
 * as it is now; a repair patches only containers waiting on a failed pull.
 */
export class Repairer {
  readonly #stuck = new Map<string, Stuck>();
  readonly #rate: RateLimit;
  readonly #now: () => number;
  /** Events already recorded, so that a pod that cannot be helped is told once per reason, not every tick. */
  readonly #told = new LRUCache<string, true>({ max: 10_000 });
  /** The tick under way: ticks run one after another. */
  #running: Promise<void> | undefined;

  constructor(private readonly options: RepairerOptions) {
    this.#now = options.now ?? Date.now;
    this.#rate = new RateLimit(options.ratePerMinute, this.#now);
  }

  /** A pod from the watch: kept while it has containers waiting on a failed pull. */
  notice(pod: PodRecord): void {
    const key = podKey(pod);
    if (stuckContainers(pod).length === 0) {
      this.#stuck.delete(key);
      return;
    }
    if (!this.#stuck.has(key)) this.#stuck.set(key, { key, lookedAt: '', lookedAtMs: 0 });
  }

  forget(pod: PodRecord): void {
    this.#stuck.delete(podKey(pod));
  }

  get stuck(): number {
    return this.#stuck.size;
  }

  /**
   * Looks at every stuck pod that is due, one after another; one call at a time (a tick while one runs waits for
   * it). `get` reads the watch's current record of a pod.
   */
  tick(get: (key: string) => PodRecord | undefined, signal: AbortSignal): Promise<void> {
    const run = async () => {
      const { handle } = this.options.current();
      const health = healthSignature(handle.state, handle.tracker.registries());
      for (const stuck of [...this.#stuck.values()]) {
        if (signal.aborted) return;
        const pod = get(stuck.key);
        if (!pod) {
          this.#stuck.delete(stuck.key);
          continue;
        }
        const lookedAt = `${pod.resourceVersion}|${health}`;
        if (stuck.lookedAt === lookedAt && this.#now() - stuck.lookedAtMs < RECHECK_MS) continue;
        const outcome = await this.repair(pod, signal);
        // Deferred and failed pods are looked at on the next tick; the others when something changes.
        if (outcome !== 'deferred' && outcome !== 'failed') {
          stuck.lookedAt = lookedAt;
          stuck.lookedAtMs = this.#now();
        }
      }
    };
    const next = (this.#running ?? Promise.resolve()).catch(() => {}).then(run);
    this.#running = next;
    return next;
  }

  /** Looks at one pod now; resolves with what became of it, or undefined when it needed nothing. */
  async repair(pod: PodRecord, signal: AbortSignal, retried = false): Promise<RepairOutcome | undefined> {
    const { config, handle } = this.options.current();
    const stuck = stuckContainers(pod);
    if (stuck.length === 0) return undefined;
    const originals = originalImages(pod);
    const deadline = AbortSignal.any([
      signal,
      AbortSignal.timeout(this.options.deadlineMs ?? config.admission.deadlineMs),
    ]);
    const rewrites: { rewrite: Rewrite; decision: Decision; subject: RepairSubject }[] = [];
    const refusals: { subject: RepairSubject; decision: Decision }[] = [];
    for (const container of stuck) {
      const subject = repairSubject(container, originals, config.routes);
      if (!subject) continue;
      const decision = await this.#decide(subject, pod, config, handle.state, deadline);
      if (decision.target) {
        rewrites.push({
          rewrite: { container, target: decision.target, original: subject.original },
          decision,
          subject,
        });
      } else if (needsHelp(subject, decision, handle.state)) {
        refusals.push({ subject, decision });
      }
    }

    for (const { subject, decision } of refusals) await this.#tellWhyNot(pod, subject, decision, config);
    if (rewrites.length === 0) {
      if (refusals.length === 0) return undefined;
      this.options.onOutcome?.('unrepairable');
      return 'unrepairable';
    }
    // Report mode watches a rollout before regroute changes any pod: a stuck pod is told about, not patched.
    const reporting = config.admission.mode === 'report';
    if (reporting) {
      this.#audit(pod, rewrites, 'report');
      this.options.onOutcome?.('reported');
      return 'reported';
    }
    if (!this.#rate.take()) {
      this.options.onOutcome?.('deferred');
      return 'deferred';
    }

    const ops = repairPatch(
      pod,
      originals,
      rewrites.map((r) => r.rewrite),
    );
    const patched = await this.options.api.patch(pod.namespace, pod.name, ops);
    if (!patched.ok) return this.#patchFailed(pod, patched.failure, signal, retried);

    this.#audit(pod, rewrites);
    for (const { rewrite, decision } of rewrites)
      await this.#event(pod, rewrite.container, 'Normal', REROUTED, reroutedMessage(rewrite, decision));
    this.options.onOutcome?.('repaired');
    return 'repaired';
  }

  /** One audit line per rewritten (or, in report mode, would-be rewritten) image of a stuck pod. */
  #audit(
    pod: PodRecord,
    rewrites: readonly { rewrite: Rewrite; decision: Decision }[],
    mode?: 'report',
  ): void {
    for (const { rewrite, decision } of rewrites) {
      const audit: RepairAudit = {
        action: 'repair',
        ...(mode ? { mode } : {}),
        uid: pod.uid,
        namespace: pod.namespace,
        pod: pod.name,
        owner: pod.owner,
        container: rewrite.container.name,
        containerKind: rewrite.container.kind,
        from: rewrite.container.image,
        to: rewrite.target,
        digest: decision.digest,
        reason: decision.reason,
        candidates: decision.verdicts.map((v) => `${v.location}=${v.verdict}`).join(','),
      };
      this.options.log.info({ audit }, mode ? 'stuck image would be rerouted' : 'stuck image rerouted');
    }
  }

  async #decide(
    subject: RepairSubject,
    pod: PodRecord,
    config: Config,
    state: RegistryState,
    signal: AbortSignal,
  ): Promise<Decision> {
    const { unverifiedTags } = config.admission;
    const observation = await observe(subject.reference, subject.match, state, signal, unverifiedTags);
    return decide(subject.reference, subject.match, observation, {
      unverifiedTags,
      canUse: (candidate) => canPullFrom(pod, config.registries, candidate),
    });
  }

  async #patchFailed(
    pod: PodRecord,
    failure: ApiFailure,
    signal: AbortSignal,
    retried: boolean,
  ): Promise<RepairOutcome | undefined> {
    const fields = { namespace: pod.namespace, pod: pod.name, ...failure };
    if (failure.status === 404) {
      this.options.onOutcome?.('gone');
      this.#stuck.delete(podKey(pod));
      return 'gone';
    }
    if (failure.status === 409 && !retried) {
      this.options.onOutcome?.('conflict');
      this.options.log.info(fields, 'pod changed since it was read; reading it again');
      const read = await this.options.api.read(pod.namespace, pod.name);
      if (!read.ok) return this.#failed(fields, read.failure);
      const fresh = read.value === undefined ? undefined : podRecord(read.value, this.options.interner);
      if (!fresh) {
        this.options.onOutcome?.('gone');
        return 'gone';
      }
      return this.repair(fresh, signal, true);
    }
    return this.#failed(fields, failure);
  }

  #failed(fields: object, failure: ApiFailure): RepairOutcome {
    this.options.log.warn({ ...fields, ...failure }, 'could not patch stuck pod; trying again later');
    this.options.onOutcome?.('failed');
    return 'failed';
  }

  async #tellWhyNot(
    pod: PodRecord,
    subject: RepairSubject,
    decision: Decision,
    config: Config,
  ): Promise<void> {
    const message = whyNotRerouted(decision, subject, config.registries);
    const key = `${pod.uid}|${subject.container.name}|${message}`;
    if (this.#told.has(key)) return;
    this.#told.set(key, true);
    this.options.log.warn(
      {
        audit: {
          action: 'repair',
          uid: pod.uid,
          namespace: pod.namespace,
          pod: pod.name,
          owner: pod.owner,
          container: subject.container.name,
          containerKind: subject.container.kind,
          from: subject.container.image,
          to: null,
          digest: decision.digest,
          reason: decision.reason,
          candidates: decision.verdicts.map((v) => `${v.location}=${v.verdict}`).join(','),
        } satisfies RepairAudit,
      },
      'stuck image left unchanged',
    );
    await this.#event(pod, subject.container, 'Warning', NOT_REROUTED, message);
  }

  async #event(
    pod: PodRecord,
    container: PodRecord['containers'][number],
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const event = podEvent({
      pod,
      container,
      type,
      reason,
      message,
      now: new Date(this.#now()),
      instance: this.options.instance,
    });
    const recorded = await this.options.api.recordEvent(pod.namespace, event);
    if (!recorded.ok) {
      this.options.log.warn(
        { namespace: pod.namespace, pod: pod.name, event: reason, ...recorded.failure },
        'could not record Event on pod',
      );
    }
  }
}

/**
 * True when regroute sees the image's own registry as down, or up without the digest: only then is a stuck pull
 * regroute's business (a pull failing against a healthy registry holding the image is the node's or the secret's).
 */
function needsHelp(subject: RepairSubject, decision: Decision, state: RegistryState): boolean {
  if (isFailing(state.health(subject.reference.registry))) return true;
  const ownIndex = subject.match.candidates.findIndex((c) => c.isOwn);
  const own = ownIndex >= 0 ? decision.verdicts[ownIndex]?.verdict : undefined;
  return own === 'absent' || own === 'stale' || own === 'mismatch';
}

/** The health of every known registry in one string: a change in any of them brings stuck pods back for a look. */
function healthSignature(state: RegistryState, registries: readonly string[]): string {
  return registries
    .map((registry) => `${registry}=${state.health(registry)}`)
    .sort()
    .join(',');
}
