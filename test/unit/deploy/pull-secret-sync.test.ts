// deploy/components/pull-secret-sync in an overlay as deploy/README.md shows it, with the example config's pull
// secrets: what the sync's pod runs, what it may do in the API, and what the admission policy lets it write.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { V1Secret } from '@kubernetes/client-node';
import { parse as parseCel } from '@marcbachmann/cel-js';
import {
  MutatingWebhookConfiguration,
  ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding,
} from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import {
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
} from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseConfigText } from '../../../src/config/load.js';
import { copyOf, MANAGED_BY, MANAGED_BY_LABEL, planCopy } from '../../../src/kube/pull-secret-plan.js';
import { pullSecretNames } from '../../../src/kube/pull-secret-sync.js';
import {
  byId,
  idOf,
  type KubeObject,
  renderKustomization,
  renderWithKubectl,
} from '../../helpers/kustomize.js';
import { all, assertValid, configMapOf, deployDir, one } from './manifests.js';

const exampleConfig = join(deployDir, 'examples', 'config.yaml');
const certsInTree = join(deployDir, 'overlays', 'self-signed', 'certs');
const PLACEHOLDER = 'PULL-SECRET-NAMES-UNSET';
const NAMES_LABEL = 'regroute.io/pull-secret-names';

/** The overlay deploy/README.md describes: the install, the component, the user's config and the names patch. */
const overlay = (
  names: readonly string[] | undefined,
  extra: { resources?: string[]; patches?: string[] } = {},
) =>
  [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'resources:',
    '  - ../deploy/overlays/cert-manager',
    ...(extra.resources ?? []).map((r) => `  - ${r}`),
    'components:',
    '  - ../deploy/components/pull-secret-sync',
    'configMapGenerator:',
    '  - name: regroute-config',
    '    namespace: regroute-system',
    '    behavior: replace',
    '    files:',
    '      - config.yaml',
    'patches:',
    ...(names === undefined
      ? []
      : ['  - path: pull-secret-names.yaml', '    target:', `      labelSelector: ${NAMES_LABEL}`]),
    ...(extra.patches ?? []).map((p) => `  - path: ${p}`),
    '',
  ].join('\n');

const namesPatch = (names: readonly string[]) =>
  [
    '# registries.<host>.pullSecret of config.yaml, every one of them.',
    '- op: replace',
    '  path: /rules/0/resourceNames',
    `  value: [${names.join(', ')}]`,
    '',
  ].join('\n');

type Rule = NonNullable<ClusterRole['rules']>[number];

/** Every role with the rules that name Secrets. */
function secretRules(objects: KubeObject[]): { role: string; rule: Rule }[] {
  return [...all(objects, Role), ...all(objects, ClusterRole)].flatMap((role) =>
    (role.rules ?? [])
      .filter((rule) => rule.resources?.includes('secrets'))
      .map((rule) => ({ role: `${role.kind} ${role.metadata?.name}`, rule })),
  );
}

/** "scope apiGroup/resource verb [names]" for every rule of every role bound to `account`. */
function grants(objects: KubeObject[], account: ServiceAccount): string[] {
  const roles = [...all(objects, Role), ...all(objects, ClusterRole)];
  const granted = new Set<string>();
  for (const binding of [...all(objects, RoleBinding), ...all(objects, ClusterRoleBinding)]) {
    const bound = binding.subjects?.some(
      (s) =>
        s.kind === 'ServiceAccount' &&
        s.name === account.metadata?.name &&
        s.namespace === account.metadata?.namespace,
    );
    if (!bound) continue;
    const role = roles.find(
      (r) =>
        r.kind === binding.roleRef.kind &&
        r.metadata?.name === binding.roleRef.name &&
        (r.kind === 'ClusterRole' || r.metadata?.namespace === binding.metadata?.namespace),
    );
    assert.ok(role, `${binding.metadata?.name} binds an existing ${binding.roleRef.kind}`);
    // A ClusterRole bound by a RoleBinding grants in that namespace only.
    const scope = binding.kind === 'RoleBinding' ? binding.metadata?.namespace : 'cluster';
    for (const rule of role.rules ?? []) {
      assert.equal(rule.nonResourceURLs, undefined);
      const names = rule.resourceNames ? ` [${rule.resourceNames.join(',')}]` : '';
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) granted.add(`${scope} ${group}/${resource} ${verb}${names}`);
        }
      }
    }
  }
  return [...granted].sort();
}

