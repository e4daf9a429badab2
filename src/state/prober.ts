// Background health probes: every registry, every interval, with credentials and an optional deep manifest check.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ClientPool } from './clients.js';
import type { HealthTracker } from './health.js';

export interface ProbeResult {
  readonly registry: string;
  readonly ok: boolean;
  readonly latencyMs: number;
  readonly error: string | null;
}

export class Prober {
  #timer: NodeJS.Timeout | null = null;
  #ready = false;
  #stopped = false;
  #round: Promise<ProbeResult[]> | null = null;

  constructor(
    private readonly config: Pick<Config, 'probe' | 'registries'>,
    private readonly clients: ClientPool,
    private readonly tracker: HealthTracker,
    private readonly log: Logger,
    private readonly onProbe?: (result: ProbeResult) => void,
  ) {}

  /** True once the first round has finished: before it, routing would be blind. */
  get ready(): boolean {
    return this.#ready;
  }

  start(): void {
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
    this.#round ??= Promise.all(this.clients.registries().map((registry) => this.probe(registry))).finally(
      () => {
        this.#round = null;
      },
    );
    return this.#round;
  }

  async probe(registry: string): Promise<ProbeResult> {
    const started = performance.now();
    const result = await this.#check(registry, AbortSignal.timeout(this.config.probe.timeoutMs));
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    const before = this.tracker.health(registry);
    if (result.ok) this.tracker.succeeded(registry, latencyMs);
    else if (result.rateLimited) this.tracker.rateLimited(registry, result.retryAfterMs);
    else this.tracker.failed(registry, result.error, latencyMs);
    const after = this.tracker.health(registry);
    if (after !== before)
      this.log.info(
        { registry, from: before, to: after, error: result.ok ? undefined : result.error },
        'registry health changed',
      );
    const probeResult = { registry, ok: result.ok, latencyMs, error: result.ok ? null : result.error };
    this.onProbe?.(probeResult);
    return probeResult;
  }

  async #check(
    registry: string,
    signal: AbortSignal,
  ): Promise<
    { ok: true } | { ok: false; error: string; rateLimited?: boolean; retryAfterMs?: number | undefined }
  > {
    const made = await this.clients.get(registry);
    if (!made.ok) return { ok: false, error: made.error };
    const ping = await made.client.ping({ signal });
    if (!ping.ok) {
      const error = ping.error ?? `GET /v2/ answered ${ping.status ?? 'nothing'}`;
      return ping.availability === 'rate-limited'
        ? { ok: false, error, rateLimited: true, retryAfterMs: ping.retryAfterMs }
        : { ok: false, error };
    }
    const deep = this.config.registries[registry]?.healthCheck;
    if (!deep) return { ok: true };
    const manifest = await made.client.headManifest(deep.repository, deep.reference, { signal });
    if (manifest.kind === 'found') return { ok: true };
    if (manifest.kind === 'not-found')
      return { ok: false, error: `health check manifest ${deep.repository}:${deep.reference} not found` };
    return manifest.availability === 'rate-limited'
      ? { ok: false, error: manifest.message, rateLimited: true, retryAfterMs: manifest.retryAfterMs }
      : { ok: false, error: manifest.message };
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }
}
