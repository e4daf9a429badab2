// `regroute explain`: how regroute sees images — normalized reference, route, candidates and, live, the decision.
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Config } from '../config/schema.js';
import { formatReference, parseReference, type Reference } from '../reference/index.js';
import { type Decision, decide } from '../routing/decision.js';
import { observe } from '../routing/observe.js';
import { matchRoute, type RouteMatch } from '../routing/route.js';
import { createStateHandle, type LiveStateHandle } from '../state/create.js';
import type { LiveState } from '../state/live-state.js';
import type { Health, StateHandle } from '../state/state.js';
import { loadConfigOption } from './config-option.js';
import { EXIT, type Io } from './io.js';
import { explainUsage } from './usage.js';

interface Explanation {
  image: string;
  reference?: Reference;
  route?: { prefix: string; source: string } | null;
  candidates?: string[];
  decision?: {
    reason: string;
    target: string | null;
    digest: string | null;
    candidates: Record<string, string>;
  };
  /** The health of each registry of the route, source first, and why a failing one fails. */
  registries?: Record<string, RegistryStatus>;
  /** What an operator can do about what the decision found (a mirror holding one platform of an index). */
  advice?: string[];
  error?: string;
}

interface RegistryStatus {
  health: Health;
  /** The last probe or request failure: its cause (an error code, an HTTP status, a timeout), when, how many in a row. */
  lastFailure?: { error: string; at: string; consecutiveFailures: number };
}

/** The route's registries as the decision saw them: health, and for a registry that failed, why. */
function registryStatuses(match: RouteMatch, state: LiveStateHandle): Record<string, RegistryStatus> {
  const hosts = new Set([match.source.registry, ...match.candidates.map((c) => c.registry)]);
  return Object.fromEntries(
    [...hosts].map((host) => {
      const failure = state.tracker.lastFailure(host);
      const status: RegistryStatus = { health: state.state.health(host) };
      if (failure)
        status.lastFailure = {
          error: failure.error,
          at: new Date(failure.at).toISOString(),
          consecutiveFailures: failure.consecutiveFailures,
        };
      return [host, status];
    }),
  );
}

async function explainOne(
  image: string,
  config: Config,
  state: LiveStateHandle | null,
): Promise<Explanation> {
  const parsed = parseReference(image);
  if (!parsed.ok) return { image, error: parsed.error.message };
  const reference = parsed.reference;
  const match = matchRoute(reference, config.routes);
  const explanation: Explanation = {
    image,
    // Spelled out so the JSON keys keep this order whatever the parser's object looks like.
    reference: {
      registry: reference.registry,
      repository: reference.repository,
      tag: reference.tag,
      digest: reference.digest,
    },
    route: match
      ? { prefix: match.route.prefix, source: `${match.source.registry}/${match.source.repository}` }
      : null,
    candidates: match
      ? match.candidates.map((c) =>
          formatReference({ ...reference, registry: c.registry, repository: c.repository }),
        )
      : [],
  };
  if (!match || !state) return explanation;
  const { decision, advice } = await decideNow(
    reference,
    match,
    config,
    state,
    AbortSignal.timeout(config.admission.deadlineMs),
  );
  explanation.decision = {
    reason: decision.reason,
    target: decision.target,
    digest: decision.digest,
    candidates: Object.fromEntries(decision.verdicts.map((v) => [v.location, v.verdict])),
  };
  explanation.registries = registryStatuses(match, state);
  if (advice.length > 0) explanation.advice = advice;
  return explanation;
}

/** The decision the webhook would make now, and what an operator can do about what it found. */
export interface LiveDecision {
  readonly decision: Decision;
  /** The digest the source names for the image, when known. */
  readonly digest: string | null;
  readonly advice: string[];
}

/**
 * Decides as the webhook would. A mirror whose tag names other content may hold one platform of the source's index
 * (filled by pulling one node's image): reading the index tells it from a stale mirror, and says how to fix it.
 * Shared with `regroute probe`, which asks it about each mirror of the images it probes.
 */
export async function decideNow(
  reference: Reference,
  match: RouteMatch,
  config: Config,
  state: StateHandle,
  signal: AbortSignal,
): Promise<LiveDecision> {
  const { unverifiedTags } = config.admission;
  const once = async () => {
    const observation = await observe(reference, match, state.state, signal, unverifiedTags);
    return { observation, decision: decide(reference, match, observation, { unverifiedTags }) };
  };
  let { observation, decision } = await once();
  const live = state.state as Partial<LiveState>;
  if (
    observation.digest.kind === 'digest' &&
    decision.verdicts.some((v) => v.verdict === 'stale') &&
    live.readPlatforms
  ) {
    await live.readPlatforms(match.source, observation.digest.digest, signal);
    ({ observation, decision } = await once());
  }
  const digest = observation.digest.kind === 'digest' ? observation.digest.digest : null;
  const advice = decision.verdicts.flatMap((v) =>
    v.verdict === 'single-platform' && digest
      ? [
          `${v.location} holds one platform of the index ${match.source.registry}/${match.source.repository}@${digest} under the tag; copy every platform with: skopeo copy --all docker://${match.source.registry}/${match.source.repository}@${digest} docker://${v.location}:${reference.tag ?? 'latest'}`,
        ]
      : [],
  );
  return { decision, digest, advice };
}

function printText(e: Explanation, io: Io): void {
  if (e.error) {
    io.out(`${e.image}: invalid: ${e.error}`);
    return;
  }
  io.out(`${e.image}`);
  if (e.reference) io.out(`  reference:  ${formatReference(e.reference)}`);
  if (!e.route) {
    io.out('  route:      none (the image is never changed)');
    return;
  }
  io.out(`  route:      ${e.route.prefix} (tags resolved at ${e.route.source})`);
  for (const [i, candidate] of (e.candidates ?? []).entries()) io.out(`  candidate ${i + 1}: ${candidate}`);
  if (e.decision) {
    io.out(
      `  decision:   ${e.decision.target ? `rewrite to ${e.decision.target}` : 'unchanged'} (${e.decision.reason})`,
    );
    for (const [location, verdict] of Object.entries(e.decision.candidates))
      io.out(`    ${location}: ${verdict}`);
  }
  if (e.registries) {
    io.out('  registries:');
    for (const [host, { health, lastFailure }] of Object.entries(e.registries)) {
      const failure = lastFailure
        ? ` (last failure ${lastFailure.at}${lastFailure.consecutiveFailures > 0 ? `, ${lastFailure.consecutiveFailures} in a row` : ''}: ${lastFailure.error})`
        : '';
      io.out(`    ${host}: ${health}${failure}`);
    }
  }
  for (const line of e.advice ?? []) io.out(`  advice:     ${line}`);
}

export async function explainCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      offline: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length === 0) {
    io.err(explainUsage);
    return EXIT.usage;
  }
  const config = await loadConfigOption(values.config);
  const state = values.offline
    ? null
    : createStateHandle(config, pino({ level: 'silent' }), { probe: false });
  try {
    // One probe round first, bounded by the probe timeout, so decisions use health as the webhook would.
    await state?.prober.probeAll();
    let invalid = false;
    for (const image of positionals) {
      const explanation = await explainOne(image, config, state);
      invalid ||= explanation.error !== undefined;
      if (values.json) io.out(JSON.stringify(explanation));
      else printText(explanation, io);
    }
    return invalid ? EXIT.usage : EXIT.ok;
  } finally {
    await state?.close();
  }
}
