// The cluster parts' lifecycle: pods watched, lessons taught, stuck pods repaired, images kept warm, then stopped.
import { hostname } from 'node:os';
import { AppsV1Api, BatchV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Metrics } from '../audit/metrics.js';
import type { ClusterSettings } from '../config/schema.js';
import { type Backoff, defaultBackoff } from '../kube/backoff.js';
import { apiClient, coreApi } from '../kube/client.js';
import { type ClusterPods, watchClusterPods } from '../kube/cluster-pods.js';
import { podApi } from '../kube/pod-api.js';
import { Interner, type PodRecord } from '../kube/pod-record.js';
import { workloadLister } from '../kube/workload-api.js';
import type { LiveState } from '../state/live-state.js';
import { type ClusterContext, Learner, type LearnResult } from './learn.js';
import { lessonsOfImages, lessonsOfPod } from './lessons.js';
import { ClusterMetrics } from './metrics.js';
import { Repairer } from './repair.js';
import { Warmer, type WarmResult } from './warm.js';

export interface ClusterOptions {
  readonly kubeConfig: KubeConfig;
  /** Read once: changes apply on restart. */
  readonly settings: ClusterSettings;
  /** The config and registry state in force, read at each use: a reload may replace either. */
  readonly current: () => ClusterContext;
  readonly log: Logger;
  readonly metrics?: Metrics;
  readonly backoff?: Backoff;
  /** Ceiling of one API request. */
  readonly requestTimeoutMs?: number;
  /** This replica's name in Events (reportingInstance); the pod's name (HOSTNAME) by default. */
  readonly instance?: string;
  /** How often stuck pods are looked at for a change of registry health. */
  readonly repairTickMs?: number;
  /** How long pod changes are gathered before what they teach is checked. */
  readonly learnDelayMs?: number;
  /** How often lessons not yet confirmed are tried again. */
  readonly relearnMs?: number;
  readonly watchTimeoutSeconds?: number;
}

export interface ClusterRuntime {
  /** Ready once the pods were listed and learned from, or readyTimeoutSeconds after the start. */
  ready(): boolean;
  readonly whenReady: Promise<void>;
  readonly pods: ClusterPods;
  /** Teaches what is pending now (tests, bench). */
  learnNow(): Promise<LearnResult>;
  /** Looks at the stuck pods now (tests, bench). */
  repairNow(): Promise<void>;
  /** One warm-up pass now (tests, bench); undefined when warm-up is off. */
  warmNow(): Promise<WarmResult | undefined>;
  stop(): Promise<void>;
}

