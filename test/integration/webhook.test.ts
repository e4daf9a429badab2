// End to end: `regroute serve` routing a real AdmissionReview between real registries as they go down and come back.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { AdmissionResponse } from '../../src/admission/review.js';
import { explainCommand } from '../../src/cli/explain.js';
import type { Io } from '../../src/cli/io.js';
import { probeCommand } from '../../src/cli/probe.js';
import type { ConfigInput } from '../../src/config/schema.js';
import {
  type FaultProxy,
  type Harness,
  type PushedImage,
  type PushedIndex,
  pushImage,
  pushImageToAll,
  pushIndexToAll,
  type Registry,
  startHarness,
} from '../harness/index.js';
import { applyResponse, assertValidPod, patchOf } from '../helpers/apiserver.js';
import { fixture } from '../helpers/fixtures.js';
import { type ServeProcess, serveCerts, startServe } from '../helpers/serve-process.js';

const DEADLINE_MS = 1000;
/** Longer than the deadline, so an answer bounded by the deadline cannot be bounded by a request timeout instead. */
const PROBE_TIMEOUT_MS = 1500;
const ORIGINAL_IMAGES = 'regroute.io/original-images';

interface Pod {
  metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: {
    containers: { name: string; image: string }[];
    initContainers?: { name: string; image: string }[];
    imagePullSecrets?: { name: string }[];
  };
}

/** The ReplicaSet pod fixture with its four images replaced: a real request shape naming loopback registries. */
function reviewWith(images: { web: string; exporter: string; app: string; migrate: string }, uid: string) {
  const review = fixture<{ request: { uid: string; object: Pod } }>('admission/pod-create-replicaset.json');
  review.request.uid = uid;
  const pod = review.request.object;
  for (const container of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
    container.image = images[container.name as keyof typeof images];
  }
  return review;
}

const imagesOf = (pod: Pod) =>
  Object.fromEntries(
    [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].map((c) => [c.name, c.image]),
  );

