// The chart under test as helm sees it: `helm lint --strict` and `helm template` with the pinned helm binary.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { type KubeObject, kubectl } from '../../helpers/kustomize.js';
import { deployDir, repoRoot } from './manifests.js';

export const chartDir = join(deployDir, 'chart');
export const RELEASE = 'regroute';
export const NAMESPACE = 'regroute-system';

/** The helm that scripts/install-tools.mjs unpacks beside kubectl; installing kubectl installs it too. */
export function helm(): string {
  const pinned = join(repoRoot, '.tools', 'bin', 'helm');
  if (!existsSync(pinned)) kubectl();
  if (!existsSync(pinned)) throw new Error(`no helm at ${pinned}: run node scripts/install-tools.mjs`);
  return pinned;
}

export interface HelmRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs helm with the values written to a file of their own (JSON is YAML), as `helm -f` reads a user's. */
function run(args: string[], values: object): HelmRun {
  const dir = mkdtempSync(join(tmpdir(), 'regroute-helm-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, JSON.stringify(values));
    const result = spawnSync(helm(), [...args, '-f', file], {
      encoding: 'utf8',
      timeout: 60_000,
      // No cluster, no repositories: helm reads nothing but the chart.
      env: {
        ...process.env,
        HELM_CACHE_HOME: dir,
        HELM_CONFIG_HOME: dir,
        HELM_DATA_HOME: dir,
        KUBECONFIG: '',
      },
    });
    if (result.error) throw result.error;
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const helmLint = (values: object = {}): HelmRun =>
  run(['lint', '--strict', chartDir, '--namespace', NAMESPACE], values);

export const helmTemplateRun = (values: object = {}, namespace = NAMESPACE): HelmRun =>
  run(['template', RELEASE, chartDir, '--namespace', namespace], values);

/** The objects `helm template` prints; throws with helm's message when it refuses the values. */
export function helmTemplate(values: object = {}, namespace = NAMESPACE): KubeObject[] {
  const result = helmTemplateRun(values, namespace);
  if (result.status !== 0) throw new Error(`helm template: ${result.stderr}`);
  return parseAllDocuments(result.stdout).flatMap((document) => {
    if (document.errors.length > 0) throw new Error(`helm template output: ${document.errors[0]?.message}`);
    const value = document.toJS() as KubeObject | null;
    return value === null ? [] : [value];
  });
}
