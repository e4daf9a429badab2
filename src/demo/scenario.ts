// `regroute demo`'s story, step by step: two registries on loopback, one image in both, the webhook, a pod admitted
// while the source is up, down (rerouted to the mirror with its digest) and back up.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { ORIGINAL_IMAGES_ANNOTATION } from '../admission/patch.js';
import { createCA, createServingCert } from '../certs/generate.js';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { startServer } from '../server/run.js';
import { createStateHandle } from '../state/create.js';
import type { Health } from '../state/state.js';
import type { Cleanup } from './cleanup.js';
import { startGate } from './gate.js';
import { makeImage, pushImage } from './image.js';
import {
  admissionReview,
  DEMO_NAMESPACE,
  DEMO_POD,
  type DemoPod,
  demoPod,
  type ReadAnswer,
  readAnswer,
} from './pod.js';
import { LOOPBACK } from './ports.js';
import { startRegistryProcess } from './registry.js';

/** What a user should wait at most for a change of health: the defaults notice a failure within 2 s. */
const HEALTH_WAIT_MS = 15_000;
const REPOSITORY = 'demo/hello';
/** The mirror keeps the image under another path, as a Harbor project or a cache namespace would. */
const MIRROR_PATH = 'cache';
const TAG = '1.0';
const PULL_SECRET = 'mirror-pull';

export interface DemoOptions {
  /** The registry binary (findRegistryBinary). */
  readonly binary: string;
  /** Where the story is told, one line at a time. */
  readonly out: (line: string) => void;
  /** Everything started is registered here; the caller runs it however the demo ends. */
  readonly cleanup: Cleanup;
  /** Ctrl-C: the demo stops at the next step and throws the signal's reason. */
  readonly signal: AbortSignal;
  /** Parent of the demo's temp dir; the system's temp dir by default. */
  readonly tmpdir?: string;
}

export interface DemoResult {
  readonly workDir: string;
  readonly sourceHost: string;
  readonly mirrorHost: string;
  readonly image: string;
  readonly digest: string;
  /** The image the pod ran with while the source was down. */
  readonly rerouted: string;
  readonly seconds: number;
}

/** A mismatch between what the demo expects and what the webhook did: the demo stops and says so. */
export class DemoExpectationError extends Error {
  override readonly name = 'DemoExpectationError';
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function until<T>(
  read: () => T,
  done: (value: T) => boolean,
  what: string,
  signal: AbortSignal,
): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  for (;;) {
    const value = read();
    if (done(value)) return { value, ms: performance.now() - started };
    if (performance.now() - started > HEALTH_WAIT_MS) {
      throw new DemoExpectationError(
        `${what}: not within ${seconds(HEALTH_WAIT_MS)} (last seen: ${String(value)})`,
      );
    }
    await sleep(25, undefined, { signal });
  }
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { out, cleanup, signal } = options;
  const started = performance.now();
  const step = (n: number, title: string) => {
    signal.throwIfAborted();
    out('');
    out(`${n}/7  ${title}`);
  };

  const workDir = await mkdtemp(join(options.tmpdir ?? tmpdir(), 'regroute-demo-'));
  cleanup.trackDir(workDir);
  out('regroute demo: a pod is admitted while its registry is up, while it is down, and once it is back.');
  out(`Everything listens on ${LOOPBACK} only. Files live in ${workDir}; the registries, the webhook and`);
  out('that directory are stopped and removed at the end, also on Ctrl-C.');

  // One throwaway CA signs the certificate every server here presents: registries and webhook verify TLS as usual.
  const ca = createCA('regroute demo CA', 1);
  const serving = createServingCert(ca, {
    dnsNames: ['localhost'],
    ipAddresses: [LOOPBACK],
    validityDays: 1,
  });
  const caFile = join(workDir, 'ca.crt');
  const certFile = join(workDir, 'tls.crt');
  const keyFile = join(workDir, 'tls.key');
  await writeFile(caFile, ca.certPem);
  await writeFile(certFile, serving.certPem);
  await writeFile(keyFile, serving.keyPem, { mode: 0o600 });
  const dispatcher = new Agent({ connect: { ca: ca.certPem } });
  cleanup.add('close the demo client', () => dispatcher.close());

