import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type MutateOutcome, mutate } from '../../../src/admission/mutate.js';
import { decodeReview } from '../../../src/admission/review.js';
import { type AuditRecord, auditRecords, writeAudit } from '../../../src/audit/audit.js';
import { parseConfig } from '../../../src/config/load.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { digestOf } from '../../helpers/digests.js';
import { fixture } from '../../helpers/fixtures.js';
import { captureLog } from '../server/support.js';

const config = parseConfig(
  {
    registries: { 'mirror.local:5000': { pullSecret: 'mirror-pull' } },
    routes: [
      { prefix: 'docker.io', registries: ['docker.io', 'mirror.local:5000/hub'] },
      { prefix: 'quay.io', registries: ['quay.io'] },
      { prefix: 'fra.ocir.io/tenancy', registries: ['fra.ocir.io/tenancy', 'ams.ocir.io/tenancy'] },
    ],
  },
  'test',
);
const nginx = digestOf('nginx');
const helidon = digestOf('helidon');

/** docker.io and fra.ocir.io down; the mirror holds nginx only; quay.io up and holding its image. */
const state = () =>
  new MemoryState()
    .setHealth('docker.io', 'unhealthy')
    .setHealth('mirror.local:5000', 'healthy')
    .setHealth('quay.io', 'healthy')
    .setHealth('fra.ocir.io', 'unhealthy')
    .setHealth('ams.ocir.io', 'healthy')
    .putLastKnownTag({ registry: 'docker.io', repository: 'library/nginx' }, '1.27', nginx)
    .putManifest({ registry: 'mirror.local:5000', repository: 'hub/library/nginx' }, nginx)
    .putTag({ registry: 'quay.io', repository: 'prometheus/node-exporter' }, 'v1.8.2', digestOf('exporter'))
    .putLastKnownTag({ registry: 'fra.ocir.io', repository: 'tenancy/helidon-pod' }, 'latest', helidon);

async function dryRunReview(): Promise<{ records: AuditRecord[]; outcome: MutateOutcome }> {
  const decoded = decodeReview(fixture('admission/pod-create-dryrun.json'));
  assert.ok(decoded.ok);
  const request = decoded.review.request;
  const outcome = await mutate(request, { config, state: state() }, AbortSignal.timeout(10_000));
  return { records: auditRecords(request, outcome, 1.25), outcome };
}

/** The audit records of a review as sent, after the pipeline ran over it. */
async function recordsOf(review: unknown): Promise<AuditRecord[]> {
  const decoded = decodeReview(review);
  assert.ok(decoded.ok);
  const outcome = await mutate(
    decoded.review.request,
    { config, state: state() },
    AbortSignal.timeout(10_000),
  );
  return auditRecords(decoded.review.request, outcome, 1);
}

const byContainer = (records: AuditRecord[], name: string) => records.find((r) => r.container === name);

