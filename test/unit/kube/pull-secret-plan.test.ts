// Specification of the pull-secret plan: which copies to create, update or leave, from plain objects.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import {
  COPIED_FROM_ANNOTATION,
  copyOf,
  MANAGED_BY_LABEL,
  type PullSecretPlanInput,
  planPullSecretCopies,
  pullSecretNames,
  targetNamespaces,
} from '../../../src/kube/pull-secret-plan.js';

const SOURCE_NS = 'regroute-system';
const DOCKER = 'kubernetes.io/dockerconfigjson';
const CONFIG_V1 = Buffer.from('{"auths":{"ams.ocir.io":{"auth":"djE="}}}').toString('base64');
const CONFIG_V2 = Buffer.from('{"auths":{"ams.ocir.io":{"auth":"djI="}}}').toString('base64');

const namespace = (name: string, labels: Record<string, string> = { 'regroute.io/enabled': 'true' }) =>
  ({ metadata: { name, labels }, status: { phase: 'Active' } }) satisfies V1Namespace;

const source = (name: string, data = CONFIG_V1): V1Secret => ({
  metadata: {
    name,
    namespace: SOURCE_NS,
    uid: '9d2e4f61-0b7a-4c38-8e15-3a6f2c9d7b40',
    resourceVersion: '40112',
    labels: { 'app.kubernetes.io/part-of': 'regroute' },
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
    ownerReferences: [
      { apiVersion: 'external-secrets.io/v1beta1', kind: 'ExternalSecret', name, uid: 'u-1' },
    ],
  },
  type: DOCKER,
  data: { '.dockerconfigjson': data },
});

const managedCopy = (
  ns: string,
  name: string,
  data = CONFIG_V1,
  extra: Partial<V1Secret> = {},
): V1Secret => ({
  metadata: {
    name,
    namespace: ns,
    uid: `uid-${ns}-${name}`,
    resourceVersion: '2201',
    labels: { [MANAGED_BY_LABEL]: 'regroute' },
    annotations: { [COPIED_FROM_ANNOTATION]: `${SOURCE_NS}/${name}` },
    managedFields: [{ manager: 'regroute', operation: 'Update' }],
  },
  type: DOCKER,
  data: { '.dockerconfigjson': data },
  ...extra,
});

const plan = (input: Partial<PullSecretPlanInput>) =>
  planPullSecretCopies({
    sourceNamespace: SOURCE_NS,
    secretNames: ['amsregcred'],
    sources: [source('amsregcred')],
    namespaces: [namespace('team-a')],
    targets: [],
    ...input,
  });

const kinds = (input: Partial<PullSecretPlanInput>) =>
  plan(input).actions.map((a) => `${a.kind} ${a.namespace}/${a.name}`);

