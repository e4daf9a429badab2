// What a subcommand may touch of the process: its output streams. Tests pass their own.

export interface Io {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

export const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Exit codes: 0 success, 1 failure, 2 bad input (usage or invalid image references). */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A command line that cannot be run as given (a flag's value out of range): told in one line, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
