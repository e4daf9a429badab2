// `regroute serve` with admission.events on: real registries (distribution 2.8 on loopback) decide a reroute, and the
// Event about the pod is posted to hand-written Kubernetes API answers replayed by a loopback server, after the
// review is answered; a dry run gets none.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import type { Io } from '../../src/cli/io.js';
import { serveCommand } from '../../src/cli/serve.js';
import { freePort, type Harness, type PushedImage, pushImageToAll, startHarness } from '../harness/index.js';
import { fixture as admissionFixture } from '../helpers/fixtures.js';
import { type ApiRequest, created, FakeApiserver } from '../unit/kube/fake-apiserver.js';
import { captureLog, certDir, keepAliveAgent, postReview, scrape } from '../unit/server/support.js';

const EVENTS = '/api/v1/namespaces/shop/events';
const isEvent = (r: ApiRequest) => r.method === 'POST' && r.path === EVENTS;

describe('regroute serve with admission Events, against a loopback replay of the Kubernetes API', () => {
  let harness: Harness;
  let pushed: PushedImage;
  let source: string;
  let mirror: string;

  before(async () => {
    harness = await startHarness();
    const [a, b] = await Promise.all([
      harness.startRegistry({ name: 'events-source' }),
      harness.startRegistry({ name: 'events-mirror' }),
    ]);
    source = a.host;
    mirror = b.host;
    pushed = await pushImageToAll([a, b], 'team/api', 'v1');
  });
  after(() => harness?.stop());

  /** The StatefulSet pod of the fixture, its one container at the source; a dry run when asked. */
  function review(uid: string, dryRun = false) {
    const r = admissionFixture<{
      request: { uid: string; dryRun?: boolean; object: { spec: Record<string, unknown> } };
    }>('admission/pod-create-sidecar.json');
    r.request.uid = uid;
    r.request.dryRun = dryRun;
    r.request.object.spec.containers = [{ name: 'api', image: `${source}/team/api:v1` }];
    delete r.request.object.spec.initContainers;
    return r;
  }

  it('posts a Normal Rerouted Event on the pod after answering, none for a dry run, and counts it', async () => {
    const certs = await certDir();
    await certs.install(certs.issue());
    const fake = await FakeApiserver.start();
    fake.on('POST', EVENTS, created);
    const metricsPort = await freePort();
    const configFile = join(certs.dir, 'config.yaml');
    await writeFile(
      configFile,
      JSON.stringify({
        server: { host: '127.0.0.1', metricsPort, tlsCert: certs.certFile, tlsKey: certs.keyFile },
        admission: { deadlineMs: 5000, events: { enabled: true } },
        registries: { [source]: { caFile: harness.caFile }, [mirror]: { caFile: harness.caFile } },
        // The mirror first: a healthy mirror holding the digest takes the pod (preferred-candidate).
        routes: [{ prefix: `${source}/team`, registries: [`${mirror}/team`, `${source}/team`] }],
      }),
    );
    const signals = new EventEmitter();
    let listening: (line: string) => void = () => {};
    const listeningLine = new Promise<string>((resolve) => {
      listening = resolve;
    });
    const io: Io = { out: () => {}, err: (line) => line.includes('listening') && listening(line) };
    const { log } = captureLog();
    const agent = keepAliveAgent();
    try {
      const exited = serveCommand(['--config', configFile, '--port', '0'], io, {
        signals,
        log,
        kubeConfig: fake.kubeConfig(),
      });
      const port = Number(/:(\d+)$/.exec(await listeningLine)?.[1]);

      const dry = await postReview(port, review('uid-dry', true), agent);
      assert.ok(dry.body.response.patch, 'a dry run is decided as the real one');
      const answered = await postReview(port, review('uid-real'), agent);
      assert.ok(answered.body.response.patch);

      const posted = await fake.waitFor(isEvent);
      assert.equal(posted.body.reason, 'Rerouted');
      assert.equal(posted.body.type, 'Normal', 'the source was up: the pod went to the preferred mirror');
      assert.deepEqual(posted.body.involvedObject, {
        apiVersion: 'v1',
        kind: 'Pod',
        name: 'api-0',
        namespace: 'shop',
      });
      assert.equal(posted.body.related.kind, 'StatefulSet');
      assert.equal(
        posted.body.message,
        `regroute rerouted 1 image of pod api-0 at admission: containers/api ${source}/team/api:v1 -> ${mirror}/team/api:v1@${pushed.digest} (preferred-candidate)`,
      );
      const metrics = await scrape(metricsPort);
      assert.match(metrics, /^regroute_admission_events_total\{outcome="posted"\} 1$/m);
      assert.match(metrics, /^regroute_admission_events_total\{outcome="skipped"\} 1$/m, 'the dry run');

      signals.emit('SIGTERM');
      assert.equal(await exited, 0);
      assert.equal(fake.requests.filter(isEvent).length, 1, 'one Event, for the real review');
    } finally {
      await agent.close();
      await fake.close();
      await certs.dispose();
    }
  });

  it('serves on without Events when no API client can be made, and says so', async () => {
    const certs = await certDir();
    await certs.install(certs.issue());
    const configFile = join(certs.dir, 'config-no-api.yaml');
    await writeFile(
      configFile,
      JSON.stringify({
        server: { host: '127.0.0.1', metricsPort: 0, tlsCert: certs.certFile, tlsKey: certs.keyFile },
        admission: { events: { enabled: true } },
      }),
    );
    const signals = new EventEmitter();
    let listening: (line: string) => void = () => {};
    const listeningLine = new Promise<string>((resolve) => {
      listening = resolve;
    });
    const io: Io = { out: () => {}, err: (line) => line.includes('listening') && listening(line) };
    const { log, lines } = captureLog();
    const agent = keepAliveAgent();
    try {
      // A kubeconfig naming no cluster: what a run outside a cluster without ~/.kube/config amounts to.
      const exited = serveCommand(['--config', configFile, '--port', '0'], io, {
        signals,
        log,
        kubeConfig: new KubeConfig(),
      });
      const port = Number(/:(\d+)$/.exec(await listeningLine)?.[1]);
      const answered = await postReview(port, review('uid-no-api'), agent);
      assert.equal(answered.status, 200);
      assert.equal(answered.body.response.allowed, true);
      assert.ok(lines.some((l) => l.msg === 'admission Events left off: no Kubernetes API client'));
      signals.emit('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      await agent.close();
      await certs.dispose();
    }
  });
});
