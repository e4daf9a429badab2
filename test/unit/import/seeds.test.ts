// The mirror set-ups users publish (test/fixtures/import/seeds.json), imported end to end: the printed config, and
// the candidates regroute then gives for the images the set-up is about, in the node's order.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fixture } from '../../helpers/fixtures.js';
import { explainCandidates, runImport, tree } from './helpers.js';

interface SeedCase {
  id: string;
  source: string;
  inputs: { path: string; text: string }[];
  args: string[];
  expected: { routes: unknown[]; registries: Record<string, unknown> };
  images: { image: string; candidates: string[] }[];
  findings: string[];
  departure?: string;
}

const { cases } = fixture<{ cases: SeedCase[] }>('import/seeds.json');

describe('regroute import on published mirror set-ups', () => {
  for (const seed of cases) {
    it(`${seed.id}: prints the expected routes and registries, and routes its images in the node's order`, async () => {
      const root = await tree(Object.fromEntries(seed.inputs.map((input) => [input.path, input.text])));
      const run = await runImport(root, seed.args);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.document, seed.expected);
      const comments = run.comments.join('\n').replace(/\n# {4,}/g, ' ');
      for (const finding of seed.findings) assert.ok(comments.includes(finding), `no finding "${finding}"`);
      const configPath = join(root, 'regroute.yaml');
      await writeFile(configPath, run.text);
      for (const { image, candidates } of seed.images) {
        assert.deepEqual(await explainCandidates(configPath, image), candidates, image);
      }
    });
  }
});
