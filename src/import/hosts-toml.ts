// containerd's registry host configuration: certs.d/<host>/hosts.toml, read as containerd's
// core/remotes/docker/config does (host order, capabilities, paths, TLS settings), and the mirror set it defines.
import { isIP } from 'node:net';
import { posix } from 'node:path';
import type { Finding, HostSetting, ImportModel, MirrorSet } from './model.js';
import { ImportError } from './model.js';
import { parseToml, type Table, TableReader } from './toml.js';

export type Capability = 'pull' | 'resolve' | 'push' | 'referrers';
const CAPABILITIES: readonly Capability[] = ['pull', 'resolve', 'push', 'referrers'];

/** One host containerd may contact for a registry, as its hostConfig holds it. */
export interface HostConfig {
  readonly scheme: string;
  /** host[:port]; '' for a server left unset (filled in by configureHosts). */
  readonly host: string;
  /** The API root, e.g. /v2, /us/v2, or the path as written with override_path. */
  readonly path: string;
  /** In containerd's order: pull, resolve, push, referrers. */
  readonly capabilities: readonly Capability[];
  readonly caCerts?: readonly string[];
  readonly clientPairs?: readonly (readonly [string, string])[];
  readonly skipVerify?: boolean;
  readonly header?: Readonly<Record<string, readonly string[]>>;
  readonly dialTimeoutSeconds?: number;
  /** The table it came from, e.g. `[host."https://mirror.local"]` or `server`. */
  readonly origin: string;
}

/** A host as containerd finally uses it. */
export interface RegistryHost extends HostConfig {
  /** HTTPS is tried first, and plain HTTP after a TLS handshake failure. */
  readonly httpFallback: boolean;
  /** containerd's default for the registry (no server in hosts.toml, or no hosts.toml at all). */
  readonly defaulted: boolean;
}

const GO_DURATION = /^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const UNIT_SECONDS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  μs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

/** Go's time.ParseDuration, in seconds; null when Go would refuse it. */
export function parseGoDuration(text: string): number | null {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  if (!GO_DURATION.test(text)) return null;
  const sign = text.startsWith('-') ? -1 : 1;
  let seconds = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    seconds += Number(amount) * (UNIT_SECONDS[unit as string] ?? 0);
  }
  return sign * seconds;
}

/** Go's net.SplitHostPort; null where it errs (no port, too many colons). */
export function splitHostPort(hostport: string): { host: string; port: string } | null {
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']');
    if (end < 0 || hostport[end + 1] !== ':') return null;
    return { host: hostport.slice(1, end), port: hostport.slice(end + 2) };
  }
  const colon = hostport.lastIndexOf(':');
  if (colon < 0 || hostport.slice(0, colon).includes(':')) return null;
  return { host: hostport.slice(0, colon), port: hostport.slice(colon + 1) };
}

/** containerd's IsLocalhost: localhost or a loopback address, port or not. */
export function isLocalhost(hostport: string): boolean {
  const host = splitHostPort(hostport)?.host ?? hostport;
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) {
    const canonical = new URL(`http://[${host}]`).hostname;
    return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
  }
  return false;
}

/** containerd's makeAbsPath, with Go's filepath.Join, which skips empty parts ('' joined to '' stays ''). */
function makeAbsPath(path: string, base: string): string {
  if (posix.isAbsolute(path)) return path;
  const parts = [base, path].filter((part) => part !== '');
  return parts.length === 0 ? '' : posix.join(...parts);
}

/** Go's path.Clean for an absolute URL path ('' stays ''). */
function cleanPath(path: string): string {
  if (path === '') return '';
  const cleaned = posix.normalize(path);
  return cleaned.length > 1 ? cleaned.replace(/\/+$/, '') : cleaned;
}

/** The parts of a URL containerd uses: scheme, host[:port], path (WHATWG's lone '/' read as Go's ''). */
export function parseServerUrl(
  server: string,
  where: string,
): { scheme: string; host: string; path: string } {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new ImportError(`${where}: unable to parse server ${server}`);
  }
  // WHATWG URLs always have a path ('/' at least); Go's have '' when none is written. A written lone '/' is read
  // as none too, where containerd would make it '//v2'.
  return {
    scheme: url.protocol.replace(/:$/, ''),
    host: url.host,
    path: url.pathname === '/' ? '' : url.pathname,
  };
}

function stringList(value: unknown[], what: string, where: string): string[] {
  return value.map((item) => {
    if (typeof item !== 'string')
      throw new ImportError(`${where}: unable to cast ${String(item)} to string (${what})`);
    return item;
  });
}

