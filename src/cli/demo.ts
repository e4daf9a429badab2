// `regroute demo`: a registry outage on loopback, told step by step, with real registries and the real webhook.
import { parseArgs } from 'node:util';
import { findRegistryBinary, missingRegistryMessage } from '../demo/binary.js';
import { Cleanup } from '../demo/cleanup.js';
import { DemoExpectationError, runDemo } from '../demo/scenario.js';
import { EXIT, type Io } from './io.js';

/** Exit code of a run ended by Ctrl-C (128 + SIGINT), as a shell reports it. */
export const EXIT_INTERRUPTED = 130;

export interface DemoEnv {
  /** Where Ctrl-C and SIGTERM come from. */
  readonly signals?: NodeJS.EventEmitter;
  readonly env?: NodeJS.ProcessEnv;
  readonly tmpdir?: string;
}

export async function demoCommand(args: string[], io: Io, env: DemoEnv = {}): Promise<number> {
  parseArgs({ args, options: {} });
  const binary = findRegistryBinary(env.env ?? process.env);
  if (binary === null) {
    io.err(missingRegistryMessage(env.env ?? process.env));
    return EXIT.failure;
  }

  const cleanup = new Cleanup();
  const unguard = cleanup.guardExit();
  const interrupted = new AbortController();
  const signals = env.signals ?? process;
  const onSignal = (name: string) => () => {
    io.err(`\n${name}: stopping the demo and removing what it started…`);
    interrupted.abort(new Error(name));
  };
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((name) => [name, onSignal(name)] as const);
  for (const [name, handler] of handlers) signals.once(name, handler);

  let code: number = EXIT.ok;
  let cleanupErrors: Error[] = [];
  try {
    await runDemo({
      binary,
      out: io.out,
      cleanup,
      signal: interrupted.signal,
      ...(env.tmpdir ? { tmpdir: env.tmpdir } : {}),
    });
  } catch (error) {
    if (interrupted.signal.aborted) {
      code = EXIT_INTERRUPTED;
    } else {
      code = EXIT.failure;
      io.err(
        error instanceof DemoExpectationError
          ? `demo stopped: ${error.message}`
          : `demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    }
  } finally {
    cleanupErrors = await cleanup.run();
    for (const error of cleanupErrors) io.err(`cleaning up: ${error.message}`);
    unguard();
    for (const [name, handler] of handlers) signals.off(name, handler);
  }
  if (cleanupErrors.length > 0) return code === EXIT.ok ? EXIT.failure : code;
  if (code === EXIT.ok) io.out('Stopped the webhook and both registries, and removed the demo directory.');
  else if (code === EXIT_INTERRUPTED) io.err('Stopped and removed everything the demo started.');
  return code;
}
