// Reading a config file: YAML → validated Config, with errors that name the path and what is wrong.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { Config } from './schema.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validates an already-parsed document. `origin` names it in errors (a file path, or "embedded default"). */
export function parseConfig(document: unknown, origin: string): Config {
  const result = Config.safeParse(document ?? {});
  if (!result.success) throw new ConfigError(`invalid config ${origin}:\n${z.prettifyError(result.error)}`);
  return checkConsistency(result.data, origin);
}

/** Rules that span fields: the schema checks each field alone. */
function checkConsistency(config: Config, origin: string): Config {
  const problems: string[] = [];
  const prefixes = new Map<string, number>();
  config.routes.forEach((route, index) => {
    const earlier = prefixes.get(route.prefix);
    if (earlier !== undefined)
      problems.push(`routes[${index}].prefix: "${route.prefix}" repeats routes[${earlier}].prefix`);
    prefixes.set(route.prefix, index);
  });
  for (const [host, settings] of Object.entries(config.registries)) {
    if (settings.insecure && settings.caFile) {
      problems.push(`registries["${host}"]: caFile has no effect with insecure: true (plain HTTP)`);
    }
  }
  if (config.server.metricsPort !== 0 && config.server.metricsPort === config.server.port) {
    problems.push('server.metricsPort: must differ from server.port');
  }
  if (problems.length > 0)
    throw new ConfigError(`invalid config ${origin}:\n${problems.map((p) => `✖ ${p}`).join('\n')}`);
  return config;
}

/**
 * The YAML parser's message without the excerpt of the file it appends: errors are logged (a refused reload above
 * all), and the excerpt would put whatever the offending line holds into the log. Line and column stay.
 */
function yamlProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n')[0] ?? message).replace(/:$/, '');
}

export function parseConfigText(text: string, origin: string): Config {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`invalid config ${origin}: not YAML: ${yamlProblem(error)}`);
  }
  return parseConfig(document, origin);
}

export async function loadConfigFile(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`config file ${path} not found`);
    if (code === 'EACCES') throw new ConfigError(`config file ${path} cannot be read (permission denied)`);
    throw new ConfigError(`cannot read config ${path}: ${code ?? String(error)}`);
  }
  return parseConfigText(text, path);
}

/** The embedded default: serves on 8443 with dev certs and has no routes, so it contacts nothing. */
export const defaultConfig = (): Config => parseConfig({}, '(embedded default)');