/** Asks until `accept` holds for an answer or the bound passes: health changes arrive with the next probe round. */
async function eventually(
  serve: ServeProcess,
  review: unknown,
  accept: (response: AdmissionResponse) => boolean,
  boundMs = 15_000,
): Promise<AdmissionResponse> {
  const until = Date.now() + boundMs;
  for (;;) {
    const { response } = await serve.mutate(review);
    if (accept(response)) return response;
    if (Date.now() > until)
      assert.fail(`no such answer within ${boundMs} ms; last: ${JSON.stringify(response)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const auditLines = (serve: ServeProcess, uid: string) =>
  serve.logs
    .map((line) => line.audit as Record<string, unknown> | undefined)
    .filter((audit): audit is Record<string, unknown> => audit?.uid === uid);

/** The audit line of one container; log lines reach the pipe a little after the answer. */
async function auditOf(
  serve: ServeProcess,
  uid: string,
  container: string,
  accept: (line: Record<string, unknown>) => boolean = () => true,
) {
  const until = Date.now() + 5000;
  for (;;) {
    const line = auditLines(serve, uid).find((audit) => audit.container === container && accept(audit));
    if (line || Date.now() > until) return line;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function capture(): Io & { stdout: string[] } {
  const stdout: string[] = [];
  return { stdout, out: (line) => stdout.push(line), err: () => {} };
}

describe('regroute serve between real registries (distribution 2.8 on loopback)', () => {
  let harness: Harness;
  let source: FaultProxy;
  let stale: Registry;
  let basic: Registry;
  let token: Registry;
  let serve: ServeProcess;
  let app: PushedImage;
  let multi: PushedIndex;
  let tokenOnly: PushedImage;
  let images: { web: string; exporter: string; app: string; migrate: string };
  let configFile: string;
  let uids = 0;
  const nextUid = () => `e2e-${++uids}`;

  before(async () => {
    harness = await startHarness();
    const issuer = await harness.startTokenIssuer();
    const origin = await harness.startRegistry({ name: 'source' });
    [stale, basic, token] = await Promise.all([
      harness.startRegistry({ name: 'stale' }),
      harness.startRegistry({ name: 'basic', auth: { kind: 'htpasswd' } }),
      harness.startRegistry({ name: 'token', auth: { kind: 'token', issuer } }),
    ]);
    // Pods name the proxy: stopping it is the source registry going down, as far as regroute can tell.
    source = await harness.startFaultProxy(origin);

    app = await pushImageToAll([origin, basic, token], 'team/app', 'v1');
    await pushImage(stale, 'team/app', 'v1'); // same tag, other content: a stale mirror
    multi = await pushIndexToAll([origin, basic], 'team/multi', 'v1');
    tokenOnly = await pushImageToAll([origin, token], 'team/token-only', 'v1');
    await pushImageToAll([origin, basic], 'team/fresh', 'v1');
    images = {
      web: `${source.host}/team/app:v1`,
      exporter: `${source.host}/team/multi:v1`,
      app: `${source.host}/team/token-only@${tokenOnly.digest}`,
      migrate: `${source.host}/team/app@${app.digest}`,
    };

    const passwordFile = async (name: string, password: string) => {
      const path = join(harness.dir, `${name}.password`);
      await writeFile(path, password, { mode: 0o600 });
      return path;
    };
    const certs = await serveCerts(harness.dir);
    const config: ConfigInput = {
      server: { metricsPort: 0, host: '127.0.0.1', tlsCert: certs.tlsCert, tlsKey: certs.tlsKey },
      admission: { deadlineMs: DEADLINE_MS, unverifiedTags: 'allow' },
      probe: { intervalSeconds: 0.25, timeoutMs: PROBE_TIMEOUT_MS, failureThreshold: 2, successThreshold: 1 },
      registries: {
        [source.host]: { caFile: harness.caFile },
        [stale.host]: { caFile: harness.caFile, pullSecret: 'stale-cred' },
        [basic.host]: {
          caFile: harness.caFile,
          pullSecret: 'basic-cred',
          auth: {
            username: basic.credentials?.username ?? '',
            passwordFile: await passwordFile('basic', basic.credentials?.password ?? ''),
          },
        },
        [token.host]: {
          caFile: harness.caFile,
          pullSecret: 'token-cred',
          auth: {
            username: issuer.credentials.username,
            passwordFile: await passwordFile('token', issuer.credentials.password),
          },
        },
      },
      routes: [
        {
          prefix: `${source.host}/team`,
          registries: [
            `${source.host}/team`,
            `${stale.host}/team`,
            `${basic.host}/team`,
            `${token.host}/team`,
          ],
        },
      ],
    };
    configFile = join(harness.dir, 'regroute.yaml');
    await writeFile(configFile, stringify(config));
    serve = await startServe(configFile, certs.caCert);
  });

  after(async () => {
    await serve?.stop();
    await harness?.stop();
  });

  it('leaves every image where it is while the source is healthy and holds it', async () => {
    const uid = nextUid();
    const { response, statusCode } = await serve.mutate(reviewWith(images, uid));
    assert.equal(statusCode, 200);
    assert.equal(response.uid, uid);
    assert.equal(response.allowed, true);
    assert.equal(response.patch, undefined);
    assert.deepEqual(auditLines(serve, uid), [], 'nothing rerouted, nothing down: no audit line');
  });

  it('regroute probe reports every registry healthy, with credentials where they need them', async () => {
    const io = capture();
    assert.equal(await probeCommand(['--config', configFile, '--json'], io), 0);
    const results = io.stdout.map((line) => JSON.parse(line));
    assert.deepEqual(
      results.map((r) => [r.registry, r.health, r.error]).sort(),
      [source.host, stale.host, basic.host, token.host].map((host) => [host, 'healthy', null]).sort(),
    );
    assert.ok(results.every((r) => typeof r.latencyMs === 'number'));
  });

  it('regroute explain shows the live decision: the tag resolved at the source, which holds it', async () => {
    const io = capture();
    assert.equal(await explainCommand([images.web, '--config', configFile, '--json'], io), 0);
    const [explanation] = io.stdout.map((line) => JSON.parse(line));
    assert.equal(explanation.decision.reason, 'source-healthy');
    assert.equal(explanation.decision.digest, app.digest);
    assert.equal(explanation.decision.target, null);
  });

  describe('the source goes down (connections refused)', () => {
    let pod: Pod;
    let response: AdmissionResponse;
    let uid: string;

    before(async () => {
      await source.setMode('refuse');
      uid = nextUid();
      const review = reviewWith(images, uid);
      response = await eventually(serve, review, (r) => r.patch !== undefined && patchOf(r).length >= 4);
      pod = applyResponse(review.request.object, response) as unknown as Pod;
    });

    it('answers a patch that applies (RFC 6902) and leaves a valid Pod', () => {
      assertValidPod(pod);
    });

    it('moves a tag to the first healthy mirror holding its digest, pinned to that digest, skipping a stale mirror', async () => {
      assert.equal(imagesOf(pod).web, `${basic.host}/team/app:v1@${app.digest}`);
      const audit = await auditOf(serve, uid, 'web');
      assert.equal(audit?.reason, 'source-unhealthy');
      assert.match(String(audit?.candidates), new RegExp(`${stale.host}/team/app=stale`));
    });

    it('keeps a multi-platform index by its index digest', () => {
      assert.equal(imagesOf(pod).exporter, `${basic.host}/team/multi:v1@${multi.digest}`);
    });

    it('moves a digest reference to a digest reference at the mirror', () => {
      assert.equal(imagesOf(pod).migrate, `${basic.host}/team/app@${app.digest}`);
    });

    it('finds an image only the token-auth mirror holds, authenticating with a token', () => {
      assert.equal(imagesOf(pod).app, `${token.host}/team/token-only@${tokenOnly.digest}`);
    });

    it("adds each chosen mirror's pull secret once, after the pod's own", () => {
      assert.deepEqual(pod.spec.imagePullSecrets, [
        { name: 'fraregcred' },
        { name: 'basic-cred' },
        { name: 'token-cred' },
      ]);
    });

    it('records the original images and tells the kubectl user why', () => {
      const originals = JSON.parse(pod.metadata.annotations?.[ORIGINAL_IMAGES] ?? '{}');
      assert.deepEqual(originals, images);
      assert.equal(response.warnings?.length, 4);
      assert.ok(response.warnings?.every((w) => w.includes('rerouted') && w.includes('source-unhealthy')));
    });

    it('does not reroute again when the apiserver reinvokes the webhook on the patched pod', async () => {
      const review = reviewWith(images, nextUid());
      review.request.object = structuredClone(pod);
      const again = await serve.mutate(review);
      assert.equal(again.response.patch, undefined);
    });
  });

  describe('a registry that comes back', () => {
    it('is used again: the pod stays on its own registry', async () => {
      await source.setMode('pass');
      const response = await eventually(serve, reviewWith(images, nextUid()), (r) => r.patch === undefined);
      assert.equal(response.allowed, true);
    });
  });

  describe('the source is blackholed (accepts TCP, never answers)', () => {
    const fresh = () => reviewWith({ ...images, web: `${source.host}/team/fresh:v1` }, nextUid());

    it('answers within the deadline a tag it never saw, leaving the image (reason deadline)', async () => {
      await source.setMode('blackhole');
      const review = fresh();
      const { response, elapsedMs } = await serve.mutate(review);
      assert.equal(response.allowed, true);
      // Bounded by the admission deadline, not by the longer request timeout; the slack is for a loaded machine.
      assert.ok(elapsedMs >= DEADLINE_MS - 50, `waited for the deadline (${elapsedMs} ms)`);
      assert.ok(elapsedMs < PROBE_TIMEOUT_MS, `answered by the deadline (${elapsedMs} ms)`);
      const web = await auditOf(serve, review.request.uid, 'web');
      assert.equal(web?.reason, 'deadline');
      assert.equal(web?.to, null);
    });

    it('routes around it once the probes mark it down', async () => {
      const review = fresh();
      // Until the probes find the source failing, the tag stays with it (the source defines it); then it moves.
      const movedWeb = (r: AdmissionResponse) =>
        r.patch !== undefined &&
        (imagesOf(applyResponse(review.request.object, r) as unknown as Pod).web ?? '').startsWith(
          basic.host,
        );
      const response = await eventually(serve, review, movedWeb);
      const pod = applyResponse(review.request.object, response) as unknown as Pod;
      assertValidPod(pod);
      // Never resolved at the source, so only the mirrors' own answers vouch for the tag.
      assert.match(imagesOf(pod).web ?? '', new RegExp(`^${basic.host}/team/fresh:v1@sha256:`));
      // The review was sent until it moved: its last audit line for web is the answer accepted.
      const web = await auditOf(serve, review.request.uid, 'web', (line) => line.to !== null);
      assert.equal(web?.reason, 'unverified-tag');
      assert.equal(imagesOf(pod).migrate, `${basic.host}/team/app@${app.digest}`);
    });

    it('regroute probe reports it down with its error, and exits 1', async () => {
      const io = capture();
      assert.equal(await probeCommand(['--config', configFile, '--json'], io), 1);
      const own = io.stdout.map((line) => JSON.parse(line)).find((r) => r.registry === source.host);
      assert.equal(own.health, 'unhealthy');
      assert.ok(own.error, 'the last error is shown');
      assert.ok(own.latencyMs >= PROBE_TIMEOUT_MS - 50, 'the probe waited for its own timeout');
    });

    it('answers without waiting once it is known to be down', async () => {
      const review = fresh();
      const { response } = await serve.mutate(review);
      // Waiting for the blackholed source would end at the deadline with the image left (reason deadline, as above);
      // a pod moved with the source's verdict 'unhealthy' is one decided on the probes' word, without asking it.
      assert.ok(response.patch !== undefined);
      const web = await auditOf(serve, review.request.uid, 'web');
      assert.equal(web?.reason, 'unverified-tag');
      assert.match(String(web?.candidates), new RegExp(`${source.host}/team/fresh=unhealthy`));
    });
  });
});
