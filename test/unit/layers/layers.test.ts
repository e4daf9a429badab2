// The pipeline's direction, checked: a module of src/ imports only modules below it, so the pure core (reference,
// config, routing) never reaches the transport, and the state never depends on who reads it.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const SRC = join(import.meta.dirname, '../../../src');

/** Lower numbers sit lower: a module may import its own folder and folders with a smaller rank, nothing else. */
const RANK: Record<string, number> = {
  reference: 0,
  config: 0,
  certs: 0,
  registry: 1,
  state: 2,
  routing: 3,
  admission: 4,
  audit: 5,
  kube: 5,
  cluster: 6,
  server: 7,
  import: 8,
  demo: 8,
  cli: 9,
};

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => join(e.parentPath, e.name));
}

/** The src/ folders a file imports, from its relative import specifiers. */
function importedFolders(text: string): string[] {
  const folders = new Set<string>();
  for (const match of text.matchAll(/from '\.\.\/([a-z-]+)\//g)) folders.add(match[1] as string);
  return [...folders];
}

describe('module layers', () => {
  it('every folder of src/ has a rank', async () => {
    const folders = (await readdir(SRC, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    assert.deepEqual(
      folders.filter((folder) => RANK[folder] === undefined),
      [],
    );
  });

  it('no module imports one at its own rank or above', async () => {
    const wrong: string[] = [];
    for (const [folder, rank] of Object.entries(RANK)) {
      for (const file of await sourceFiles(join(SRC, folder))) {
        // Files nested deeper than the folder itself would need '../../': none exist, and the check says so.
        assert.equal(
          file.split('/').length,
          join(SRC, folder, 'x.ts').split('/').length,
          `${file} is nested`,
        );
        for (const imported of importedFolders(await readFile(file, 'utf8'))) {
          const importedRank = RANK[imported];
          if (imported !== folder && (importedRank === undefined || importedRank >= rank)) {
            wrong.push(`${folder}/${file.slice(file.lastIndexOf('/') + 1)} imports ${imported}/`);
          }
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('the check sees an upward import (state importing server)', () => {
    assert.deepEqual(importedFolders("import type { X } from '../server/run.js';"), ['server']);
  });
});
