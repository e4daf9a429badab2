// Noticing that mounted files changed: a timer that re-reads them, and byte fingerprints to compare.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/**
 * cert-manager's file source rereads every 10 s; so do we. Kubelet updates a mounted Secret or ConfigMap by writing
 * a new directory and swapping the `..data` symlink, which a watch on the file itself never sees (the watched inode
 * is not the one that changed), so polling the bytes is the dependable way, and the files are small.
 */
export const DEFAULT_RELOAD_INTERVAL_MS = 10_000;

export interface Polling {
  stop(): void;
}

/** What one check of changed files came to: nothing new, put in force, or refused with the running one kept. */
export type ReloadResult = 'unchanged' | 'applied' | 'rejected';

/**
 * Runs `tick` every `intervalMs`, as a chain of timeouts so that a slow tick never overlaps the next. The timer does
 * not keep the process alive: shutdown owes nothing to it. A tick that throws is reported and the next one still runs.
 */
export function pollEvery(
  intervalMs: number,
  tick: () => Promise<unknown>,
  onError: (error: unknown) => void = () => {},
): Polling {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(async () => {
      await tick().catch(onError);
      schedule();
    }, intervalMs);
    timer.unref();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** A digest of file contents: what is kept to compare against, rather than the bytes (which may be a key). */
export const fingerprint = (bytes: Buffer | string): string =>
  createHash('sha256').update(bytes).digest('hex');

export type FileRead = { ok: true; bytes: Buffer } | { ok: false; error: string };

/** A file's bytes, or why it could not be read: its errno code, never its contents. */
export async function readFileOrError(path: string): Promise<FileRead> {
  try {
    return { ok: true, bytes: await readFile(path) };
  } catch (error) {
    return { ok: false, error: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

/** One string standing for the current contents of every file in `paths`, unreadable ones included. */
export async function fingerprintFiles(paths: readonly string[]): Promise<string> {
  const parts = await Promise.all(
    [...new Set(paths)].sort().map(async (path) => {
      const read = await readFileOrError(path);
      return `${path}=${read.ok ? fingerprint(read.bytes) : `unreadable:${read.error}`}`;
    }),
  );
  return parts.join('\n');
}
