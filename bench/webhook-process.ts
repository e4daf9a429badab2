// The webhook under test, in a process of its own: regroute's startServer and registry state, driven over IPC,
// so that neither the load generator nor the orchestrator shares its event loop.
import { devNull } from 'node:os';
import { type IntervalHistogram, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { MutateOutcome } from '../src/admission/mutate.js';
import { Metrics } from '../src/audit/metrics.js';
import { Config } from '../src/config/schema.js';
import { processLogger } from '../src/server/log.js';
import { type RunningServer, startServer } from '../src/server/run.js';
import { createStateHandle, type LiveStateHandle } from '../src/state/create.js';
import { serve } from './ipc.js';
import type { WebhookMethods } from './protocol.js';
import { SampleBuffer, summarize } from './stats.js';

const READY_TIMEOUT_MS = 15_000;
/** Enough for the longest warm run at the highest throughput seen; the series is reset before every run. */
const DECISION_SAMPLES = 500_000;
const FILL_BATCH = 10_000;

/** Metrics as regroute records them, plus every admission's server-side time kept exactly for percentiles. */
class SampledMetrics extends Metrics {
  readonly decisionMs = new SampleBuffer(DECISION_SAMPLES);

  override recordOutcome(outcome: MutateOutcome, seconds: number): void {
    super.recordOutcome(outcome, seconds);
    this.decisionMs.push(seconds * 1000);
  }
}

// Audit lines are written as in production (the process logger of `regroute serve`), to the null device: their
// cost is measured, and nothing has to read them.
const log = processLogger(devNull);
let running: { server: RunningServer; state: LiveStateHandle; metrics: SampledMetrics } | null = null;
let loopDelay: IntervalHistogram | null = null;
let gcObserver: PerformanceObserver | null = null;
const gc = { count: 0, totalMs: 0, maxMs: 0 };
const suspected: string[] = [];

function current() {
  if (!running) throw new Error('webhook not started');
  return running;
}

serve<WebhookMethods>(
  {
    async start({ config: input }) {
      if (running) throw new Error('webhook already started');
      const started = performance.now();
      const config = Config.parse(input);
      const metrics = new SampledMetrics();
      const state = createStateHandle(config, log, { metrics });
      // Every listener on a free port, the health listener included: nothing here may collide with a fixed port.
      const freePorts = { port: 0, metricsPort: 0, healthPort: 0 };
      const server = await startServer({ config, state, log, metrics, ...freePorts, host: '127.0.0.1' });
      running = { server, state, metrics };
      state.tracker.onSuspicion((registry) => suspected.push(registry));
      // As in a cluster, traffic only comes once /readyz would answer 200: after the first probe round.
      while (!state.isReady()) {
        if (performance.now() - started > READY_TIMEOUT_MS)
          throw new Error('first probe round never finished');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return { port: server.port, metricsPort: server.metricsPort, readyMs: performance.now() - started };
    },

    async rss({ collect }) {
      if (collect) (globalThis as { gc?: () => void }).gc?.();
      const usage = process.memoryUsage();
      return { rssBytes: usage.rss, heapUsedBytes: usage.heapUsed };
    },

    async cpu() {
      const { user, system } = process.cpuUsage();
      return user + system;
    },

    async eventLoopDelay({ reset }) {
      if (!loopDelay) {
        loopDelay = monitorEventLoopDelay({ resolution: 10 });
        loopDelay.enable();
      }
      // The histogram counts nanoseconds.
      const result = { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
      if (reset) loopDelay.reset();
      return result;
    },

    async gcPauses({ reset }) {
      if (!gcObserver) {
        gcObserver = new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) {
            gc.count++;
            gc.totalMs += entry.duration;
            gc.maxMs = Math.max(gc.maxMs, entry.duration);
          }
        });
        gcObserver.observe({ entryTypes: ['gc'] });
      }
      const result = { ...gc };
      if (reset) Object.assign(gc, { count: 0, totalMs: 0, maxMs: 0 });
      return result;
    },

    async suspicions({ reset }) {
      const result = { count: suspected.length, registries: [...new Set(suspected)] };
      if (reset) suspected.length = 0;
      return result;
    },

    async decisionTimes({ reset }) {
      const { decisionMs } = current().metrics;
      const result = { summary: summarize(decisionMs.values()), dropped: decisionMs.dropped };
      if (reset) decisionMs.clear();
      return result;
    },

    async health({ registry }) {
      return current().state.tracker.health(registry);
    },

    async registryRequests(params) {
      const totals: Record<string, number> = {};
      for (const { labels, value } of (await current().metrics.registryRequests.get()).values) {
        if (params?.registry !== undefined && labels.registry !== params.registry) continue;
        const operation = String(labels.operation);
        totals[operation] = (totals[operation] ?? 0) + value;
      }
      return totals;
    },

    async contentSamples({ registry }) {
      return current().state.samples.size(registry);
    },

    async fillCaches({ inserts }) {
      const { tags, presence } = current().state.state;
      // A live process gathers its entries over hours and collects garbage as it goes; a tight loop would leave
      // all of it at once and grow the heap for nothing. So: batches, each followed by a full collection (the
      // bench starts this process with --expose-gc), and what is measured is what the full caches hold.
      const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});
      const started = performance.now();
      for (let batch = 0; batch < inserts; batch += FILL_BATCH) {
        // Keys as long as real ones: a registry host with a port, a two-level repository, a tag, a sha256 digest.
        for (let i = batch; i < Math.min(inserts, batch + FILL_BATCH); i++) {
          const location = {
            registry: `registry-${i % 64}.bench.example:5000`,
            repository: `team-${i % 512}/service-${i}`,
          };
          const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
          tags.record(location, `v1.${i % 100}.${i}`, digest);
          presence.record(location, digest, true);
        }
        collect();
      }
      const elapsedMs = performance.now() - started;
      const { rss, heapUsed } = process.memoryUsage();
      return {
        tagEntries: tags.size,
        presenceEntries: presence.size,
        elapsedMs,
        rssBytes: rss,
        heapUsedBytes: heapUsed,
      };
    },
  },
  async () => {
    await running?.server.close();
  },
);
