// Workload templates' images, and Events on pods, against hand-written Kubernetes API answers on loopback.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { AppsV1Api, BatchV1Api } from '@kubernetes/client-node';
import { apiClient, coreApi } from '../../../src/kube/client.js';
import { podApi } from '../../../src/kube/pod-api.js';
import { workloadLister } from '../../../src/kube/workload-api.js';
import { answer, FakeApiserver } from './fake-apiserver.js';

const apps = (resource: string) => `/apis/apps/v1/namespaces/team-a/${resource}`;
const batch = (resource: string) => `/apis/batch/v1/namespaces/team-a/${resource}`;

let fake: FakeApiserver;

function lister() {
  const signal = new AbortController().signal;
  return workloadLister(
    apiClient(AppsV1Api, fake.kubeConfig(), 5000, signal),
    apiClient(BatchV1Api, fake.kubeConfig(), 5000, signal),
  );
}

describe('workload images, against hand-written Kubernetes API answers', () => {
  beforeEach(async () => {
    fake = await FakeApiserver.start();
    fake
      .on('GET', apps('deployments'), answer(200, 'deployment-list-team-a.json'))
      .on('GET', apps('statefulsets'), answer(200, 'statefulset-list-empty.json'))
      .on('GET', apps('daemonsets'), answer(200, 'daemonset-list-empty.json'))
      .on('GET', batch('jobs'), answer(200, 'job-list-empty.json'))
      .on('GET', batch('cronjobs'), answer(200, 'cronjob-list-team-a.json'));
  });
  afterEach(() => fake.close());

  it('names every image of every template, init containers and CronJob job templates included', async () => {
    const { images, failures } = await lister().imagesIn('team-a');
    assert.deepEqual(failures, []);
    assert.deepEqual(images.sort(), [
      'docker.io/envoyproxy/envoy:v1.31.2',
      'registry.example.com/team/migrate:7',
      'registry.example.com/team/report:2.0@sha256:3e5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a',
      'registry.example.com/team/web:1.4.2',
    ]);
    for (const request of fake.requests) assert.equal(request.query.get('limit'), '500');
  });

  it('goes on past a kind it may not list (403 Forbidden), naming it', async () => {
    fake.on('GET', apps('deployments'), answer(403, 'status-forbidden-deployments.json'));
    const { images, failures } = await lister().imagesIn('team-a');
    assert.deepEqual(failures, [{ kind: 'Deployment', failure: { status: 403, reason: 'Forbidden' } }]);
    assert.deepEqual(images, [
      'registry.example.com/team/report:2.0@sha256:3e5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a',
    ]);
  });
});

describe('Events on pods', () => {
  beforeEach(async () => {
    fake = await FakeApiserver.start();
  });
  afterEach(() => fake.close());

  it('count an Event another replica recorded first (409 AlreadyExists) as recorded', async () => {
    fake.on('POST', '/api/v1/namespaces/team-a/events', answer(409, 'status-alreadyexists.json'));
    const noBackoff = { baseMs: 1, maxMs: 1, attempts: 2, random: () => 0, sleep: async () => {} };
    const api = podApi(coreApi(fake.kubeConfig(), 5000, new AbortController().signal), noBackoff);
    const recorded = await api.recordEvent('team-a', {
      metadata: { name: 'web-6d9f7c5b8-k9m2p.regroute-0a1b2c3d', namespace: 'team-a' },
      involvedObject: { kind: 'Pod', name: 'web-6d9f7c5b8-k9m2p', namespace: 'team-a' },
    });
    assert.equal(recorded.ok, true);
    assert.equal(fake.requests.length, 1, 'not retried: the answer will not change');
  });
});
