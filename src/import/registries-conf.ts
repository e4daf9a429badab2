// containers-registries.conf(5), as CRI-O and podman read it: the file, its registries.conf.d drop-ins, and the
// mirror sets they define. Loading follows containers/image's sysregistriesv2 (validation, merge, order) so that what
// the import translates is what the node runs.
import { splitLocation } from '../reference/index.js';
import { type Finding, ImportError, type ImportModel, type MirrorSet, type SourceText } from './model.js';
import { parseToml, type Table, TableReader } from './toml.js';

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

export interface Endpoint {
  /** host[:port][/path], trailing slashes removed; '' only for a wildcard prefix's own location. */
  readonly location: string;
  readonly insecure: boolean;
  /** Only on mirrors; undefined when unset (which means `all` unless the registry is mirror-by-digest-only). */
  readonly pullFromMirror?: PullFromMirror;
}

export interface RegistryEntry extends Endpoint {
  /** What the entry applies to: defaults to the location. */
  readonly prefix: string;
  readonly blocked: boolean;
  readonly mirrorByDigestOnly: boolean;
  readonly mirrors: readonly Endpoint[];
  /** The file the entry was read from. */
  readonly origin: string;
}

export interface RegistriesConf {
  /** After drop-ins are merged: one entry per prefix, sorted by prefix (containers/image's order). */
  readonly registries: readonly RegistryEntry[];
  /** undefined when no file sets it. */
  readonly unqualifiedSearchRegistries?: readonly string[];
  readonly shortNameMode?: string;
  readonly credentialHelpers?: readonly string[];
  /** Findings about the files themselves: settings out of regroute's scope, unknown keys, replaced entries. */
  readonly findings: readonly Finding[];
}

const PULL_FROM_MIRROR: readonly string[] = ['all', 'digest-only', 'tag-only'];
const SHORT_NAME_MODES: readonly string[] = ['disabled', 'enforcing', 'permissive'];
/** distribution/reference's DomainRegexp, anchored: what an unqualified-search registry must be. */
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?$/;

/** containers/image's parseLocation: trailing slashes go, a URI scheme is an error. */
export function parseLocation(input: string): string {
  const trimmed = input.replace(/\/+$/, '');
  if (trimmed.startsWith('http://') || trimmed.startsWith('https://')) {
    throw new ImportError(`invalid location '${input}': URI schemes are not supported`);
  }
  return trimmed;
}

/** parseLocation, its error naming the file. */
function locationIn(file: string, input: string): string {
  try {
    return parseLocation(input);
  } catch (error) {
    throw error instanceof ImportError ? new ImportError(`${file}: ${error.message}`) : error;
  }
}

interface FileConf {
  readonly registries: RegistryEntry[];
  readonly unqualifiedSearchRegistries?: string[];
  readonly shortNameMode?: string;
  readonly credentialHelpers?: string[];
  readonly findings: Finding[];
}

const outOfScope = (where: string, key: string, why: string): Finding => ({
  kind: 'out-of-scope',
  where,
  message: `"${key}": ${why}`,
});

const SHORT_NAMES_WHY =
  'regroute routes the fully qualified name an image normalizes to (nginx is docker.io/library/nginx, as the ' +
  'kubelet reads it); CRI-O may resolve a short name through this setting to another registry, which regroute ' +
  'does not follow: write images fully qualified';

/** One [[registry]] table, validated as containers/image's postProcessRegistries does. */
function readRegistry(table: Table, index: number, file: string, findings: Finding[]): RegistryEntry {
  const reader = new TableReader(table, `${file}: [[registry]] #${index + 1}`);
  const location = locationIn(file, reader.string('location') ?? '');
  let prefix = reader.string('prefix') ?? '';
  if (prefix === '') {
    if (location === '')
      throw new ImportError(`${file}: invalid condition: both location and prefix are unset`);
    prefix = location;
  } else {
    prefix = locationIn(file, prefix);
    if (!prefix.startsWith('*.') && location === '') {
      throw new ImportError(
        `${file}: invalid condition: location is unset and prefix is not in the format: *.example.com`,
      );
    }
  }
  if (reader.string('pull-from-mirror') !== undefined) {
    throw new ImportError(`${file}: pull-from-mirror must not be set for a non-mirror registry "${prefix}"`);
  }
  const mirrorByDigestOnly = reader.boolean('mirror-by-digest-only') ?? false;
  const where = `${file}: [[registry]] prefix "${prefix}"`;
  const mirrors = (reader.tables('mirror') ?? []).map((mirrorTable, mirrorIndex): Endpoint => {
    const mirror = new TableReader(mirrorTable, `${where}, [[registry.mirror]] #${mirrorIndex + 1}`);
    const mirrorLocation = locationIn(file, mirror.string('location') ?? '');
    if (mirrorLocation === '') throw new ImportError(`${file}: invalid condition: mirror location is unset`);
    const pullFromMirror = mirror.string('pull-from-mirror');
    if (mirrorByDigestOnly && pullFromMirror !== undefined && pullFromMirror !== '') {
      throw new ImportError(
        `${file}: cannot set mirror usage mirror-by-digest-only for the registry ("${prefix}") and ` +
          `pull-from-mirror for per-mirror ("${mirrorLocation}") at the same time`,
      );
    }
    if (pullFromMirror !== undefined && pullFromMirror !== '' && !PULL_FROM_MIRROR.includes(pullFromMirror)) {
      throw new ImportError(
        `${file}: unsupported pull-from-mirror value "${pullFromMirror}" for mirror "${mirrorLocation}"`,
      );
    }
    const insecure = mirror.boolean('insecure') ?? false;
    findings.push(...mirror.unknownKeys());
    return {
      location: mirrorLocation,
      insecure,
      ...(pullFromMirror ? { pullFromMirror: pullFromMirror as PullFromMirror } : {}),
    };
  });
  const entry: RegistryEntry = {
    prefix,
    location,
    insecure: reader.boolean('insecure') ?? false,
    blocked: reader.boolean('blocked') ?? false,
    mirrorByDigestOnly,
    mirrors,
    origin: file,
  };
  findings.push(...reader.unknownKeys());
  return entry;
}

