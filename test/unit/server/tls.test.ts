import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../../src/audit/metrics.js';
import { parseConfig } from '../../../src/config/load.js';
import { type RunningServer, startServer } from '../../../src/server/run.js';
import { checkKeyPair } from '../../../src/server/tls.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { digestOf } from '../../helpers/digests.js';
import { fixture } from '../../helpers/fixtures.js';
import {
  type CertDir,
  captureLog,
  certDir,
  GatedState,
  handleOf,
  keepAliveAgent,
  postReview,
  scrape,
  serialOf,
  servedCertificate,
  servedSerial,
} from './support.js';

const HOUR_MS = 3_600_000;
const nginx = digestOf('nginx');

function memoryState() {
  return new MemoryState()
    .setHealth('docker.io', 'unhealthy')
    .setHealth('mirror.local:5000', 'healthy')
    .putLastKnownTag({ registry: 'docker.io', repository: 'library/nginx' }, '1.27', nginx)
    .putManifest({ registry: 'mirror.local:5000', repository: 'hub/library/nginx' }, nginx);
}

function configFor(certs: CertDir) {
  return parseConfig(
    {
      server: { tlsCert: certs.certFile, tlsKey: certs.keyFile },
      // A review held at the gate must not run into its deadline on a busy machine.
      admission: { deadlineMs: 20_000 },
      routes: [{ prefix: 'docker.io', registries: ['docker.io', 'mirror.local:5000/hub'] }],
    },
    'test',
  );
}

describe('checkKeyPair', () => {
  let certs: CertDir;
  before(async () => {
    certs = await certDir();
  });
  after(() => certs.dispose());

  it('accepts a certificate with its own key and tells its serial and expiry', () => {
    const pair = certs.issue();
    const checked = checkKeyPair({ cert: Buffer.from(pair.certPem), key: Buffer.from(pair.keyPem) });
    assert.ok(checked.ok);
    assert.equal(checked.certificate.serial, serialOf(pair));
    assert.equal(
      checked.certificate.notAfter.getTime(),
      new Date(new X509Certificate(pair.certPem).validTo).getTime(),
    );
  });

  it('refuses a certificate with the key of another', () => {
    const [one, other] = [certs.issue(), certs.issue()];
    const checked = checkKeyPair({ cert: Buffer.from(one.certPem), key: Buffer.from(other.keyPem) });
    assert.deepEqual(checked, { ok: false, error: 'the key does not belong to the certificate' });
  });

  it('refuses empty files, which a TLS context alone would accept', () => {
    assert.equal(checkKeyPair({ cert: Buffer.alloc(0), key: Buffer.alloc(0) }).ok, false);
    const pair = certs.issue();
    assert.equal(checkKeyPair({ cert: Buffer.from(pair.certPem), key: Buffer.alloc(0) }).ok, false);
  });

  it('names the problem without quoting the key', () => {
    const pair = certs.issue();
    const checked = checkKeyPair({ cert: Buffer.from(pair.certPem), key: Buffer.from('not a key') });
    assert.equal(checked.ok, false);
    assert.ok(!checked.ok && !checked.error.includes('not a key'));
  });
});

