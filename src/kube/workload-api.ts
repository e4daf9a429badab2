// The images workloads will run: pod templates of Deployments, StatefulSets, DaemonSets, Jobs and CronJobs.
import type { AppsV1Api, BatchV1Api } from '@kubernetes/client-node';
import { CONTAINER_KINDS, isObject } from '../admission/pod.js';
import { type ApiFailure, failureOf } from './api-failure.js';
import { PAGE_SIZE } from './compact-watch.js';

export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

export interface WorkloadImages {
  /** Every image the templates of the namespace's workloads name, each once. */
  images: string[];
  /** The kinds that could not be listed (RBAC, API server), with why: their images are missing above. */
  failures: { kind: WorkloadKind; failure: ApiFailure }[];
}

export interface WorkloadLister {
  imagesIn(namespace: string): Promise<WorkloadImages>;
}

type Page = { items: readonly unknown[]; metadata?: { _continue?: string } };
type Lister = (namespace: string, continueToken: string | undefined) => Promise<Page>;

/** The images a pod template's spec names, every container kind. */
export function templateImages(template: unknown): string[] {
  const spec = isObject(template) && isObject(template.spec) ? template.spec : undefined;
  if (!spec) return [];
  return CONTAINER_KINDS.flatMap((kind) => {
    const containers = spec[kind];
    if (!Array.isArray(containers)) return [];
    return containers.flatMap((c: unknown) => (isObject(c) && typeof c.image === 'string' ? [c.image] : []));
  });
}

/** The pod template of a workload object: `spec.template`, or `spec.jobTemplate.spec.template` for a CronJob. */
export function podTemplateOf(kind: WorkloadKind, workload: unknown): unknown {
  const spec = isObject(workload) && isObject(workload.spec) ? workload.spec : undefined;
  if (kind !== 'CronJob') return spec?.template;
  const job = isObject(spec?.jobTemplate) ? spec.jobTemplate : undefined;
  return isObject(job?.spec) ? job.spec.template : undefined;
}

export function workloadLister(apps: AppsV1Api, batch: BatchV1Api): WorkloadLister {
  const page = { limit: PAGE_SIZE };
  const listers: Record<WorkloadKind, Lister> = {
    Deployment: (namespace, token) => apps.listNamespacedDeployment({ namespace, ...page, _continue: token }),
    StatefulSet: (namespace, token) =>
      apps.listNamespacedStatefulSet({ namespace, ...page, _continue: token }),
    DaemonSet: (namespace, token) => apps.listNamespacedDaemonSet({ namespace, ...page, _continue: token }),
    Job: (namespace, token) => batch.listNamespacedJob({ namespace, ...page, _continue: token }),
    CronJob: (namespace, token) => batch.listNamespacedCronJob({ namespace, ...page, _continue: token }),
  };
  return {
    async imagesIn(namespace) {
      const images = new Set<string>();
      const failures: WorkloadImages['failures'] = [];
      for (const kind of WORKLOAD_KINDS) {
        try {
          let token: string | undefined;
          do {
            const listed = await listers[kind](namespace, token);
            for (const item of listed.items)
              for (const image of templateImages(podTemplateOf(kind, item))) images.add(image);
            token = listed.metadata?._continue || undefined;
          } while (token !== undefined);
        } catch (error) {
          failures.push({ kind, failure: failureOf(error) });
        }
      }
      return { images: [...images], failures };
    },
  };
}
