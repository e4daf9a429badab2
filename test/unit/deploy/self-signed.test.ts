// deploy/overlays/self-signed: `regroute certs --kustomize` output turned into the TLS Secret and the caBundle.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Secret, Service } from 'kubernetes-models/v1';
import { parse as parseYaml } from 'yaml';
import { CA_BUNDLE_PATCH_FILE } from '../../../src/certs/files.js';
import { certsCommand } from '../../../src/cli/certs.js';
import {
  byId,
  idOf,
  type KubeObject,
  renderKustomization,
  renderWithKubectl,
} from '../../helpers/kustomize.js';
import { all, assertValid, deployDir, one, repoRoot } from './manifests.js';

const certsInTree = join(deployDir, 'overlays', 'self-signed', 'certs');
// Secret data is base64, which kustomize wraps over several lines; the apiserver's decoder skips the newlines.
const decode = (value: string): string => Buffer.from(value, 'base64').toString('utf8');

describe('deploy/overlays/self-signed', () => {
  // A copy of deploy/, so the certificates the test makes never land in the working tree.
  let copy: string;
  let overlayDir: string;
  let certsDir: string;
  let objects: KubeObject[];
  const output: string[] = [];
  const file = (name: string) => readFile(join(certsDir, name), 'utf8');

  before(async () => {
    copy = await mkdtemp(join(tmpdir(), 'regroute-deploy-'));
    await cp(deployDir, join(copy, 'deploy'), {
      recursive: true,
      filter: (src) => !src.startsWith(certsInTree),
    });
    overlayDir = join(copy, 'deploy', 'overlays', 'self-signed');
    certsDir = join(overlayDir, 'certs');
    const io = { out: (line: string) => output.push(line), err: (line: string) => output.push(line) };
    assert.equal(await certsCommand(['--out', certsDir, '--kustomize'], io), 0);
    objects = renderKustomization(overlayDir);
  });
  after(() => rm(copy, { recursive: true, force: true }));

  it('gets from `regroute certs --kustomize` the certificates and a caBundle patch beside them', async () => {
    const patch: unknown = parseYaml(await file(CA_BUNDLE_PATCH_FILE));
    assert.deepEqual(patch, [
      {
        op: 'add',
        path: '/webhooks/0/clientConfig/caBundle',
        value: Buffer.from(await file('ca.crt')).toString('base64'),
      },
    ]);
    assert.match(output.join('\n'), new RegExp(CA_BUNDLE_PATCH_FILE));
  });

  it('renders the same objects as kubectl kustomize', () => {
    assert.deepEqual(byId(objects), byId(renderWithKubectl(overlayDir)));
  });

  it('holds only objects that validate against their Kubernetes schema', () => {
    for (const object of objects) assertValid(object);
  });

  it('sets the caBundle of the one webhook to base64 of the generated ca.crt', async () => {
    const webhooks = one(objects, MutatingWebhookConfiguration, 'regroute').webhooks ?? [];
    assert.equal(webhooks.length, 1);
    assert.equal(webhooks[0]?.clientConfig.caBundle, Buffer.from(await file('ca.crt')).toString('base64'));
  });

  it('serves a certificate signed by that CA for the name the apiserver calls', async () => {
    const ca = new X509Certificate(await file('ca.crt'));
    const serving = new X509Certificate(await file('tls.crt'));
    assert.ok(serving.checkIssued(ca) && serving.verify(ca.publicKey));
    const service = one(objects, Service, 'regroute');
    assert.ok(serving.checkHost(`${service.metadata?.name}.${service.metadata?.namespace}.svc`));
  });

  it('generates the TLS Secret the Deployment mounts, under a fixed name, typed kubernetes.io/tls', async () => {
    const deployment = one(objects, Deployment, 'regroute');
    const mounted = deployment.spec?.template.spec?.volumes?.find((v) => v.secret)?.secret?.secretName;
    const secret = one(objects, Secret, mounted);
    assert.equal(secret.metadata?.name, 'regroute-tls');
    assert.equal(secret.metadata?.namespace, 'regroute-system');
    assert.equal(secret.type, 'kubernetes.io/tls');
    const decoded = Object.entries(secret.data ?? {}).map(([key, value]) => [key, decode(value)]);
    assert.deepEqual(Object.fromEntries(decoded), {
      'tls.crt': await file('tls.crt'),
      'tls.key': await file('tls.key'),
    });
  });

  it('keeps the CA private key out of the cluster', async () => {
    const keyLine = (await file('ca.key')).split(/\r?\n/)[1] ?? '';
    assert.ok(keyLine.length > 40, 'a line of the key');
    const secrets = all(objects, Secret);
    assert.equal(secrets.length, 1);
    for (const value of Object.values(secrets[0]?.data ?? {})) assert.ok(!decode(value).includes(keyLine));
    assert.ok(!JSON.stringify(objects).includes(keyLine));
  });

  it('differs from the base only by the TLS Secret and the caBundle', () => {
    const base = renderKustomization(join(deployDir, 'base'));
    assert.deepEqual(objects.filter((o) => !base.some((b) => idOf(b) === idOf(o))).map(idOf), [
      'Secret/regroute-system/regroute-tls',
    ]);
    for (const expected of base) {
      const actual = structuredClone(objects.find((o) => idOf(o) === idOf(expected)));
      const webhooks = actual?.webhooks as { clientConfig: { caBundle?: string } }[] | undefined;
      for (const webhook of webhooks ?? []) delete webhook.clientConfig.caBundle;
      assert.deepEqual(actual, expected, idOf(expected));
    }
  });
});

describe('deploy/overlays/self-signed/certs', () => {
  it('is ignored by git, CA key and patch included', (t) => {
    const paths = ['ca.key', 'tls.key', 'ca.crt', CA_BUNDLE_PATCH_FILE].map((f) =>
      relative(repoRoot, join(certsInTree, f)),
    );
    const result = spawnSync('git', ['check-ignore', ...paths], { cwd: repoRoot, encoding: 'utf8' });
    if (result.error || result.status === 128) {
      t.skip('not a git checkout');
      return;
    }
    assert.deepEqual(result.stdout.trim().split('\n').sort(), [...paths].sort());
  });
});