describe('audit records of the dry-run fixture', () => {
  it('records a rerouted image with everything an operator needs', async () => {
    const { records } = await dryRunReview();
    const { candidates, ...web } = byContainer(records, 'web') ?? ({} as AuditRecord);
    // Each candidate in route order with its verdict; how a candidate is spelled belongs to the routing module.
    assert.match(candidates, /^docker\.io[^,=]*=unhealthy,mirror\.local:5000\/hub[^,=]*=chosen$/);
    assert.deepEqual(web, {
      uid: 'd2d2d2d2-0000-4000-8000-000000000004',
      namespace: 'shop',
      pod: 'web-7d4b9c8f6-*',
      owner: 'ReplicaSet/web-7d4b9c8f6',
      container: 'web',
      containerKind: 'containers',
      from: 'nginx:1.27',
      to: `mirror.local:5000/hub/library/nginx:1.27@${nginx}`,
      digest: nginx,
      reason: 'source-unhealthy',
      dryRun: true,
      decisionMs: 1.25,
    });
  });

  it('records images left where they are because their registry is down, with the reason', async () => {
    const { records } = await dryRunReview();
    const app = byContainer(records, 'app');
    assert.equal(app?.to, null);
    assert.equal(app?.reason, 'no-candidate');
    assert.equal(app?.digest, null);
    assert.match(
      String(app?.candidates),
      /^fra\.ocir\.io\/tenancy[^,=]*=unhealthy,ams\.ocir\.io\/tenancy[^,=]*=absent$/,
    );
    const migrate = byContainer(records, 'migrate');
    assert.equal(migrate?.containerKind, 'initContainers');
    assert.equal(migrate?.from, 'busybox');
    assert.equal(migrate?.reason, 'no-candidate');
    assert.equal(migrate?.dryRun, true);
  });

  it('leaves out images served from their own healthy registry', async () => {
    const { records, outcome } = await dryRunReview();
    assert.equal(
      outcome.decisions.find((d) => d.site.name === 'exporter')?.decision.reason,
      'source-healthy',
    );
    assert.equal(byContainer(records, 'exporter'), undefined);
    assert.equal(records.length, 3);
  });

  it('writes one line per record: rerouted at info, left unchanged at warn', async () => {
    const { records } = await dryRunReview();
    const { log, lines } = captureLog();
    writeAudit(log, records);
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, (l.audit as AuditRecord).container]),
      records.map((r) => [r.to ? 30 : 40, r.to ? 'image rerouted' : 'image left unchanged', r.container]),
    );
    assert.ok(lines.every((l) => (l.audit as AuditRecord).uid === 'd2d2d2d2-0000-4000-8000-000000000004'));
  });
});

describe('audit records of odd cases', () => {
  it('says a rewrite did not happen when its patch could not be applied', async () => {
    const { outcome } = await dryRunReview();
    const decoded = decodeReview(fixture('admission/pod-create-dryrun.json'));
    assert.ok(decoded.ok);
    const failed: MutateOutcome = { ...outcome, patchError: 'replace at /spec/containers/0/image failed' };
    const web = byContainer(auditRecords(decoded.review.request, failed, 1), 'web');
    assert.equal(web?.to, null);
    assert.equal(web?.reason, 'source-unhealthy');
    assert.equal(web?.error, 'patch not applied: replace at /spec/containers/0/image failed');
  });

  it('names the pod by name when it has one, and its controller when it has several owners', async () => {
    const review = fixture<{ request: { object: { metadata: Record<string, unknown> } } }>(
      'admission/pod-create-dryrun.json',
    );
    review.request.object.metadata.name = 'web-0';
    review.request.object.metadata.ownerReferences = [
      { apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'u1' },
      { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: 'u2', controller: true },
    ];
    const [first] = await recordsOf(review);
    assert.equal(first?.pod, 'web-0');
    assert.equal(first?.owner, 'StatefulSet/web');
  });

  it('records an invalid image reference with the parse error', async () => {
    const review = fixture<{ request: { object: { spec: { containers: { image: string }[] } } } }>(
      'admission/pod-create-dryrun.json',
    );
    const [first] = review.request.object.spec.containers;
    if (first) first.image = 'Nginx:1.27';
    const web = byContainer(await recordsOf(review), 'web');
    assert.equal(web?.reason, 'invalid-reference');
    assert.ok(web?.error && web.error.length > 0);
  });

  it('records an image that is not a string without failing the rest of the pod', async () => {
    const review = fixture<{ request: { object: { spec: { initContainers: { image: unknown }[] } } } }>(
      'admission/pod-create-dryrun.json',
    );
    const [migrate] = review.request.object.spec.initContainers;
    if (migrate) migrate.image = { toString: 1 };
    const records = await recordsOf(review);
    assert.equal(byContainer(records, 'migrate')?.from, '(object)');
    assert.equal(byContainer(records, 'migrate')?.reason, 'invalid-reference');
    assert.ok(byContainer(records, 'web')?.to, 'the other images are still routed');
  });
});
