// `regroute probe`: probes every configured registry once and prints its health, latency and last error; then checks
// the content of the images it probes at each mirror of their route, as admission would judge it.
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Config } from '../config/schema.js';
import { parseReference, type Reference, splitLocation } from '../reference/index.js';
import type { Verdict } from '../routing/decision.js';
import { matchRoute, type RouteMatch } from '../routing/route.js';
import { createStateHandle } from '../state/create.js';
import type { StateHandle } from '../state/state.js';
import { loadConfigOption } from './config-option.js';
import { decideNow } from './explain.js';
import { EXIT, type Io } from './io.js';

/** Verdicts that say a mirror cannot serve the image: its content is not what the source names. */
const CONTENT_PROBLEMS: ReadonlySet<Verdict> = new Set(['stale', 'single-platform', 'mismatch']);

const WHAT: Partial<Record<Verdict, string>> = {
  chosen: 'holds the digest the source names',
  absent: 'does not hold the digest the source names',
  stale: 'its tag names other content than the source (a digest mismatch)',
  'single-platform': "holds one platform of the source's index under the tag",
  mismatch: 'served bytes that do not hash to the digest it claimed',
};

/** One image checked at one mirror of its route. */
export interface ContentCheck {
  readonly image: string;
  /** The mirror's repository for the image, `registry/repository`. */
  readonly candidate: string;
  readonly verdict: Verdict;
  /** The digest the source names for the image, when it was learned. */
  readonly digest: string | null;
  readonly problem: boolean;
  readonly advice?: string[];
}

const join = (...parts: string[]): string => parts.filter((part) => part !== '').join('/');

/** A healthCheck's reference written after a repository: a tag, or a digest (which holds a colon). */
const imageAt = (location: string, reference: string): string =>
  `${location}${reference.includes(':') ? '@' : ':'}${reference}`;

/**
 * The images `probe` checks content for: each registry's healthCheck image, when a route takes it, and for a mirror
 * (a candidate of a route) the image of that route whose copy it is: the route's prefix with the same remainder.
 * Wildcard prefixes name no one image and are passed over. Then the images given on the command line.
 */
export function probedImages(
  config: Pick<Config, 'registries' | 'routes'>,
  given: readonly string[] = [],
): string[] {
  const images = new Set<string>();
  for (const [registry, settings] of Object.entries(config.registries)) {
    const check = settings.healthCheck;
    if (!check) continue;
    const own = imageAt(`${registry}/${check.repository}`, check.reference);
    const parsed = parseReference(own);
    if (parsed.ok && matchRoute(parsed.reference, config.routes)) images.add(own);
    for (const route of config.routes) {
      if (route.prefix.startsWith('*.')) continue;
      for (const location of route.registries) {
        const { registry: host, path } = splitLocation(location);
        if (host !== registry) continue;
        if (path !== '' && check.repository !== path && !check.repository.startsWith(`${path}/`)) continue;
        const remainder = path === '' ? check.repository : check.repository.slice(path.length + 1);
        const mirrored = imageAt(join(route.prefix, remainder), check.reference);
        // Only when the route does take the image there (a longer prefix elsewhere may take it instead).
        const routed = parseReference(mirrored);
        const match = routed.ok ? matchRoute(routed.reference, config.routes) : null;
        if (
          match?.candidates.some((c) => `${c.registry}/${c.repository}` === `${registry}/${check.repository}`)
        )
          images.add(mirrored);
      }
    }
  }
  for (const image of given) images.add(image);
  return [...images];
}

/**
 * Each mirror of the image's route asked on its own, as if it came first: the webhook stops at the first candidate
 * holding the digest, and a mirror after it would never be looked at.
 */
async function checkImage(
  image: string,
  reference: Reference,
  match: RouteMatch,
  config: Config,
  state: StateHandle,
): Promise<ContentCheck[]> {
  const mirrors = match.candidates.filter(
    (c) => c.registry !== match.source.registry || c.repository !== match.source.repository,
  );
  return Promise.all(
    mirrors.map(async (candidate): Promise<ContentCheck> => {
      const signal = AbortSignal.timeout(config.admission.deadlineMs);
      const { decision, digest, advice } = await decideNow(
        reference,
        { ...match, candidates: [candidate] },
        config,
        state,
        signal,
      );
      const verdict = decision.verdicts[0]?.verdict ?? 'not-checked';
      const check = {
        image,
        candidate: `${candidate.registry}/${candidate.repository}`,
        verdict,
        digest,
        problem: CONTENT_PROBLEMS.has(verdict),
      };
      return advice.length > 0 ? { ...check, advice } : check;
    }),
  );
}

export async function contentChecks(
  images: readonly string[],
  config: Config,
  state: StateHandle,
): Promise<{ checks: ContentCheck[]; invalid: string[] }> {
  const checks: ContentCheck[] = [];
  const invalid: string[] = [];
  for (const image of images) {
    const parsed = parseReference(image);
    if (!parsed.ok) {
      invalid.push(`${image}: invalid: ${parsed.error.message}`);
      continue;
    }
    const match = matchRoute(parsed.reference, config.routes);
    if (!match) {
      invalid.push(`${image}: no route takes it`);
      continue;
    }
    checks.push(...(await checkImage(image, parsed.reference, match, config, state)));
  }
  return { checks, invalid };
}

export async function probeCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
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
    const { checks, invalid } = await contentChecks(probedImages(config, positionals), config, handle);
    for (const line of invalid) io.err(line);
    if (!values.json && checks.length > 0) io.out('content at mirrors:');
    for (const check of checks) {
      if (values.json) {
        io.out(JSON.stringify(check));
        continue;
      }
      const what = WHAT[check.verdict] ?? check.verdict;
      io.out(`  ${check.image} at ${check.candidate}: ${check.problem ? 'PROBLEM ' : ''}${what}`);
      for (const line of check.advice ?? []) io.out(`    advice: ${line}`);
    }
    if (invalid.length > 0) return EXIT.usage;
    return results.every((r) => r.ok) && !checks.some((c) => c.problem) ? EXIT.ok : EXIT.failure;
  } finally {
    await handle.close();
  }
}