  step(1, 'Two registries');
  const common = { binary: options.binary, dir: workDir, certFile, keyFile, dispatcher, cleanup, signal };
  const sourceRegistry = await startRegistryProcess({ ...common, name: 'source' });
  const gate = await startGate(sourceRegistry.port);
  cleanup.add('stop the gate', () => gate.stop());
  const mirror = await startRegistryProcess({ ...common, name: 'mirror' });
  const sourceHost = `${LOOPBACK}:${gate.port}`;
  out(`Started ${options.binary} twice, each with a certificate from a CA made for this run:`);
  out(`  source: ${sourceHost}, the registry the pod names. The registry listens on ${sourceRegistry.host};`);
  out(`          a small TCP gate in front of it lets the demo cut it off.`);
  out(`  mirror: ${mirror.host}, standing in for a mirror, another region or a pull-through cache.`);

  step(2, 'One image, pushed to both');
  const image = makeImage('Hello from the regroute demo');
  const sourceImage = `${sourceHost}/${REPOSITORY}:${TAG}`;
  const mirrorRepository = `${MIRROR_PATH}/${REPOSITORY}`;
  const target = (url: string) => ({ url, dispatcher });
  const [sourceDigest, mirrorDigest] = await Promise.all([
    pushImage(target(`https://${sourceHost}`), REPOSITORY, TAG, image),
    pushImage(target(mirror.url), mirrorRepository, TAG, image),
  ]);
  if (sourceDigest !== image.digest || mirrorDigest !== image.digest) {
    throw new DemoExpectationError(
      `the registries stored ${sourceDigest} and ${mirrorDigest}, not ${image.digest}`,
    );
  }
  out(
    `A tiny image (one ${image.blobs[1]?.bytes.length ?? 0}-byte layer), pushed through the registry API as`,
  );
  out(`  ${sourceImage}`);
  out(`  ${mirror.host}/${mirrorRepository}:${TAG}`);
  out(`Same bytes, so both hold the same manifest digest: ${image.digest}`);

  step(3, 'The config');
  const routing = {
    registries: {
      [sourceHost]: { caFile },
      [mirror.host]: { caFile, pullSecret: PULL_SECRET },
    },
    routes: [
      {
        prefix: `${sourceHost}/demo`,
        registries: [`${sourceHost}/demo`, `${mirror.host}/${MIRROR_PATH}/demo`],
      },
    ],
  };
  const config: Config = parseConfig(
    { ...routing, server: { host: LOOPBACK, metricsPort: 0, tlsCert: certFile, tlsKey: keyFile } },
    'demo config',
  );
  await writeFile(join(workDir, 'config.yaml'), stringify(config));
  out('The part of the config a user writes (everything else keeps its default, probes included):');
  for (const line of stringify(routing).trimEnd().split('\n')) out(`  ${line}`);
  out(`Images under ${sourceHost}/demo are tried at the source first, then at the mirror, where the rest of`);
  out(
    `the name ("hello") follows ${MIRROR_PATH}/demo. A pod sent to the mirror gets its pull secret ${PULL_SECRET}.`,
  );

  step(4, 'The webhook');
  // The webhook's log stays in memory: its audit lines are shown below, the rest is kept for error messages.
  const logLines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  const state = createStateHandle(config, log);
  let stateOwned = true;
  cleanup.add('stop the registry probes', async () => {
    if (stateOwned) await state.close();
  });
  const server = await startServer({ config, state, log, port: 0, host: LOOPBACK });
  stateOwned = false; // the server closes it now
  cleanup.add('stop the webhook', () => server.close());
  const webhook = `https://${LOOPBACK}:${server.port}`;
  const readiness = await until(
    () => state.isReady(),
    (ready) => ready,
    'the webhook ready',
    signal,
  );
  out(`regroute's webhook runs in this process, as \`regroute serve\` would: POST ${webhook}/mutate.`);
  out(
    `It probes both registries in the background (every second); its first round took ${seconds(readiness.ms)}.`,
  );

