// Specification of target-Secret reads and writes, against hand-written Kubernetes API answers on loopback.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { isTransient } from '../../../src/kube/api-failure.js';
import type { Backoff } from '../../../src/kube/backoff.js';
import { coreApi } from '../../../src/kube/client.js';
import { type TargetSecrets, targetSecrets } from '../../../src/kube/secret-api.js';
import {
  answer,
  created,
  FakeApiserver,
  fixture,
  latestResourceVersion,
  replaced,
} from './fake-apiserver.js';

const PATH = '/api/v1/namespaces/team-a/secrets/amsregcred';
const noWait = (attempts = 3): Backoff => ({
  baseMs: 1,
  maxMs: 1,
  attempts,
  random: () => 0,
  sleep: async () => {},
});

const kubeConfigFor = (server: string): KubeConfig => {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kubeConfig;
};

describe('target secrets against hand-written Kubernetes API answers', () => {
  let fake: FakeApiserver;
  let api: TargetSecrets;
  const shutdown = new AbortController();

  beforeEach(async () => {
    fake = await FakeApiserver.start();
    api = targetSecrets(coreApi(fake.kubeConfig(), 2000, shutdown.signal), noWait());
  });
  afterEach(() => fake.close());

  it('reads an existing Secret with its data and resourceVersion', async () => {
    fake.on('GET', PATH, answer(200, 'secret-team-a-amsregcred-managed-stale.json'));
    const result = await api.read('team-a', 'amsregcred');
    assert.ok(result.ok && result.value);
    assert.equal(result.value.metadata?.resourceVersion, '2201');
    assert.deepEqual(result.value.data, fixture('secret-team-a-amsregcred-managed-stale.json').data);
  });

  it('reads a 404 NotFound Status as a Secret that does not exist', async () => {
    fake.on('GET', PATH, answer(404, 'status-notfound.json'));
    assert.deepEqual(await api.read('team-a', 'amsregcred'), { ok: true, value: undefined });
  });

  it('reports a 409 AlreadyExists Status by status and reason only, without retrying', async () => {
    fake.on('POST', '/api/v1/namespaces/team-a/secrets', answer(409, 'status-alreadyexists.json'));
    const result = await api.create('team-a', { metadata: { name: 'amsregcred', namespace: 'team-a' } });
    assert.deepEqual(result, { ok: false, failure: { status: 409, reason: 'AlreadyExists' } });
    assert.equal(fake.requests.length, 1);
  });

  it('retries a 500 InternalError and returns the answer that follows', async () => {
    fake.on('POST', '/api/v1/namespaces/team-a/secrets', answer(500, 'status-internalerror.json'), created);
    const result = await api.create('team-a', { metadata: { name: 'amsregcred', namespace: 'team-a' } });
    assert.ok(result.ok);
    assert.equal(result.value.metadata?.resourceVersion, latestResourceVersion());
    assert.equal(fake.requests.length, 2);
  });

  it('reads the answer to a create as the apiserver makes it: its uid, resourceVersion, timestamp and managedFields', async () => {
    fake.on('POST', '/api/v1/namespaces/team-a/secrets', created);
    const sent = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'amsregcred',
        namespace: 'team-a',
        labels: { 'app.kubernetes.io/managed-by': 'regroute' },
      },
      type: 'kubernetes.io/dockerconfigjson',
      data: fixture('secret-list-amsregcred.json').items[0].data,
    };
    const before = Number(latestResourceVersion());
    const result = await api.create('team-a', structuredClone(sent));
    assert.ok(result.ok);
    const { metadata } = result.value;
    assert.match(
      metadata?.uid ?? '',
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.ok(Number(metadata?.resourceVersion) > before, 'a resourceVersion above every earlier one');
    assert.ok(metadata?.creationTimestamp instanceof Date, 'client-node parses creationTimestamp as a time');
    assert.deepEqual(
      metadata?.managedFields?.map((entry) => [entry.manager, entry.operation, entry.fieldsType]),
      [['regroute', 'Update', 'FieldsV1']],
    );
    assert.deepEqual(Object.keys(metadata?.managedFields?.[0]?.fieldsV1 ?? {}).sort(), [
      'f:data',
      'f:metadata',
      'f:type',
    ]);
    assert.deepEqual(result.value.data, sent.data);
  });

  it('reads the answer to a replace: uid and creationTimestamp kept, a newer resourceVersion', async () => {
    const stored = fixture('secret-team-a-amsregcred-managed-stale.json');
    fake.on('PUT', PATH, replaced);
    const result = await api.replace('team-a', 'amsregcred', {
      ...stored,
      metadata: { ...stored.metadata, managedFields: undefined },
    });
    assert.ok(result.ok);
    assert.equal(result.value.metadata?.uid, stored.metadata.uid);
    assert.equal(
      result.value.metadata?.creationTimestamp?.toISOString(),
      new Date(stored.metadata.creationTimestamp).toISOString(),
    );
    assert.ok(Number(result.value.metadata?.resourceVersion) > Number(stored.metadata.resourceVersion));
    assert.equal(result.value.metadata?.resourceVersion, latestResourceVersion());
    assert.equal(result.value.metadata?.managedFields?.[0]?.manager, 'regroute');
  });

  it('gives up after the configured tries and returns the last failure', async () => {
    fake.on('GET', PATH, answer(500, 'status-internalerror.json'));
    const result = await api.read('team-a', 'amsregcred');
    assert.deepEqual(result, { ok: false, failure: { status: 500, reason: 'InternalError' } });
    assert.equal(fake.requests.length, 3);
  });
});

describe('target secrets when the apiserver does not answer', () => {
  const shutdown = new AbortController();

  it('names a refused connection by its error code', async () => {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const api = targetSecrets(
      coreApi(kubeConfigFor(`http://127.0.0.1:${port}`), 2000, shutdown.signal),
      noWait(2),
    );
    const result = await api.read('team-a', 'amsregcred');
    assert.deepEqual(result, { ok: false, failure: { reason: 'ECONNREFUSED' } });
  });

  it('ends a request that gets no answer within the request timeout', async (t) => {
    const server = http.createServer(() => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    const { port } = server.address() as AddressInfo;
    const api = targetSecrets(
      coreApi(kubeConfigFor(`http://127.0.0.1:${port}`), 50, shutdown.signal),
      noWait(1),
    );
    const result = await api.read('team-a', 'amsregcred');
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.failure.status === undefined && isTransient(result.failure));
  });
});
