// Compiles the webhook and the bench's child processes to plain JavaScript before they start, so that they run as
// regroute runs in its container (node on compiled files): no TypeScript loader thread in their memory or CPU.
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The trees the children import from; the orchestrator itself keeps running under tsx. */
const TREES = ['src', 'bench'];

function typeScriptFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
    .map((entry) => join(entry.parentPath, entry.name));
}

export type ChildName = 'webhook' | 'floor' | 'load';

/** Where each child process's script is (ChildHandle runs a .js file with node, a .ts file with tsx). */
export type ChildScripts = (child: ChildName) => URL;

/**
 * Transpiles src/ and bench/ into `outDir` (type checking is `npm run lint`'s job), with the project's own
 * node_modules linked beside them so that packages resolve.
 */
export function buildChildren(outDir: string): ChildScripts {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2023,
    // ES modules as written: imports already carry their .js extensions.
    module: ts.ModuleKind.ES2022,
    verbatimModuleSyntax: true,
  };
  for (const tree of TREES) {
    for (const file of typeScriptFiles(join(ROOT, tree))) {
      const out = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js');
      const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
        compilerOptions: options,
        fileName: file,
      });
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, outputText);
    }
  }
  writeFileSync(join(outDir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  symlinkSync(join(ROOT, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  return (child) => pathToFileURL(join(outDir, 'bench', `${child}-process.js`));
}
