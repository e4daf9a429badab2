// `regroute serve` with cluster.enabled, against hand-written Kubernetes API answers replayed on loopback: /readyz
// waits for the pods of opted-in namespaces to be listed, the cluster metrics are served, and SIGTERM stops the
// watches.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Agent, request } from 'undici';
import type { Io } from '../../src/cli/io.js';
import { serveCommand } from '../../src/cli/serve.js';
import { freePort } from '../harness/index.js';
import { type ApiRequest, answer, FakeApiserver, fixture } from '../unit/kube/fake-apiserver.js';
import { captureLog, certDir, scrape } from '../unit/server/support.js';

const PODS = '/api/v1/namespaces/team-a/pods';
const listing = (r: ApiRequest) => r.path === PODS && r.query.get('watch') !== 'true';

async function readyz(port: number): Promise<number> {
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    const res = await request(`https://127.0.0.1:${port}/readyz`, { dispatcher });
    await res.body.dump();
    return res.statusCode;
  } finally {
    await dispatcher.close();
  }
}

describe('regroute serve with the cluster parts', () => {
  it('is unready until the pods are listed, serves the repair metrics, and stops its watches on SIGTERM', async () => {
    const certs = await certDir();
    await certs.install(certs.issue());
    const fake = await FakeApiserver.start();
    const list = fixture('namespace-list.json');
    let podsListable = false;
    fake
      .on('GET', '/api/v1/namespaces', { status: 200, body: { ...list, items: [list.items[0]] } })
      .on('GET', PODS, () =>
        podsListable ? answer(200, 'pod-list-team-a.json') : answer(500, 'status-internalerror.json'),
      );
    const metricsPort = await freePort();
    const configFile = join(certs.dir, 'config.yaml');
    await writeFile(
      configFile,
      [
        `server: { host: 127.0.0.1, metricsPort: ${metricsPort}, tlsCert: ${certs.certFile}, tlsKey: ${certs.keyFile} }`,
        'cluster: { enabled: true, readyTimeoutSeconds: 600, warm: { enabled: false } }',
        '',
      ].join('\n'),
    );
    const signals = new EventEmitter();
    let listening: (line: string) => void = () => {};
    const listeningLine = new Promise<string>((resolve) => {
      listening = resolve;
    });
    const io: Io = { out: () => {}, err: (line) => line.includes('listening') && listening(line) };
    const { log, waitFor } = captureLog();
    try {
      const exited = serveCommand(['--config', configFile, '--port', '0'], io, {
        signals,
        log,
        kubeConfig: fake.kubeConfig(),
      });
      const port = Number(/:(\d+)$/.exec(await listeningLine)?.[1]);
      // The pod list has failed twice: the replica is not ready, whatever its registry state says.
      await fake.waitFor(listing, 2);
      assert.equal(await readyz(port), 503);

      podsListable = true;
      const listed = await waitFor((l) => l.msg === 'pods listed and learned from');
      assert.equal(listed.pods, 2);
      assert.equal(await readyz(port), 200);

      const metrics = await scrape(metricsPort);
      assert.match(metrics, /^regroute_repairs_total\{outcome="repaired"\} 0$/m);
      assert.match(metrics, /^regroute_cluster_pods_watched 2$/m);

      const watch = await fake.waitForWatch(PODS);
      signals.emit('SIGTERM');
      assert.equal(await exited, 0);
      await watch.closed;
    } finally {
      await fake.close();
      await certs.dispose();
    }
  });
});
