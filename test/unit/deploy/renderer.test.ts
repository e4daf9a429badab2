// The tools the deploy tests stand on: the kustomize subset renderer and the strict schema check, checked alone.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  byId,
  type KubeObject,
  kustomizeHash,
  renderKustomization,
  renderWithKubectl,
} from '../../helpers/kustomize.js';
import { assertValid } from './manifests.js';

const dataOf = (o: KubeObject | undefined) => (o?.data ?? {}) as Record<string, string>;
const configMap = (data: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'anything' },
  data,
});

describe('the kustomize subset renderer', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regroute-kustomize-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function kustomization(name: string, files: Record<string, string>): Promise<string> {
    const root = join(dir, name);
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    for (const [file, text] of Object.entries(files)) await writeFile(join(root, file), text);
    return root;
  }

  it('suffixes generated names with the hash kustomize gives, on machines without kubectl too', () => {
    // The first two are kustomize's own test vectors (api/hasher/hasher_test.go); the third was measured with
    // `kubectl kustomize` (kustomize 5.5) and shows that the generator's name is not hashed.
    assert.equal(kustomizeHash(configMap({ one: '' })), '9g67k2htb6');
    assert.equal(
      kustomizeHash({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'x' },
        type: 'my-type',
        data: { one: '' },
      }),
      '74bd68bm66',
    );
    assert.equal(kustomizeHash(configMap({ x: 'x' })), 'df8b5dckhf');
  });

  /** Fixtures whose pinned renders were measured with kubectl; compared with it again where it is installed. */
  const measured: string[] = [];

  it('hashes data as Go encodes JSON, escaping HTML characters and line separators', async () => {
    const root = await kustomization('escaping', {
      'kustomization.yaml': 'configMapGenerator:\n  - name: html\n    files: [page]\n',
      page: '<a href="x">&amp;</a>\u2028\n',
    });
    // Measured with `kubectl kustomize` (kustomize 5.5).
    assert.equal(renderKustomization(root)[0]?.metadata.name, 'html-dhgf7h5ckk');
    measured.push(root);
  });

  it('writes Secret data as kustomize does: base64 in lines of 70 characters once it needs more than one', async () => {
    const root = await kustomization('wrapped', {
      'kustomization.yaml': [
        'secretGenerator:',
        '  - { name: short, files: [s], options: { disableNameSuffixHash: true } }',
        '  - { name: long, files: [l], options: { disableNameSuffixHash: true } }',
        '',
      ].join('\n'),
      s: 'x'.repeat(51),
      l: 'x'.repeat(60),
    });
    const [short, long] = renderKustomization(root);
    assert.equal(dataOf(short).s, Buffer.from('x'.repeat(51)).toString('base64'));
    const encoded = Buffer.from('x'.repeat(60)).toString('base64');
    assert.equal(dataOf(long).l, `${encoded.slice(0, 70)}\n${encoded.slice(70)}\n`);
    measured.push(root);
  });

  it('renders those fixtures as kubectl kustomize does', () => {
    assert.equal(measured.length, 2);
    for (const root of measured)
      assert.deepEqual(byId(renderKustomization(root)), byId(renderWithKubectl(root)));
  });

  it('refuses a kustomization field outside its subset instead of ignoring it', async () => {
    const root = await kustomization('unsupported', {
      'kustomization.yaml': 'resources: []\nimages:\n  - name: regroute\n    newTag: "1"\n',
    });
    assert.throws(() => renderKustomization(root), /"images" is outside the kustomize subset/);
  });

  it('refuses a patch whose target matches nothing', async () => {
    const root = await kustomization('stray-patch', {
      'kustomization.yaml': [
        'configMapGenerator: [{ name: c, files: [k] }]',
        'patches: [{ path: p.yaml, target: { kind: Secret } }]',
        '',
      ].join('\n'),
      k: 'v',
      'p.yaml': '- { op: add, path: /data/x, value: y }\n',
    });
    assert.throws(() => renderKustomization(root), /matches no object/);
  });

  it('refuses a component listed as a resource, and a kustomization listed as a component', async () => {
    const component = await kustomization('component', {
      'kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n',
    });
    const plain = await kustomization('plain', { 'kustomization.yaml': 'resources: []\n' });
    const asResource = await kustomization('component-as-resource', {
      'kustomization.yaml': `resources: [${component}]\n`,
    });
    assert.throws(() => renderKustomization(asResource), /only components may be a Component/);
    const asComponent = await kustomization('kustomization-as-component', {
      'kustomization.yaml': `components: [${plain}]\n`,
    });
    assert.throws(() => renderKustomization(asComponent), /a component must be a Component/);
  });

  it('refuses label selector terms and generator behaviors it does not implement', async () => {
    const selector = await kustomization('selector', {
      'kustomization.yaml': [
        'configMapGenerator: [{ name: c, files: [k] }]',
        "patches: [{ path: p.yaml, target: { labelSelector: 'a in (b)' } }]",
        '',
      ].join('\n'),
      k: 'v',
      'p.yaml': '- { op: add, path: /data/x, value: y }\n',
    });
    assert.throws(() => renderKustomization(selector), /label selector term "a in \(b\)"/);
    const merge = await kustomization('merge', {
      'kustomization.yaml': 'configMapGenerator: [{ name: c, behavior: merge, files: [k] }]\n',
      k: 'v',
    });
    assert.throws(() => renderKustomization(merge), /behavior merge is outside the subset/);
  });
});

describe('the strict schema check', () => {
  const pod = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd' },
    spec: {
      selector: { matchLabels: { a: 'b' } },
      template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } },
    },
  };

  it('accepts a valid object', () => {
    assertValid(pod);
  });

  it('rejects a misspelt field that the schema validator alone lets through', () => {
    const misspelt = structuredClone(pod);
    Object.assign(misspelt.spec.template.spec.containers[0] ?? {}, { readinesProbe: {} });
    assert.throws(() => assertValid(misspelt), /containers\/0\/readinesProbe/);
  });

  it('rejects a kind it has no schema for', () => {
    assert.throws(() =>
      assertValid({ apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 't' } }),
    );
  });
});
