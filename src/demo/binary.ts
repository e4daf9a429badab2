// Finding the registry program the demo runs: Debian's docker-registry (the CNCF distribution registry, 2.8).
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

export const REGISTRY_PROGRAM = 'docker-registry';
/** Names another distribution registry binary to run instead (an upstream `registry` release, say). */
export const REGISTRY_BINARY_ENV = 'REGROUTE_DOCKER_REGISTRY';

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The registry binary to run, or null when there is none: the one REGROUTE_DOCKER_REGISTRY names (a path, or a
 * name looked up on PATH), else docker-registry on PATH. Nothing is ever installed here.
 */
export function findRegistryBinary(env: NodeJS.ProcessEnv = process.env): string | null {
  const wanted = env[REGISTRY_BINARY_ENV] || REGISTRY_PROGRAM;
  if (isAbsolute(wanted) || wanted.includes('/')) return isExecutableFile(wanted) ? wanted : null;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, wanted);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

/** What the user reads when the binary is missing: what is needed, why, and the command that installs it. */
export function missingRegistryMessage(env: NodeJS.ProcessEnv = process.env): string {
  const named = env[REGISTRY_BINARY_ENV];
  const what = named
    ? `${REGISTRY_BINARY_ENV}=${named} is not an executable registry binary`
    : `${REGISTRY_PROGRAM} is not on PATH`;
  return [
    `regroute demo runs two real registries on 127.0.0.1 with Debian's ${REGISTRY_PROGRAM} (the CNCF`,
    `distribution registry, 2.8), and ${what}. Nothing was started and nothing is installed by the demo.`,
    '',
    'On Debian or Ubuntu, install it with:',
    '',
    `  sudo apt-get install ${REGISTRY_PROGRAM}`,
    '',
    'The package also starts a registry service on port 5000 of every interface; the demo does not use it',
    `(sudo systemctl disable --now ${REGISTRY_PROGRAM} stops it). Elsewhere, point ${REGISTRY_BINARY_ENV} at a`,
    'distribution registry binary of version 2.8, as Debian ships (github.com/distribution/distribution).',
  ].join('\n');
}
