// What the pull-secret copies should be: configured names × opted-in namespaces → create, update or leave alone.
import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import type { RegistrySettings } from '../config/schema.js';

/** The label a namespace opts in with; the webhook's namespaceSelector uses the same one. */
export const ENABLED_LABEL = 'regroute.io/enabled';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'regroute';
/** `<namespace>/<name>` of the Secret a copy was made from. */
export const COPIED_FROM_ANNOTATION = 'regroute.io/copied-from';

export type PullSecretAction =
  | { kind: 'create'; namespace: string; name: string; secret: V1Secret }
  /** `secret` carries the target's resourceVersion, so a concurrent change makes the write fail, not vanish. */
  | { kind: 'update'; namespace: string; name: string; secret: V1Secret }
  | { kind: 'unchanged'; namespace: string; name: string }
  /** A Secret of that name that regroute did not create: someone else's, never overwritten. */
  | { kind: 'skip-unmanaged'; namespace: string; name: string };

export interface PullSecretPlanInput {
  /** regroute's own namespace, where the sources live. */
  sourceNamespace: string;
  /** The configured names; anything else, even a copy regroute made earlier, is no longer its business. */
  secretNames: readonly string[];
  /** Source Secrets in `sourceNamespace`; a name without one is reported missing. */
  sources: readonly V1Secret[];
  namespaces: readonly V1Namespace[];
  /** Secrets that exist in the target namespaces under a configured name; an absent pair does not exist. */
  targets: readonly V1Secret[];
}

export interface PullSecretPlan {
  actions: PullSecretAction[];
  /** Configured names with no source Secret: nothing is planned for them, and existing copies stay. */
  missingSources: string[];
}

/** The distinct `registries.<host>.pullSecret` names, sorted so that passes and logs are deterministic. */
export function pullSecretNames(registries: Readonly<Record<string, Partial<RegistrySettings>>>): string[] {
  const names = new Set<string>();
  for (const settings of Object.values(registries)) if (settings.pullSecret) names.add(settings.pullSecret);
  return [...names].sort();
}

export const isManaged = (secret: V1Secret): boolean =>
  secret.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;

/**
 * Namespaces that get copies: labelled, not being deleted (the apiserver refuses new objects there), and not
 * the source namespace, whose Secrets are the originals.
 */
export function targetNamespaces(namespaces: readonly V1Namespace[], sourceNamespace: string): string[] {
  return namespaces
    .filter((ns) => ns.metadata?.labels?.[ENABLED_LABEL] === 'true')
    .filter((ns) => ns.status?.phase !== 'Terminating' && !ns.metadata?.deletionTimestamp)
    .map((ns) => ns.metadata?.name ?? '')
    .filter((name) => name !== '' && name !== sourceNamespace)
    .sort();
}

/**
 * A new copy: only `type` and `data` come from the source. Its uid, resourceVersion, ownerReferences and the
 * like describe the source object and would be wrong (or rejected) on another.
 */
export function copyOf(source: V1Secret, sourceNamespace: string, namespace: string): V1Secret {
  const name = source.metadata?.name ?? '';
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
      annotations: { [COPIED_FROM_ANNOTATION]: `${sourceNamespace}/${name}` },
    },
    ...(source.type ? { type: source.type } : {}),
    data: { ...(source.data ?? {}) },
  };
}

function sameData(a: Record<string, string> = {}, b: Record<string, string> = {}): boolean {
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key])
  );
}

/**
 * The existing copy with the source's type and data. The target's own metadata is kept (others may have added
 * labels or finalizers); managedFields is left out so the apiserver keeps tracking field owners itself.
 */
function updatedCopy(existing: V1Secret, source: V1Secret, copiedFrom: string): V1Secret {
  const { managedFields: _managedFields, ...metadata } = existing.metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      ...metadata,
      labels: { ...metadata.labels, [MANAGED_BY_LABEL]: MANAGED_BY },
      annotations: { ...metadata.annotations, [COPIED_FROM_ANNOTATION]: copiedFrom },
    },
    ...(source.type ? { type: source.type } : {}),
    data: { ...(source.data ?? {}) },
  };
}

/** One name in one namespace. */
export function planCopy(
  source: V1Secret,
  sourceNamespace: string,
  namespace: string,
  existing: V1Secret | undefined,
): PullSecretAction {
  const name = source.metadata?.name ?? '';
  if (!existing)
    return { kind: 'create', namespace, name, secret: copyOf(source, sourceNamespace, namespace) };
  if (!isManaged(existing)) return { kind: 'skip-unmanaged', namespace, name };
  const copiedFrom = `${sourceNamespace}/${name}`;
  const inSync =
    sameData(existing.data, source.data) &&
    (existing.type ?? '') === (source.type ?? '') &&
    existing.metadata?.annotations?.[COPIED_FROM_ANNOTATION] === copiedFrom;
  if (inSync) return { kind: 'unchanged', namespace, name };
  return { kind: 'update', namespace, name, secret: updatedCopy(existing, source, copiedFrom) };
}

export function planPullSecretCopies(input: PullSecretPlanInput): PullSecretPlan {
  const key = (namespace: string | undefined, name: string | undefined) => `${namespace}/${name}`;
  const sources = new Map(
    input.sources
      .filter((s) => s.metadata?.namespace === input.sourceNamespace)
      .map((s) => [s.metadata?.name ?? '', s] as const),
  );
  const targets = new Map(
    input.targets.map((t) => [key(t.metadata?.namespace, t.metadata?.name), t] as const),
  );
  const names = [...new Set(input.secretNames)].sort();
  const actions: PullSecretAction[] = [];
  for (const namespace of targetNamespaces(input.namespaces, input.sourceNamespace)) {
    for (const name of names) {
      const source = sources.get(name);
      if (source)
        actions.push(planCopy(source, input.sourceNamespace, namespace, targets.get(key(namespace, name))));
    }
  }
  return { actions, missingSources: names.filter((name) => !sources.has(name)) };
}