  let admissions = 0;
  const admit = async (): Promise<ReadAnswer & { ms: number }> => {
    admissions++;
    const pod: DemoPod = demoPod(sourceImage);
    const sent = performance.now();
    const response = await request(`${webhook}/mutate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(admissionReview(pod, `demo-${admissions}`)),
      dispatcher,
      signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]),
    });
    const body = await response.body.json();
    if (response.statusCode !== 200) {
      throw new DemoExpectationError(
        `the webhook answered HTTP ${response.statusCode}: ${JSON.stringify(body)}`,
      );
    }
    return { ...readAnswer(pod, body), ms: performance.now() - sent };
  };
  const expectUnchanged = (answer: ReadAnswer) => {
    if (!answer.allowed || answer.patch.length > 0 || answer.warnings.length > 0) {
      throw new DemoExpectationError(
        `expected the pod admitted unchanged, got ${JSON.stringify(answer)}\n${logLines.slice(-5).join('')}`,
      );
    }
  };
  const healthOf = () => state.tracker.health(sourceHost);

  step(5, 'A pod, with the source up');
  out(
    `The apiserver sends the webhook an AdmissionReview for pod ${DEMO_NAMESPACE}/${DEMO_POD}, image ${sourceImage}.`,
  );
  const first = await admit();
  expectUnchanged(first);
  out(
    `Answer (${first.ms.toFixed(0)} ms): allowed, no patch, no warning. The source is healthy and holds the tag,`,
  );
  out(`so the image stays as it is: ${first.pod.spec.containers[0]?.image}`);

  step(6, 'The source goes down');
  await gate.shut();
  out(`The gate now refuses every connection to ${sourceHost}, as a dead registry host would.`);
  const down = await until(
    healthOf,
    (health: Health) => health === 'unhealthy',
    'the source seen down',
    signal,
  );
  out(
    `The webhook's probes found the source ${down.value} after ${seconds(down.ms)} (a first failure makes it`,
  );
  out('suspect, an immediate second probe confirms it; a pod admitted meanwhile waits for that verdict).');
  out('The same pod is admitted again:');
  const logMark = logLines.length;
  const second = await admit();
  const rewritten = second.pod.spec.containers[0]?.image ?? '';
  const expected = `${mirror.host}/${mirrorRepository}:${TAG}@${image.digest}`;
  if (!second.allowed || rewritten !== expected) {
    throw new DemoExpectationError(
      `expected the pod rerouted to ${expected}, got ${JSON.stringify(second)}\n${logLines.slice(-5).join('')}`,
    );
  }
  out(`Answer (${second.ms.toFixed(0)} ms): allowed, with this JSON patch:`);
  for (const op of second.patch)
    out(`  ${op.op} ${op.path} ${'value' in op ? JSON.stringify(op.value) : ''}`);
  out('The pod as stored, and as the kubelet pulls it:');
  out(`  image:            ${rewritten}`);
  out(`  imagePullSecrets: ${(second.pod.spec.imagePullSecrets ?? []).map((s) => s.name).join(', ')}`);
  out(
    `  annotation:       ${ORIGINAL_IMAGES_ANNOTATION}: ${second.pod.metadata.annotations?.[ORIGINAL_IMAGES_ANNOTATION]}`,
  );
  out('It is pinned to the digest the source named for the tag, which the mirror was checked to hold (its');
  out('manifest bytes were fetched and hashed), so the kubelet pulls exactly the same content.');
  out('kubectl prints the warning the webhook returned:');
  for (const warning of second.warnings) out(`  Warning: ${warning}`);
  out('The webhook\'s audit log line for it (each candidate\'s verdict in "candidates"):');
  const audit = logLines.slice(logMark).find((line) => line.includes('"audit"'));
  out(`  ${audit?.trim() ?? '(none found)'}`);

  step(7, 'The source comes back');
  await gate.open();
  out(`The gate lets connections through to ${sourceHost} again.`);
  const up = await until(healthOf, (health: Health) => health === 'healthy', 'the source seen back', signal);
  out(`The probes found it ${up.value} after ${seconds(up.ms)}. The same pod, a third time:`);
  const third = await admit();
  expectUnchanged(third);
  out(`Answer (${third.ms.toFixed(0)} ms): allowed, no patch, no warning. The pod is back at the source:`);
  out(`  image:            ${third.pod.spec.containers[0]?.image}`);

  const elapsed = performance.now() - started;
  out('');
  out(`Done in ${seconds(elapsed)}. To route your own registries: docs/configuration.md, and the`);
  out('cookbook (docs/cookbook) for Docker Hub, GHCR, quay.io, Harbor, OCIR, GCR and caches on the nodes.');
  return {
    workDir,
    sourceHost,
    mirrorHost: mirror.host,
    image: sourceImage,
    digest: image.digest,
    rerouted: rewritten,
    seconds: elapsed / 1000,
  };
}