/** containerd's parseHostConfig: one [host."…"] table, or the file's top level for its server. */
function parseHostConfig(server: string, baseDir: string, config: TableReader, origin: string): HostConfig {
  const where = config.where;
  let scheme = '';
  let host = '';
  let path = '';
  const overridePath = config.boolean('override_path') ?? false;
  if (server !== '') {
    const parsed = parseServerUrl(server.startsWith('http') ? server : `https://${server}`, where);
    scheme = parsed.scheme;
    host = parsed.host;
    path = cleanPath(parsed.path);
    if (path.length > 0) {
      if (!path.endsWith('/v2') && !overridePath) path = `${path}/v2`;
    } else if (!overridePath) path = '/v2';
  }

  const capabilities = new Set<Capability>();
  const listed = config.strings('capabilities') ?? [];
  for (const name of listed) {
    const capability = name.toLowerCase() as Capability;
    if (!CAPABILITIES.includes(capability)) throw new ImportError(`${where}: unknown capability ${name}`);
    capabilities.add(capability);
  }
  const result: {
    -readonly [K in keyof HostConfig]: HostConfig[K];
  } = {
    scheme,
    host,
    path,
    capabilities: listed.length > 0 ? CAPABILITIES.filter((c) => capabilities.has(c)) : CAPABILITIES,
    origin,
  };

  const skipVerify = config.boolean('skip_verify');
  if (skipVerify !== undefined) result.skipVerify = skipVerify;

  const ca = config.raw('ca');
  if (typeof ca === 'string') result.caCerts = [makeAbsPath(ca, baseDir)];
  else if (Array.isArray(ca))
    result.caCerts = stringList(ca, 'ca', where).map((p) => makeAbsPath(p, baseDir));
  else if (ca !== undefined) throw new ImportError(`${where}: invalid type for "ca"`);

  const client = config.raw('client');
  if (typeof client === 'string') result.clientPairs = [[makeAbsPath(client, baseDir), '']];
  else if (Array.isArray(client)) {
    result.clientPairs = client.map((pair): [string, string] => {
      if (typeof pair === 'string') return [makeAbsPath(pair, baseDir), ''];
      if (Array.isArray(pair)) {
        const files = stringList(pair, 'client', where).map((p) => makeAbsPath(p, baseDir));
        if (files.length !== 2) throw new ImportError(`${where}: invalid pair for "client"`);
        return [files[0] as string, files[1] as string];
      }
      throw new ImportError(`${where}: invalid type for "client"`);
    });
  } else if (client !== undefined) throw new ImportError(`${where}: invalid type for "client"`);

  const header = config.tableOf('header');
  if (header !== undefined) {
    result.header = Object.fromEntries(
      Object.entries(header).map(([key, value]) => {
        if (typeof value === 'string') return [key, [value]];
        if (Array.isArray(value)) return [key, stringList(value, `header ${key}`, where)];
        throw new ImportError(`${where}: invalid type for header "${key}"`);
      }),
    );
  }

  const dialTimeout = config.string('dial_timeout');
  if (dialTimeout !== undefined && dialTimeout !== '') {
    const seconds = parseGoDuration(dialTimeout);
    if (seconds === null)
      throw new ImportError(`${where}: invalid duration "${dialTimeout}" for "dial_timeout"`);
    result.dialTimeoutSeconds = seconds;
  }
  return result;
}

/**
 * containerd's parseHostsFile: every [host."…"] table in file order, then the server (host '' when unset).
 * Relative `ca` and `client` paths are taken from `baseDir`, the host's directory.
 */
export function parseHostsFile(
  text: string,
  { name, baseDir }: { name: string; baseDir: string },
): { hosts: HostConfig[]; findings: Finding[] } {
  const document = parseToml(name, text);
  const top = new TableReader(document, name);
  const findings: Finding[] = [];
  const hosts: HostConfig[] = [];
  const hostTables = top.tableOf('host') ?? {};
  for (const [url, table] of Object.entries(hostTables)) {
    if (typeof table !== 'object' || table === null || Array.isArray(table)) {
      throw new ImportError(`${name}: host."${url}" must be a table`);
    }
    const origin = `[host."${url}"]`;
    const reader = new TableReader(table as Table, `${name}: ${origin}`);
    hosts.push(parseHostConfig(url, baseDir, reader, origin));
    findings.push(...reader.unknownKeys());
  }
  const server = top.string('server') ?? '';
  hosts.push(parseHostConfig(server, baseDir, top, 'server'));
  findings.push(...top.unknownKeys());
  return { hosts, findings };
}

export interface HostOptions {
  /** containerd's DefaultScheme ('' or unset: its own choice). */
  readonly defaultScheme?: string;
  /** A default TLS config is given (as CRI does for insecure_skip_verify). */
  readonly defaultTLS?: boolean;
}

/**
 * containerd's ConfigureHosts for one registry: the hosts of its hosts.toml (null when there is none), with the
 * server filled in when unset (Docker Hub's is registry-1.docker.io) and HTTPS-then-HTTP where TLS is configured for
 * a plain-HTTP host.
 */
