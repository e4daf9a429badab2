// The cookbook's configs (docs/cookbook), each loaded with the real config loader: `explain --offline` prints the
// routes and candidates a user would read, and the webhook's own pipeline (mutate) decides with hand-set registry
// state, so every file is shown to route images where its header says. No registry is ever contacted.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { mutate } from '../../../src/admission/mutate.js';
import { decodeReview } from '../../../src/admission/review.js';
import { explainCommand } from '../../../src/cli/explain.js';
import { loadConfigFile } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import type { Decision } from '../../../src/routing/decision.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import type {
  Health,
  Presence,
  RegistryState,
  RepositoryLocation,
  TagAnswer,
  Trust,
} from '../../../src/state/state.js';

const COOKBOOK = join(import.meta.dirname, '..', '..', '..', 'docs', 'cookbook');
const digest = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
/** The digest each tag names at its source, and another one: what a stale mirror holds under the same tag. */
const D = digest('the content the source names');
const OLD = digest('older content under the same tag');

const at = (location: string): RepositoryLocation => {
  const slash = location.indexOf('/');
  return { registry: location.slice(0, slash), repository: location.slice(slash + 1) };
};

/**
 * Hand-set state as LiveState answers for the config: a registry configured `trusted` is never asked, counts as
 * healthy and holds whatever digest it is asked about; every other registry answers from the MemoryState.
 */
class CookbookState implements RegistryState {
  readonly memory = new MemoryState();
  readonly #trusted: ReadonlySet<string>;

  constructor(config: Config) {
    this.#trusted = new Set(Object.entries(config.registries).flatMap(([h, s]) => (s.trusted ? [h] : [])));
  }

  health(registry: string): Health {
    return this.#trusted.has(registry) ? 'healthy' : this.memory.health(registry);
  }

