// `regroute serve` as its own process, as it runs in a cluster: started from the CLI with a config file, its JSON
// log lines kept for assertions, its /mutate called over real TLS.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { AdmissionResponse } from '../../src/admission/review.js';
import { certSetPaths, writeCertSet } from '../../src/certs/files.js';
import { fixture } from './fixtures.js';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli.ts');
const FAST_RELOAD_MAIN = join(import.meta.dirname, 'serve-main.ts');
const START_TIMEOUT_MS = 20_000;

export interface ServeProcess {
  readonly port: number;
  readonly pid: number;
  /** Settles when the process has exited: its exit code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends the process a signal, as the kubelet does on pod deletion (SIGTERM). */
  kill(signal: NodeJS.Signals): void;
  /** Resolves with the first log line, logged so far or later, that matches. */
  waitForLog(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** Every JSON line the process logged so far, parsed. */
  readonly logs: Record<string, unknown>[];
  /** POSTs an AdmissionReview to /mutate and answers the response stanza and the time it took. */
  mutate(review: unknown): Promise<{ response: AdmissionResponse; elapsedMs: number; statusCode: number }>;
  get(path: string): Promise<{ statusCode: number; body: string }>;
  stop(): Promise<void>;
}

/** Serving certificate for localhost, and the CA that signed it: what the apiserver's caBundle would hold. */
export async function serveCerts(dir: string): Promise<{ tlsCert: string; tlsKey: string; caCert: string }> {
  const paths = certSetPaths(join(dir, 'serving'));
  await writeCertSet(paths, { service: 'regroute', namespace: 'regroute-system' });
  return { tlsCert: paths.tlsCert, tlsKey: paths.tlsKey, caCert: paths.caCert };
}

export interface ServeOptions {
  /** Check the config and certificate files this often instead of every 10 s. */
  readonly reloadIntervalMs?: number;
  /** Keep the log lines (default); a long load run drains them without keeping them. */
  readonly keepLogs?: boolean;
  /** Environment variables added to the process's (KUBECONFIG, say). */
  readonly env?: Record<string, string>;
}

/** Starts `regroute serve --config FILE --port 0` and resolves once it listens and /readyz answers 200. */
export async function startServe(
  configFile: string,
  caCert: string,
  options: ServeOptions = {},
): Promise<ServeProcess> {
  const args = ['--config', configFile, '--port', '0'];
  const child: ChildProcess = spawn(
    process.execPath,
    options.reloadIntervalMs === undefined
      ? ['--import', 'tsx', CLI, 'serve', ...args]
      : ['--import', 'tsx', FAST_RELOAD_MAIN, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        REGROUTE_TEST_RELOAD_INTERVAL_MS: String(options.reloadIntervalMs ?? ''),
        ...options.env,
      },
    },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs: Record<string, unknown>[] = [];
  const logWaiters = new Set<{
    match: (line: Record<string, unknown>) => boolean;
    resolve: (line: Record<string, unknown>) => void;
  }>();
  let stderr = '';
  let pending = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    if (options.keepLogs === false) return;
    for (const line of lines) {
      if (!line.trim()) continue;
      const parsed = JSON.parse(line) as Record<string, unknown>;
      logs.push(parsed);
      for (const waiter of logWaiters) {
        if (!waiter.match(parsed)) continue;
        logWaiters.delete(waiter);
        waiter.resolve(parsed);
      }
    }
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${stderr}`)), START_TIMEOUT_MS);
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const listening = /listening on https:\/\/[^:]+:(\d+)/.exec(stderr);
      if (listening) {
        clearTimeout(timer);
        resolve(Number(listening[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}:\n${stderr}`));
    });
  });

  const dispatcher = new Agent({ connect: { ca: await readFile(caCert, 'utf8') }, keepAliveTimeout: 10 });
  const origin = `https://127.0.0.1:${port}`;
  const get = async (path: string) => {
    const res = await request(`${origin}${path}`, { dispatcher, signal: AbortSignal.timeout(10_000) });
    return { statusCode: res.statusCode, body: await res.body.text() };
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while ((await get('/readyz')).statusCode !== 200) {
    if (Date.now() > deadline) throw new Error('serve never turned ready');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    port,
    pid: child.pid ?? 0,
    exited,
    kill: (signal) => {
      child.kill(signal);
    },
    waitForLog(match) {
      const seen = logs.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => logWaiters.add({ match, resolve }));
    },
    logs,
    get,
    async mutate(review) {
      const started = performance.now();
      const res = await request(`${origin}/mutate`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(review),
        signal: AbortSignal.timeout(30_000),
      });
      const body = (await res.body.json()) as { response: AdmissionResponse };
      return { response: body.response, elapsedMs: performance.now() - started, statusCode: res.statusCode };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await dispatcher.close();
    },
  };
}

/** A started webhook answers a corpus pod (every container naming `image`) with an allowed review of its uid. */
export async function assertAnswersReview(serve: ServeProcess, image: string): Promise<void> {
  const review = fixture<{
    request: { uid: string; object: { spec: { containers: { image: string }[] } } };
  }>('admission/pod-create-replicaset.json');
  for (const c of review.request.object.spec.containers) c.image = image;
  const answered = await serve.mutate(review);
  assert.equal(answered.statusCode, 200);
  assert.equal(answered.response.uid, review.request.uid);
  assert.equal(answered.response.allowed, true);
}
