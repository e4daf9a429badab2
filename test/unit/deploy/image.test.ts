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

/** Dockerfile stages and their instructions, and the ARGs before the first stage; comments dropped, lines joined. */
function parseDockerfile(text: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, keyword = '', value = ''] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(value) ?? [];
      stages.push({ from, name, instructions: [] });
    } else if (stages.length === 0 && keyword.toUpperCase() === 'ARG') {
      const [, arg = '', defaultValue = ''] = /^([^=\s]+)(?:=(\S*))?/.exec(value) ?? [];
      globalArgs.set(arg, defaultValue);
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), value });
    }
  }
  return { globalArgs, stages };
}

const { globalArgs, stages } = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
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

  it('takes every stage from one BASE build argument, so a build can name a base it can reach', () => {
    assert.ok(globalArgs.has('BASE'), 'ARG BASE before the first FROM');
    for (const stage of stages) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's own text, expanded by the builder
      assert.equal(stage.from, '${BASE}', `stage ${stage.name ?? 'final'}`);
    }
  });

  it("defaults BASE to a slim Node image of a major that package.json's engines allows", () => {
    const engines = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).engines.node as string;
    const oldest = Number(/^>=\s*(\d+)/.exec(engines)?.[1]);
    const [, major] =
      /^node:(\d+)(?:\.[0-9.]+)?-[a-z]+-slim(?:@sha256:[0-9a-f]{64})?$/.exec(globalArgs.get('BASE') ?? '') ??
      [];
    assert.ok(
      major,
      `node:<major>-<debian release>-slim, optionally pinned by digest: ${globalArgs.get('BASE')}`,
    );
    assert.ok(Number(major) >= oldest, `${major} is allowed by engines ${engines}`);
  });

  it('labels the image with the OCI annotations', () => {
    const labels =
      final?.instructions
        .filter((i) => i.keyword === 'LABEL')
        .map((i) => i.value)
        .join(' ') ?? '';
    for (const key of ['title', 'description', 'licenses', 'version', 'revision', 'base.name']) {
      assert.match(labels, new RegExp(`\\borg\\.opencontainers\\.image\\.${key.replace('.', '\\.')}=`), key);
    }
  });
});
