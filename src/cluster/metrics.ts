// The cluster parts' metrics, registered on the process's registry beside admission's.
import { Counter, Gauge, type Registry } from 'prom-client';
import { ORIGINS, type Origin } from './lessons.js';
import { REPAIR_OUTCOMES, type RepairOutcome } from './repair.js';

export const FILL_OUTCOMES = ['fetched', 'failed'] as const;
export type FillOutcome = (typeof FILL_OUTCOMES)[number];

export class ClusterMetrics {
  readonly repairs: Counter<'outcome'>;
  readonly learned: Counter<'origin'>;
  readonly warmLookups: Counter;
  readonly pullThroughFills: Counter<'outcome'>;
  readonly podsWatched: Gauge;
  readonly stuckPods: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.repairs = new Counter({
      name: 'regroute_repairs_total',
      help: 'Looks at pods stuck pulling from a registry that is down, by outcome: repaired, unrepairable (an Event says why), conflict, gone, failed, deferred (rate).',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.learned = new Counter({
      name: 'regroute_learned_digests_total',
      help: 'Tag digests learned from the cluster and confirmed at the source or a candidate, by origin: rewritten, pinned, running.',
      labelNames: ['origin'] as const,
      registers,
    });
    this.warmLookups = new Counter({
      name: 'regroute_warm_images_total',
      help: 'Images of workloads and pods looked up by the warm-up.',
      registers,
    });
    this.pullThroughFills = new Counter({
      name: 'regroute_pull_through_fills_total',
      help: 'Manifests asked of pull-through caches so that they hold them, by outcome: fetched, failed.',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.podsWatched = new Gauge({
      name: 'regroute_cluster_pods_watched',
      help: 'Pods of opted-in namespaces kept in memory.',
      registers,
    });
    this.stuckPods = new Gauge({
      name: 'regroute_cluster_stuck_pods',
      help: 'Pods with a container or init container waiting on a failed pull (ErrImagePull, ImagePullBackOff).',
      registers,
    });
    // Every series exists from the start, so that a rate() or an alert sees the first one.
    for (const outcome of REPAIR_OUTCOMES) this.repairs.inc({ outcome }, 0);
    for (const origin of ORIGINS) this.learned.inc({ origin }, 0);
    for (const outcome of FILL_OUTCOMES) this.pullThroughFills.inc({ outcome }, 0);
  }

  repair(outcome: RepairOutcome): void {
    this.repairs.inc({ outcome });
  }

  learn(origin: Origin): void {
    this.learned.inc({ origin });
  }

  fill(outcome: FillOutcome): void {
    this.pullThroughFills.inc({ outcome });
  }
}
