// The benchmark's output: the machine, one Markdown table (pasted as is into docs/performance.md), and one JSON
// line.
import { cpus, loadavg, totalmem } from 'node:os';
import type { ColdAndLoadResult } from './scenarios/cold.js';
import type { FailoverResult } from './scenarios/failover.js';
import type { FaultResult } from './scenarios/faults.js';
import type { MemoryResult } from './scenarios/memory.js';
import type { OutageResult } from './scenarios/outage.js';
import type { ServerStalls, WarmResult, WarmRun } from './scenarios/warm.js';
import type { Summary } from './stats.js';

export interface Results {
  readonly warm: WarmResult;
  readonly coldAndLoad: ColdAndLoadResult;
  readonly fault: FaultResult;
  readonly failover: FailoverResult;
  readonly memory: MemoryResult;
  readonly outage: OutageResult;
}

/** The last line of `npm run bench -- --quick`: the figures the targets are checked against. */
export interface BenchSummary {
  readonly warmRatio: number;
  readonly warmP99Ms: number;
  readonly coldP99Ms: number;
  readonly deadlineOverrunMs: number;
  readonly registryRequestsPerAdmission: number;
  readonly failoverSpeedup: number;
  readonly rssMb: number;
  /** The worst fault's time from its start to the first pod routed around (outage-window scenario). */
  readonly outageWindowMs: number;
  /** regroute's p99 over the floor's at the highest warm-path concurrency, the worse pod. */
  readonly tailRatio: number;
}

export const TARGETS = {
  warmRatio: 0.8,
  warmP99Ms: 1,
  coldP99Ms: 20,
  deadlineOverrunMs: 10,
  registryRequestsPerAdmission: 0.05,
  failoverSpeedup: 100,
  rssMb: 150,
  outageWindowMs: 2000,
  tailRatio: 2,
} as const;

export function machine(): string {
  const cores = cpus();
  const model = cores[0]?.model.trim() ?? 'unknown CPU';
  const memory = (totalmem() / 2 ** 30).toFixed(1);
  return `${cores.length} cores (${model}), ${memory} GiB, Node ${process.version}, ${process.platform} ${process.arch}`;
}

export const loadAverage = (): string => loadavg()[0]?.toFixed(2) ?? '?';

const round = (value: number, digits: number) => Number(value.toFixed(digits));
const ms = (value: number) =>
  value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
const count = (value: number) => Math.round(value).toLocaleString('en-US');
const latencies = (s: Summary) => `p50 ${ms(s.p50)} / p99 ${ms(s.p99)} / p99.9 ${ms(s.p999)} ms`;
const check = (ok: boolean) => (ok ? '✓' : '✗');
const atMost = (value: number, target: number, unit: string) =>
  `${value.toFixed(value < 1 ? 3 : 1)}${unit} (≤ ${target}${unit}) ${check(value <= target)}`;

export function summaryOf({ warm, coldAndLoad, fault, failover, memory, outage }: Results): BenchSummary {
  const firstLoad = coldAndLoad.load[0];
  return {
    warmRatio: round(Math.min(...warm.runs.map((run) => run.ratio)), 3),
    warmP99Ms: round(
      Math.max(...warm.runs.filter((run) => run.pod === 'small').map((run) => run.decision.p99)),
      3,
    ),
    coldP99Ms: round(coldAndLoad.cold.client.p99, 2),
    deadlineOverrunMs: round(fault.overrunMs, 2),
    registryRequestsPerAdmission: firstLoad
      ? round(firstLoad.registryRequests / firstLoad.pods, 4)
      : Number.NaN,
    failoverSpeedup: round(failover.speedup, 1),
    rssMb: round(Math.max(memory.idleMb, warm.peakRssMb, memory.cachesFullMb), 1),
    outageWindowMs: round(outage.outageWindowMs, 0),
    tailRatio: round(tailRatioOf(warm), 2),
  };
}

/** The runs at the highest concurrency, where a tail shows. */
const saturated = (warm: WarmResult): WarmRun[] => {
  const most = Math.max(...warm.runs.map((run) => run.connections));
  return warm.runs.filter((run) => run.connections === most);
};

