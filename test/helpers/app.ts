// A webhook app over in-memory registry state, for route tests with inject.
import { pino } from 'pino';
import type { MutateDeps } from '../../src/admission/mutate.js';
import { Metrics } from '../../src/audit/metrics.js';
import type { Config } from '../../src/config/schema.js';
import { buildApp } from '../../src/server/app.js';
import type { RegistryState } from '../../src/state/state.js';

export interface TestApp {
  app: ReturnType<typeof buildApp>;
  metrics: Metrics;
  logs: Record<string, unknown>[];
  ready: { value: boolean };
}

/** The app with a log that tests can read, line by line, as parsed JSON. */
export function testApp(config: Config, state: RegistryState): TestApp {
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const metrics = new Metrics({ defaultMetrics: false });
  const ready = { value: true };
  const mutateDeps: MutateDeps = { config, state };
  const app = buildApp({ mutateDeps: () => mutateDeps, metrics, log, isReady: () => ready.value });
  return { app, metrics, logs, ready };
}