export function configureHosts(
  registry: string,
  hosts: readonly HostConfig[] | null,
  options: HostOptions = {},
): RegistryHost[] {
  const list: (HostConfig & { defaulted?: boolean })[] = hosts
    ? [...hosts]
    : [{ scheme: '', host: '', path: '', capabilities: [], origin: 'default' }];
  const last = list[list.length - 1];
  if (last && last.host === '') {
    let scheme: string;
    let host = registry;
    let skipVerify = last.skipVerify;
    if (registry === 'docker.io') {
      scheme = 'https';
      host = 'registry-1.docker.io';
    } else if (isLocalhost(registry)) {
      if (!options.defaultScheme) {
        const port = splitHostPort(registry)?.port ?? '';
        // containerd's HTTP fallback handles the ambiguity of a loopback port other than 443.
        scheme = port === '' || port === '443' ? 'https' : 'http';
        if (port !== '80') skipVerify = true;
      } else scheme = options.defaultScheme;
    } else scheme = options.defaultScheme || 'https';
    list[list.length - 1] = {
      ...last,
      scheme,
      host,
      path: '/v2',
      capabilities: CAPABILITIES,
      ...(skipVerify !== undefined ? { skipVerify } : {}),
      defaulted: true,
    };
  }
  return list.map((host) => {
    const explicitTLS =
      options.defaultTLS === true ||
      host.caCerts !== undefined ||
      host.clientPairs !== undefined ||
      host.skipVerify !== undefined;
    const port = splitHostPort(host.host)?.port ?? '';
    const httpFallback = host.scheme === 'http' && explicitTLS && port !== '80';
    const { defaulted, ...config } = host;
    return {
      ...config,
      scheme: httpFallback ? 'https' : host.scheme,
      httpFallback,
      defaulted: defaulted === true,
    };
  });
}

/** The host a certs.d directory configures: `host_port_` is `host:port`; `_default` applies to every registry. */
export function hostFromDirectory(name: string): string | null {
  if (name === '_default') return null;
  const port = /^(.+)_([0-9]+)_$/.exec(name);
  return port ? `${port[1]}:${port[2]}` : name;
}

/** Docker Hub's API hosts, which regroute names docker.io as images do. */
const DOCKER_HUB = new Set(['registry-1.docker.io', 'index.docker.io', 'docker.io']);

/**
 * The regroute location of a containerd host: regroute reaches every registry at /v2/ on its host, so an API root of
 * /v2/<path> (override_path, e.g. a Harbor proxy-cache project) is the location host/<path>; any other root is not
 * reachable.
 */
export function locationOf(host: RegistryHost): string | null {
  const name = DOCKER_HUB.has(host.host) ? 'docker.io' : host.host;
  const path = host.path.replace(/\/+$/, '');
  if (path === '/v2') return name;
  if (path.startsWith('/v2/')) return `${name}${path.slice(3)}`;
  return null;
}

/**
 * The mirror set of one registry's containerd hosts: every host that can pull, in order. `upstreamIndex` is the
 * host that stands for the registry itself (hosts.toml: the server, last).
 */