const tailRatioOf = (warm: WarmResult): number =>
  Math.max(...saturated(warm).map((run) => run.regroute.latency.p99 / run.floor.latency.p99));

const stalls = ({ eventLoopDelay, gc, suspicions }: ServerStalls) =>
  `event-loop delay p99 ${ms(eventLoopDelay.p99)} / max ${ms(eventLoopDelay.max)} ms; ` +
  `GC ${ms(gc.totalMs)} ms in ${gc.count} pauses (longest ${ms(gc.maxMs)} ms)` +
  (suspicions.count > 0
    ? `; ${suspicions.count} ${suspicions.count === 1 ? 'registry' : 'registries'} found suspect (${suspicions.registries.join(', ')})`
    : '');

function warmRow(warm: WarmResult, run: WarmRun): string[] {
  const pod = `${run.pod} pod (${(warm.bytes[run.pod] / 1000).toFixed(0)} KB, ${warm.containers[run.pod]} containers)`;
  const connections = `${run.connections} connection${run.connections === 1 ? '' : 's'}`;
  const errors = run.regroute.errors + run.regroute.non2xx + run.floor.errors + run.floor.non2xx;
  const cpu = (us: number) => `CPU ${count(us)} µs/answer`;
  const decision = `decision p50 ${ms(run.decision.p50)} / p99 ${ms(run.decision.p99)} ms`;
  const decisionTarget =
    run.pod === 'small' ? `; decision p99 ${atMost(run.decision.p99, TARGETS.warmP99Ms, ' ms')}` : '';
  const most = Math.max(...warm.runs.map((r) => r.connections));
  const tail =
    run.connections === most
      ? `; p99 ${atMost(run.regroute.latency.p99 / run.floor.latency.p99, TARGETS.tailRatio, '×')} the floor's`
      : '';
  return [
    'Warm path',
    `${pod}, ${connections}`,
    `${count(run.regroute.requestsPerSecond)} req/s, ${latencies(run.regroute.latency)}; ` +
      `${cpu(run.cpuPerAnswerUs.regroute)}; ${decision}; ${stalls(run.server)}; RSS up to ${run.peakRssMb.toFixed(0)} MB; ` +
      `${run.registryRequests} registry requests (deep probes included)` +
      (errors > 0 ? `; ${errors} errors` : ''),
    `floor ${count(run.floor.requestsPerSecond)} req/s, ${latencies(run.floor.latency)}; ` +
      cpu(run.cpuPerAnswerUs.floor),
    `ratio ${run.ratio.toFixed(2)} (≥ ${TARGETS.warmRatio}) ${check(run.ratio >= TARGETS.warmRatio)}, ` +
      `CPU ratio ${run.cpuRatio.toFixed(2)}${decisionTarget}${tail}`,
  ];
}

function mixedRow(warm: WarmResult): string[] {
  const { mixed } = warm;
  const each = (results: WarmResult['mixed']['floor']) =>
    (['small', 'large'] as const)
      .map(
        (pod) =>
          `${pod} ${count(results[pod].requestsPerSecond)} req/s, p99 ${ms(results[pod].latency.p99)} ms`,
      )
      .join('; ');
  const alone = saturated(warm).find((run) => run.pod === 'small');
  return [
    'Warm path',
    `both pods at once, ${mixed.connections / 2} connections each (head-of-line between review sizes)`,
    `${each(mixed.regroute)}; ${stalls(mixed.server)}; RSS up to ${mixed.peakRssMb.toFixed(0)} MB`,
    `floor ${each(mixed.floor)}`,
    `small-pod p99 ${(mixed.regroute.small.latency.p99 / mixed.floor.small.latency.p99).toFixed(2)}× the floor's` +
      (alone
        ? ` (alone at ${alone.connections}: ${(alone.regroute.latency.p99 / alone.floor.latency.p99).toFixed(2)}×)`
        : ''),
  ];
}

