// Background health probes: every registry, every interval, with credentials and an optional deep manifest check.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ManifestResult, RegistryClient } from '../registry/index.js';
import type { ClientOrFailure, ClientPool } from './clients.js';
import type { ContentSample, ContentSamples } from './content-samples.js';
import { untilAborted } from './deadline.js';
import type { Evidence, HealthTracker } from './health.js';
import { EventLoopLag, LagDiscountedTimeout, type LoopLag } from './loop-lag.js';

export interface ProbeResult {
  readonly registry: string;
  readonly ok: boolean;
  readonly latencyMs: number;
  readonly error: string | null;
  /**
   * True when the probe says nothing about the registry for a reason of ours: none was sent (the client still being
   * set up, or evicted from a full pool), or it timed out while this process's event loop ran late. The registry's
   * health was left as it was.
   */
  readonly local?: boolean;
}

/**
 * Longest a probe waits for its registry's client to be set up (files read, TLS context built) before giving up
 * without a verdict. Set-up is not charged to the probe's own timeout: on a loaded machine it can take longer than
 * a registry's answer, and it says nothing about the registry.
 */
export const SETUP_TIMEOUT_MS = 5_000;

/**
 * How long the first round of probes may take: client set-up, then a probe and the quick re-probes that confirm
 * a first failure (see HealthTracker.failed), each ended by probe.timeoutMs, plus as much again at most for the
 * event loop's own lateness (see LagDiscountedTimeout).
 */
export function firstRoundBoundMs(probe: Config['probe']): number {
  return SETUP_TIMEOUT_MS + Math.max(2, probe.failureThreshold) * 2 * probe.timeoutMs;
}

type Check =
  | { kind: 'ok'; evidence: Evidence }
  | { kind: 'failed'; error: string }
  | { kind: 'rate-limited'; error: string; retryAfterMs: number | undefined };

const SETUP_PENDING: ClientOrFailure = {
  ok: false,
  error: `registry client still being set up after ${SETUP_TIMEOUT_MS} ms`,
  local: true,
};

export class Prober {
  #timer: NodeJS.Timeout | null = null;
  #ready = false;
  #stopped = false;
  #round: Promise<ProbeResult[]> | null = null;
  /** Registries being probed now: a suspicion raised meanwhile is confirmed by the probe under way. */
  readonly #probing = new Map<string, Promise<ProbeResult>>();
  #unwatch: (() => void) | null = null;

  constructor(
    private readonly config: Pick<Config, 'probe' | 'registries'>,
    private readonly clients: Pick<ClientPool, 'peek' | 'registries'>,
    private readonly tracker: HealthTracker,
    private readonly log: Logger,
    private readonly onProbe?: (result: ProbeResult) => void,
    private readonly samples?: ContentSamples,
    /** How late this process's event loop runs, which a probe's timeout does not charge to the registry. */
    private readonly lag: LoopLag = new EventLoopLag(),
  ) {}

  /**
   * True once the first round has finished, its first failures confirmed: before it, routing would be blind or
   * would trust one cold-start failure. The round is bounded (firstRoundBoundMs), so readiness is too.
   */
  get ready(): boolean {
    return this.#ready;
  }

  start(): void {
    this.lag.start?.();
    // A failed lookup of an admission (a passive signal) makes a registry suspect between two rounds: confirm it at
    // once, so the admissions waiting on it get a verdict within a probe timeout or two.
    this.#unwatch = this.tracker.onSuspicion((registry) => {
      if (!this.#stopped && !this.#probing.has(registry)) void this.probe(registry);
    });
    const loop = async () => {
      await this.probeAll();
      this.#ready = true;
      if (this.#stopped) return;
      // A chain of timeouts, not an interval: a slow round never overlaps the next.
      this.#timer = setTimeout(loop, this.config.probe.intervalSeconds * 1000);
      this.#timer.unref();
    };
    void loop();
  }

