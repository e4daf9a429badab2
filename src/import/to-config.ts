// The common import model as a regroute config: routes and registries, the comments that say where each came from,
// and the findings for whatever has no regroute equivalent. Pure: the command prints what this returns.
import { Document, type YAMLMap, type YAMLSeq } from 'yaml';
import type { z } from 'zod';
import { Config, type RegistrySettings, Route } from '../config/schema.js';
import { splitLocation } from '../reference/index.js';
import type { Finding, FindingKind, ImportModel } from './model.js';

export interface ImportOptions {
  /**
   * List each route's own registry first and its mirrors after it: pods stay where they are while their registry is
   * healthy and holds the digest. The default keeps the node's order (mirrors first).
   */
  readonly sourceFirst?: boolean;
}

type RouteInput = z.input<typeof Route>;
type RegistryInput = z.input<typeof RegistrySettings>;

export interface ImportedRoute {
  readonly route: RouteInput;
  /** Comment lines printed above the route. */
  readonly comment: readonly string[];
}

export interface ImportResult {
  readonly routes: readonly ImportedRoute[];
  readonly registries: Readonly<Record<string, { settings: RegistryInput; comment: readonly string[] }>>;
  readonly findings: readonly Finding[];
}

const unique = <T>(items: readonly T[]): T[] => [...new Set(items)];
const hostOf = (location: string): string => splitLocation(location).registry;

