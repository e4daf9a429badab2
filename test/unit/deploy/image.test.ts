// The Dockerfile against what the Deployment expects of the image: user, entrypoint, dependencies, base.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { renderKustomization } from '../../helpers/kustomize.js';
import { deployDir, one, repoRoot } from './manifests.js';

interface Instruction {
  readonly keyword: string;
  readonly value: string;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Dockerfile stages and their instructions; comments dropped, continued lines joined. */
function stagesOf(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, keyword = '', value = ''] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(value) ?? [];
      stages.push({ from, name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), value });
    }
  }
  return stages;
}

const stages = stagesOf(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const final = stages.at(-1);
const last = (keyword: string) => final?.instructions.filter((i) => i.keyword === keyword).at(-1)?.value;
const execForm = (value: string | undefined): string[] => {
  const parsed: unknown = JSON.parse(value ?? 'null');
  assert.ok(Array.isArray(parsed), `exec form (a JSON array), not shell form: ${value}`);
  return parsed as string[];
};
const deployment = one(renderKustomization(join(deployDir, 'base')), Deployment, 'regroute');
const podSpec = deployment.spec?.template.spec;
const container = podSpec?.containers[0];

describe('Dockerfile', () => {
  it('runs as a numeric non-root user, the one the Deployment names', () => {
    const [user, group] = (last('USER') ?? '').split(':');
    assert.match(user ?? '', /^[1-9][0-9]*$/, 'numeric, so the kubelet can check runAsNonRoot');
    assert.equal(Number(user), podSpec?.securityContext?.runAsUser);
    assert.equal(Number(group), podSpec?.securityContext?.runAsGroup);
  });

  it('starts node itself as PID 1, so SIGTERM reaches the server', () => {
    assert.deepEqual(execForm(last('ENTRYPOINT')), ['node', 'dist/cli.js']);
    assert.equal(container?.command, undefined, 'the Deployment keeps the entrypoint');
  });

  it('serves by default with the config where the Deployment mounts it', () => {
    assert.deepEqual(execForm(last('CMD')), container?.args);
  });

  it('builds in one stage and takes only production dependencies into the runtime stage', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    const copies =
      final?.instructions.filter((i) => i.keyword === 'COPY' && i.value.startsWith('--from=')) ?? [];
    const modules = copies.find((i) => /\bnode_modules\b/.test(i.value));
    const source = stages.find((s) => s.name === /^--from=(\S+)/.exec(modules?.value ?? '')?.[1]);
    assert.ok(source, 'node_modules come from another stage');
    const installs = source.instructions.filter(
      (i) => i.keyword === 'RUN' && /\bnpm (ci|install)\b/.test(i.value),
    );
    assert.ok(
      installs.length > 0 && installs.every((i) => /--omit=dev\b/.test(i.value)),
      'npm ci --omit=dev',
    );
    assert.ok(!final?.instructions.some((i) => i.keyword === 'RUN' && /\bnpm\b/.test(i.value)));
  });

  it('runs on a slim Node base of the major version package.json asks for', () => {
    const engines = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).engines.node as string;
    const major = /(\d+)/.exec(engines)?.[1];
    assert.match(final?.from ?? '', new RegExp(`^node:${major}(\\.[0-9.]+)?-[a-z]+-slim$`));
  });
});
