// deploy/README.md's own overlay, as written there: rendered with kubectl kustomize, then the webhook started from
// what it renders, as the kubelet starts the pod: the container's args and environment, its volumes mounted (in a
// directory of the test), its probes. The cluster's registries resolve to loopback, where they are not: their probes
// fail at once, and nothing leaves the machine.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { createCA } from '../../src/certs/generate.js';
import { freePort } from '../harness/ports.js';
import { type KubeObject, renderWithKubectl } from '../helpers/kustomize.js';
import { assertAnswersReview, type ServeProcess, serveCerts, startServe } from '../helpers/serve-process.js';
import { assertValid, configMapOf, deployDir, envOf, one } from '../unit/deploy/manifests.js';

const LOOPBACK_DNS = join(import.meta.dirname, '..', 'helpers', 'loopback-dns.mjs');

/** The files of the recipe: each yaml block of the two sections that starts with `# my-regroute/FILE`. */
async function recipe(): Promise<Map<string, string>> {
  const readme = await readFile(join(deployDir, 'README.md'), 'utf8');
  const start = readme.indexOf('### Your own overlay');
  const end = readme.indexOf('### Pull secrets');
  assert.ok(start > 0 && end > start, 'the sections "Your own overlay" and "Registry credentials"');
  const files = new Map<string, string>();
  for (const [, text = ''] of readme.slice(start, end).matchAll(/```yaml\n([\s\S]*?)```/g)) {
    const name = /^# my-regroute\/([\w.-]+)/.exec(text)?.[1];
    if (name) files.set(name, text);
  }
  return files;
}

interface Container {
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name?: string } }[];
  startupProbe?: { httpGet?: { path?: string; port: number | string } };
  readinessProbe?: { httpGet?: { path?: string; port: number | string } };
  livenessProbe?: { httpGet?: { path?: string; port: number | string } };
}

describe("deploy/README.md's own overlay", () => {
  let dir: string;
  let files: Map<string, string>;
  let objects: KubeObject[];
  let serve: ServeProcess | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regroute-own-overlay-'));
    files = await recipe();
    await cp(deployDir, join(dir, 'deploy'), { recursive: true, filter: (src) => !src.includes('/certs') });
    await mkdir(join(dir, 'my-regroute'));
    for (const [name, text] of files) await writeFile(join(dir, 'my-regroute', name), text);
    // kubectl alone: strategic-merge patches of lists (registry-files.yaml) are outside the in-repo renderer.
    objects = renderWithKubectl(join(dir, 'my-regroute'));
  });
  after(async () => {
    await serve?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('has its config, kustomization and registry files, and renders only valid objects', () => {
    assert.deepEqual([...files.keys()].sort(), ['config.yaml', 'kustomization.yaml', 'registry-files.yaml']);
    assert.doesNotMatch(files.get('config.yaml') ?? '', /^server:/m, 'routes and registries only');
    for (const object of objects) assertValid(object);
  });

  it('puts the config as written into the ConfigMap, and the image and registry volumes into the Deployment', () => {
    assert.equal(configMapOf(objects).data?.['config.yaml'], files.get('config.yaml'));
    const pod = one(objects, Deployment, 'regroute').spec?.template.spec;
    assert.equal(pod?.containers[0]?.image, 'registry.example.com/platform/regroute:0.1.0');
    const volumes = pod?.volumes?.map((v) => v.name).sort();
    assert.deepEqual(volumes, ['config', 'ocir', 'registry-ca', 'tls']);
  });

  it('starts as the kubelet would start it: ready on its probes, answering reviews, then stopping on SIGTERM', async () => {
    const deployment = one(objects, Deployment, 'regroute');
    const pod = deployment.spec?.template.spec;
    const container = pod?.containers.find((c) => c.name === 'regroute') as Container;
    const root = join(dir, 'pod');
    const mounts = container.volumeMounts ?? [];
    /** A path of the pod's file system, in the test's directory. */
    const inPod = (path: string) => {
      const mount = mounts.find((m) => path.startsWith(`${m.mountPath}/`));
      return mount ? join(root, path) : path;
    };
    const inPodText = (text: string) =>
      mounts.reduce((t, m) => t.replaceAll(`${m.mountPath}/`, `${join(root, m.mountPath)}/`), text);

    // What each volume holds in the cluster: the rendered ConfigMap, the certificate cert-manager issues, and the
    // Secret and ConfigMap the recipe asks you to create.
    const certs = await serveCerts(join(dir, 'issued'));
    const volumeFiles: Record<string, Record<string, string>> = {
      config: { 'config.yaml': inPodText(configMapOf(objects).data?.['config.yaml'] ?? '') },
      tls: {
        'tls.crt': await readFile(certs.tlsCert, 'utf8'),
        'tls.key': await readFile(certs.tlsKey, 'utf8'),
        'ca.crt': await readFile(certs.caCert, 'utf8'),
      },
      ocir: {
        '.dockerconfigjson': JSON.stringify({
          auths: { 'fra.ocir.io': { auth: Buffer.from('tenancy/user:token').toString('base64') } },
        }),
      },
      'registry-ca': { 'registry-local.crt': createCA('registry.local test CA').certPem },
    };
    for (const mount of mounts) {
      const contents = volumeFiles[mount.name];
      assert.ok(contents, `the volume ${mount.name} is one the recipe provides`);
      for (const [name, text] of Object.entries(contents)) {
        const path = join(root, mount.mountPath, name);
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, text);
      }
    }

    // The container's environment, its paths in the pod's file system and its ports on free loopback ports (the
    // pod has a network namespace of its own); the HTTPS port is taken by --port 0 (the process helper's).
    const env = envOf(container, objects, deployment.metadata?.namespace);
    const healthPort = await freePort();
    const metricsPort = await freePort();
    const onLoopback = new Map<number, () => number>([
      [Number(env.REGROUTE_PORT), () => serve?.port ?? 0],
      [Number(env.REGROUTE_HEALTH_PORT), () => healthPort],
      [Number(env.REGROUTE_METRICS_PORT), () => metricsPort],
    ]);
    const processEnv = {
      ...Object.fromEntries(Object.entries(env).map(([name, value]) => [name, inPod(value)])),
      REGROUTE_HEALTH_PORT: String(healthPort),
      REGROUTE_METRICS_PORT: String(metricsPort),
      NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} --import ${LOOPBACK_DNS}`,
    };
    assert.deepEqual(container.args?.slice(0, 2), ['serve', '--config']);
    serve = await startServe(inPod(container.args?.[2] ?? ''), certs.caCert, { env: processEnv });

    const portOf = (port: number | string) => {
      const number =
        typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;
      const mapped = onLoopback.get(number ?? 0)?.();
      assert.ok(mapped, `container port ${port} is served`);
      return mapped;
    };
    for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe]) {
      const get = probe?.httpGet;
      assert.ok(get, 'an HTTP probe');
      const answer = await fetch(`http://127.0.0.1:${portOf(get.port)}${get.path}`);
      assert.equal(answer.status, 200, `${get.path} on ${get.port}`);
    }
    const scraped = await fetch(`http://127.0.0.1:${portOf('metrics')}/metrics`);
    assert.match(await scraped.text(), /^regroute_/m);
    assert.equal(portOf('https'), serve.port);

    await assertAnswersReview(serve, 'fra.ocir.io/tenancy/app:1.0');

    serve.kill('SIGTERM');
    assert.deepEqual(await serve.exited, { code: 0, signal: null });
  });
});
