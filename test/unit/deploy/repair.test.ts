// deploy/components/repair in an overlay: the webhook's pods get an API token, config.cluster on, and the RBAC that
// learning, warm-up and repair use — each in a role of its own, so that repair can be left out.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import {
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
} from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, ServiceAccount } from 'kubernetes-models/v1';
import { parseConfigText } from '../../../src/config/load.js';
import {
  byId,
  idOf,
  type KubeObject,
  renderKustomization,
  renderWithKubectl,
} from '../../helpers/kustomize.js';
import { all, assertValid, configMapOf, deployDir, one } from './manifests.js';

const certsInTree = join(deployDir, 'overlays', 'self-signed', 'certs');

/** "scope apiGroup/resource verb" for every rule of every role bound to `account`. */
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
      (r) => r.kind === binding.roleRef.kind && r.metadata?.name === binding.roleRef.name,
    );
    assert.ok(role, `${binding.metadata?.name} binds an existing ${binding.roleRef.kind}`);
    const scope = binding.kind === 'RoleBinding' ? binding.metadata?.namespace : 'cluster';
    for (const rule of role.rules ?? []) {
      assert.equal(rule.resourceNames, undefined);
      for (const group of rule.apiGroups ?? [])
        for (const resource of rule.resources ?? [])
          for (const verb of rule.verbs) granted.add(`${scope} ${group}/${resource} ${verb}`);
    }
  }
  return [...granted].sort();
}

/** Every API call src/kube and src/cluster make, as RBAC names them. */
const USED = [
  'cluster /namespaces list', // cluster-pods.ts: opted-in namespaces
  'cluster /namespaces watch',
  'cluster /pods list', // cluster-pods.ts: each namespace's pods
  'cluster /pods watch',
  'cluster /pods get', // repair.ts: a pod read again after 409 Conflict
  'cluster /pods patch', // pod-api.ts: the repair's JSON patch
  'cluster /events create', // pod-api.ts: Events on pods
  'cluster apps/deployments list', // workload-api.ts: the warm-up's templates
  'cluster apps/statefulsets list',
  'cluster apps/daemonsets list',
  'cluster batch/jobs list',
  'cluster batch/cronjobs list',
].sort();