export function containerdModel(
  registry: string,
  hosts: readonly RegistryHost[],
  upstreamIndex: number,
  where: string,
): ImportModel {
  const findings: Finding[] = [];
  const settings: HostSetting[] = [];
  const sources: string[] = [];
  const digestOnly: string[] = [];
  let upstream: string | null = null;
  for (const [index, host] of hosts.entries()) {
    const isUpstream = index === upstreamIndex;
    const at = `${where}: ${host.defaulted ? `default host ${host.scheme}://${host.host}` : host.origin}`;
    const say = (kind: Finding['kind'], message: string) => findings.push({ kind, where: at, message });
    const location = locationOf(host);
    if (location === null) {
      const root = host.path === '' ? 'the host root' : host.path;
      if (isUpstream) {
        say(
          'unsupported',
          `the registry's API is at ${root}, not /v2/ (or /v2/<path>): regroute cannot resolve tags there; ` +
            'no route is written',
        );
        return { mirrorSets: [], hosts: [], findings };
      }
      say(
        'unsupported',
        `the API is at ${root}, not /v2/ (or /v2/<path>): regroute cannot reach it; left out`,
      );
      continue;
    }
    if (!host.capabilities.includes('pull')) {
      if (isUpstream) {
        say(
          'changed',
          'the server lacks the pull capability: containerd never pulls from it, but regroute resolves tags there ' +
            'and keeps it as the last candidate',
        );
      } else {
        say('unsupported', 'no pull capability: containerd never pulls from this host; left out');
        continue;
      }
    }
    const registryHost = location.split('/')[0] as string;
    if (host.scheme === 'http') settings.push({ host: registryHost, insecure: true, where: at });
    if (host.httpFallback) {
      say(
        'changed',
        `containerd tries HTTPS first and falls back to plain HTTP for ${host.host}; regroute does not fall back: ` +
          'it uses verified HTTPS (set registries.<host>.insecure: true if the host serves plain HTTP only)',
      );
    }
    if (host.caCerts?.length === 1) {
      settings.push({ host: registryHost, caFile: host.caCerts[0] as string, where: at });
    } else if (host.caCerts && host.caCerts.length > 1) {
      say(
        'unsupported',
        `ca lists ${host.caCerts.length} files; regroute takes one PEM bundle per host: concatenate them ` +
          `(${host.caCerts.join(', ')}) and set registries."${registryHost}".caFile`,
      );
    }
    if (host.skipVerify === true && !host.defaulted) {
      say(
        'unsupported',
        'skip_verify = true: regroute always verifies TLS; give the CA as ca (caFile) instead',
      );
    }
    if (host.clientPairs && host.clientPairs.length > 0) {
      say(
        'unsupported',
        'client certificates: regroute presents none, so it reaches this host only if it accepts clients ' +
          'without one',
      );
    }
    if (host.header && Object.keys(host.header).length > 0) {
      say('unsupported', `header (${Object.keys(host.header).join(', ')}): regroute sends no extra headers`);
    }
    if (host.dialTimeoutSeconds !== undefined) {
      say(
        'unsupported',
        'dial_timeout: regroute bounds every request, connecting included, by probe.timeoutMs',
      );
    }
    if (!host.capabilities.includes('resolve') && !isUpstream) digestOnly.push(location);
    if (isUpstream) upstream = location;
    sources.push(location);
  }
  if (upstream === null) return { mirrorSets: [], hosts: settings, findings };
  if (sources.length === 1 && upstream === registry) {
    findings.push({
      kind: 'no-effect',
      where,
      message:
        'no mirror: containerd pulls these images from the registry itself, and regroute leaves them so',
    });
    return { mirrorSets: [], hosts: [], findings };
  }
  const mirrorSet: MirrorSet = { prefix: registry, upstream, sources, digestOnly, where };
  return { mirrorSets: [mirrorSet], hosts: settings, findings };
}

/** A certs.d/<host>/hosts.toml file, straight to the common model. */
export function importHostsToml(file: { name: string; text: string; directory: string }): ImportModel {
  const registry = hostFromDirectory(posix.basename(file.directory));
  if (registry === null) {
    return {
      mirrorSets: [],
      hosts: [],
      findings: [
        {
          kind: 'unsupported',
          where: file.name,
          message:
            '_default applies to every registry without a directory of its own; regroute routes by prefix: ' +
            'import a copy under each registry host it should apply to',
        },
      ],
    };
  }
  const { hosts, findings } = parseHostsFile(file.text, { name: file.name, baseDir: file.directory });
  const configured = configureHosts(registry, hosts);
  const model = containerdModel(registry, configured, configured.length - 1, file.name);
  return { ...model, findings: [...findings, ...model.findings] };
}

/**
 * A certs.d/<host> directory without hosts.toml, in Docker's layout: containerd trusts its *.crt files as CAs for
 * the registry and presents its *.cert/*.key pairs. There is nothing to route, but the CA matters if a route uses the
 * host.
 */
export function certFilesModel(directory: string, fileNames: readonly string[]): ImportModel {
  const registry = hostFromDirectory(posix.basename(directory));
  const cas = fileNames.filter((name) => name.endsWith('.crt')).map((name) => posix.join(directory, name));
  const clients = fileNames.filter((name) => name.endsWith('.cert'));
  const findings: Finding[] = [];
  const hosts: HostSetting[] = [];
  if (registry === null) {
    findings.push({
      kind: 'unsupported',
      where: directory,
      message:
        '_default applies to every registry without a directory of its own; regroute has no catch-all route',
    });
    return { mirrorSets: [], hosts, findings };
  }
  if (cas.length === 0 && clients.length === 0) {
    findings.push({
      kind: 'no-effect',
      where: directory,
      message: 'no hosts.toml and no certificate: nothing to import',
    });
    return { mirrorSets: [], hosts, findings };
  }
  if (cas.length === 1) hosts.push({ host: registry, caFile: cas[0] as string, where: directory });
  if (cas.length > 1) {
    findings.push({
      kind: 'unsupported',
      where: directory,
      message: `${cas.length} CA files; regroute takes one PEM bundle per host: concatenate them and set registries."${registry}".caFile`,
    });
  }
  if (clients.length > 0) {
    findings.push({
      kind: 'unsupported',
      where: directory,
      message: 'client certificates: regroute presents none',
    });
  }
  return { mirrorSets: [], hosts, findings };
}
