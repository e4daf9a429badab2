// The integration-test harness: one CA, real registries, a token issuer and fault proxies, stopped together.
import type { Agent } from 'undici';
import { createHarnessCA, type HarnessCA } from './ca.js';
import { makeTempDir, removeTempDir } from './children.js';
import { harnessAgent, type RegistryEndpoint } from './client.js';
import { type FaultMode, type FaultOptions, type FaultProxy, startFaultProxy } from './fault-proxy.js';
import { type Registry, type RegistryOptions, startRegistry } from './registry.js';
import { startTokenIssuer, type TokenIssuer, type TokenIssuerOptions } from './token-issuer.js';

export { type HarnessCA, LOOPBACK_DNS_NAMES, LOOPBACK_IPS, WRONG_DNS_NAME } from './ca.js';
export {
  basicAuthorization,
  type Credentials,
  fetchToken,
  type HarnessResponse,
  harnessAgent,
  header,
  parseChallenge,
  type RegistryEndpoint,
  registryRequest,
} from './client.js';
export { FAULT_MODES, type FaultMode, type FaultOptions, type FaultProxy } from './fault-proxy.js';
export {
  ACCEPT_ALL_MANIFESTS,
  DEFAULT_PLATFORMS,
  type ImageContent,
  type IndexContent,
  type ManifestFormat,
  MEDIA_TYPES,
  makeImage,
  makeIndex,
  type Platform,
  sha256,
} from './image.js';
export { freePort, LOOPBACK } from './ports.js';
export {
  type Pushed,
  type PushedImage,
  type PushedIndex,
  pushImage,
  pushImageToAll,
  pushIndex,
  pushIndexToAll,
} from './push.js';
export type { Registry, RegistryAuth, RegistryOptions } from './registry.js';
export {
  parseScope,
  type ResourceScope,
  type TokenIssuer,
  type TokenIssuerOptions,
  type TokenRequest,
} from './token-issuer.js';

export interface Harness {
  /** Temp dir holding the CA file and every registry's config and storage; removed by stop(). */
  dir: string;
  ca: HarnessCA;
  /** PEM file of the harness CA: what a client under test is told to trust. */
  caFile: string;
  /** An undici Agent trusting the harness CA; closed by stop(). */
  dispatcher: Agent;
  startRegistry(options?: RegistryOptions): Promise<Registry>;
  startTokenIssuer(options?: TokenIssuerOptions): Promise<TokenIssuer>;
  startFaultProxy(
    upstream: Pick<RegistryEndpoint, 'url' | 'credentials'>,
    initial?: { mode?: FaultMode; options?: FaultOptions },
  ): Promise<FaultProxy>;
  /** Stops everything started through this harness (proxies, registries, issuers) and removes `dir`. */
  stop(): Promise<void>;
}

/**
 * Creates the harness CA and temp dir. Register `after(() => harness.stop())` right away: stop() also
 * cleans up after a start that failed half-way, and the test process kills what is left when it exits.
 *
 * ```ts
 * const harness = await startHarness();
 * after(() => harness.stop());
 * const issuer = await harness.startTokenIssuer();
 * const [source, mirror] = await Promise.all([
 *   harness.startRegistry({ auth: { kind: 'token', issuer } }),
 *   harness.startRegistry({ auth: { kind: 'htpasswd' } }),
 * ]);
 * const image = await pushImageToAll([source, mirror], 'team/app', 'v1'); // same digest in both
 * const flaky = await harness.startFaultProxy(mirror);
 * await flaky.setMode('blackhole');
 * // the webhook under test trusts harness.caFile and routes `${source.host}/team/app:v1` via flaky.host
 * ```
 */
export async function startHarness(): Promise<Harness> {
  const dir = makeTempDir('regroute-harness-');
  const ca = await createHarnessCA(dir);
  const dispatcher = harnessAgent(ca.certPem);
  const stoppers: { order: number; stop: () => Promise<void> }[] = [];
  const track = <T extends { stop(): Promise<void> }>(order: number, started: T): T => {
    stoppers.push({ order, stop: () => started.stop() });
    return started;
  };
  let stopped = false;
  return {
    dir,
    ca,
    caFile: ca.caFile,
    dispatcher,
    startRegistry: async (options) => track(1, await startRegistry({ ca, dir, dispatcher }, options)),
    startTokenIssuer: async (options) => track(2, await startTokenIssuer(ca, options)),
    startFaultProxy: async (upstream, initial) =>
      track(0, await startFaultProxy({ ca, dispatcher }, upstream, initial)),
    async stop() {
      if (stopped) return;
      stopped = true;
      // Proxies first, then registries (a cache may still talk to its upstream), then issuers.
      for (const order of [0, 1, 2]) {
        const group = stoppers.filter((entry) => entry.order === order);
        await Promise.allSettled(group.map((entry) => entry.stop()));
      }
      await dispatcher.close();
      removeTempDir(dir);
    },
  };
}