describe('deploy/components/repair', () => {
  let copy: string;
  let install: KubeObject[];
  let objects: KubeObject[];
  let withoutRepair: KubeObject[];
  let overlayDir: string;

  const write = async (dir: string, files: Record<string, string>) => {
    await mkdir(dir, { recursive: true });
    for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
    return dir;
  };
  const overlay = (extra: string[] = []) =>
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'resources:',
      '  - ../deploy/overlays/cert-manager',
      'components:',
      '  - ../deploy/components/repair',
      ...extra,
      '',
    ].join('\n');

  before(async () => {
    copy = await mkdtemp(join(tmpdir(), 'regroute-deploy-'));
    await cp(deployDir, join(copy, 'deploy'), {
      recursive: true,
      filter: (src) => !src.startsWith(certsInTree),
    });
    install = renderKustomization(join(copy, 'deploy', 'overlays', 'cert-manager'));
    overlayDir = await write(join(copy, 'with-repair'), { 'kustomization.yaml': overlay() });
    objects = renderKustomization(overlayDir);
    const leaveOut = await write(join(copy, 'without-repair'), {
      'kustomization.yaml': overlay(['patches:', '  - path: no-repair.yaml']),
      'no-repair.yaml': [
        'apiVersion: rbac.authorization.k8s.io/v1',
        'kind: ClusterRoleBinding',
        'metadata:',
        '  name: regroute-repair',
        '$patch: delete',
        '',
      ].join('\n'),
    });
    withoutRepair = renderKustomization(leaveOut);
  });
  after(() => rm(copy, { recursive: true, force: true }));

  const webhook = (from = objects) => one(from, Deployment, 'regroute');
  const account = (from = objects) => one(from, ServiceAccount, 'regroute');
  const environmentOf = (from: KubeObject[]) => one(from, ConfigMap, 'regroute-environment');

  it('renders the same objects as kubectl kustomize', () => {
    assert.deepEqual(byId(objects), byId(renderWithKubectl(overlayDir)));
  });

  it('holds only objects that validate against their schema', () => {
    for (const object of objects) assertValid(object);
  });

  it('adds three roles and their bindings, and changes only the webhook’s token, environment and memory', () => {
    const added = objects.filter((o) => !install.some((b) => idOf(b) === idOf(o))).map(idOf);
    assert.deepEqual(added.sort(), [
      'ClusterRole//regroute-cluster-pods',
      'ClusterRole//regroute-repair',
      'ClusterRole//regroute-warm',
      'ClusterRoleBinding//regroute-cluster-pods',
      'ClusterRoleBinding//regroute-repair',
      'ClusterRoleBinding//regroute-warm',
    ]);
    for (const before of install) {
      const after = objects.find((o) => idOf(o) === idOf(before));
      if (before.kind === 'Deployment' || before.kind === 'ServiceAccount') continue;
      if (before.kind === 'ConfigMap' && before.metadata.name === 'regroute-environment') {
        const { REGROUTE_CLUSTER, ...rest } = environmentOf(objects).data ?? {};
        assert.equal(REGROUTE_CLUSTER, 'true');
        assert.deepEqual({ ...after, data: rest }, before, 'only REGROUTE_CLUSTER added');
        continue;
      }
      assert.deepEqual(after, before, idOf(before));
    }
    const changed = structuredClone(webhook()) as unknown as KubeObject & {
      spec: { template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } } };
    };
    const original = one(install, Deployment, 'regroute');
    changed.spec.template.spec.automountServiceAccountToken = false;
    const container = changed.spec.template.spec.containers[0] as {
      resources: Record<string, { memory: string }>;
    };
    const originalResources = original.spec?.template.spec?.containers[0]?.resources;
    assert.deepEqual(
      [container.resources.requests?.memory, container.resources.limits?.memory],
      ['192Mi', '384Mi'],
    );
    container.resources.requests = {
      ...container.resources.requests,
      memory: String(originalResources?.requests?.memory),
    };
    container.resources.limits = {
      ...container.resources.limits,
      memory: String(originalResources?.limits?.memory),
    };
    assert.deepEqual(JSON.parse(JSON.stringify(changed)), JSON.parse(JSON.stringify(original)));
  });

  it('mounts the webhook’s API token, which the install alone never does', () => {
    assert.equal(account(install).automountServiceAccountToken, false);
    assert.equal(webhook(install).spec?.template.spec?.automountServiceAccountToken, false);
    assert.equal(account().automountServiceAccountToken, true);
    assert.equal(webhook().spec?.template.spec?.automountServiceAccountToken, true);
  });

  it('turns config.cluster on through REGROUTE_CLUSTER, for the config the webhook reads', async () => {
    // In the ConfigMap the container reads with envFrom, leaving the container's own env list alone.
    assert.equal(environmentOf(objects).data?.REGROUTE_CLUSTER, 'true');
    assert.equal(webhook().spec?.template.spec?.containers[0]?.env, undefined);
    assert.ok(
      webhook().spec?.template.spec?.containers[0]?.envFrom?.some(
        (source) => source.configMapRef?.name === environmentOf(objects).metadata?.name,
      ),
    );
    const mounted = configMapOf(objects).data?.['config.yaml'] ?? '';
    assert.equal(mounted, await readFile(join(deployDir, 'base', 'config.yaml'), 'utf8'));
    const before = process.env.REGROUTE_CLUSTER;
    try {
      process.env.REGROUTE_CLUSTER = 'true';
      const config = parseConfigText(mounted, 'the mounted ConfigMap');
      assert.deepEqual(
        [
          config.cluster.enabled,
          config.cluster.learn.enabled,
          config.cluster.warm.enabled,
          config.cluster.repair.enabled,
        ],
        [true, true, true, true],
      );
      delete process.env.REGROUTE_CLUSTER;
      assert.equal(
        parseConfigText(mounted, 'the mounted ConfigMap').cluster.enabled,
        false,
        'off without it',
      );
    } finally {
      if (before === undefined) delete process.env.REGROUTE_CLUSTER;
      else process.env.REGROUTE_CLUSTER = before;
    }
  });

  it('grants the webhook exactly the API calls the cluster parts make', () => {
    assert.deepEqual(grants(install, account(install)), [], 'nothing without the component');
    assert.deepEqual(grants(objects, account()), USED);
  });

  it('grants no secrets, no writes but patching pods and creating Events, and no wildcard', () => {
    for (const role of all(objects, ClusterRole)) {
      for (const rule of role.rules ?? []) {
        assert.ok(!rule.resources?.includes('secrets'), role.metadata?.name);
        for (const value of [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs])
          assert.ok(!value.includes('*'), `${role.metadata?.name}: ${value}`);
      }
    }
    const writes = grants(objects, account()).filter((g) => !/ (get|list|watch)$/.test(g));
    assert.deepEqual(writes, ['cluster /events create', 'cluster /pods patch']);
  });

  it('leaves repair out with its binding deleted: learning and warm-up keep what they read', () => {
    assert.deepEqual(
      grants(withoutRepair, account(withoutRepair)),
      USED.filter((g) => !g.endsWith(' patch') && g !== 'cluster /events create'),
    );
  });
});
