// npm run bench [-- --quick] [-- --profile DIR]: starts loopback registries (the integration-test harness), the
// webhook and a floor server over HTTPS and a load generator, each in its own process, runs every scenario, and
// prints the machine, one table and, last, one JSON line of the figures the targets are checked against.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildChildren } from './build.js';
import { type BenchContext, FULL, QUICK } from './context.js';
import { stopAllChildren } from './ipc.js';
import { loadAverage, machine, summaryOf, table } from './report.js';
import { coldPathAndRegistryLoad } from './scenarios/cold.js';
import { failover } from './scenarios/failover.js';
import { faults } from './scenarios/faults.js';
import { memory } from './scenarios/memory.js';
import { outageWindow } from './scenarios/outage.js';
import { warmPath } from './scenarios/warm.js';
import { startTopology, type Topology } from './topology.js';
import { progress } from './util.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    /**
     * Writes a V8 CPU profile of each webhook process, and of the floor, into DIR/<process> (node --cpu-prof).
     * The profiler samples wall-clock time: a process preempted inside a system call is charged to that call.
     */
    profile: { type: 'string' },
  },
});
const plan = values.quick ? QUICK : FULL;
const command = `npm run bench${values.quick ? ' -- --quick' : ''}`;

let topology: Topology | undefined;
let stopping: Promise<void> | undefined;
const stopEverything = () => {
  stopping ??= (async () => {
    await stopAllChildren();
    await topology?.stop();
  })();
  return stopping;
};
for (const [signal, number] of [
  ['SIGINT', 2],
  ['SIGTERM', 15],
] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping every process started`);
    void stopEverything().finally(() => process.exit(128 + number));
  });
}

try {
  const started = performance.now();
  const loadAtStart = loadAverage();
  progress(`${command}: starting registries on loopback`);
  topology = await startTopology();
  const context: BenchContext = {
    plan,
    topology,
    caPem: topology.harness.ca.certPem,
    // Removed with the harness directory.
    scripts: buildChildren(join(topology.harness.dir, 'build')),
    profileDir: values.profile ? resolve(values.profile) : undefined,
  };
  const warm = await warmPath(context);
  const memoryResult = await memory(context);
  const coldAndLoad = await coldPathAndRegistryLoad(context);
  const fault = await faults(context);
  const failoverResult = await failover(context, fault);
  const outage = await outageWindow(context);
  const results = { warm, coldAndLoad, fault, failover: failoverResult, memory: memoryResult, outage };
  const minutes = ((performance.now() - started) / 60_000).toFixed(1);
  console.log(
    `regroute benchmark: \`${command}\`, ${new Date().toISOString().slice(0, 16)}Z, ${minutes} min`,
  );
  console.log(`machine: ${machine()}; load average ${loadAtStart} at start, ${loadAverage()} at end`);
  console.log('');
  console.log(table(results));
  console.log('');
  console.log(JSON.stringify(summaryOf(results)));
} catch (error) {
  console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
} finally {
  await stopEverything();
}