  /** Probes every known registry once, in parallel; each probe ends by the configured timeout. */
  probeAll(): Promise<ProbeResult[]> {
    // A trusted cache is not reachable from here by definition: its health is the operator's word.
    const probed = this.clients.registries().filter((registry) => !this.config.registries[registry]?.trusted);
    this.#round ??= Promise.all(probed.map((registry) => this.probe(registry))).finally(() => {
      this.#round = null;
    });
    return this.#round;
  }

  /**
   * Probes the registry, and again at once while a first failure awaits confirmation, so that a registry's first
   * verdict comes within one call. Answers the last probe.
   */
  probe(registry: string): Promise<ProbeResult> {
    const running = this.#probing.get(registry);
    if (running) return running;
    const probing = this.#probeUntilVerdict(registry).finally(() => this.#probing.delete(registry));
    this.#probing.set(registry, probing);
    return probing;
  }

  async #probeUntilVerdict(registry: string): Promise<ProbeResult> {
    let result = await this.#probeOnce(registry);
    const confirmations = Math.max(2, this.config.probe.failureThreshold) - 1;
    for (let i = 0; i < confirmations && this.tracker.awaitsVerdict(registry) && !result.ok; i++) {
      if (result.local || this.#stopped) break;
      result = await this.#probeOnce(registry);
    }
    return result;
  }

  async #probeOnce(registry: string): Promise<ProbeResult> {
    const made = await this.#client(registry);
    if (!made.ok && made.local) {
      this.log.debug({ registry, error: made.error }, 'registry not probed for a reason of ours');
      return { registry, ok: false, latencyMs: 0, error: made.error, local: true };
    }
    // The clock starts once the client exists.
    const started = performance.now();
    const timeout = new LagDiscountedTimeout(this.config.probe.timeoutMs, this.lag);
    let result: Check;
    try {
      result = made.ok
        ? await this.#check(made.client, registry, timeout.signal)
        : { kind: 'failed', error: made.error };
    } finally {
      timeout.clear();
    }
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    if (result.kind === 'failed' && timeout.ours) {
      // A saturated process reads the registry's answer late: a timeout then is a limit of ours, and no verdict.
      const error = `probe timed out while this process's event loop ran late by ${Math.round(timeout.grantedMs)} ms or more`;
      this.log.debug({ registry, error }, 'registry not judged: the event loop was late');
      return { registry, ok: false, latencyMs, error, local: true };
    }
    const before = this.tracker.health(registry);
    if (result.kind === 'ok') this.tracker.succeeded(registry, latencyMs, result.evidence);
    else if (result.kind === 'rate-limited') this.tracker.rateLimited(registry, result.retryAfterMs);
    else this.tracker.failed(registry, result.error, latencyMs);
    const after = this.tracker.health(registry);
    const error = result.kind === 'ok' ? null : result.error;
    if (after !== before)
      this.log.info(
        { registry, from: before, to: after, error: error ?? undefined },
        'registry health changed',
      );
    const probeResult = { registry, ok: result.kind === 'ok', latencyMs, error };
    this.onProbe?.(probeResult);
    return probeResult;
  }

  /** The pool's client, without making one (a host evicted meanwhile is not brought back by its probe). */
  #client(registry: string): Promise<ClientOrFailure> {
    const pending = this.clients.peek(registry);
    if (!pending) return Promise.resolve({ ok: false, error: 'no registry client (evicted)', local: true });
    return untilAborted(pending, AbortSignal.timeout(SETUP_TIMEOUT_MS), SETUP_PENDING);
  }

  async #check(client: RegistryClient, registry: string, signal: AbortSignal): Promise<Check> {
    const sample = this.config.registries[registry]?.healthCheck ? undefined : this.samples?.next(registry);
    if (sample) return this.#checkContent(client, registry, sample, signal);
    const ping = await client.ping({ signal, kind: 'probe' });
    if (!ping.ok) {
      const error = ping.error ?? `GET /v2/ answered ${ping.status ?? 'nothing'}`;
      return ping.availability === 'rate-limited'
        ? { kind: 'rate-limited', error, retryAfterMs: ping.retryAfterMs }
        : { kind: 'failed', error };
    }
    const deep = this.config.registries[registry]?.healthCheck;
    if (!deep) return { kind: 'ok', evidence: 'ping' };
    const manifest = await client.headManifest(deep.repository, deep.reference, { signal, kind: 'probe' });
    if (manifest.kind === 'found') return { kind: 'ok', evidence: 'manifest' };
    if (manifest.kind === 'not-found')
      return {
        kind: 'failed',
        error: `health check manifest ${deep.repository}:${deep.reference} not found`,
      };
    return manifest.availability === 'rate-limited'
      ? { kind: 'rate-limited', error: manifest.message, retryAfterMs: manifest.retryAfterMs }
      : { kind: 'failed', error: manifest.message };
  }

  /**
   * The default deep check: a manifest regroute found at this registry (HEAD), and one of its blobs (HEAD), so that
   * a registry whose storage fails is down although `/v2/` answers. The blob is learned once from the manifest's
   * body (an index's first child for an index). None of these requests count as a pull on Docker Hub but the
   * one-time GETs; a sample the registry no longer holds is dropped, not held against it.
   */
  async #checkContent(
    client: RegistryClient,
    registry: string,
    sample: ContentSample,
    signal: AbortSignal,
  ): Promise<Check> {
    const where = `${sample.repository}@${sample.digest}`;
    const failure = (
      result: Exclude<ManifestResult, { kind: 'found' } | { kind: 'not-found' }>,
      what: string,
    ) =>
      result.availability === 'rate-limited'
        ? ({ kind: 'rate-limited', error: result.message, retryAfterMs: result.retryAfterMs } as const)
        : ({ kind: 'failed', error: `${what}: ${result.message}` } as const);
    const manifest = await client.headManifest(sample.repository, sample.digest, { signal, kind: 'probe' });
    if (manifest.kind === 'error') return failure(manifest, `known manifest ${where}`);
    if (manifest.kind === 'not-found') {
      this.samples?.drop(registry, sample);
      return { kind: 'ok', evidence: 'manifest' };
    }
    if (sample.blob === undefined) sample.blob = await this.#blobOf(client, sample, signal);
    if (!sample.blob) return { kind: 'ok', evidence: 'manifest' };
    const blob = await client.headBlob(sample.repository, sample.blob, { signal, kind: 'probe' });
    if (blob.kind === 'error') return failure(blob, `blob ${sample.blob} of ${where}`);
    if (blob.kind === 'not-found') this.samples?.drop(registry, sample);
    return { kind: 'ok', evidence: 'manifest' };
  }

  /**
   * A blob of the sample's manifest, from its body (an index's first child's); null when it has none, undefined
   * when the body could not be read this time (asked again on a later probe).
   */
  async #blobOf(
    client: RegistryClient,
    sample: ContentSample,
    signal: AbortSignal,
  ): Promise<string | null | undefined> {
    let body = await client.getManifest(sample.repository, sample.digest, { signal, kind: 'probe' });
    const child = body.kind === 'found' ? body.children?.[0] : undefined;
    if (child) body = await client.getManifest(sample.repository, child, { signal, kind: 'probe' });
    if (body.kind !== 'found') return undefined;
    return body.blobs?.[0] ?? null;
  }

  stop(): void {
    this.#stopped = true;
    this.#unwatch?.();
    if (this.#timer) clearTimeout(this.#timer);
    this.lag.stop?.();
  }
}