describe('serving certificate reload on a running HTTPS server', () => {
  let certs: CertDir;
  let server: RunningServer;
  const captured = captureLog();
  const metrics = new Metrics({ defaultMetrics: false });
  const gated = new GatedState(memoryState());
  let first: ReturnType<CertDir['issue']>;

  before(async () => {
    certs = await certDir();
    first = certs.issue();
    await certs.install(first);
    server = await startServer({
      config: configFor(certs),
      state: handleOf(gated),
      log: captured.log,
      metrics,
      port: 0,
      metricsPort: 0,
      host: '127.0.0.1',
      reloadIntervalMs: HOUR_MS,
    });
  });
  after(async () => {
    await server.close();
    await certs.dispose();
  });

  it('serves the certificate it started with, and reports nothing changed while the files stay', async () => {
    assert.equal(await servedSerial(server.port), serialOf(first));
    assert.equal(await server.reloadTls(), 'unchanged');
  });

  it('shows a rotated certificate to new connections, while a review in flight and its connection carry on', async () => {
    const agent = keepAliveAgent();
    try {
      const review = fixture('admission/pod-create-replicaset.json');
      assert.equal((await postReview(server.port, review, agent)).status, 200);

      gated.close();
      const inFlight = postReview(server.port, review, agent);
      await gated.entered;
      const second = certs.issue();
      await certs.install(second);
      assert.equal(await server.reloadTls(), 'applied');
      assert.equal(await servedSerial(server.port), serialOf(second));
      gated.open();

      const answered = await inFlight;
      assert.equal(answered.status, 200);
      assert.equal(answered.body.response.allowed, true);
      assert.ok(answered.body.response.patch, 'the review was answered in full, patch included');
      // The kept-alive connection was set up with the old pair and still serves requests.
      assert.equal((await postReview(server.port, review, agent)).status, 200);
      assert.ok(
        captured.lines.some((l) => l.msg === 'serving certificate reloaded' && l.serial === serialOf(second)),
      );
    } finally {
      gated.open();
      await agent.close();
    }
  });

  it('keeps the last good pair when the new files do not belong together, and says so once', async () => {
    const served = await servedSerial(server.port);
    const [one, other] = [certs.issue(), certs.issue()];
    await certs.install({ certPem: one.certPem, keyPem: other.keyPem });
    captured.lines.length = 0;

    assert.equal(await server.reloadTls(), 'rejected');
    assert.equal(await server.reloadTls(), 'unchanged', 'the same broken files are not reported again');
    assert.equal(await servedSerial(server.port), served);
    const errors = captured.lines.filter((l) => l.level === 50);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]?.error), /key does not belong/);
    const text = await scrape(server.metricsPort);
    assert.match(text, /^regroute_tls_reload_errors_total 1$/m);
    assert.match(text, /^regroute_tls_last_reload_successful 0$/m);

    // The key follows the certificate: the pair is whole again and taken.
    await certs.install(one);
    assert.equal(await server.reloadTls(), 'applied');
    assert.equal(await servedSerial(server.port), serialOf(one));
    assert.match(await scrape(server.metricsPort), /^regroute_tls_last_reload_successful 1$/m);
  });

  it('keeps the last good pair when a file cannot be read', async () => {
    const served = await servedSerial(server.port);
    await rm(certs.keyFile);
    captured.lines.length = 0;
    assert.equal(await server.reloadTls(), 'rejected');
    assert.match(String(captured.lines[0]?.error), /cannot read .*tls\.key: ENOENT/);
    assert.equal(await servedSerial(server.port), served);
  });

  it('exports when the certificate in use expires', async () => {
    const text = await scrape(server.metricsPort);
    const expiry = Number(
      /^regroute_tls_certificate_expiry_timestamp_seconds (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text)?.[1],
    );
    const served = await servedCertificate(server.port);
    assert.equal(expiry, Math.floor(new Date(served.valid_to).getTime() / 1000));
  });
});

describe('serving certificate reload on its own timer', () => {
  it('notices rotated files within a few intervals', async () => {
    const captured = captureLog();
    const certs = await certDir();
    const first = certs.issue();
    await certs.install(first);
    const server = await startServer({
      config: configFor(certs),
      state: handleOf(memoryState()),
      log: captured.log,
      metrics: new Metrics({ defaultMetrics: false }),
      port: 0,
      host: '127.0.0.1',
      reloadIntervalMs: 20,
    });
    try {
      const second = certs.issue();
      await certs.install(second);
      await captured.waitFor(
        (l) => l.msg === 'serving certificate reloaded' && l.serial === serialOf(second),
      );
      assert.equal(await servedSerial(server.port), serialOf(second));
    } finally {
      await server.close();
      await certs.dispose();
    }
  });
});
