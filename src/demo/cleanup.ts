// What the demo started, stopped in reverse order however the demo ends: normally, on an error, or on Ctrl-C.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

type Undo = () => Promise<void> | void;

/**
 * A stack of undo actions. `run()` undoes everything once, newest first, and keeps going past a failing action (its
 * error is returned, not thrown: the rest must still be stopped). Processes and directories are also known to
 * `guardExit()`, which kills and removes them synchronously if the process exits before `run()` has finished.
 */
export class Cleanup {
  readonly #actions: { what: string; undo: Undo }[] = [];
  readonly #children = new Set<ChildProcess>();
  readonly #dirs = new Set<string>();
  #running: Promise<Error[]> | null = null;

  /** Registers an undo action; `what` names it in errors. */
  add(what: string, undo: Undo): void {
    if (this.#running) throw new Error(`cleanup already under way; cannot add ${what}`);
    this.#actions.push({ what, undo });
  }

  /** A child process, killed by the exit guard if nothing else stopped it. */
  trackChild(child: ChildProcess): void {
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
  }

  /** A directory removed with everything in it, last. */
  trackDir(dir: string): void {
    this.#dirs.add(dir);
    this.add(`remove ${dir}`, () => {
      rmSync(dir, { recursive: true, force: true });
      this.#dirs.delete(dir);
    });
  }

  /** Undoes everything registered, newest first; resolves with the errors met on the way. */
  run(): Promise<Error[]> {
    this.#running ??= (async () => {
      const errors: Error[] = [];
      for (const { what, undo } of this.#actions.reverse()) {
        try {
          await undo();
        } catch (error) {
          errors.push(new Error(`${what}: ${error instanceof Error ? error.message : String(error)}`));
        }
      }
      this.#actions.length = 0;
      return errors;
    })();
    return this.#running;
  }

  /** The synchronous last resort: kills tracked children and removes tracked directories. */
  runNow(): void {
    for (const child of this.#children) child.kill('SIGKILL');
    this.#children.clear();
    for (const dir of this.#dirs) rmSync(dir, { recursive: true, force: true });
    this.#dirs.clear();
  }

  /**
   * Installs `runNow` on process exit, so that an uncaught error or a `process.exit` elsewhere leaves nothing
   * behind. Returns the function that removes it.
   */
  guardExit(): () => void {
    const onExit = () => this.runNow();
    process.once('exit', onExit);
    return () => process.off('exit', onExit);
  }
}