/** The v1 format ([registries.search|insecure|block]): each insecure or blocked host becomes an entry. */
function convertV1(v1: TableReader, file: string, findings: Finding[]): FileConf {
  const list = (name: string): string[] | undefined => {
    const sub = v1.tableOf(name);
    if (!sub) return undefined;
    const reader = new TableReader(sub, `${file}: [registries.${name}]`);
    const values = reader.strings('registries');
    findings.push(...reader.unknownKeys());
    return values;
  };
  const search = list('search');
  const insecure = list('insecure') ?? [];
  const block = list('block') ?? [];
  findings.push(...v1.unknownKeys());
  const byLocation = new Map<string, { insecure: boolean; blocked: boolean }>();
  const entryFor = (raw: string) => {
    const location = locationIn(file, raw);
    let entry = byLocation.get(location);
    if (!entry) {
      entry = { insecure: false, blocked: false };
      byLocation.set(location, entry);
    }
    return entry;
  };
  for (const location of block) entryFor(location).blocked = true;
  for (const location of insecure) entryFor(location).insecure = true;
  const registries = [...byLocation].map(
    ([location, flags]): RegistryEntry => ({
      prefix: location,
      location,
      ...flags,
      mirrorByDigestOnly: false,
      mirrors: [],
      origin: file,
    }),
  );
  return { registries, ...(search !== undefined ? { unqualifiedSearchRegistries: search } : {}), findings };
}

