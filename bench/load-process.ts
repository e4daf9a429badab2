// The load generator, in a process of its own: autocannon over keep-alive HTTPS connections, as the apiserver holds
// them to a webhook, one request in flight per connection. Latencies are kept exactly (autocannon's own histogram
// rounds to whole milliseconds, too coarse for sub-millisecond answers).
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { serve } from './ipc.js';
import type { LoadMethods } from './protocol.js';
import { SampleBuffer, summarize } from './stats.js';

const MAX_SAMPLES = 2_000_000;
let loopDelay: IntervalHistogram | null = null;

serve<LoadMethods>({
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

  async run(job) {
    const latencies = new SampleBuffer(MAX_SAMPLES);
    let responses = 0;
    let non2xx = 0;
    const started = performance.now();
    const measureFrom = started + job.warmupMs;
    // autocannon never verifies the server's certificate; the load generator only needs the bytes on the wire.
    const instance = autocannon({
      url: job.url,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: job.body,
      connections: job.connections,
      pipelining: 1,
      duration: (job.warmupMs + job.durationMs) / 1000,
      timeout: 10,
    });
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      const now = performance.now();
      if (now < measureFrom) return;
      if (statusCode < 200 || statusCode >= 300) {
        non2xx++;
        return;
      }
      responses++;
      // Latency only of requests sent after the warm-up: a connection's first request, sent while the connections
      // were still being opened, would otherwise count its TLS handshake and the server's cold start (seconds, on
      // a saturated server) whenever it happens to complete after the warm-up.
      if (now - responseTime >= measureFrom) latencies.push(responseTime);
    });
    const result = await instance;
    const seconds = (performance.now() - measureFrom) / 1000;
    return {
      responses,
      non2xx,
      // autocannon counts timeouts among its errors.
      errors: result.errors,
      seconds,
      requestsPerSecond: responses / seconds,
      latency: summarize(latencies.values()),
    };
  },
});
