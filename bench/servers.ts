// Starting the processes the scenarios measure: the webhook under test, the floor server and the load generator.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { ConfigInput } from '../src/config/schema.js';
import type { ChildScripts } from './build.js';
import { ChildHandle } from './ipc.js';
import type { FloorMethods, LoadMethods, WebhookMethods } from './protocol.js';
import { waitFor } from './util.js';

const START_TIMEOUT_MS = 30_000;

export interface Webhook {
  readonly process: ChildHandle<WebhookMethods>;
  readonly port: number;
  readonly readyMs: number;
  rssMb(): Promise<number>;
  /** CPU time used so far, microseconds. */
  cpuUs(): Promise<number>;
  /**
   * Waits until the prober has found each registry healthy. A first probe round can time out on a busy machine
   * while the new process is still warming up; the scenarios measure routing, not that start-up race.
   */
  waitHealthy(registries: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

const HEALTHY_TIMEOUT_MS = 20_000;

export interface ProcessOptions {
  readonly scripts: ChildScripts;
  /** Where the webhook writes a V8 CPU profile on exit (node --cpu-prof), when given. */
  readonly profileDir?: string | undefined;
}

/** node --cpu-prof into a directory of the process's own under `profileDir` (`webhook-warm-path`, `floor`). */
function profileFlags(profileDir: string | undefined, name: string): string[] {
  if (!profileDir) return [];
  const dir = join(
    profileDir,
    name
      .replace(/[^a-z0-9]+/gi, '-')
      .replace(/^-|-$/g, '')
      .toLowerCase(),
  );
  return ['--cpu-prof', '--cpu-prof-dir', dir];
}

/**
 * The node flags the Deployment gives the webhook (NODE_OPTIONS in deploy/base/environment.yaml: the heap cap), so
 * that its memory and collections are measured as they run in a cluster.
 */
function deploymentNodeFlags(): string[] {
  const file = new URL('../deploy/base/environment.yaml', import.meta.url);
  const environment = parse(readFileSync(file, 'utf8')) as { data?: { NODE_OPTIONS?: string } };
  return environment.data?.NODE_OPTIONS?.split(/\s+/).filter((flag) => flag !== '') ?? [];
}

/** regroute in its own process with `config`; resolves once it is ready (its first probe round has finished). */
export async function startWebhook(
  name: string,
  config: ConfigInput,
  options: ProcessOptions,
): Promise<Webhook> {
  const child = ChildHandle.start<WebhookMethods>(name, options.scripts('webhook'), {
    // --expose-gc: memory with full caches is measured after a collection (see fillCaches).
    nodeFlags: ['--expose-gc', ...deploymentNodeFlags(), ...profileFlags(options.profileDir, name)],
  });
  try {
    const { port, readyMs } = await child.call('start', { config }, START_TIMEOUT_MS);
    return {
      process: child,
      port,
      readyMs,
      rssMb: async () => (await child.call('rss', { collect: false }, 10_000)).rssBytes / 2 ** 20,
      cpuUs: () => child.call('cpu', null, 10_000),
      async waitHealthy(registries) {
        const healthy = async () => {
          const verdicts = await Promise.all(
            registries.map((registry) => child.call('health', { registry }, 5000)),
          );
          return verdicts.every((verdict) => verdict === 'healthy');
        };
        if (!(await waitFor(healthy, HEALTHY_TIMEOUT_MS, 50))) {
          throw new Error(
            `${name}: registries ${registries.join(', ')} not all healthy after ${HEALTHY_TIMEOUT_MS} ms`,
          );
        }
      },
      stop: () => child.stop(),
    };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

export interface Floor {
  readonly port: number;
  /** CPU time used so far, microseconds. */
  cpuUs(): Promise<number>;
  stop(): Promise<void>;
}

export async function startFloor(
  scripts: ChildScripts,
  certFile: string,
  keyFile: string,
  profileDir?: string,
): Promise<Floor> {
  const child = ChildHandle.start<FloorMethods>('floor', scripts('floor'), {
    nodeFlags: profileFlags(profileDir, 'floor'),
  });
  try {
    const { port } = await child.call('start', { certFile, keyFile }, START_TIMEOUT_MS);
    return { port, cpuUs: () => child.call('cpu', null, 10_000), stop: () => child.stop() };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

export function startLoadGenerator(scripts: ChildScripts): ChildHandle<LoadMethods> {
  return ChildHandle.start<LoadMethods>('load generator', scripts('load'));
}
