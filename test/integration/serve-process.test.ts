// `regroute serve` as its own process, signalled as the kubelet signals it: SIGTERM drains a review in flight and
// exits 0, a second signal ends it at once; and the pull-secret sync the config turns on runs inside it, against a
// Kubernetes API stand-in, until the same SIGTERM stops it.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { V1Namespace } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.js';
import { type FaultProxy, type Harness, pushImage, startHarness } from '../harness/index.js';
import { fixture } from '../helpers/fixtures.js';
import { type ServeProcess, serveCerts, startServe } from '../helpers/serve-process.js';
import { answer, created, FakeApiserver, fixture as kubeFixture } from '../unit/kube/fake-apiserver.js';

const SHUTTING_DOWN = 'shutting down: draining requests in flight';

describe('regroute serve, signalled', () => {
  let harness: Harness;
  let source: FaultProxy;
  let configFile: string;
  let caCert: string;
  let serve: ServeProcess | undefined;

  before(async () => {
    harness = await startHarness();
    const registry = await harness.startRegistry({ name: 'source' });
    await pushImage(registry, 'team/app', 'v1');
    source = await harness.startFaultProxy(registry);
    const certs = await serveCerts(harness.dir);
    caCert = certs.caCert;
    const config: ConfigInput = {
      server: { host: '127.0.0.1', metricsPort: 0, tlsCert: certs.tlsCert, tlsKey: certs.tlsKey },
      // A review waits up to the deadline for a source that does not answer: long enough to signal it meanwhile.
      admission: { deadlineMs: 3000 },
      probe: { intervalSeconds: 3600, timeoutMs: 3000 },
      registries: { [source.host]: { caFile: harness.caFile } },
      routes: [{ prefix: `${source.host}/team`, registries: [`${source.host}/team`] }],
    };
    configFile = join(harness.dir, 'serve.yaml');
    await writeFile(configFile, stringify(config));
  });
  afterEach(async () => {
    await serve?.stop();
    serve = undefined;
  });
  after(() => harness?.stop());

  /** A serving process whose one review is now held at the source: its lookup has reached the registry. */
  async function reviewInFlight() {
    await source.setMode('pass');
    serve = await startServe(configFile, caCert); // ready: its first probe round found the source up
    await source.setMode('slow', { delayMs: 60_000 });
    source.resetCounts();
    const review = fixture<{
      request: { uid: string; object: { spec: { containers: { image: string }[] } } };
    }>('admission/pod-create-replicaset.json');
    const [web] = review.request.object.spec.containers;
    assert.ok(web);
    web.image = `${source.host}/team/app:v1`;
    const inFlight = serve.mutate(review);
    inFlight.catch(() => {}); // awaited by the test; a second signal makes it fail
    await source.untilReceived(1);
    return { serve, review, inFlight };
  }

  it('on SIGTERM answers the review in flight, then exits 0', async () => {
    const { serve, review, inFlight } = await reviewInFlight();
    serve.kill('SIGTERM');
    await serve.waitForLog((l) => l.msg === SHUTTING_DOWN && l.signal === 'SIGTERM');
    const answered = await inFlight;
    assert.equal(answered.statusCode, 200);
    assert.equal(answered.response.uid, review.request.uid);
    assert.equal(answered.response.allowed, true);
    assert.deepEqual(await serve.exited, { code: 0, signal: null });
    const order = (match: (l: Record<string, unknown>) => boolean) => serve.logs.findIndex(match);
    const audit = order((l) => (l.audit as { uid?: string } | undefined)?.uid === review.request.uid);
    assert.ok(audit > order((l) => l.msg === SHUTTING_DOWN), 'the review was answered after shutdown began');
    assert.ok(order((l) => l.msg === 'stopped') > audit, 'and the process stopped after answering it');
  });

  it('on a second SIGTERM while draining ends at once, the review unanswered', async () => {
    const { serve, inFlight } = await reviewInFlight();
    serve.kill('SIGTERM');
    await serve.waitForLog((l) => l.msg === SHUTTING_DOWN);
    serve.kill('SIGTERM');
    assert.deepEqual(await serve.exited, { code: null, signal: 'SIGTERM' });
    await assert.rejects(inFlight, 'the connection went with the process');
    assert.ok(!serve.logs.some((l) => l.msg === 'stopped'));
  });
});

describe('regroute serve with pullSecretSync enabled', () => {
  const NAMESPACES = '/api/v1/namespaces';
  const SOURCES = '/api/v1/namespaces/regroute-system/secrets';
  let fake: FakeApiserver;
  let dir: string;

  before(async () => {
    fake = await FakeApiserver.start();
    dir = await mkdtemp(join(tmpdir(), 'regroute-serve-sync-'));
  });
  after(async () => {
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('copies the configured pull secret into opted-in namespaces, and stops its watches on SIGTERM', async () => {
    const list = kubeFixture('namespace-list.json');
    list.items = list.items.filter((n: V1Namespace) => n.metadata?.name === 'team-a');
    fake
      .on('GET', NAMESPACES, { status: 200, body: list })
      .on('GET', SOURCES, answer(200, 'secret-list-amsregcred.json'))
      .on('GET', `${NAMESPACES}/team-a/secrets/amsregcred`, answer(404, 'status-notfound.json'))
      .on('POST', `${NAMESPACES}/team-a/secrets`, created);
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, fake.kubeConfig().exportConfig());
    const certs = await serveCerts(dir);
    const config: ConfigInput = {
      server: { host: '127.0.0.1', metricsPort: 0, tlsCert: certs.tlsCert, tlsKey: certs.tlsKey },
      pullSecretSync: { enabled: true, namespace: 'regroute-system' },
      // Nothing listens on port 9: the registry's probes fail at once, and nothing leaves the machine.
      registries: { '127.0.0.1:9': { pullSecret: 'amsregcred' } },
    };
    const configFile = join(dir, 'serve.yaml');
    await writeFile(configFile, stringify(config));
    const serve = await startServe(configFile, certs.caCert, { env: { KUBECONFIG: kubeconfig } });
    try {
      const copy = await fake.waitFor(
        (r) => r.method === 'POST' && r.path === `${NAMESPACES}/team-a/secrets`,
      );
      assert.equal(copy.body.metadata.name, 'amsregcred');
      assert.equal(copy.query.get('fieldManager'), 'regroute');
      const watches = [await fake.waitForWatch(NAMESPACES), await fake.waitForWatch(SOURCES)];
      serve.kill('SIGTERM');
      assert.deepEqual(await serve.exited, { code: 0, signal: null });
      await Promise.all(watches.map((w) => w.closed));
      assert.ok(serve.logs.some((l) => l.component === 'pull-secret-sync'));
    } finally {
      await serve.stop();
    }
  });
});
