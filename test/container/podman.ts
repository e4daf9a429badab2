// podman for the image test: the test's own containers.conf and storage.conf (scripts/container-env.sh), the base
// image scripts/image-base.sh builds, the Dockerfile's build, and a container run with its logs kept.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface Podman {
  readonly env: NodeJS.ProcessEnv;
  /** Runs podman with these arguments and answers its standard output, trimmed. */
  (args: string[], timeoutMs?: number): Promise<string>;
}

async function command(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, { env, timeout: timeoutMs, maxBuffer: 64 << 20 });
    return stdout.trim();
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed:\n${stdout.slice(-4000)}\n${stderr.slice(-4000)}`, {
      cause: error,
    });
  }
}

/** podman with the environment scripts/container-env.sh prints: runc, limits this machine allows, a private store. */
export async function podman(): Promise<Podman> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const lines = await command('bash', [join(repoRoot, 'scripts/container-env.sh')], env, 10_000);
  for (const line of lines.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return Object.assign((args: string[], timeoutMs = 60_000) => command('podman', args, env, timeoutMs), {
    env,
  });
}

/** The base image: Debian minbase, the Node binary of the image's major, npm, the node user. Cached by its inputs. */
export async function baseImage(env: NodeJS.ProcessEnv): Promise<string> {
  const out = await command('bash', [join(repoRoot, 'scripts/image-base.sh')], env, 15 * 60_000);
  const image = out.split('\n').at(-1) ?? '';
  if (!image.startsWith('localhost/')) throw new Error(`image-base.sh printed no image name: ${out}`);
  return image;
}

/**
 * Builds the Dockerfile on `base`. The npm steps reach the registry as this machine's npm does: its registry, and
 * the CA file it trusts when it has one (a TLS-inspecting proxy's), mounted for the build only, never in a layer.
 */
export async function buildImage(
  run: Podman,
  options: { base: string; tag: string; buildArgs?: Record<string, string> },
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'regroute-image-build-'));
  try {
    const npmConfig = async (key: string) =>
      (await command('npm', ['config', 'get', key], run.env, 30_000).catch(() => '')).trim();
    const npmrc = [
      'update-notifier=false',
      `registry=${(await npmConfig('registry')) || 'https://registry.npmjs.org/'}`,
    ];
    const mounts: string[] = [];
    const cafile = await npmConfig('cafile');
    if (cafile && cafile !== 'null' && cafile !== 'undefined') {
      mounts.push('--volume', `${cafile}:/etc/npm-build/ca.crt:ro`);
      npmrc.push('cafile=/etc/npm-build/ca.crt');
    }
    await writeFile(join(dir, 'npmrc'), `${npmrc.join('\n')}\n`);
    mounts.push('--volume', `${join(dir, 'npmrc')}:/root/.npmrc:ro`);
    const buildArgs = Object.entries({ BASE: options.base, ...options.buildArgs }).flatMap(
      ([name, value]) => ['--build-arg', `${name}=${value}`],
    );
    // The host's network: the npm steps need the registry, and nothing else is set up for containers here.
    await run(
      ['build', '--quiet', '--network', 'host', ...mounts, ...buildArgs, '--tag', options.tag, repoRoot],
      20 * 60_000,
    );
    // Each change of the sources leaves the last build's untagged layers behind; a day's are kept as build cache.
    await run(['image', 'prune', '--force', '--filter', 'until=24h']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export type LogLine = Record<string, unknown>;

export interface Container {
  readonly name: string;
  /** Settles when `podman run` has returned: the container's exit code. */
  readonly exited: Promise<number | null>;
  /** Every JSON line the container logged so far, parsed. */
  readonly logs: LogLine[];
  /** Standard error as text: the CLI's own lines. */
  stderr(): string;
  /** Resolves with the first log line, logged so far or later, that matches. */
  waitForLog(match: (line: LogLine) => boolean): Promise<LogLine>;
  /** Resolves once standard error matches. */
  waitForStderr(pattern: RegExp): Promise<RegExpExecArray>;
  /** `podman kill --signal`: what the kubelet's runtime does on pod deletion with SIGTERM. */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** `podman exec`, as the image's user. */
  exec(args: string[]): Promise<string>;
  /** Removes the container, running or not. */
  remove(): Promise<void>;
}

/** `podman run --rm` in the foreground, so its output is the container's and its exit code the container's. */
export function runContainer(run: Podman, name: string, args: string[]): Container {
  const child: ChildProcess = spawn('podman', ['run', '--rm', '--name', name, ...args], {
    env: run.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  let pending = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim()) logs.push(JSON.parse(line) as LogLine);
    }
    notify();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    notify();
  });
  /** Resolves with what `found` returns once it returns something; rejects if the container exits first. */
  const until = <T>(found: () => T | undefined, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const value = found();
        if (value === undefined) return false;
        waiters.delete(waiter);
        resolve(value);
        return true;
      };
      const waiter = () => void check();
      if (check()) return;
      waiters.add(waiter);
      void exited.then((code) => {
        if (!check()) reject(new Error(`container exited (${code}) before ${what}:\n${stderr}`));
      });
    });
  return {
    name,
    exited,
    logs,
    stderr: () => stderr,
    waitForLog: (match) => until(() => logs.find(match), 'the log line awaited'),
    waitForStderr: (pattern) => until(() => pattern.exec(stderr) ?? undefined, `stderr matched ${pattern}`),
    async signal(signal) {
      await run(['kill', '--signal', signal, name]);
    },
    exec: (args) => run(['exec', name, ...args]),
    async remove() {
      if (child.exitCode === null && child.signalCode === null) {
        await run(['rm', '--force', '--time', '0', name]).catch(() => {});
        await exited;
      }
    },
  };
}
