// deploy/components/admission-events in an overlay, and the chart's admissionEvents value: the webhook's pods get an
// API token, config.admission.events on, and RBAC to create Events and nothing else; without them, none of it.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ServiceAccount } from 'kubernetes-models/v1';
import {
  byId,
  idOf,
  type KubeObject,
  renderKustomization,
  renderWithKubectl,
} from '../../helpers/kustomize.js';
import { helmTemplate } from './helm.js';
import { all, assertValid, configInPod, configMapOf, deployDir, envOf, one } from './manifests.js';

/** "apiGroup/resource verb" for every rule of every ClusterRole bound to the webhook's service account. */
function grants(objects: KubeObject[]): string[] {
  const account = one(objects, ServiceAccount, 'regroute');
  const granted = new Set<string>();
  for (const binding of all(objects, ClusterRoleBinding)) {
    const bound = binding.subjects?.some(
      (s) => s.kind === 'ServiceAccount' && s.name === account.metadata?.name,
    );
    if (!bound) continue;
    const role = all(objects, ClusterRole).find((r) => r.metadata?.name === binding.roleRef.name);
    assert.ok(role, `${binding.metadata?.name} binds an existing ClusterRole`);
    for (const rule of role.rules ?? [])
      for (const group of rule.apiGroups ?? [])
        for (const resource of rule.resources ?? [])
          for (const verb of rule.verbs) granted.add(`${group}/${resource} ${verb}`);
  }
  return [...granted].sort();
}

/** The config the webhook's container reads: the mounted file with the container's environment. */
function configOfPod(objects: KubeObject[]) {
  const deployment = one(objects, Deployment, 'regroute');
  const container = deployment.spec?.template.spec?.containers[0];
  const env = envOf(container, objects, deployment.metadata?.namespace);
  return configInPod(configMapOf(objects).data?.['config.yaml'] ?? '', env, 'the mounted ConfigMap');
}

describe('deploy/components/admission-events', () => {
  let copy: string;
  let install: KubeObject[];
  let objects: KubeObject[];
  let both: KubeObject[];
  let overlayDir: string;

  const overlay = async (name: string, components: string[]) => {
    const dir = join(copy, name);
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources: [../deploy/overlays/cert-manager]',
        `components: [${components.map((c) => `../deploy/components/${c}`).join(', ')}]`,
        '',
      ].join('\n'),
    );
    return dir;
  };

  before(async () => {
    copy = await mkdtemp(join(tmpdir(), 'regroute-events-'));
    await cp(deployDir, join(copy, 'deploy'), { recursive: true, filter: (src) => !src.includes('/certs') });
    install = renderKustomization(join(copy, 'deploy', 'overlays', 'cert-manager'));
    overlayDir = await overlay('with-events', ['admission-events']);
    objects = renderKustomization(overlayDir);
    both = renderKustomization(await overlay('with-events-and-repair', ['admission-events', 'repair']));
  });
  after(() => rm(copy, { recursive: true, force: true }));

  it('renders the same objects as kubectl kustomize, each valid against its schema', () => {
    assert.deepEqual(byId(objects), byId(renderWithKubectl(overlayDir)));
    for (const object of objects) assertValid(object);
  });

  it('adds one role and its binding, granting Events create and nothing else', () => {
    const added = objects.filter((o) => !install.some((b) => idOf(b) === idOf(o))).map(idOf);
    assert.deepEqual(added.sort(), [
      'ClusterRole//regroute-admission-events',
      'ClusterRoleBinding//regroute-admission-events',
    ]);
    assert.deepEqual(grants(install), [], 'nothing without the component');
    assert.deepEqual(grants(objects), ['/events create']);
  });

  it('mounts the API token and turns config.admission.events on through the environment ConfigMap', () => {
    assert.equal(one(install, ServiceAccount, 'regroute').automountServiceAccountToken, false);
    assert.equal(one(objects, ServiceAccount, 'regroute').automountServiceAccountToken, true);
    assert.equal(
      one(objects, Deployment, 'regroute').spec?.template.spec?.automountServiceAccountToken,
      true,
    );
    assert.equal(configOfPod(install).admission.events.enabled, false);
    assert.equal(configOfPod(objects).admission.events.enabled, true);
    assert.equal(configOfPod(objects).cluster.enabled, false, 'the cluster parts stay off');
  });

  it('goes with components/repair: both parts on, their grants together, one memory setting', () => {
    const config = configOfPod(both);
    assert.deepEqual([config.admission.events.enabled, config.cluster.enabled], [true, true]);
    assert.ok(grants(both).includes('/events create'));
    assert.ok(grants(both).includes('/pods patch'));
    const resources = one(both, Deployment, 'regroute').spec?.template.spec?.containers[0]?.resources;
    assert.deepEqual([resources?.requests?.memory, resources?.limits?.memory], ['192Mi', '384Mi']);
  });
});

describe('deploy/chart admissionEvents', () => {
  const on = helmTemplate({ admissionEvents: { enabled: true } });
  const off = helmTemplate({});

  it('renders the component’s role, binding, token and environment, and nothing of it when off', () => {
    for (const object of on) assertValid(object);
    assert.deepEqual(grants(on), ['/events create']);
    assert.deepEqual(grants(off), []);
    assert.equal(one(on, ServiceAccount, 'regroute').automountServiceAccountToken, true);
    assert.equal(one(on, Deployment, 'regroute').spec?.template.spec?.automountServiceAccountToken, true);
    assert.equal(one(off, ServiceAccount, 'regroute').automountServiceAccountToken, false);
    assert.equal(one(off, Deployment, 'regroute').spec?.template.spec?.automountServiceAccountToken, false);
    assert.equal(configOfPod(on).admission.events.enabled, true);
    assert.equal(configOfPod(off).admission.events.enabled, false);
  });
});