/** What zod says is wrong, on one line. */
function problems(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'value'}: ${issue.message}`).join('; ');
}

/**
 * Longest prefix first, then by name: regroute's own rule (longest match, earlier route on a tie) then picks what
 * containers/image's longest-prefix rule picks, wildcards that match the same host included.
 */
const byPrecedence = (a: ImportedRoute, b: ImportedRoute): number =>
  b.route.prefix.length - a.route.prefix.length || (a.route.prefix < b.route.prefix ? -1 : 1);

function buildRoutes(model: ImportModel, options: ImportOptions, findings: Finding[]): ImportedRoute[] {
  const seen = new Map<string, string>();
  const routes: ImportedRoute[] = [];
  for (const set of model.mirrorSets) {
    const first = seen.get(set.prefix);
    if (first !== undefined) {
      findings.push({
        kind: 'no-effect',
        where: set.where,
        message: `prefix "${set.prefix}" was imported from ${first} already; the first one given is kept`,
      });
      continue;
    }
    let registries = unique(set.sources);
    if (options.sourceFirst && set.upstream !== null) {
      registries = [set.upstream, ...registries.filter((location) => location !== set.upstream)];
    }
    const route: RouteInput = {
      prefix: set.prefix,
      ...(set.upstream !== null && set.upstream !== set.prefix ? { source: set.upstream } : {}),
      registries,
    };
    const checked = Route.safeParse(route);
    if (!checked.success) {
      findings.push({
        kind: 'unsupported',
        where: set.where,
        message: `cannot be written as a regroute route (${problems(checked.error)}); no route is written`,
      });
      continue;
    }
    seen.set(set.prefix, set.where);
    const comment = [`from ${set.where}`];
    if (route.source) {
      comment.push(
        `the node never pulls ${set.prefix}/… as named: tags are resolved at ${route.source}, where it pulls them`,
      );
    }
    if (set.upstream === null) {
      comment.push(
        "the image's own registry is tried after these: with none of them holding the digest, it stays",
      );
    }
    routes.push({ route, comment });
  }
  return routes.sort(byPrecedence);
}

function buildRegistries(
  model: ImportModel,
  routes: readonly ImportedRoute[],
  findings: Finding[],
): ImportResult['registries'] {
  const used = new Set(
    routes.flatMap(({ route }) => [...route.registries, ...(route.source ? [route.source] : [])].map(hostOf)),
  );
  const registries: Record<string, { settings: RegistryInput; comment: string[] }> = {};
  const byHost = new Map<string, { transport?: 'http' | 'https'; caFile?: string; from: string[] }>();
  for (const setting of model.hosts) {
    if (!used.has(setting.host)) {
      findings.push({
        kind: 'no-effect',
        where: setting.where,
        message: `no route uses ${setting.host}, so its ${setting.insecure ? 'insecure' : 'CA'} setting is not written`,
      });
      continue;
    }
    const merged = byHost.get(setting.host) ?? { from: [] };
    let applied = true;
    const conflict = (what: string) => {
      applied = false;
      findings.push({
        kind: 'unsupported',
        where: setting.where,
        message: `${setting.host}: ${what}; regroute keeps one setting per host, the first one read (${merged.from[0]})`,
      });
    };
    if (setting.insecure) {
      if (merged.transport === 'https') conflict('plain HTTP here, TLS with a CA elsewhere');
      else merged.transport = 'http';
    }
    if (setting.caFile !== undefined) {
      if (merged.transport === 'http') conflict('a CA file here, plain HTTP elsewhere');
      else if (merged.caFile !== undefined && merged.caFile !== setting.caFile)
        conflict(`CA file ${setting.caFile} here, ${merged.caFile} elsewhere`);
      else {
        merged.transport = 'https';
        merged.caFile = setting.caFile;
      }
    }
    if (applied && !merged.from.includes(setting.where)) merged.from.push(setting.where);
    byHost.set(setting.host, merged);
  }
  for (const [host, merged] of [...byHost].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const settings: RegistryInput =
      merged.transport === 'http' ? { insecure: true } : merged.caFile ? { caFile: merged.caFile } : {};
    if (Object.keys(settings).length === 0) continue;
    const checked = Config.safeParse({ registries: { [host]: settings } });
    if (!checked.success) {
      findings.push({
        kind: 'unsupported',
        where: merged.from[0] ?? host,
        message: `cannot be written as regroute registry settings (${problems(checked.error)})`,
      });
      continue;
    }
    const comment = merged.from.map((where) => `from ${where}`);
    if (settings.insecure) comment.push('plain HTTP: regroute logs a warning about it at start');
    registries[host] = { settings, comment };
  }
  return registries;
}

/** Turns the common model into regroute routes and registries; never throws on what the model holds. */
export function toConfig(model: ImportModel, options: ImportOptions = {}): ImportResult {
  const findings: Finding[] = [...model.findings];
  const routes = buildRoutes(model, options, findings);
  const registries = buildRegistries(model, routes, findings);
  const written = new Set(routes.map(({ route }) => route.prefix));
  const digestOnly = unique(
    model.mirrorSets.filter((set) => written.has(set.prefix)).flatMap((set) => set.digestOnly),
  );
  if (digestOnly.length > 0) {
    findings.push({
      kind: 'changed',
      where: digestOnly.join(', '),
      message:
        'the node pulls only by digest from these mirrors. regroute moves an image to a mirror only pinned to the ' +
        "digest its source names, which keeps to that, except when a route's source is failing and no digest of " +
        'the tag is known: with admission.unverifiedTags: allow (the default) tags that the mirrors agree on route ' +
        'the pod. Set admission.unverifiedTags: deny to never trust a tag read at a mirror',
    });
  }
  return { routes, registries, findings };
}

/** The config part of an import result, as parseConfig takes it. */
export const configOf = (
  result: ImportResult,
): { routes: RouteInput[]; registries: Record<string, RegistryInput> } => ({
  routes: result.routes.map(({ route }) => route),
  registries: Object.fromEntries(
    Object.entries(result.registries).map(([host, { settings }]) => [host, settings]),
  ),
});

const KIND_LABEL: Record<FindingKind, string> = {
  unsupported: 'unsupported',
  changed: 'changed meaning',
  'out-of-scope': 'out of scope',
  'unknown-key': 'unknown key',
  'no-effect': 'nothing to route',
};

/** Word-wraps one comment paragraph; continuation lines are indented by `indent`. */
function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `${indent}${word}`;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

const WIDTH = 108;

function header(result: ImportResult, inputs: readonly string[], options: ImportOptions): string[] {
  const lines = [
    'regroute config written by `regroute import` from:',
    ...inputs.map((input) => `  ${input}`),
    '',
  ];
  const order = options.sourceFirst
    ? 'Each route lists the registry itself first, then its mirrors in the order the node tries them ' +
      '(--source-first): pods stay on their registry while it is healthy and holds the digest, and go to a mirror ' +
      'only when it does not.'
    : 'Each route lists the pull sources in the order the node tries them: mirrors first, the registry itself last. ' +
      "regroute picks the first healthy candidate that holds the image's digest, so, like the node, it sends a pod " +
      'to a mirror whenever the mirror holds the image. To keep pods on their own registry while it is healthy and ' +
      'use the mirrors only when it is not, put the registry first (regroute import --source-first).';
  lines.push(...wrap(order, WIDTH, ''));
  if (result.findings.length > 0) {
    lines.push('', `Not carried over, or carried over with another meaning (${result.findings.length}):`);
    for (const finding of result.findings) {
      lines.push(
        ...wrap(`- [${KIND_LABEL[finding.kind]}] ${finding.where}: ${finding.message}`, WIDTH, '    ').map(
          (line) => `  ${line}`,
        ),
      );
    }
  }
  return lines;
}

const asComment = (lines: readonly string[]): string =>
  lines
    .flatMap((line) => wrap(line, WIDTH - 4, '  '))
    .map((line) => ` ${line}`)
    .join('\n');

/** The YAML the command prints: a header of `# ` lines, then routes and registries with their origins. */
export function renderConfig(
  result: ImportResult,
  inputs: readonly string[],
  options: ImportOptions = {},
): string {
  const document = new Document(configOf(result));
  const routes = document.get('routes') as YAMLSeq;
  for (const [index, item] of routes.items.entries()) {
    const comment = result.routes[index]?.comment;
    if (comment && item && typeof item === 'object') (item as YAMLMap).commentBefore = asComment(comment);
  }
  const registries = document.get('registries') as YAMLMap;
  for (const pair of registries.items) {
    const host = String((pair.key as { value?: unknown }).value ?? pair.key);
    const comment = result.registries[host]?.comment;
    if (comment && pair.key && typeof pair.key === 'object') {
      (pair.key as { commentBefore?: string }).commentBefore = asComment(comment);
    }
  }
  const top = header(result, inputs, options)
    .map((line) => (line === '' ? '#' : `# ${line}`))
    .join('\n');
  return `${top}\n\n${document.toString({ lineWidth: 0 })}`;
}
