// deploy/components/network-policy in an overlay as its kustomization shows: rendered as kubectl renders it, valid,
// and letting in and out only what the webhook needs.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { byId, type KubeObject, renderKustomization, renderWithKubectl } from '../../helpers/kustomize.js';
import { assertValid, deployDir, one } from './manifests.js';

describe('deploy/components/network-policy', () => {
  let copy: string;
  let mine: string;
  let objects: KubeObject[];

  before(async () => {
    copy = await mkdtemp(join(tmpdir(), 'regroute-netpol-'));
    await cp(deployDir, join(copy, 'deploy'), { recursive: true, filter: (src) => !src.includes('/certs') });
    mine = join(copy, 'mine');
    await mkdir(mine);
    await writeFile(
      join(mine, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources: [../deploy/overlays/cert-manager]',
        'components: [../deploy/components/network-policy, ../deploy/components/pull-secret-sync]',
        '',
      ].join('\n'),
    );
    objects = renderKustomization(mine);
  });
  after(() => rm(copy, { recursive: true, force: true }));

  it('renders the same objects as kubectl kustomize, each valid against its schema', () => {
    assert.deepEqual(byId(objects), byId(renderWithKubectl(mine)));
    for (const object of objects) assertValid(object);
  });

  it("selects the webhook's pods and no other: the pull-secret sync keeps its own traffic", () => {
    const policy = one(objects, NetworkPolicy);
    const selector = policy.spec?.podSelector?.matchLabels ?? {};
    const selected = (deployment: Deployment) =>
      Object.entries(selector).every(([k, v]) => deployment.spec?.template.metadata?.labels?.[k] === v);
    assert.equal(selected(one(objects, Deployment, 'regroute')), true);
    assert.equal(selected(one(objects, Deployment, 'regroute-pull-secret-sync')), false);
    assert.deepEqual(policy.spec?.policyTypes, ['Ingress', 'Egress']);
  });

  it('lets in the webhook port from anywhere and the metrics port from the monitoring namespace only', () => {
    const policy = one(objects, NetworkPolicy);
    const container = one(objects, Deployment, 'regroute').spec?.template.spec?.containers[0];
    const named = new Set(container?.ports?.map((p) => p.name));
    const [admission, metrics, ...more] = policy.spec?.ingress ?? [];
    assert.deepEqual(more, []);
    assert.deepEqual(admission, { ports: [{ port: 'https', protocol: 'TCP' }] });
    assert.deepEqual(metrics?.ports, [{ port: 'metrics', protocol: 'TCP' }]);
    assert.deepEqual(metrics?.from, [
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ]);
    for (const rule of policy.spec?.ingress ?? []) {
      for (const port of rule.ports ?? [])
        assert.ok(named.has(String(port.port)), `${port.port} is a container port`);
    }
  });

  it('lets out DNS and HTTPS, nothing else', () => {
    const egress = one(objects, NetworkPolicy).spec?.egress ?? [];
    assert.deepEqual(
      egress.map((rule) => ({ to: rule.to, ports: rule.ports?.map((p) => `${p.port}/${p.protocol}`) })),
      [
        { to: undefined, ports: ['53/UDP', '53/TCP'] },
        { to: undefined, ports: ['443/TCP'] },
      ],
    );
  });
});