/** One file, as containers/image's loadConfigFile reads it; `dropIn` files must be in the v2 format. */
export function readRegistriesConfFile(file: SourceText, dropIn: boolean): FileConf {
  const document = parseToml(file.name, file.text);
  const top = new TableReader(document, file.name);
  const findings: Finding[] = [];
  const v2Keys = [
    'registry',
    'unqualified-search-registries',
    'credential-helpers',
    'short-name-mode',
    'additional-layer-store-auth-helper',
    'aliases',
  ];
  const v1Table = top.tableOf('registries');
  const v1Set =
    v1Table !== undefined &&
    ['search', 'insecure', 'block'].some((name) => {
      const sub = v1Table[name];
      return typeof sub === 'object' && sub !== null && (sub as Table).registries !== undefined;
    });

  let conf: FileConf;
  if (v1Set && v1Table) {
    if (dropIn) throw new ImportError(`${file.name}: registry must be in v2 format but is in v1`);
    if (v2Keys.some((key) => top.has(key))) {
      throw new ImportError(`${file.name}: mixing sysregistry v1/v2 is not supported`);
    }
    conf = convertV1(new TableReader(v1Table, `${file.name}: [registries]`), file.name, findings);
  } else {
    if (v1Table) findings.push(...new TableReader(v1Table, `${file.name}: [registries]`).unknownKeys());
    const registries = (top.tables('registry') ?? []).map((table, index) =>
      readRegistry(table, index, file.name, findings),
    );
    const search = top.strings('unqualified-search-registries');
    const shortNameMode = top.string('short-name-mode');
    const credentialHelpers = top.strings('credential-helpers');
    conf = {
      registries,
      ...(search !== undefined ? { unqualifiedSearchRegistries: search } : {}),
      ...(shortNameMode ? { shortNameMode } : {}),
      ...(credentialHelpers !== undefined ? { credentialHelpers } : {}),
      findings,
    };
  }
  top.known('registries');
  const additionalHelper = top.string('additional-layer-store-auth-helper');
  const aliases = top.tableOf('aliases');
  findings.push(...top.unknownKeys());

  // postProcessRegistries: one location may back several prefixes, but never with other security settings.
  const byLocation = new Map<string, RegistryEntry>();
  for (const entry of conf.registries) {
    const key = entry.location === '' ? entry.prefix : entry.location;
    const other = byLocation.get(key);
    if (other && other.insecure !== entry.insecure) {
      throw new ImportError(
        `${file.name}: registry '${entry.location}' is defined multiple times with conflicting 'insecure' setting`,
      );
    }
    if (other && other.blocked !== entry.blocked) {
      throw new ImportError(
        `${file.name}: registry '${entry.location}' is defined multiple times with conflicting 'blocked' setting`,
      );
    }
    if (!other) byLocation.set(key, entry);
  }
  const search = (conf.unqualifiedSearchRegistries ?? []).map((raw) => {
    const registry = locationIn(file.name, raw);
    if (!DOMAIN.test(registry)) {
      throw new ImportError(`${file.name}: Invalid unqualified-search-registries entry "${registry}"`);
    }
    return registry;
  });
  // The first entry of a prefix wins within a file; a later one is dropped.
  const unique = new Map<string, RegistryEntry>();
  for (const entry of conf.registries) {
    if (unique.has(entry.prefix)) {
      findings.push({
        kind: 'no-effect',
        where: `${file.name}: [[registry]] prefix "${entry.prefix}"`,
        message: 'defined again in the same file: containers/image uses the first definition only',
      });
    } else unique.set(entry.prefix, entry);
  }
  if (conf.shortNameMode !== undefined && !SHORT_NAME_MODES.includes(conf.shortNameMode)) {
    throw new ImportError(`${file.name}: invalid short-name mode: "${conf.shortNameMode}"`);
  }
  for (const entry of unique.values()) {
    if (entry.prefix.startsWith('*.') && /[/@:]/.test(entry.prefix)) {
      throw new ImportError(
        `${file.name}: Wildcarded prefix should be in the format: *.example.com. ` +
          `Current prefix "${entry.prefix}" is incorrectly formatted`,
      );
    }
  }

  if (conf.unqualifiedSearchRegistries !== undefined)
    findings.push(outOfScope(file.name, 'unqualified-search-registries', SHORT_NAMES_WHY));
  if (conf.shortNameMode !== undefined)
    findings.push(outOfScope(file.name, 'short-name-mode', SHORT_NAMES_WHY));
  if (aliases !== undefined) findings.push(outOfScope(file.name, 'aliases', SHORT_NAMES_WHY));
  if (conf.credentialHelpers !== undefined) {
    findings.push(
      outOfScope(
        file.name,
        'credential-helpers',
        "the node's credentials stay with the node; regroute's own are registries.<host>.auth and pull secrets",
      ),
    );
  }
  if (additionalHelper !== undefined) {
    findings.push(
      outOfScope(
        file.name,
        'additional-layer-store-auth-helper',
        'a storage matter of the node, not of routing',
      ),
    );
  }
  return {
    ...conf,
    registries: [...unique.values()].sort((a, b) => compareStrings(a.prefix, b.prefix)),
    ...(conf.unqualifiedSearchRegistries !== undefined ? { unqualifiedSearchRegistries: search } : {}),
    findings,
  };
}