export function table(results: Results): string {
  const { warm, coldAndLoad, fault, failover, memory, outage } = results;
  const { cold } = coldAndLoad;
  const head = cold.registryHead;
  // One round trip on a miss: the mirrors listed before the source are asked for the tag at the same time as it.
  const missFloor = Math.max(head.source.p50, head.cache.p50, head.mirror.p50);
  const rows: string[][] = [...warm.runs.map((run) => warmRow(warm, run)), mixedRow(warm)];
  const warmC1 = warm.runs.find((run) => run.pod === 'small' && run.connections === 1);
  rows.push(
    [
      'Cold path',
      `first admission after start (ready ${ms(cold.first.readyMs)} ms after launch; 4 images unseen, no repository token yet)`,
      `${ms(cold.first.clientMs)} ms (server ${ms(cold.first.serverMs)} ms)`,
      '—',
      'reported',
    ],
    [
      'Cold path',
      `${cold.admissions} admissions, 1 of 4 images new each; 3 candidates, one behind token auth; connections warm`,
      `p50 ${ms(cold.client.p50)} / p99 ${ms(cold.client.p99)} ms (server p99 ${ms(cold.server.p99)} ms); ` +
        `${cold.registryRequestsPerAdmission.toFixed(1)} registry requests per admission`,
      `manifest HEAD on source / cache (basic) / mirror (token), p50 ${ms(head.source.p50)} / ${ms(head.cache.p50)} / ` +
        `${ms(head.mirror.p50)} ms, p99 ${ms(head.source.p99)} / ${ms(head.cache.p99)} / ${ms(head.mirror.p99)} ms; ` +
        `a miss asks the source and the mirrors before it at once: ≥ ${ms(missFloor)} ms at p50`,
      `p99 ${atMost(cold.client.p99, TARGETS.coldP99Ms, ' ms')}`,
    ],
    [
      'Faults',
      `source blackholed, deadline ${fault.deadlineMs} ms, ${fault.clients} clients; ${fault.answers} answers, ` +
        `${fault.routed} fully rerouted`,
      `slowest ${ms(fault.slowestMs)} ms (server-side ${ms(fault.deadlineMs + fault.serverOverrunMs)} ms); ` +
        `before detection p50 ${ms(fault.duringFault.p50)} ms; event-loop delay max ${ms(fault.eventLoopDelayMaxMs)} ms ` +
        `(an idle bystander process: ${ms(fault.bystanderDelayMaxMs)} ms)`,
      `deadline ${fault.deadlineMs} ms`,
      `overrun ${atMost(fault.overrunMs, TARGETS.deadlineOverrunMs, ' ms')}`,
    ],
    [
      'Faults',
      `time to detect (probes every ${fault.probe.intervalSeconds} s, timeout ${fault.probe.timeoutMs} ms, ` +
        `${fault.probe.failureThreshold} failures)`,
      `${ms(fault.timeToDetectMs)} ms`,
      '—',
      'reported',
    ],
    [
      'Faults',
      `admissions once the source is marked down (${fault.clients} clients)`,
      `p50 ${ms(fault.afterDetection.p50)} / p99 ${ms(fault.afterDetection.p99)} ms`,
      `before the fault p50 ${ms(fault.baseline.p50)} ms; warm path (1 connection) p50 ${
        warmC1 ? ms(warmC1.regroute.latency.p50) : '?'
      } ms`,
      `${(fault.afterDetection.p50 / fault.baseline.p50).toFixed(2)}× before the fault`,
    ],
  );
  for (const run of coldAndLoad.load) {
    const perAdmission = run.registryRequests / run.pods;
    const operations = Object.entries(run.byOperation)
      .filter(([operation, value]) => operation !== 'ping' && value > 0)
      .map(([operation, value]) => `${operation} ${value}`)
      .join(', ');
    rows.push([
      'Registry load',
      `${count(run.pods)} pods sharing ${run.images} images, ${run.concurrency} at a time (${run.seconds.toFixed(1)} s)`,
      `${run.registryRequests} registry requests (${operations})`,
      `${run.images} images × ${coldAndLoad.locationsPerImage} route locations, tag TTL ${coldAndLoad.tagTtlSeconds} s`,
      `${atMost(perAdmission, TARGETS.registryRequestsPerAdmission, '')} per admission; ` +
        `${(run.registryRequests / run.images).toFixed(1)} per image`,
    ]);
  }
  rows.push([
    'Failover',
    `skopeo inspect, registries.conf with the first mirror blackholed (${failover.mirrorFallback.count} run(s))`,
    `admission ${ms(failover.admissionMs)} ms + skopeo of the chosen reference ${ms(failover.chosenFetch.p50)} ms`,
    `skopeo via the mirror list ${ms(failover.mirrorFallback.p50)} ms`,
    `speedup ${failover.speedup.toFixed(0)}× (≥ ${TARGETS.failoverSpeedup}×) ${check(failover.speedup >= TARGETS.failoverSpeedup)}; ` +
      `${count(failover.mirrorFallback.p50 / failover.admissionMs)}× the admission alone`,
  ]);
  rows.push(...outageRows(outage));
  const peak = Math.max(memory.idleMb, warm.peakRssMb, memory.cachesFullMb);
  rows.push([
    'Memory (RSS)',
    `idle / under load (peak of the warm path) / ${count(memory.cacheEntries)} cache entries ` +
      `(${count(memory.cacheInserts)} recorded; a fresh process, after a collection)`,
    `${memory.idleMb.toFixed(0)} / ${warm.peakRssMb.toFixed(0)} / ${memory.cachesFullMb.toFixed(0)} MB ` +
      `(heap in use ${memory.idleHeapMb.toFixed(0)} MB idle, ${memory.cachesFullHeapMb.toFixed(0)} MB with full caches: ` +
      `${count(((memory.cachesFullHeapMb - memory.idleHeapMb) * 2 ** 20) / memory.cacheEntries)} bytes per entry)`,
    '—',
    `peak ${atMost(peak, TARGETS.rssMb, ' MB')}`,
  ]);

  const header = ['Scenario', 'Case', 'regroute', 'Reference', 'Figure (target)'];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function outageRows(outage: OutageResult): string[][] {
  const { probe } = outage;
  const setting =
    `default probes (every ${probe.intervalSeconds} s, timeout ${probe.timeoutMs} ms, ${probe.failureThreshold} failures); ` +
    `a pod of ${outage.images} images every ${outage.podEveryMs} ms from the fault, which starts at a random point of the probe cycle`;
  const rows = outage.faults.map((fault) => {
    const window =
      fault.windowMs === null ? 'never routed around' : `routed around after ${ms(fault.windowMs)} ms`;
    const back = fault.backMs === null ? 'not back' : `back ${ms(fault.backMs)} ms after recovery`;
    const attempts =
      fault.sourceAttemptsPerSecond === null
        ? ''
        : `; ${fault.sourceAttemptsPerSecond.toFixed(1)} attempts/s at the failing source`;
    const windowOk = fault.windowMs !== null && fault.windowMs <= TARGETS.outageWindowMs;
    return [
      'Outage window',
      `${fault.name} (${(fault.faultMs / 1000).toFixed(1)} s${outage.repeats > 1 ? `; worst of ${outage.repeats}` : ''})`,
      `${window}; ${fault.toFailingSource} of ${fault.pods} pods sent to the failing source; ${back}${attempts}`,
      setting,
      `window ≤ ${TARGETS.outageWindowMs} ms ${check(windowOk)}; ${fault.wrongDigest} pods to another digest ${check(fault.wrongDigest === 0)}`,
    ];
  });
  const perSecond = (totals: Record<string, number>) =>
    Object.entries(totals)
      .filter(([, value]) => value > 0)
      .map(([operation, value]) => `${operation} ${value.toFixed(2)}`)
      .join(', ') || 'none';
  const { probeLoad } = outage;
  rows.push([
    'Outage window',
    `probe load: no admissions for ${probeLoad.seconds.toFixed(0)} s, one replica`,
    `${probeLoad.atProxyPerSecond.toFixed(2)} requests/s at the source's proxy`,
    `requests/s by operation: source ${perSecond(probeLoad.source)}; mirror ${perSecond(probeLoad.mirror)}`,
    'reported',
  ]);
  return rows;
}
