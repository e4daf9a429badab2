// Memory of a fresh webhook process: RSS idle (ready, caches warm for one pod), then with its caches full. Under
// load it is measured by the warm path, which reports its peak.
import { AdmissionClient, expectAllRouted } from '../admit.js';
import type { BenchContext } from '../context.js';
import {
  containersOf,
  grownTo,
  imagesToPush,
  loadReview,
  relocate,
  SMALL_FIXTURE,
  withFreshUid,
  withImages,
} from '../pods.js';
import { startWebhook } from '../servers.js';
import { configFor, location, pushImages } from '../topology.js';
import { progress, sleep } from '../util.js';

/** Long enough for start-up garbage to be collected and the process to settle. */
const SETTLE_MS = 2000;

export interface MemoryResult {
  readonly idleMb: number;
  readonly idleHeapMb: number;
  /** After a full collection: what the full caches hold, not the garbage of filling them in a tight loop. */
  readonly cachesFullMb: number;
  readonly cachesFullHeapMb: number;
  readonly cacheEntries: number;
  readonly cacheInserts: number;
}

export async function memory(context: BenchContext): Promise<MemoryResult> {
  const { topology, plan, caPem } = context;
  const { source, cache, mirror } = topology;
  const pod = grownTo(
    withImages(loadReview(SMALL_FIXTURE), (image) => relocate(image, location(source, 'warm'))),
    12_000,
  );
  await pushImages([source, cache, mirror], imagesToPush(pod));
  const webhook = await startWebhook('webhook (memory)', await configFor(topology, ['warm']), context);
  const client = new AdmissionClient(webhook.port, caPem);
  try {
    await webhook.waitHealthy([source.host, cache.host, mirror.host]);
    const { response } = await client.admit(withFreshUid(pod));
    expectAllRouted(response, containersOf(pod).length, 'memory pod');
    await sleep(SETTLE_MS);
    const idle = await webhook.process.call('rss', { collect: true }, 10_000);
    progress(`memory: recording ${plan.cacheInserts} tag and ${plan.cacheInserts} presence answers`);
    const filled = await webhook.process.call('fillCaches', { inserts: plan.cacheInserts }, 120_000);
    return {
      idleMb: idle.rssBytes / 2 ** 20,
      idleHeapMb: idle.heapUsedBytes / 2 ** 20,
      cachesFullMb: filled.rssBytes / 2 ** 20,
      cachesFullHeapMb: filled.heapUsedBytes / 2 ** 20,
      cacheEntries: filled.tagEntries + filled.presenceEntries,
      cacheInserts: 2 * plan.cacheInserts,
    };
  } finally {
    await client.close();
    await webhook.stop();
  }
}
