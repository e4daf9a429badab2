// Shared by the import tests: running the command on files written to a temporary directory, and reading back what
// it printed as a regroute config.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { explainCommand } from '../../../src/cli/explain.js';
import { importCommand } from '../../../src/cli/import.js';
import type { Io } from '../../../src/cli/io.js';
import { parseConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { formatReference, parseReference } from '../../../src/reference/index.js';
import { matchRoute } from '../../../src/routing/route.js';

export function capture(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

/** Writes `files` (relative path → text) under a new temporary directory and returns it. */
export async function tree(files: Readonly<Record<string, string>>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'regroute-import-'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

export interface ImportRun {
  code: number;
  text: string;
  stderr: string;
  /** The printed YAML as a document (routes and registries only). */
  document: { routes: unknown[]; registries: Record<string, unknown> };
  /** The `# ` lines of the printed header. */
  comments: string[];
}

/** Runs `regroute import` with `args` (paths relative to `root` unless absolute or an option). */
export async function runImport(root: string, args: readonly string[]): Promise<ImportRun> {
  const io = capture();
  const code = await importCommand(
    args.map((arg) => (arg.startsWith('-') || arg.startsWith('/') ? arg : join(root, arg))),
    io,
  );
  const text = io.stdout.join('\n');
  return {
    code,
    text,
    stderr: io.stderr.join('\n'),
    document: (parseYaml(text) ?? { routes: [], registries: {} }) as ImportRun['document'],
    comments: text.split('\n').filter((line) => line.startsWith('#')),
  };
}

/** The candidates `regroute explain --offline --json` gives for `image` with the config in `configPath`. */
export async function explainCandidates(configPath: string, image: string): Promise<string[]> {
  const io = capture();
  const code = await explainCommand([image, '--config', configPath, '--offline', '--json'], io);
  if (code !== 0) throw new Error(`explain exited ${code}: ${io.stderr.join('\n')}`);
  const explanation = JSON.parse(io.stdout[0] ?? '{}') as { route: unknown; candidates: string[] };
  // No route: the image is pulled as written.
  return explanation.route === null ? [image] : explanation.candidates;
}

/**
 * Where the node would pull `image` from, per the regroute config: the candidates in order, or the image itself
 * when no route takes it (regroute leaves it, and the node pulls it as written).
 */
export function candidatesFor(
  config: Config,
  image: string,
): { routed: boolean; source?: string; candidates: string[] } {
  const parsed = parseReference(image);
  if (!parsed.ok) throw new Error(`not an image reference: ${image}`);
  const match = matchRoute(parsed.reference, config.routes);
  if (!match) return { routed: false, candidates: [formatReference(parsed.reference)] };
  return {
    routed: true,
    source: `${match.source.registry}/${match.source.repository}`,
    candidates: match.candidates.map((c) =>
      formatReference({ ...parsed.reference, registry: c.registry, repository: c.repository }),
    ),
  };
}

export const loadDocument = (document: unknown): Config => parseConfig(document, '(test)');
