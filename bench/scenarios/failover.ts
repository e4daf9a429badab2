// Failover against the node-level anchor: containers/image (skopeo here, CRI-O and podman alike) fetching an image
// through a registries.conf whose first mirror is blackholed, versus fetching the reference regroute chose.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BenchContext } from '../context.js';
import { type Summary, summarize } from '../stats.js';
import { location } from '../topology.js';
import { progress } from '../util.js';
import type { FaultResult } from './faults.js';

const SKOPEO_TIMEOUT_MS = 120_000;

export interface FailoverResult {
  /** skopeo inspect of the pod's own reference: the dead mirror first, then the cache mirror. */
  readonly mirrorFallback: Summary;
  /** skopeo inspect of the reference regroute chose. */
  readonly chosenFetch: Summary;
  /** regroute's admission time once the dead registries were known (faults scenario, p50). */
  readonly admissionMs: number;
  /** mirrorFallback p50 / (admission + chosenFetch p50): time to the image's manifest and config, each way. */
  readonly speedup: number;
  readonly original: string;
  readonly chosen: string;
}

/**
 * The same order of preference as regroute's fault route: the dead mirror, the cache mirror, then the location
 * itself (which is blackholed too). mirror-by-digest-only is off, so tag references use the mirrors as well.
 */
function registriesConf(context: BenchContext): string {
  const { sourceProxy, deadMirror, cache } = context.topology;
  return [
    '[[registry]]',
    `location = "${location(sourceProxy, 'fault')}"`,
    '',
    '[[registry.mirror]]',
    `location = "${location(deadMirror, 'fault')}"`,
    '',
    '[[registry.mirror]]',
    `location = "${location(cache, 'fault')}"`,
    '',
  ].join('\n');
}

/** containers/image refuses a reference with both a tag and a digest: the digest is what the kubelet pulls. */
const digestOnly = (reference: string) => reference.replace(/:[^:/@]+@/, '@');

export async function failover(context: BenchContext, fault: FaultResult): Promise<FailoverResult> {
  const { harness, cache, mirror, deadMirror } = context.topology;
  if (!fault.chosen.includes('@'))
    throw new Error(`failover: regroute chose no digest reference (${fault.chosen})`);
  const conf = join(harness.dir, 'registries.conf');
  const authFile = join(harness.dir, 'auth.json');
  const auth = (credentials?: { username: string; password: string }) => ({
    auth: Buffer.from(`${credentials?.username}:${credentials?.password}`).toString('base64'),
  });
  await writeFile(conf, registriesConf(context));
  await writeFile(
    authFile,
    JSON.stringify({
      auths: { [cache.host]: auth(cache.credentials), [deadMirror.host]: auth(mirror.credentials) },
    }),
    { mode: 0o600 },
  );
  const wanted = fault.chosen.slice(fault.chosen.indexOf('@') + 1);

  // TLS is verified: the harness CA is given as --cert-dir (ca.crt), as containers/image reads certs.d.
  const inspect = async (reference: string): Promise<number> => {
    const started = performance.now();
    const { stdout } = await promisify(execFile)(
      'skopeo',
      [
        '--registries-conf',
        conf,
        'inspect',
        '--no-tags',
        '--cert-dir',
        harness.ca.certDir,
        '--authfile',
        authFile,
        `docker://${reference}`,
      ],
      { timeout: SKOPEO_TIMEOUT_MS, env: { PATH: process.env.PATH, HOME: harness.dir, TMPDIR: harness.dir } },
    );
    const ms = performance.now() - started;
    const digest = (JSON.parse(stdout) as { Digest?: string }).Digest;
    if (digest !== wanted) throw new Error(`skopeo fetched ${reference} as ${digest}, expected ${wanted}`);
    return ms;
  };

  const runs = context.plan.skopeoRuns;
  progress(`failover: skopeo inspect through the mirror list, ${runs} run(s) of ~20 s`);
  const fallback: number[] = [];
  for (let i = 0; i < runs; i++) fallback.push(await inspect(fault.original));
  const direct: number[] = [];
  for (let i = 0; i < runs; i++) direct.push(await inspect(digestOnly(fault.chosen)));
  const mirrorFallback = summarize(fallback);
  const chosenFetch = summarize(direct);
  const admissionMs = fault.afterDetection.p50;
  return {
    mirrorFallback,
    chosenFetch,
    admissionMs,
    speedup: mirrorFallback.p50 / (admissionMs + chosenFetch.p50),
    original: fault.original,
    chosen: fault.chosen,
  };
}