/** Go's sort.Strings order: by UTF-16 code units here, the same for the ASCII that locations are. */
const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The main file and its drop-ins (registries.conf.d/*.conf in lexical order, already chosen by the caller), merged
 * as containers-registries.conf.d(5) says: a drop-in's [[registry]] replaces the one with the same prefix, and its
 * top-level settings replace the earlier ones when it sets them.
 */
export function loadRegistriesConf(
  main: SourceText | null,
  dropIns: readonly SourceText[] = [],
): RegistriesConf {
  const base = main ? readRegistriesConfFile(main, false) : { registries: [], findings: [] };
  const byPrefix = new Map(base.registries.map((entry) => [entry.prefix, entry]));
  let { unqualifiedSearchRegistries, shortNameMode, credentialHelpers } = base as FileConf;
  const findings = [...base.findings];
  for (const file of dropIns) {
    const dropIn = readRegistriesConfFile(file, true);
    findings.push(...dropIn.findings);
    for (const entry of dropIn.registries) {
      const replaced = byPrefix.get(entry.prefix);
      if (replaced) {
        findings.push({
          kind: 'no-effect',
          where: `${replaced.origin}: [[registry]] prefix "${entry.prefix}"`,
          message: `replaced by the drop-in ${file.name}, which defines the same prefix`,
        });
      }
      byPrefix.set(entry.prefix, entry);
    }
    if (dropIn.unqualifiedSearchRegistries !== undefined)
      unqualifiedSearchRegistries = dropIn.unqualifiedSearchRegistries;
    if (dropIn.shortNameMode !== undefined) shortNameMode = dropIn.shortNameMode;
    if (dropIn.credentialHelpers !== undefined) credentialHelpers = dropIn.credentialHelpers;
  }
  return {
    registries: [...byPrefix.values()].sort((a, b) => compareStrings(a.prefix, b.prefix)),
    ...(unqualifiedSearchRegistries !== undefined ? { unqualifiedSearchRegistries } : {}),
    ...(shortNameMode !== undefined ? { shortNameMode } : {}),
    ...(credentialHelpers !== undefined ? { credentialHelpers } : {}),
    findings,
  };
}

const INSECURE_CHANGED =
  'insecure = true lets containers/image use plain HTTP or TLS without verification; regroute reads it as plain ' +
  'HTTP and verifies TLS always: if this host serves TLS with a private CA, drop insecure and set caFile instead';

/** The mirror sets of a loaded registries.conf: what the node tries, in order, for the images under each prefix. */
export function registriesConfModel(conf: RegistriesConf): ImportModel {
  const mirrorSets: MirrorSet[] = [];
  const hosts: { host: string; insecure: true; where: string }[] = [];
  const findings: Finding[] = [...conf.findings];
  for (const entry of conf.registries) {
    const where = `${entry.origin}: [[registry]] prefix "${entry.prefix}"`;
    if (entry.blocked) {
      findings.push({
        kind: 'unsupported',
        where,
        message:
          'blocked = true: regroute cannot refuse an image (an admission policy can); no route is written, so ' +
          'regroute never moves these images to a registry the node would not pull them from',
      });
      continue;
    }
    const path = splitLocation(entry.prefix).path;
    if (/[:@]/.test(path)) {
      findings.push({
        kind: 'unsupported',
        where,
        message: 'a prefix naming a tag or a digest: regroute routes whole repositories; no route is written',
      });
      continue;
    }
    const primary = entry.location === '' ? null : entry.location;
    const mirrors: string[] = [];
    const digestOnly: string[] = [];
    for (const mirror of entry.mirrors) {
      const use = entry.mirrorByDigestOnly ? 'digest-only' : (mirror.pullFromMirror ?? 'all');
      if (use === 'tag-only') {
        findings.push({
          kind: 'unsupported',
          where: `${where}, mirror "${mirror.location}"`,
          message:
            'pull-from-mirror = "tag-only": regroute pins every image it moves to the digest its source names, ' +
            'so it would only ever pull from this mirror by digest, which this setting forbids; the mirror is ' +
            'left out',
        });
        continue;
      }
      mirrors.push(mirror.location);
      if (use === 'digest-only') digestOnly.push(mirror.location);
      if (mirror.insecure) {
        hosts.push({
          host: splitLocation(mirror.location).registry,
          insecure: true,
          where: `${where}, mirror "${mirror.location}"`,
        });
      }
    }
    if (mirrors.length === 0 && (primary === null || primary === entry.prefix)) {
      findings.push({
        kind: 'no-effect',
        where,
        message:
          'no mirror and no other location: the node pulls these images as written, and regroute leaves them so' +
          (entry.insecure
            ? ' (its insecure = true is about those pulls, not about this host as a mirror)'
            : ''),
      });
      continue;
    }
    if (entry.insecure) {
      if (primary === null) {
        findings.push({
          kind: 'unsupported',
          where,
          message:
            'insecure = true on a wildcard prefix without a location: regroute keys transport settings by host; ' +
            'add registries.<host>.insecure for each host that needs it',
        });
      } else hosts.push({ host: splitLocation(primary).registry, insecure: true, where });
    }
    if (entry.prefix.startsWith('*.')) {
      findings.push({
        kind: 'changed',
        where,
        message:
          `regroute's "${entry.prefix}" matches subdomains without a port only; containers/image matches ` +
          'sub.domain:port/… too (and keeps the port after the location): images named with a port are not routed',
      });
    }
    mirrorSets.push({
      prefix: entry.prefix,
      upstream: primary,
      sources: primary === null ? mirrors : [...mirrors, primary],
      digestOnly,
      where,
    });
  }
  const insecureHosts = new Set<string>();
  for (const setting of hosts) {
    if (insecureHosts.has(setting.host)) continue;
    insecureHosts.add(setting.host);
    findings.push({ kind: 'changed', where: setting.where, message: `${setting.host}: ${INSECURE_CHANGED}` });
  }
  return { mirrorSets, hosts, findings };
}

/** registries.conf and its drop-ins, straight to the common model. */
export const importRegistriesConf = (
  main: SourceText | null,
  dropIns: readonly SourceText[] = [],
): ImportModel => registriesConfModel(loadRegistriesConf(main, dropIns));
