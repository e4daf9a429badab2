// `regroute demo` end to end, as a user runs it: its own process, real registries (Debian's docker-registry) on
// loopback. The story it tells must hold (rerouted to the mirror with the exact digest, then back at the source),
// and nothing it started may outlive it: processes, ports, its temp dir. Ctrl-C midway cleans up as well.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli.ts');
/** The demo takes seconds; the bound is for a loaded CI machine, and is what the issue promises: a minute. */
const DEMO_TIMEOUT_MS = 60_000;

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function runDemo(env: NodeJS.ProcessEnv): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'demo'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), DEMO_TIMEOUT_MS);
  void exited.then(() => clearTimeout(timer));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Processes whose command line names `text` (the demo's registries name their config in its temp dir). */
async function processesNaming(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      if (cmdline.includes(text)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** Resolves true when something accepts connections on the loopback port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The demo's temp dirs in `parent` (tsx keeps a cache of its own in the same temp dir). */
const demoDirs = async (parent: string) =>
  (await readdir(parent)).filter((name) => name.startsWith('regroute-demo-'));

const portsIn = (text: string) => [
  ...new Set([...text.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]))),
];

async function untilOutput(run: Run, pattern: RegExp): Promise<void> {
  const started = Date.now();
  while (!pattern.test(run.stdout())) {
    if (run.child.exitCode !== null) assert.fail(`the demo exited first:\n${run.stdout()}\n${run.stderr()}`);
    if (Date.now() - started > DEMO_TIMEOUT_MS)
      assert.fail(`no ${pattern} within the timeout:\n${run.stdout()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('regroute demo', () => {
  let parent: string;

  before(async () => {
    // The demo's temp dir goes here, so the test can see that nothing is left in it.
    parent = await mkdtemp(join(tmpdir(), 'regroute-demo-test-'));
  });
  after(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('reroutes the pod to the mirror with the digest while the source is down, brings it back, and leaves nothing', async () => {
    const started = Date.now();
    const run = runDemo({ ...process.env, TMPDIR: parent });
    const { code } = await run.exited;
    const out = run.stdout();
    assert.equal(code, 0, `${out}\n${run.stderr()}`);
    assert.ok(Date.now() - started < DEMO_TIMEOUT_MS);

    const workDir = out.match(/Files live in (\S+);/)?.[1];
    const source = out.match(/source: (127\.0\.0\.1:\d+),/)?.[1];
    const mirror = out.match(/mirror: (127\.0\.0\.1:\d+),/)?.[1];
    const digest = out.match(/same manifest digest: (sha256:[0-9a-f]{64})/)?.[1];
    assert.ok(workDir && source && mirror && digest, out);
    const sourceImage = `${source}/demo/hello:1.0`;
    const rerouted = `${mirror}/cache/demo/hello:1.0@${digest}`;

    // Source up: admitted as it is.
    const [, up, down, back] = out.split(/^\d\/7 {2}/m).slice(4);
    assert.ok(up && down && back, out);
    assert.match(up, /allowed, no patch, no warning/);
    assert.ok(up.includes(`image stays as it is: ${sourceImage}`));

    // Source down: the patch, the pod as pulled, the kubectl warning and the audit line.
    assert.match(down, /probes found the source unhealthy/);
    assert.ok(down.includes(`replace /spec/containers/0/image "${rerouted}"`), down);
    assert.ok(down.includes(`image:            ${rerouted}`), down);
    assert.match(down, /imagePullSecrets: mirror-pull/);
    assert.ok(down.includes(`regroute.io/original-images: {"hello":"${sourceImage}"}`), down);
    const warning = down.match(/^ {2}Warning: (.+)$/m)?.[1];
    assert.ok(warning?.includes(`rerouted to ${mirror}/cache/demo/hello`), down);
    assert.match(warning ?? '', /source-unhealthy/);
    const auditLine = down.match(/^ {2}(\{.*"audit".*\})$/m)?.[1];
    assert.ok(auditLine, down);
    const { audit } = JSON.parse(auditLine) as { audit: Record<string, unknown> };
    assert.equal(audit.from, sourceImage);
    assert.equal(audit.to, rerouted);
    assert.equal(audit.digest, digest);
    assert.equal(audit.reason, 'source-unhealthy');

    // Source back: the pod stays at the source again.
    assert.match(back, /probes found it healthy/);
    assert.match(back, /allowed, no patch, no warning\. The pod is back at the source/);
    assert.ok(back.includes(`image:            ${sourceImage}`));
    assert.match(out, /Stopped the webhook and both registries, and removed the demo directory\.\n$/);

    // Nothing left: no directory, no process naming it, no port still answering.
    assert.equal(existsSync(workDir), false);
    assert.deepEqual(await demoDirs(parent), []);
    assert.deepEqual(await processesNaming(workDir), []);
    for (const port of portsIn(out)) assert.equal(await listening(port), false, `port ${port} still answers`);
  });

  it('on Ctrl-C midway, stops the registries and the webhook, removes its directory, and exits 130', async () => {
    const run = runDemo({ ...process.env, TMPDIR: parent });
    await untilOutput(run, /^5\/7 {2}/m);
    const workDir = run.stdout().match(/Files live in (\S+);/)?.[1];
    assert.ok(workDir);
    assert.notDeepEqual(await processesNaming(workDir), [], 'the registries run');
    run.child.kill('SIGINT');
    const { code } = await run.exited;
    assert.equal(code, 130, run.stderr());
    assert.match(run.stderr(), /Stopped and removed everything the demo started/);
    assert.equal(existsSync(workDir), false);
    assert.deepEqual(await processesNaming(workDir), []);
    for (const port of portsIn(run.stdout())) assert.equal(await listening(port), false, `port ${port}`);
  });

  it('without docker-registry, exits 1 with the apt command and starts nothing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'regroute-demo-nopath-'));
    try {
      const run = runDemo({ PATH: empty, TMPDIR: parent });
      const { code } = await run.exited;
      assert.equal(code, 1);
      assert.equal(run.stdout(), '');
      assert.match(run.stderr(), /docker-registry is not on PATH/);
      assert.match(run.stderr(), /sudo apt-get install docker-registry/);
      assert.deepEqual(await demoDirs(parent), []);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