  async resolveTag(location: RepositoryLocation, tag: string, signal: AbortSignal, withBody?: boolean) {
    if (this.#trusted.has(location.registry)) return { kind: 'unknown', cause: 'error' } satisfies TagAnswer;
    return this.memory.resolveTag(location, tag, signal, withBody);
  }

  async hasManifest(location: RepositoryLocation, wanted: string, signal: AbortSignal, trust?: Trust) {
    if (this.#trusted.has(location.registry)) return 'present' satisfies Presence;
    return this.memory.hasManifest(location, wanted, signal, trust);
  }

  knownPresence(location: RepositoryLocation): Presence {
    return this.#trusted.has(location.registry) ? 'present' : this.memory.knownPresence();
  }

  /** Registries every lookup went to, in order. */
  get asked(): string[] {
    return this.memory.lookups.map((lookup) => lookup.split(' ')[1]?.split('/')[0] ?? '');
  }
}

/**
 * Registries with their health, and what they hold: `location` (registry/repository) names `digest` under `tag`.
 * `lastKnown`: the registry is failing, and what regroute knows is the digest it last named for the tag.
 */
function world(
  config: Config,
  health: Record<string, Health>,
  holds: { location: string; tag: string; digest: string; lastKnown?: boolean }[] = [],
): CookbookState {
  const state = new CookbookState(config);
  for (const [registry, h] of Object.entries(health)) state.memory.setHealth(registry, h);
  for (const { location, tag, digest, lastKnown } of holds) {
    if (lastKnown) state.memory.putLastKnownTag(at(location), tag, digest);
    else state.memory.putTag(at(location), tag, digest);
  }
  return state;
}

interface Explained {
  image: string;
  reference?: { registry: string; repository: string; tag: string | null };
  route?: { prefix: string; source: string } | null;
  candidates?: string[];
}

/** `regroute explain IMAGE... --offline --json --config docs/cookbook/FILE`, its lines parsed. */
async function explainOffline(file: string, images: string[]): Promise<Explained[]> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await explainCommand([...images, '--offline', '--json', '--config', join(COOKBOOK, file)], {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  assert.equal(code, 0, err.join('\n'));
  return out.map((line) => JSON.parse(line) as Explained);
}

interface Admitted {
  decision: Decision;
  /** The image the kubelet pulls once the patch is applied. */
  image: string;
  imagePullSecrets: string[];
  warnings: string[];
}

/** One pod with `image` (and the pod's own pull secrets) through the webhook's pipeline, its patch applied. */
async function admit(
  config: Config,
  state: RegistryState,
  image: string,
  secrets: string[] = [],
): Promise<Admitted> {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app', namespace: 'team' },
    spec: {
      containers: [{ name: 'app', image }],
      ...(secrets.length > 0 ? { imagePullSecrets: secrets.map((name) => ({ name })) } : {}),
    },
  };
  const decoded = decodeReview({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'cookbook',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'team',
      operation: 'CREATE',
      object: pod,
    },
  });
  assert.ok(decoded.ok);
  const outcome = await mutate(decoded.review.request, { config, state }, AbortSignal.timeout(2000));
  const decision = outcome.decisions[0]?.decision;
  assert.ok(decision);
  const ops: Operation[] = outcome.response.patch
    ? JSON.parse(Buffer.from(outcome.response.patch, 'base64').toString('utf8'))
    : [];
  const patched = fastJsonPatch.applyPatch(structuredClone(pod), ops, true, false)
    .newDocument as typeof pod & {
    spec: { imagePullSecrets?: { name: string }[] };
  };
  return {
    decision,
    image: patched.spec.containers[0]?.image ?? '',
    imagePullSecrets: (patched.spec.imagePullSecrets ?? []).map((s) => s.name),
    warnings: outcome.response.warnings ?? [],
  };
}

const load = (file: string) => loadConfigFile(join(COOKBOOK, file));

/** The files this test covers: a new cookbook file needs its cases here. */
const COVERED = new Set<string>();
const cookbook = (file: string, body: () => void) => {
  COVERED.add(file);
  describe(`docs/cookbook/${file}`, body);
};

cookbook('dockerhub-pull-through-cache.yaml', () => {
  const file = 'dockerhub-pull-through-cache.yaml';
  const cache = 'registry-cache.example.internal:5000';

  it('explain --offline: official images under library/ at Docker Hub and at the cache, others as named', async () => {
    const [nginx, redis, spelled, quay] = await explainOffline(file, [
      'nginx:1.27',
      'bitnami/redis:7.2',
      'docker.io/nginx:1.27',
      'quay.io/cybozu/ubuntu:22.04',
    ]);
    assert.deepEqual(nginx?.reference, {
      registry: 'docker.io',
      repository: 'library/nginx',
      tag: '1.27',
      digest: null,
    });
    assert.deepEqual(nginx?.route, { prefix: 'docker.io', source: 'docker.io/library/nginx' });
    assert.deepEqual(nginx?.candidates, [`${cache}/library/nginx:1.27`, 'docker.io/library/nginx:1.27']);
    assert.deepEqual(redis?.candidates, [`${cache}/bitnami/redis:7.2`, 'docker.io/bitnami/redis:7.2']);
    assert.deepEqual(spelled?.candidates, nginx?.candidates);
    assert.equal(quay?.route, null);
  });

  it('sends pods to the cache while it holds the digest Docker Hub names, pinned to it', async () => {
    const config = await load(file);
    const state = world(config, { 'docker.io': 'healthy', [cache]: 'healthy' }, [
      { location: 'docker.io/library/nginx', tag: '1.27', digest: D },
      { location: `${cache}/library/nginx`, tag: '1.27', digest: D },
    ]);
    const admitted = await admit(config, state, 'nginx:1.27');
    assert.equal(admitted.image, `${cache}/library/nginx:1.27@${D}`);
    assert.equal(admitted.decision.reason, 'preferred-candidate');
    assert.deepEqual(admitted.imagePullSecrets, [], 'the cache needs no pull secret');
  });

  it('leaves pods at Docker Hub while the cache is down', async () => {
    const config = await load(file);
    const state = world(config, { 'docker.io': 'healthy', [cache]: 'unhealthy' }, [
      { location: 'docker.io/library/nginx', tag: '1.27', digest: D },
    ]);
    const admitted = await admit(config, state, 'nginx:1.27');
    assert.equal(admitted.image, 'nginx:1.27');
    assert.equal(admitted.decision.reason, 'source-healthy');
  });

  it('while Docker Hub is rate-limited, uses the cache with the digest it last named', async () => {
    const config = await load(file);
    const state = world(config, { 'docker.io': 'rate-limited', [cache]: 'healthy' }, [
      { location: 'docker.io/bitnami/redis', tag: '7.2', digest: D, lastKnown: true },
      { location: `${cache}/bitnami/redis`, tag: '7.2', digest: D },
    ]);
    const admitted = await admit(config, state, 'bitnami/redis:7.2');
    assert.equal(admitted.image, `${cache}/bitnami/redis:7.2@${D}`);
    assert.match(
      admitted.warnings[0] ?? '',
      /rerouted to registry-cache\.example\.internal:5000\/bitnami\/redis/,
    );
  });

  it('while Docker Hub is down, leaves a pod whose digest the cache lacks, even under the same tag', async () => {
    const config = await load(file);
    const state = world(config, { 'docker.io': 'unhealthy', [cache]: 'healthy' }, [
      { location: 'docker.io/library/nginx', tag: '1.27', digest: D, lastKnown: true },
      { location: `${cache}/library/nginx`, tag: '1.27', digest: OLD },
    ]);
    const admitted = await admit(config, state, 'nginx:1.27');
    assert.equal(admitted.image, 'nginx:1.27');
    assert.equal(admitted.decision.reason, 'stale-mirror-skipped');
    assert.match(admitted.warnings[0] ?? '', /left unchanged \(stale-mirror-skipped\)/);
  });
});

cookbook('ghcr.yaml', () => {
  const file = 'ghcr.yaml';
  const cache = 'ghcr-cache.example.internal';
  const image = 'ghcr.io/fluxcd/source-controller:v1.4.1';

  it("explain --offline: ghcr.io's names, at the cache first", async () => {
    const [flux] = await explainOffline(file, [image]);
    assert.deepEqual(flux?.route, { prefix: 'ghcr.io', source: 'ghcr.io/fluxcd/source-controller' });
    assert.deepEqual(flux?.candidates, [`${cache}/fluxcd/source-controller:v1.4.1`, image]);
  });

  it('while ghcr.io is down, uses the cache holding the digest; while the cache is down, ghcr.io', async () => {
    const config = await load(file);
    const ghcrDown = world(config, { 'ghcr.io': 'unhealthy', [cache]: 'healthy' }, [
      { location: 'ghcr.io/fluxcd/source-controller', tag: 'v1.4.1', digest: D, lastKnown: true },
      { location: `${cache}/fluxcd/source-controller`, tag: 'v1.4.1', digest: D },
    ]);
    assert.equal(
      (await admit(config, ghcrDown, image)).image,
      `${cache}/fluxcd/source-controller:v1.4.1@${D}`,
    );
    const cacheDown = world(config, { 'ghcr.io': 'healthy', [cache]: 'unhealthy' }, [
      { location: 'ghcr.io/fluxcd/source-controller', tag: 'v1.4.1', digest: D },
    ]);
    const admitted = await admit(config, cacheDown, image, ['ghcr-pull']);
    assert.equal(admitted.image, image);
    assert.deepEqual(admitted.imagePullSecrets, ['ghcr-pull']);
  });
});

cookbook('quay.yaml', () => {
  const file = 'quay.yaml';
  const cache = 'quay-cache.example.internal';

  it("explain --offline: the organisation's images go to the cache, other quay.io images have no route", async () => {
    const [ubuntu, exporter] = await explainOffline(file, [
      'quay.io/cybozu/ubuntu:22.04',
      'quay.io/prometheus/node-exporter:v1.8.2',
    ]);
    assert.deepEqual(ubuntu?.route, { prefix: 'quay.io/cybozu', source: 'quay.io/cybozu/ubuntu' });
    assert.deepEqual(ubuntu?.candidates, [`${cache}/cybozu/ubuntu:22.04`, 'quay.io/cybozu/ubuntu:22.04']);
    assert.equal(exporter?.route, null);
  });

  it('pins the image to the digest quay.io names when the cache holds it, and leaves other images alone', async () => {
    const config = await load(file);
    const state = world(config, { 'quay.io': 'healthy', [cache]: 'healthy' }, [
      { location: 'quay.io/cybozu/ubuntu', tag: '22.04', digest: D },
      { location: `${cache}/cybozu/ubuntu`, tag: '22.04', digest: D },
    ]);
    assert.equal(
      (await admit(config, state, 'quay.io/cybozu/ubuntu:22.04')).image,
      `${cache}/cybozu/ubuntu:22.04@${D}`,
    );
    const asked = state.asked.length;
    const other = await admit(config, state, 'quay.io/prometheus/node-exporter:v1.8.2');
    assert.equal(other.decision.reason, 'no-route');
    assert.equal(other.image, 'quay.io/prometheus/node-exporter:v1.8.2');
    assert.equal(state.asked.length, asked, 'an image without a route costs no lookup');
  });
});

cookbook('harbor-proxy-cache.yaml', () => {
  const file = 'harbor-proxy-cache.yaml';
  const harbor = 'harbor.example.com';

  it('explain --offline: the project name goes in front of the upstream repository, library/ kept', async () => {
    const [nginx, exporter] = await explainOffline(file, [
      'nginx:1.27',
      'quay.io/prometheus/node-exporter:v1.8.2',
    ]);
    assert.deepEqual(nginx?.candidates, [
      `${harbor}/dockerhub-proxy/library/nginx:1.27`,
      'docker.io/library/nginx:1.27',
    ]);
    assert.deepEqual(exporter?.route, { prefix: 'quay.io', source: 'quay.io/prometheus/node-exporter' });
    assert.deepEqual(exporter?.candidates, [
      `${harbor}/quay-proxy/prometheus/node-exporter:v1.8.2`,
      'quay.io/prometheus/node-exporter:v1.8.2',
    ]);
  });

  it("routes pods to their proxy project with Harbor's pull secret added", async () => {
    const config = await load(file);
    const state = world(config, { 'docker.io': 'healthy', 'quay.io': 'unhealthy', [harbor]: 'healthy' }, [
      { location: 'docker.io/library/nginx', tag: '1.27', digest: D },
      { location: `${harbor}/dockerhub-proxy/library/nginx`, tag: '1.27', digest: D },
      { location: 'quay.io/prometheus/node-exporter', tag: 'v1.8.2', digest: OLD, lastKnown: true },
      { location: `${harbor}/quay-proxy/prometheus/node-exporter`, tag: 'v1.8.2', digest: OLD },
    ]);
    const nginx = await admit(config, state, 'nginx:1.27');
    assert.equal(nginx.image, `${harbor}/dockerhub-proxy/library/nginx:1.27@${D}`);
    assert.deepEqual(nginx.imagePullSecrets, ['harbor-pull']);
    const exporter = await admit(config, state, 'quay.io/prometheus/node-exporter:v1.8.2', ['other']);
    assert.equal(exporter.image, `${harbor}/quay-proxy/prometheus/node-exporter:v1.8.2@${OLD}`);
    assert.deepEqual(exporter.imagePullSecrets, ['other', 'harbor-pull']);
  });

  it('leaves pods at the upstream while Harbor is down', async () => {
    const config = await load(file);
    const state = world(config, { 'docker.io': 'healthy', [harbor]: 'unhealthy' }, [
      { location: 'docker.io/library/nginx', tag: '1.27', digest: D },
    ]);
    const admitted = await admit(config, state, 'nginx:1.27');
    assert.equal(admitted.image, 'nginx:1.27');
    assert.deepEqual(admitted.imagePullSecrets, []);
  });
});

cookbook('ocir-regions.yaml', () => {
  const file = 'ocir-regions.yaml';
  const image = 'fra.ocir.io/tenancy/helidon-pod:latest';

  it('explain --offline: Frankfurt first, Amsterdam second, same tenancy path', async () => {
    const [helidon, other] = await explainOffline(file, [image, 'fra.ocir.io/othertenancy/app:1']);
    assert.deepEqual(helidon?.route, {
      prefix: 'fra.ocir.io/tenancy',
      source: 'fra.ocir.io/tenancy/helidon-pod',
    });
    assert.deepEqual(helidon?.candidates, [image, 'ams.ocir.io/tenancy/helidon-pod:latest']);
    assert.equal(other?.route, null, 'another tenancy is not routed');
  });

  it('leaves pods in Frankfurt while it is healthy', async () => {
    const config = await load(file);
    const state = world(config, { 'fra.ocir.io': 'healthy', 'ams.ocir.io': 'healthy' }, [
      { location: 'fra.ocir.io/tenancy/helidon-pod', tag: 'latest', digest: D },
      { location: 'ams.ocir.io/tenancy/helidon-pod', tag: 'latest', digest: D },
    ]);
    const admitted = await admit(config, state, image, ['fraregcred']);
    assert.equal(admitted.image, image);
    assert.equal(admitted.decision.reason, 'source-healthy');
    assert.deepEqual(admitted.imagePullSecrets, ['fraregcred']);
  });

  it('while Frankfurt is down, sends pods to Amsterdam pinned to the digest, with amsregcred added', async () => {
    const config = await load(file);
    const state = world(config, { 'fra.ocir.io': 'unhealthy', 'ams.ocir.io': 'healthy' }, [
      { location: 'fra.ocir.io/tenancy/helidon-pod', tag: 'latest', digest: D, lastKnown: true },
      { location: 'ams.ocir.io/tenancy/helidon-pod', tag: 'latest', digest: D },
    ]);
    const admitted = await admit(config, state, image, ['fraregcred']);
    assert.equal(admitted.image, `ams.ocir.io/tenancy/helidon-pod:latest@${D}`);
    assert.equal(admitted.decision.reason, 'source-unhealthy');
    assert.deepEqual(admitted.imagePullSecrets, ['fraregcred', 'amsregcred']);
  });

  it('while Frankfurt is down and Amsterdam is behind, leaves the pod and says so', async () => {
    const config = await load(file);
    const state = world(config, { 'fra.ocir.io': 'unhealthy', 'ams.ocir.io': 'healthy' }, [
      { location: 'fra.ocir.io/tenancy/helidon-pod', tag: 'latest', digest: D, lastKnown: true },
      { location: 'ams.ocir.io/tenancy/helidon-pod', tag: 'latest', digest: OLD },
    ]);
    const admitted = await admit(config, state, image, ['fraregcred']);
    assert.equal(admitted.image, image);
    assert.equal(admitted.warnings.length, 1);
    assert.match(admitted.warnings[0] ?? '', /left unchanged/);
  });
});

cookbook('gcr-harbor-mirror.yaml', () => {
  const file = 'gcr-harbor-mirror.yaml';
  const harbor = 'harbor.corp.example';
  const image = 'gcr.io/example-project/app:1.4.2';

  it('explain --offline: Harbor first under gcr-proxy/, gcr.io second', async () => {
    const [app] = await explainOffline(file, [image]);
    assert.deepEqual(app?.route, { prefix: 'gcr.io', source: 'gcr.io/example-project/app' });
    assert.deepEqual(app?.candidates, [`${harbor}/gcr-proxy/example-project/app:1.4.2`, image]);
  });

  it("while gcr.io is down, sends pods to Harbor with Harbor's pull secret", async () => {
    const config = await load(file);
    const state = world(config, { 'gcr.io': 'unhealthy', [harbor]: 'healthy' }, [
      { location: 'gcr.io/example-project/app', tag: '1.4.2', digest: D, lastKnown: true },
      { location: `${harbor}/gcr-proxy/example-project/app`, tag: '1.4.2', digest: D },
    ]);
    const admitted = await admit(config, state, image, ['gcr-pull']);
    assert.equal(admitted.image, `${harbor}/gcr-proxy/example-project/app:1.4.2@${D}`);
    assert.deepEqual(admitted.imagePullSecrets, ['gcr-pull', 'harbor-gcr-pull']);
  });

  it('while Harbor is down, leaves pods at gcr.io', async () => {
    const config = await load(file);
    const state = world(config, { 'gcr.io': 'healthy', [harbor]: 'unhealthy' }, [
      { location: 'gcr.io/example-project/app', tag: '1.4.2', digest: D },
    ]);
    const admitted = await admit(config, state, image, ['gcr-pull']);
    assert.equal(admitted.image, image);
    assert.deepEqual(admitted.imagePullSecrets, ['gcr-pull']);
  });
});

cookbook('node-local-cache.yaml', () => {
  const file = 'node-local-cache.yaml';

  it("explain --offline: the registry first, the node's cache last, upstream names kept", async () => {
    const [nginx, ubuntu] = await explainOffline(file, ['nginx:1.27', 'quay.io/cybozu/ubuntu:22.04']);
    assert.deepEqual(nginx?.candidates, [
      'docker.io/library/nginx:1.27',
      'localhost:5000/library/nginx:1.27',
    ]);
    assert.deepEqual(ubuntu?.candidates, [
      'quay.io/cybozu/ubuntu:22.04',
      'localhost:5001/cybozu/ubuntu:22.04',
    ]);
  });

  it('leaves pods at their registry while it is healthy', async () => {
    const config = await load(file);
    const state = world(config, { 'docker.io': 'healthy' }, [
      { location: 'docker.io/library/nginx', tag: '1.27', digest: D },
    ]);
    const admitted = await admit(config, state, 'nginx:1.27');
    assert.equal(admitted.image, 'nginx:1.27');
    assert.equal(admitted.decision.reason, 'source-healthy');
  });

  it("while the registry is down, sends pods to the node's cache pinned to the last digest, never asking the cache", async () => {
    const config = await load(file);
    const state = world(config, { 'docker.io': 'unhealthy', 'quay.io': 'rate-limited' }, [
      { location: 'docker.io/library/nginx', tag: '1.27', digest: D, lastKnown: true },
      { location: 'quay.io/cybozu/ubuntu', tag: '22.04', digest: OLD, lastKnown: true },
    ]);
    const nginx = await admit(config, state, 'nginx:1.27');
    assert.equal(nginx.image, `localhost:5000/library/nginx:1.27@${D}`);
    assert.equal(nginx.decision.reason, 'source-unhealthy');
    const ubuntu = await admit(config, state, 'quay.io/cybozu/ubuntu:22.04');
    assert.equal(ubuntu.image, `localhost:5001/cybozu/ubuntu:22.04@${OLD}`);
    const pinned = await admit(config, state, `nginx@${D}`);
    assert.equal(pinned.image, `localhost:5000/library/nginx@${D}`);
    assert.deepEqual(
      state.asked.filter((registry) => registry.startsWith('localhost')),
      [],
      'a trusted cache is never asked',
    );
  });
});

describe('docs/cookbook', () => {
  it('has a test here for every config, each opening with a comment header, each indexed in README.md', async () => {
    const files = (await readdir(COOKBOOK)).filter((name) => name.endsWith('.yaml')).sort();
    assert.deepEqual(files, [...COVERED].sort());
    const index = await readFile(join(COOKBOOK, 'README.md'), 'utf8');
    for (const name of files) {
      const text = await readFile(join(COOKBOOK, name), 'utf8');
      assert.match(text, /^# \S/, `${name} opens with a comment header`);
      assert.match(
        text,
        new RegExp(`regroute explain .+ --config docs/cookbook/${name.replace('.', '\\.')}`),
      );
      assert.ok(index.includes(`(${name})`), `README.md links ${name}`);
    }
  });
});
