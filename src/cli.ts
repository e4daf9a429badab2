#!/usr/bin/env node
// The `regroute` command: one subcommand per module under cli/.
import { readFileSync } from 'node:fs';
import { EXIT, type Io, processIo, UsageError } from './cli/io.js';
import {
  certsUsage,
  demoUsage,
  explainUsage,
  importUsage,
  probeUsage,
  reviewUsage,
  serveUsage,
  syncPullSecretsUsage,
} from './cli/usage.js';
import { ConfigError } from './config/load.js';

type Run = (args: string[], io: Io) => Promise<number>;

/**
 * Each command's module is loaded when the command runs, not before: a static import of all of them made `serve`
 * carry the Kubernetes client (through sync-pull-secrets), the demo and the import parsers, about 50 MB of RSS that
 * the webhook never uses.
 */
const commands: Record<string, { load: () => Promise<Run>; usage: string }> = {
  serve: { load: async () => (await import('./cli/serve.js')).serveCommand, usage: serveUsage },
  'sync-pull-secrets': {
    load: async () => (await import('./cli/sync-pull-secrets.js')).syncPullSecretsCommand,
    usage: syncPullSecretsUsage,
  },
  review: { load: async () => (await import('./cli/review.js')).reviewCommand, usage: reviewUsage },
  explain: { load: async () => (await import('./cli/explain.js')).explainCommand, usage: explainUsage },
  probe: { load: async () => (await import('./cli/probe.js')).probeCommand, usage: probeUsage },
  certs: { load: async () => (await import('./cli/certs.js')).certsCommand, usage: certsUsage },
  import: { load: async () => (await import('./cli/import.js')).importCommand, usage: importUsage },
  demo: { load: async () => (await import('./cli/demo.js')).demoCommand, usage: demoUsage },
};

export const usage = `regroute — routes pod images to the first healthy registry holding the exact digest

${Object.values(commands)
  .map((c) => c.usage)
  .join('\n\n')}`;

/** The package's version, read from the package.json one level above this file (src/ or dist/). */
function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Errors a person causes (a port out of range or taken, a file missing or unreadable) are told in one line; a stack
 * trace is for what regroute got wrong.
 */
const USER_ERRORS = new Set([
  'ERR_SOCKET_BAD_PORT',
  'EADDRINUSE',
  'EACCES',
  'EADDRNOTAVAIL',
  'ENOENT',
  'EISDIR',
]);

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === '--version' || name === 'version' || name === '-v') {
    io.out(`regroute ${version()}`);
    return EXIT.ok;
  }
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(usage);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = commands[name];
  if (!command) {
    io.err(`unknown command "${name}"\n\n${usage}`);
    return EXIT.usage;
  }
  try {
    return await (await command.load())(args, io);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(error.message);
      return EXIT.usage;
    }
    if (error instanceof UsageError) {
      io.err(`regroute ${name}: ${error.message}`);
      return EXIT.usage;
    }
    // parseArgs reports unknown or malformed options with a code of its own.
    if ((error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`${(error as Error).message}\n\n${command.usage}`);
      return EXIT.usage;
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (error instanceof Error && typeof code === 'string' && USER_ERRORS.has(code)) {
      io.err(`regroute ${name}: ${error.message}`);
      return EXIT.failure;
    }
    io.err(error instanceof Error ? (error.stack ?? error.message) : String(error));
    return EXIT.failure;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
