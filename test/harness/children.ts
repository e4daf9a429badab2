// Child processes and temp dirs the harness owns, and the guarantee that none outlives the test process.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let watchdog: { stateFile: string; child: ChildProcess } | undefined;

// A test process killed with SIGKILL runs no handler at all. The watchdog is a shell blocked reading a pipe
// from us: the kernel closes that pipe however we die, and the shell then kills what the state file lists.
const WATCHDOG_SCRIPT = `
trap '' INT TERM HUP
cat >/dev/null
while read -r kind value; do
  case "$kind" in
    pid) kill -9 "$value" 2>/dev/null ;;
    dir) rm -rf -- "$value" ;;
  esac
done < "$0"
rm -rf -- "$(dirname "$0")"
`;

function startWatchdog(): void {
  if (watchdog !== undefined) return;
  const stateDir = mkdtempSync(join(tmpdir(), 'regroute-harness-watchdog-'));
  const stateFile = join(stateDir, 'state');
  writeFileSync(stateFile, '');
  const child = spawn('sh', ['-c', WATCHDOG_SCRIPT, stateFile], { stdio: ['pipe', 'ignore', 'ignore'] });
  child.unref();
  (child.stdin as unknown as Socket).unref();
  watchdog = { stateFile, child };
  installExitHandlers();
}

function writeState(): void {
  if (watchdog === undefined) return;
  const lines = [...children].flatMap((c) => (c.pid === undefined ? [] : [`pid ${c.pid}`]));
  for (const dir of dirs) lines.push(`dir ${dir}`);
  writeFileSync(watchdog.stateFile, lines.length > 0 ? `${lines.join('\n')}\n` : '');
}

let handlersInstalled = false;
function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once('exit', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUpNow();
      // Other listeners have had this signal already; with none, re-raising gets the default: exit.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** Last resort, synchronous: the normal path is each handle's own stop(). */
function cleanUpNow(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
  writeState();
}

/** Spawns a process that is killed with the test process at the latest. */
export function spawnTracked(command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  startWatchdog();
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  // Unreferenced, so that a test that forgets stop() still lets its process exit (and the exit handler kill
  // the child) instead of hanging the test run.
  child.unref();
  (child.stdout as Socket | null)?.unref();
  (child.stderr as Socket | null)?.unref();
  children.add(child);
  writeState();
  child.once('exit', () => {
    children.delete(child);
    writeState();
  });
  return child;
}

/** A temp dir removed when the harness stops, or with the test process at the latest. */
export function makeTempDir(prefix: string): string {
  startWatchdog();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  writeState();
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
  writeState();
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export function terminate(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
