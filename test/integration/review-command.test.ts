// `regroute review FILE|-`: an AdmissionReview answered from the command line exactly as POST /mutate would,
// against real registries (the source down, a mirror holding the digest), with one line per decision on stderr.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { Io } from '../../src/cli/io.js';
import { reviewCommand } from '../../src/cli/review.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { type Harness, type PushedImage, pushImage, type Registry, startHarness } from '../harness/index.js';
import { applyResponse, assertValidPod } from '../helpers/apiserver.js';
import { fixture } from '../helpers/fixtures.js';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli.ts');
/** A source nothing listens on: its probe is refused at once, so it counts as down. */
const DOWN = '127.0.0.1:9';

function capture(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (line) => stdout.push(line), err: (line) => stderr.push(line) };
}

describe('regroute review', () => {
  let harness: Harness;
  let mirror: Registry;
  let image: PushedImage;
  let configFile: string;
  let reviewFile: string;
  let review: {
    request: { uid: string; object: { spec: { containers: { name: string; image: string }[] } } };
  };

  before(async () => {
    harness = await startHarness();
    mirror = await harness.startRegistry({ name: 'mirror' });
    image = await pushImage(mirror, 'team/app', 'v1');
    const config: ConfigInput = {
      registries: {
        [DOWN]: { caFile: harness.caFile },
        [mirror.host]: { caFile: harness.caFile, pullSecret: 'mirror-pull' },
      },
      routes: [{ prefix: `${DOWN}/team`, registries: [`${DOWN}/team`, `${mirror.host}/team`] }],
    };
    configFile = join(harness.dir, 'review.yaml');
    await writeFile(configFile, stringify(config));
    review = fixture('admission/pod-create-replicaset.json');
    const [web] = review.request.object.spec.containers;
    assert.ok(web);
    web.image = `${DOWN}/team/app@${image.digest}`;
    reviewFile = join(harness.dir, 'review.json');
    await writeFile(reviewFile, JSON.stringify(review));
  });
  after(() => harness?.stop());

  it('answers a review from a file as /mutate would: the image moved to the mirror holding its digest', async () => {
    const io = capture();
    assert.equal(await reviewCommand([reviewFile, '--config', configFile], io), 0);
    const answer = JSON.parse(io.stdout.join('\n'));
    assert.equal(answer.apiVersion, 'admission.k8s.io/v1');
    assert.equal(answer.kind, 'AdmissionReview');
    assert.equal(answer.response.uid, review.request.uid);
    assert.equal(answer.response.allowed, true);
    const pod = applyResponse(review.request.object, answer.response) as typeof review.request.object & {
      spec: { imagePullSecrets: { name: string }[] };
    };
    assertValidPod(pod);
    assert.equal(pod.spec.containers[0]?.image, `${mirror.host}/team/app@${image.digest}`);
    assert.ok(pod.spec.imagePullSecrets.some((s) => s.name === 'mirror-pull'));
    assert.ok(
      io.stderr.includes(
        `containers/web: ${DOWN}/team/app@${image.digest} → ${mirror.host}/team/app@${image.digest} (source-unhealthy)`,
      ),
      io.stderr.join('\n'),
    );
    assert.ok(io.stderr.some((line) => /^containers\/exporter: .* → unchanged \(no-route\)$/.test(line)));
  });

  it('reads the review from stdin with "-", as its own process, and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'review', '-', '--config', configFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.stdin.end(JSON.stringify(review));
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, stderr);
    const answer = JSON.parse(stdout);
    assert.equal(answer.response.uid, review.request.uid);
    assert.ok(answer.response.patch);
    assert.match(stderr, /containers\/web: .* \(source-unhealthy\)/);
  });

  it('refuses what is not JSON, or not an AdmissionReview v1, with exit 2 and the reason', async () => {
    const notJson = join(harness.dir, 'not.json');
    await writeFile(notJson, '{');
    let io = capture();
    assert.equal(await reviewCommand([notJson, '--config', configFile], io), 2);
    assert.match(io.stderr.join('\n'), /not JSON/);
    assert.deepEqual(io.stdout, []);

    const v1beta1 = join(harness.dir, 'v1beta1.json');
    await writeFile(v1beta1, JSON.stringify({ ...review, apiVersion: 'admission.k8s.io/v1beta1' }));
    io = capture();
    assert.equal(await reviewCommand([v1beta1, '--config', configFile], io), 2);
    assert.match(io.stderr.join('\n'), /not an AdmissionReview v1/);

    io = capture();
    assert.equal(await reviewCommand([], io), 2);
    assert.match(io.stderr.join('\n'), /^regroute review FILE\|-/);
  });
});
