// deploy/examples/config.yaml as shipped: the loader takes it, and `regroute serve` starts on it and answers. Its
// registries are public (OCIR, Docker Hub) and its credential and CA files are the cluster's: every host name
// resolves to loopback here, where those registries are not, so their probes fail at once and nothing leaves the
// machine; the missing files leave their registries without a client, which must not keep the webhook down.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile } from '../../src/config/load.js';
import { freePort } from '../harness/ports.js';
import { assertAnswersReview, type ServeProcess, serveCerts, startServe } from '../helpers/serve-process.js';
import { deployDir } from '../unit/deploy/manifests.js';

const EXAMPLE = join(deployDir, 'examples', 'config.yaml');
const LOOPBACK_DNS = join(import.meta.dirname, '..', 'helpers', 'loopback-dns.mjs');

describe('deploy/examples/config.yaml as shipped', () => {
  let dir: string;
  let serve: ServeProcess | undefined;
  let healthPort: number;
  let metricsPort: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regroute-example-'));
    const certs = await serveCerts(dir);
    [healthPort, metricsPort] = [await freePort(), await freePort()];
    // The server block comes from the environment, as the Deployment's does; the file has none.
    serve = await startServe(EXAMPLE, certs.caCert, {
      env: {
        REGROUTE_TLS_CERT: certs.tlsCert,
        REGROUTE_TLS_KEY: certs.tlsKey,
        REGROUTE_HEALTH_PORT: String(healthPort),
        REGROUTE_METRICS_PORT: String(metricsPort),
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${LOOPBACK_DNS}`,
      },
    });
  });
  after(async () => {
    await serve?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is a valid config: routes, registries and the settings it names', async () => {
    const config = await loadConfigFile(EXAMPLE);
    assert.deepEqual(
      config.routes.map((r) => r.prefix),
      ['fra.ocir.io/tenancy', 'docker.io'],
    );
    assert.deepEqual(Object.keys(config.registries).sort(), [
      'ams.ocir.io',
      'fra.ocir.io',
      'registry.local:5000',
    ]);
  });

  it('starts: ready on its health port, metrics served, reviews answered', async () => {
    assert.ok(serve);
    const ready = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
    assert.equal(ready.status, 200);
    assert.match(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(), /^regroute_/m);
    const serving = await serve.waitForLog((l) => l.msg === 'regroute serving');
    assert.equal(serving.routes, 2);

    await assertAnswersReview(serve, 'fra.ocir.io/tenancy/app:1.0');
  });

  it('contacted nothing beyond loopback: its registries fail on a missing file or at 127.0.0.1', async () => {
    assert.ok(serve);
    // Docker Hub, named by a route and with no settings, is the one registry asked: at loopback.
    const hub = await serve.waitForLog(
      (l) => l.msg === 'registry health changed' && l.registry === 'docker.io',
    );
    assert.match(String(hub.error), /127\.0\.0\.1:443/);
    const causes = serve.logs.filter((l) => l.msg === 'registry health changed' && l.error !== undefined);
    assert.ok(causes.length > 0);
    for (const line of causes)
      assert.match(String(line.error), /cannot read \/(secrets|etc)\/|127\.0\.0\.1/, JSON.stringify(line));
  });
});