/** Returns at once: lists and watches run in the background, so an unreachable API server never holds up admission. */
export function startCluster(options: ClusterOptions): ClusterRuntime {
  const { kubeConfig, settings, current, log } = options;
  const backoff = options.backoff ?? defaultBackoff();
  const stopping = new AbortController();
  const signal = stopping.signal;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const core = coreApi(kubeConfig, timeoutMs, signal);
  const metrics = options.metrics ? new ClusterMetrics(options.metrics.registry) : undefined;
  const interner = new Interner();
  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, work: () => void) => {
    const timer = setInterval(work, ms);
    // The webhook server keeps the process alive; these timers alone must not delay an exit.
    timer.unref();
    timers.push(timer);
  };
  const failed = (what: string) => (error: unknown) => {
    // Every API and registry failure is a value by now; what lands here is a fault of this module, which must
    // not end the webhook: the next tick or pass tries again.
    if (!signal.aborted) log.error({ error: error instanceof Error ? error.message : String(error) }, what);
  };

  const learner = settings.learn.enabled
    ? new Learner(current, log, (origin) => metrics?.learn(origin))
    : undefined;
  const repairer = settings.repair.enabled
    ? new Repairer({
        current,
        api: podApi(core, backoff, signal),
        log,
        ratePerMinute: settings.repair.ratePerMinute,
        interner,
        instance: options.instance ?? process.env.HOSTNAME ?? hostname(),
        onOutcome: (outcome) => metrics?.repair(outcome),
      })
    : undefined;

  let learning: Promise<LearnResult> | undefined;
  let learnQueued = false;
  /** One pass at a time; changes arriving during one are taught by the next. */
  function learnNow(): Promise<LearnResult> {
    if (!learner) return Promise.resolve({ learned: 0, known: 0, unconfirmed: 0, unrouted: 0 });
    const next = (learning ?? Promise.resolve()).catch(() => undefined).then(() => learner.learn(signal));
    learning = next;
    return next;
  }
  function learnSoon(): void {
    if (learnQueued || !ready) return;
    learnQueued = true;
    setTimeout(() => {
      learnQueued = false;
      learnNow().catch(failed('learning from the cluster failed'));
    }, options.learnDelayMs ?? 1000).unref();
  }

  let repairQueued = false;
  let repairing: Promise<void> | undefined;
  const repairNow = (): Promise<void> => {
    if (!repairer) return Promise.resolve();
    repairing = repairer.tick((key) => pods.get(key), signal);
    return repairing;
  };
  function repairSoon(): void {
    if (!repairer || repairQueued || !ready) return;
    repairQueued = true;
    queueMicrotask(() => {
      repairQueued = false;
      repairNow().catch(failed('repair pass failed'));
    });
  }

  const pods = watchClusterPods({
    kubeConfig,
    core,
    log,
    backoff,
    interner,
    ...(options.watchTimeoutSeconds ? { watchTimeoutSeconds: options.watchTimeoutSeconds } : {}),
    onChange: (kind, pod: PodRecord) => {
      if (kind === 'delete') repairer?.forget(pod);
      else {
        learner?.offer(lessonsOfPod(pod));
        repairer?.notice(pod);
        learnSoon();
        repairSoon();
      }
      metrics?.podsWatched.set(pods?.size ?? 0);
    },
  });

  const warmer = settings.warm.enabled
    ? new Warmer({
        current,
        namespaces: () => pods.namespaces(),
        podImages: function* () {
          for (const pod of pods.pods()) for (const c of pod.containers) yield c.image;
        },
        lister: workloadLister(
          apiClient(AppsV1Api, kubeConfig, timeoutMs, signal),
          apiClient(BatchV1Api, kubeConfig, timeoutMs, signal),
        ),
        log,
        ...(metrics ? { metrics } : {}),
        ratePerSecond: settings.warm.ratePerSecond,
        fillsPerPass: settings.warm.fillsPerPass,
        onTemplateImages: (images) => {
          learner?.offer(lessonsOfImages(images));
          learnSoon();
        },
      })
    : undefined;
  let warming: Promise<WarmResult> | undefined;
  const warmNow = async (): Promise<WarmResult | undefined> => {
    if (!warmer) return undefined;
    warming ??= warmer.pass(signal).finally(() => {
      warming = undefined;
    });
    return warming;
  };

  // Readiness: the first lists, then what they teach, within the bound.
  let ready = false;
  let markReady: () => void = () => {};
  const whenReady = new Promise<void>((resolve) => {
    markReady = () => {
      if (ready) return;
      ready = true;
      resolve();
    };
  });
  const startedAt = Date.now();
  const readyBound = setTimeout(() => {
    if (!ready)
      log.warn(
        { readyTimeoutSeconds: settings.readyTimeoutSeconds },
        'ready before the pods were listed and learned from',
      );
    markReady();
  }, settings.readyTimeoutSeconds * 1000);
  readyBound.unref();
  (async () => {
    await pods.whenSynced(signal);
    if (signal.aborted) return;
    const learned = await learnNow();
    log.info(
      { pods: pods.size, namespaces: pods.namespaces().length, ...learned, ms: Date.now() - startedAt },
      'pods listed and learned from',
    );
    markReady();
  })().catch(failed('first learning pass failed'));

  // After readiness: stuck pods looked at on every tick, lessons retried, a warm-up pass now and then.
  let lastState: LiveState | undefined;
  void whenReady.then(() => {
    if (signal.aborted) return;
    clearTimeout(readyBound);
    repairSoon();
    every(options.repairTickMs ?? 1000, () => {
      metrics?.stuckPods.set(repairer?.stuck ?? 0);
      repairNow().catch(failed('repair pass failed'));
    });
    every(options.relearnMs ?? 60_000, () => {
      const state = current().handle.state;
      // New registry state (a reload that rebuilt the caches) is taught everything again.
      if (learner && lastState !== undefined && state !== lastState) {
        for (const pod of pods.pods()) learner.offer(lessonsOfPod(pod));
      }
      lastState = state;
      if (learner && learner.pending > 0) learnNow().catch(failed('learning from the cluster failed'));
    });
    lastState = current().handle.state;
    if (warmer) {
      warmNow().catch(failed('warm-up pass failed'));
      every(settings.warm.intervalSeconds * 1000, () => {
        warmNow().catch(failed('warm-up pass failed'));
      });
    }
  });

  log.info(
    {
      learn: settings.learn.enabled,
      warm: settings.warm.enabled,
      repair: settings.repair.enabled,
      readyTimeoutSeconds: settings.readyTimeoutSeconds,
    },
    'cluster parts started',
  );

  return {
    ready: () => ready,
    whenReady,
    pods,
    learnNow,
    repairNow,
    warmNow,
    async stop() {
      stopping.abort();
      clearTimeout(readyBound);
      for (const timer of timers) clearInterval(timer);
      markReady();
      await pods.stop();
      await Promise.allSettled([learning, warming, repairing]);
    },
  };
}