describe('pull secret plan', () => {
  it('creates a copy in an opted-in namespace that lacks one', () => {
    assert.deepEqual(kinds({}), ['create team-a/amsregcred']);
  });

  it('copies only type and data, labelled managed by regroute and annotated with its source', () => {
    const [action] = plan({}).actions;
    assert.equal(action?.kind, 'create');
    assert.deepEqual(action.kind === 'create' && action.secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'amsregcred',
        namespace: 'team-a',
        labels: { 'app.kubernetes.io/managed-by': 'regroute' },
        annotations: { 'regroute.io/copied-from': 'regroute-system/amsregcred' },
      },
      type: DOCKER,
      data: { '.dockerconfigjson': CONFIG_V1 },
    });
  });

  it('does not share the data object with the source', () => {
    const original = source('amsregcred');
    const copy = copyOf(original, SOURCE_NS, 'team-a');
    assert.notEqual(copy.data, original.data);
  });

  it('updates a managed copy whose data differs, keeping its metadata and resourceVersion', () => {
    const [action] = plan({ targets: [managedCopy('team-a', 'amsregcred', CONFIG_V2)] }).actions;
    assert.equal(action?.kind, 'update');
    if (action.kind !== 'update') return;
    assert.deepEqual(action.secret.data, { '.dockerconfigjson': CONFIG_V1 });
    assert.equal(action.secret.metadata?.resourceVersion, '2201');
    assert.equal(action.secret.metadata?.uid, 'uid-team-a-amsregcred');
    assert.equal(
      action.secret.metadata?.managedFields,
      undefined,
      'the apiserver keeps tracking field owners',
    );
    assert.equal(action.secret.metadata?.labels?.[MANAGED_BY_LABEL], 'regroute');
  });

  it('updates a managed copy with an extra key the source does not have', () => {
    const copy = managedCopy('team-a', 'amsregcred');
    copy.data = { ...copy.data, '.dockercfg': 'e30=' };
    assert.deepEqual(kinds({ targets: [copy] }), ['update team-a/amsregcred']);
  });

  it('updates a managed copy whose copied-from annotation names another source namespace', () => {
    const copy = managedCopy('team-a', 'amsregcred');
    copy.metadata = { ...copy.metadata, annotations: { [COPIED_FROM_ANNOTATION]: 'old-system/amsregcred' } };
    assert.deepEqual(kinds({ targets: [copy] }), ['update team-a/amsregcred']);
  });

  it('leaves a managed copy whose data matches, whatever the key order', () => {
    const two = { a: 'YQ==', b: 'Yg==' };
    const copy = managedCopy('team-a', 'amsregcred', undefined, { data: { b: 'Yg==', a: 'YQ==' } });
    assert.deepEqual(kinds({ sources: [{ ...source('amsregcred'), data: two }], targets: [copy] }), [
      'unchanged team-a/amsregcred',
    ]);
  });

  it('never overwrites a Secret of the same name that regroute does not manage', () => {
    const theirs: V1Secret = {
      metadata: { name: 'amsregcred', namespace: 'team-a', labels: { [MANAGED_BY_LABEL]: 'Helm' } },
      type: DOCKER,
      data: { '.dockerconfigjson': CONFIG_V2 },
    };
    const unlabelled: V1Secret = { metadata: { name: 'amsregcred', namespace: 'team-b' }, data: {} };
    assert.deepEqual(
      kinds({ namespaces: [namespace('team-a'), namespace('team-b')], targets: [theirs, unlabelled] }),
      ['skip-unmanaged team-a/amsregcred', 'skip-unmanaged team-b/amsregcred'],
    );
  });

  it('plans nothing for a name whose source is missing, and reports it, leaving existing copies', () => {
    const result = plan({
      secretNames: ['amsregcred', 'quaycred'],
      targets: [managedCopy('team-a', 'quaycred')],
    });
    assert.deepEqual(
      result.actions.map((a) => `${a.kind} ${a.namespace}/${a.name}`),
      ['create team-a/amsregcred'],
    );
    assert.deepEqual(result.missingSources, ['quaycred']);
  });

  it('ignores a Secret of the right name in another namespace as a source', () => {
    const elsewhere = { ...source('amsregcred'), metadata: { name: 'amsregcred', namespace: 'default' } };
    assert.deepEqual(plan({ sources: [elsewhere] }).missingSources, ['amsregcred']);
  });

  it('stops managing a name removed from the config: its copies get no action', () => {
    const result = plan({
      secretNames: ['quaycred'],
      sources: [source('amsregcred'), source('quaycred')],
      targets: [managedCopy('team-a', 'amsregcred', CONFIG_V2)],
    });
    assert.deepEqual(
      result.actions.map((a) => `${a.kind} ${a.namespace}/${a.name}`),
      ['create team-a/quaycred'],
    );
  });

  it('plans every configured name in every opted-in namespace, in a stable order', () => {
    assert.deepEqual(
      kinds({
        secretNames: ['quaycred', 'amsregcred', 'quaycred'],
        sources: [source('quaycred'), source('amsregcred')],
        namespaces: [namespace('team-b'), namespace('team-a')],
      }),
      [
        'create team-a/amsregcred',
        'create team-a/quaycred',
        'create team-b/amsregcred',
        'create team-b/quaycred',
      ],
    );
  });

  it('plans nothing when no name is configured', () => {
    assert.deepEqual(plan({ secretNames: [] }), { actions: [], missingSources: [] });
  });
});

describe('target namespaces', () => {
  it('takes only namespaces labelled regroute.io/enabled=true', () => {
    const namespaces = [
      namespace('team-a'),
      namespace('team-b', { 'regroute.io/enabled': 'false' }),
      namespace('team-c', {}),
    ];
    assert.deepEqual(targetNamespaces(namespaces, SOURCE_NS), ['team-a']);
  });

  it('skips a namespace being deleted, where the apiserver refuses new objects', () => {
    const terminating = { ...namespace('team-a'), status: { phase: 'Terminating' } };
    const deleting = { metadata: { ...namespace('team-b').metadata, deletionTimestamp: new Date() } };
    assert.deepEqual(targetNamespaces([terminating, deleting, namespace('team-c')], SOURCE_NS), ['team-c']);
  });

  it('never targets the source namespace, even when it is labelled', () => {
    assert.deepEqual(targetNamespaces([namespace(SOURCE_NS), namespace('team-a')], SOURCE_NS), ['team-a']);
  });
});

describe('configured pull secret names', () => {
  it('lists each registry pullSecret once, sorted, skipping registries without one', () => {
    const registries = {
      'fra.ocir.io': { insecure: false, pullSecret: 'ocircred' },
      'ams.ocir.io': { insecure: false, pullSecret: 'ocircred' },
      'quay.io': { insecure: false, pullSecret: 'quaycred' },
      'registry.local:5000': { insecure: false },
    };
    assert.deepEqual(pullSecretNames(registries), ['ocircred', 'quaycred']);
  });
});
