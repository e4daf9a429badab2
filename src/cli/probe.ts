// `regroute probe`: probes every configured registry once and prints its health, latency and last error.
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createStateHandle } from '../state/create.js';
import { loadConfigOption } from './config-option.js';
import { EXIT, type Io } from './io.js';

export async function probeCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const config = await loadConfigOption(values.config);
  const handle = createStateHandle(config, pino({ level: 'silent' }), { probe: false });
  try {
    const results = await handle.prober.probeAll();
    if (results.length === 0) io.err('no registries configured');
    for (const result of results) {
      const health = handle.tracker.health(result.registry);
      if (values.json) {
        io.out(
          JSON.stringify({
            registry: result.registry,
            health,
            latencyMs: result.latencyMs,
            error: result.error,
          }),
        );
      } else {
        io.out(
          `${result.registry.padEnd(32)} ${health.padEnd(12)} ${`${result.latencyMs} ms`.padStart(10)}  ${result.error ?? ''}`,
        );
      }
    }
    return results.every((r) => r.ok) ? EXIT.ok : EXIT.failure;
  } finally {
    await handle.close();
  }
}