describe('deploy/components/pull-secret-sync', () => {
  let copy: string;
  let myRegroute: string;
  let objects: KubeObject[];
  let names: string[];
  let configText: string;

  const write = async (dir: string, files: Record<string, string>) => {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
    return dir;
  };

  before(async () => {
    // A copy of deploy/ beside the overlays, which kustomize reaches by relative paths only.
    copy = await mkdtemp(join(tmpdir(), 'regroute-deploy-'));
    await cp(deployDir, join(copy, 'deploy'), {
      recursive: true,
      filter: (src) => !src.startsWith(certsInTree),
    });
    configText = await readFile(exampleConfig, 'utf8');
    names = pullSecretNames(parseConfigText(configText, exampleConfig).registries);
    myRegroute = await write(join(copy, 'my-regroute'), {
      'kustomization.yaml': overlay(names),
      'config.yaml': configText,
      'pull-secret-names.yaml': namesPatch(names),
    });
    objects = renderKustomization(myRegroute);
  });
  after(() => rm(copy, { recursive: true, force: true }));

  const sync = () => one(objects, Deployment, 'regroute-pull-secret-sync');
  const webhook = () => one(objects, Deployment, 'regroute');
  const syncAccount = () => one(objects, ServiceAccount, 'regroute-pull-secret-sync');
  const webhookAccount = () => one(objects, ServiceAccount, 'regroute');

  describe('in an overlay with the example config', () => {
    it('renders the same objects as kubectl kustomize', () => {
      assert.deepEqual(byId(objects), byId(renderWithKubectl(myRegroute)));
    });

    it('holds only objects that validate against their schema, the admission policy included', () => {
      for (const object of objects) assertValid(object);
      assert.equal(all(objects, ValidatingAdmissionPolicy).length, 1);
    });

    it('adds the sync objects to the install and leaves the install objects as they were, but for the config', () => {
      const install = renderKustomization(join(copy, 'deploy', 'overlays', 'cert-manager'));
      const added = objects.filter((o) => !install.some((b) => idOf(b) === idOf(o))).map(idOf);
      assert.deepEqual(added.sort(), [
        'ClusterRole//regroute-pull-secret-copies',
        'ClusterRole//regroute-pull-secret-sync-namespaces',
        'ClusterRoleBinding//regroute-pull-secret-copies',
        'ClusterRoleBinding//regroute-pull-secret-sync-namespaces',
        // The replaced config, under the hash of its new content.
        `ConfigMap/regroute-system/${configMapOf(objects).metadata?.name}`,
        'Deployment/regroute-system/regroute-pull-secret-sync',
        'Role/regroute-system/regroute-pull-secret-sources',
        'RoleBinding/regroute-system/regroute-pull-secret-sources',
        'ServiceAccount/regroute-system/regroute-pull-secret-sync',
        'ValidatingAdmissionPolicy//regroute-pull-secret-copies',
        'ValidatingAdmissionPolicyBinding//regroute-pull-secret-copies',
      ]);
      for (const before of install.filter((o) => o.kind !== 'ConfigMap' && o.kind !== 'Deployment')) {
        assert.deepEqual(
          objects.find((o) => idOf(o) === idOf(before)),
          before,
          idOf(before),
        );
      }
    });

    it('puts the example config names, and only them, into every Secret rule that resourceNames can limit', () => {
      assert.deepEqual(names, ['amsregcred', 'localregcred']);
      const rules = secretRules(objects);
      const named = rules.filter(({ rule }) => rule.resourceNames !== undefined);
      const unnamed = rules.filter(({ rule }) => rule.resourceNames === undefined);
      assert.equal(named.length, 2);
      for (const { role, rule } of named)
        assert.deepEqual([...(rule.resourceNames ?? [])].sort(), names, role);
      // create alone, in a rule of its own: the name of an object being created is not known to RBAC.
      assert.deepEqual(
        unnamed.map(({ rule }) => rule.verbs),
        [['create']],
      );
    });

    it('grants no get, list, watch, update, patch or delete on Secrets without resourceNames', () => {
      for (const { role, rule } of secretRules(objects)) {
        if (rule.resourceNames !== undefined) continue;
        for (const verb of ['get', 'list', 'watch', 'update', 'patch', 'delete', 'deletecollection'])
          assert.ok(!rule.verbs.includes(verb), `${role}: ${verb} on every Secret`);
      }
    });

    it('grants no wildcard in any role', () => {
      for (const role of [...all(objects, Role), ...all(objects, ClusterRole)]) {
        for (const rule of role.rules ?? []) {
          const values = [
            ...(rule.apiGroups ?? []),
            ...(rule.resources ?? []),
            ...(rule.resourceNames ?? []),
            ...rule.verbs,
          ];
          for (const value of values) assert.ok(!value.includes('*'), `${role.metadata?.name}: ${value}`);
        }
      }
    });

    it('grants the sync what it uses and nothing more', () => {
      const list = `[${names.join(',')}]`;
      assert.deepEqual(
        grants(objects, syncAccount()),
        [
          'cluster /namespaces list',
          'cluster /namespaces watch',
          `regroute-system /secrets list ${list}`,
          `regroute-system /secrets watch ${list}`,
          `cluster /secrets get ${list}`,
          `cluster /secrets update ${list}`,
          'cluster /secrets create',
        ].sort(),
      );
    });

    it('binds every role to the sync service account alone', () => {
      const subject = {
        kind: 'ServiceAccount',
        name: syncAccount().metadata?.name,
        namespace: syncAccount().metadata?.namespace,
      };
      const bindings = [...all(objects, RoleBinding), ...all(objects, ClusterRoleBinding)];
      for (const binding of bindings) assert.deepEqual(binding.subjects, [subject], binding.metadata?.name);
      for (const role of [...all(objects, Role), ...all(objects, ClusterRole)]) {
        const bound = bindings.some(
          (b) => b.roleRef.kind === role.kind && b.roleRef.name === role.metadata?.name,
        );
        assert.ok(bound, `${role.kind} ${role.metadata?.name} is bound`);
      }
    });

    it('leaves the webhook without API access: its service account is bound to nothing and no pod mounts its token', () => {
      assert.deepEqual(grants(objects, webhookAccount()), []);
      assert.equal(webhookAccount().automountServiceAccountToken, false);
      assert.equal(webhook().spec?.template.spec?.serviceAccountName, webhookAccount().metadata?.name);
      assert.equal(webhook().spec?.template.spec?.automountServiceAccountToken, false);
    });

    it('leaves cluster-scoped objects without a namespace (kustomize would add one only with namespace: set)', () => {
      const clusterScoped = [
        ...all(objects, ClusterRole),
        ...all(objects, ClusterRoleBinding),
        ...all(objects, ValidatingAdmissionPolicy),
        ...all(objects, ValidatingAdmissionPolicyBinding),
      ];
      assert.equal(clusterScoped.length, 6);
      for (const object of clusterScoped)
        assert.equal(object.metadata?.namespace, undefined, object.metadata?.name);
    });
  });

  describe('its Deployment', () => {
    it('runs regroute sync-pull-secrets on the config the webhook reads, as the sync service account', () => {
      const pod = sync().spec?.template.spec;
      const container = pod?.containers[0];
      assert.equal(pod?.containers.length, 1);
      assert.deepEqual(container?.args, [
        'sync-pull-secrets',
        '--config',
        '/etc/regroute/config/config.yaml',
      ]);
      assert.equal(container?.command, undefined, 'the image entrypoint keeps node as PID 1');
      const volume = pod?.volumes?.find((v) => v.configMap);
      assert.equal(volume?.configMap?.name, configMapOf(objects).metadata?.name);
      assert.deepEqual(
        webhook().spec?.template.spec?.volumes?.find((v) => v.configMap),
        volume,
        'the same ConfigMap as the webhook',
      );
      const mount = container?.volumeMounts?.find((m) => m.name === volume?.name);
      assert.equal(`${mount?.mountPath}/config.yaml`, container?.args?.[2]);
      assert.equal(container?.image, webhook().spec?.template.spec?.containers[0]?.image);
      assert.equal(pod?.serviceAccountName, syncAccount().metadata?.name);
      assert.notEqual(pod?.automountServiceAccountToken, false);
    });

    it('reads the pull-secret names from that config: the ones in the RBAC rules', () => {
      const mounted = configMapOf(objects).data?.['config.yaml'] ?? '';
      assert.equal(mounted, configText);
      const config = parseConfigText(mounted, 'the mounted ConfigMap');
      assert.deepEqual(pullSecretNames(config.registries), names);
      assert.equal(config.pullSecretSync.enabled, false, 'the webhook runs no sync of its own');
    });

    it('tells the pod its namespace through the downward API, where the sources are', () => {
      const env = sync().spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'POD_NAMESPACE');
      assert.deepEqual(env?.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
      assert.equal(one(objects, Role).metadata?.namespace, sync().metadata?.namespace);
    });

    it('runs one pod at a time, under the restricted security context, with memory capped', () => {
      assert.equal(sync().spec?.replicas, 1);
      assert.equal(sync().spec?.strategy?.type, 'Recreate');
      const pod = sync().spec?.template.spec;
      const own = pod?.containers[0]?.securityContext;
      assert.equal(pod?.securityContext?.runAsNonRoot, true);
      assert.equal(
        pod?.securityContext?.runAsUser,
        webhook().spec?.template.spec?.securityContext?.runAsUser,
      );
      assert.equal(pod?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
      assert.equal(own?.readOnlyRootFilesystem, true);
      assert.equal(own?.allowPrivilegeEscalation, false);
      assert.deepEqual(own?.capabilities?.drop, ['ALL']);
      assert.ok(pod?.containers[0]?.resources?.limits?.memory);
    });

    it('is never routed by regroute, and is no backend of the webhook Service or its disruption budget', () => {
      const labels = sync().spec?.template.metadata?.labels ?? {};
      assert.equal(labels['regroute.io/skip'], 'true');
      assert.equal(labels['app.kubernetes.io/name'], 'regroute', "the webhook's matchCondition excludes it");
      const selected = (selector: Record<string, string> | undefined) =>
        Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);
      assert.equal(selected(one(objects, Service).spec?.selector), false);
      assert.equal(selected(one(objects, PodDisruptionBudget).spec?.selector?.matchLabels), false);
      assert.equal(selected(webhook().spec?.selector.matchLabels), false);
      assert.ok(one(objects, MutatingWebhookConfiguration).webhooks?.[0]?.matchConditions?.length);
    });
  });

  describe('its ValidatingAdmissionPolicy', () => {
    const policy = () => one(objects, ValidatingAdmissionPolicy);
    const username = () =>
      `system:serviceaccount:${syncAccount().metadata?.namespace}:${syncAccount().metadata?.name}`;
    const source: V1Secret = {
      metadata: { name: 'amsregcred', namespace: 'regroute-system' },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
    };

    /**
     * The apiserver's verdict on a Secret write: 'not evaluated' when a matchCondition is false, else 'allowed'
     * or the message of the first validation that fails. CEL errors are thrown (failurePolicy Fail denies them).
     */
    function verdict(
      operation: 'CREATE' | 'UPDATE',
      user: string,
      object: unknown,
      oldObject: unknown = null,
    ) {
      const request = { operation, userInfo: { username: user }, namespace: 'team-a' };
      const context = { request, object, oldObject };
      for (const condition of policy().spec?.matchConditions ?? []) {
        if (parseCel(condition.expression)(context) !== true) return 'not evaluated';
      }
      for (const validation of policy().spec?.validations ?? []) {
        if (parseCel(validation.expression)(context) !== true)
          return validation.message ?? validation.expression;
      }
      return 'allowed';
    }

    it('is bound with validationActions Deny, fails closed, and matches Secret creates and updates', () => {
      const binding = one(objects, ValidatingAdmissionPolicyBinding);
      assert.equal(binding.spec?.policyName, policy().metadata?.name);
      assert.deepEqual(binding.spec?.validationActions, ['Deny']);
      assert.equal(binding.spec?.matchResources, undefined, "every request the policy's constraints match");
      assert.equal(policy().spec?.failurePolicy, 'Fail');
      assert.deepEqual(policy().spec?.matchConstraints?.resourceRules, [
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['secrets'] },
      ]);
    });

    it('parses: every CEL expression of the policy', () => {
      const expressions = [
        ...(policy().spec?.matchConditions ?? []).map((c) => c.expression),
        ...(policy().spec?.validations ?? []).map((v) => v.expression),
      ];
      assert.ok(expressions.length >= 3);
      for (const expression of expressions) assert.doesNotThrow(() => parseCel(expression), expression);
    });

    it('applies to requests of the service account the sync Deployment runs as, and to no one else', () => {
      const token = {
        metadata: { name: 'x', namespace: 'kube-system' },
        type: 'kubernetes.io/service-account-token',
      };
      assert.notEqual(verdict('CREATE', username(), token), 'not evaluated');
      for (const user of [
        'system:serviceaccount:regroute-system:regroute',
        'kubernetes-admin',
        `${username()}x`,
      ])
        assert.equal(verdict('CREATE', user, token), 'not evaluated', user);
    });

    it('allows the copies the sync makes: created, and replaced when the source changes', () => {
      const created = copyOf(source, 'regroute-system', 'team-a');
      assert.equal(verdict('CREATE', username(), created), 'allowed');
      const stale = { ...created, data: { '.dockerconfigjson': 'b2xk' } };
      const action = planCopy(source, 'regroute-system', 'team-a', stale);
      assert.equal(action.kind, 'update');
      assert.equal(
        verdict('UPDATE', username(), action.kind === 'update' ? action.secret : {}, stale),
        'allowed',
      );
    });

    it('denies a service-account-token Secret, whose token the apiserver would fill in, labels or not', () => {
      const token = {
        metadata: {
          name: 'steal',
          namespace: 'kube-system',
          labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
          annotations: { 'kubernetes.io/service-account.name': 'clusterrole-aggregation-controller' },
        },
        type: 'kubernetes.io/service-account-token',
      };
      assert.match(verdict('CREATE', username(), token), /kubernetes\.io\/dockerconfigjson/);
    });

    it('denies other types, a Secret without a type, and a pull secret without the managed-by label', () => {
      const copy = copyOf(source, 'regroute-system', 'team-a');
      const without = (labels: Record<string, string> | undefined) => ({
        ...copy,
        metadata: { ...copy.metadata, labels },
      });
      assert.notEqual(verdict('CREATE', username(), { ...copy, type: 'Opaque' }), 'allowed');
      assert.notEqual(verdict('CREATE', username(), { ...copy, type: undefined }), 'allowed');
      assert.match(verdict('CREATE', username(), without(undefined)), /managed-by=regroute/);
      assert.match(
        verdict('CREATE', username(), without({ [MANAGED_BY_LABEL]: 'helm' })),
        /managed-by=regroute/,
      );
    });

    it('denies taking over a Secret of a configured name that someone else made', () => {
      const theirs = {
        ...copyOf(source, 'regroute-system', 'team-a'),
        metadata: { name: 'amsregcred', namespace: 'team-a' },
      };
      const taken = copyOf(source, 'regroute-system', 'team-a');
      assert.match(verdict('UPDATE', username(), taken, theirs), /replaces only/);
    });
  });

  describe('without the names patch', () => {
    it('names in its Secret rules a placeholder that no Secret can be called, so it reads and updates none', async () => {
      const dir = await write(join(copy, 'unpatched'), {
        'kustomization.yaml': overlay(undefined),
        'config.yaml': configText,
      });
      const unpatched = renderKustomization(dir);
      assert.deepEqual(byId(unpatched), byId(renderWithKubectl(dir)));
      const named = secretRules(unpatched).filter(({ rule }) => rule.resourceNames !== undefined);
      assert.equal(named.length, 2);
      for (const { rule } of named) assert.deepEqual(rule.resourceNames, [PLACEHOLDER]);
      // Secret names are DNS subdomains: lower case.
      assert.doesNotMatch(PLACEHOLDER, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
      const labelled = [...all(unpatched, Role), ...all(unpatched, ClusterRole)].filter(
        (r) => r.metadata?.labels?.[NAMES_LABEL] !== undefined,
      );
      for (const role of labelled)
        assert.ok(role.rules?.[0]?.resourceNames, 'the patch replaces rules[0].resourceNames');
    });
  });

  describe('with per-namespace bindings instead of the cluster-wide one (deploy/README.md, "RBAC")', () => {
    it('grants get, update and create on Secrets in the opted-in namespaces only', async () => {
      const bindings = ['team-a', 'team-b'].map((namespace) =>
        [
          'apiVersion: rbac.authorization.k8s.io/v1',
          'kind: RoleBinding',
          'metadata:',
          '  name: regroute-pull-secret-copies',
          `  namespace: ${namespace}`,
          'roleRef:',
          '  apiGroup: rbac.authorization.k8s.io',
          '  kind: ClusterRole',
          '  name: regroute-pull-secret-copies',
          'subjects:',
          '  - kind: ServiceAccount',
          '    name: regroute-pull-secret-sync',
          '    namespace: regroute-system',
          '',
        ].join('\n'),
      );
      const dir = await write(join(copy, 'namespaced'), {
        'kustomization.yaml': overlay(names, {
          resources: ['pull-secret-copies-bindings.yaml'],
          patches: ['no-cluster-wide-copies.yaml'],
        }),
        'config.yaml': configText,
        'pull-secret-names.yaml': namesPatch(names),
        'pull-secret-copies-bindings.yaml': bindings.join('---\n'),
        'no-cluster-wide-copies.yaml': [
          '$patch: delete',
          'apiVersion: rbac.authorization.k8s.io/v1',
          'kind: ClusterRoleBinding',
          'metadata:',
          '  name: regroute-pull-secret-copies',
          '',
        ].join('\n'),
      });
      const namespaced = renderKustomization(dir);
      assert.deepEqual(byId(namespaced), byId(renderWithKubectl(dir)));
      for (const object of namespaced) assertValid(object);
      const list = `[${names.join(',')}]`;
      assert.deepEqual(
        grants(namespaced, one(namespaced, ServiceAccount, 'regroute-pull-secret-sync')),
        [
          'cluster /namespaces list',
          'cluster /namespaces watch',
          `regroute-system /secrets list ${list}`,
          `regroute-system /secrets watch ${list}`,
          ...['team-a', 'team-b'].flatMap((ns) => [
            `${ns} /secrets get ${list}`,
            `${ns} /secrets update ${list}`,
            `${ns} /secrets create`,
          ]),
        ].sort(),
      );
    });
  });
});
