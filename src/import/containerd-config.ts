// containerd's config.toml, CRI plugin's registry section: the deprecated `mirrors."<host>".endpoint` lists (still
// read by containerd 1.x and 2.x until 2.3) and `configs."<host>".tls`, read as its CRI image service does.
import { type Capability, containerdModel, isLocalhost, parseServerUrl } from './hosts-toml.js';
import type { Finding, HostSetting, ImportModel, SourceText } from './model.js';
import { mergeModels } from './model.js';
import { isTable, parseToml, type Table, TableReader } from './toml.js';

/** The CRI plugin's ids that carry a `registry` table: config version 2 (containerd 1.x) and 3 (2.x). */
const CRI_PLUGINS = ['io.containerd.grpc.v1.cri', 'io.containerd.cri.v1.images'];
const LEGACY_CAPABILITIES: readonly Capability[] = ['pull', 'resolve', 'referrers'];

/** True when a TOML document looks like containerd's config.toml rather than a registries.conf. */
export const isContainerdConfig = (document: Table): boolean => isTable(document.plugins);

/** containerd's addDefaultScheme: an endpoint without a scheme is https, or http on a loopback host. */
function withScheme(endpoint: string): string {
  if (endpoint.includes('://')) return endpoint;
  const host = endpoint.split('/')[0] ?? endpoint;
  return `${isLocalhost(host) ? 'http' : 'https'}://${endpoint}`;
}

/** The CRI's registryEndpoints + registryHosts for one registry: its endpoints, the registry itself last if absent. */
function legacyHosts(registry: string, endpoints: readonly string[], where: string): ImportModel {
  const hosts = endpoints.map((endpoint) => {
    const url = parseServerUrl(withScheme(endpoint), where);
    // The endpoint's path is the API root as written; none means /v2.
    return {
      scheme: url.scheme,
      host: url.host,
      path: url.path === '' ? '/v2' : url.path,
      capabilities: LEGACY_CAPABILITIES,
      origin: `endpoint "${endpoint}"`,
    };
  });
  let upstreamIndex = hosts.findIndex((host) => host.host === registry);
  if (upstreamIndex === -1) {
    hosts.push({
      scheme: isLocalhost(registry) ? 'http' : 'https',
      host: registry === 'docker.io' ? 'registry-1.docker.io' : registry,
      path: '/v2',
      capabilities: LEGACY_CAPABILITIES,
      origin: 'the registry itself, added last',
    });
    upstreamIndex = hosts.length - 1;
  }
  const configured = hosts.map((host) => ({ ...host, httpFallback: false, defaulted: false }));
  return containerdModel(registry, configured, upstreamIndex, where);
}

/** `configs."<host>"`: the CA is imported; credentials and client certificates are not. */
function legacyConfigs(configs: Table, where: string, findings: Finding[]): HostSetting[] {
  const settings: HostSetting[] = [];
  for (const [host, value] of Object.entries(configs)) {
    if (!isTable(value)) continue;
    const reader = new TableReader(value, `${where}.configs."${host}"`);
    if (reader.raw('auth') !== undefined) {
      findings.push({
        kind: 'unsupported',
        where: reader.where,
        message:
          'auth: credentials are not copied into a config; give regroute its own with registries.<host>.auth ' +
          '(a password file or a dockerconfigjson) or a pull secret',
      });
    }
    const tls = reader.tableOf('tls');
    if (tls) {
      const tlsReader = new TableReader(tls, `${reader.where}.tls`);
      const caFile = tlsReader.string('ca_file');
      if (caFile) settings.push({ host, caFile, where: tlsReader.where });
      if (tlsReader.boolean('insecure_skip_verify') === true) {
        findings.push({
          kind: 'unsupported',
          where: tlsReader.where,
          message:
            'insecure_skip_verify = true: regroute always verifies TLS; give the CA as ca_file (caFile)',
        });
      }
      if (tlsReader.string('cert_file') || tlsReader.string('key_file')) {
        findings.push({
          kind: 'unsupported',
          where: tlsReader.where,
          message: 'cert_file/key_file: regroute presents no client certificate',
        });
      }
      findings.push(...tlsReader.unknownKeys());
    }
    findings.push(...reader.unknownKeys());
  }
  return settings;
}

export function importContainerdConfig(file: SourceText): ImportModel {
  const document = parseToml(file.name, file.text);
  const plugins = isTable(document.plugins) ? document.plugins : {};
  const models: ImportModel[] = [];
  for (const id of CRI_PLUGINS) {
    const plugin = plugins[id];
    if (!isTable(plugin) || !isTable(plugin.registry)) continue;
    const where = `${file.name}: [plugins."${id}".registry]`;
    const registry = new TableReader(plugin.registry, where);
    const findings: Finding[] = [];
    const configPath = registry.string('config_path') ?? '';
    const mirrors = registry.tableOf('mirrors') ?? {};
    const configs = registry.tableOf('configs') ?? {};
    if (configPath !== '') {
      findings.push({
        kind: 'no-effect',
        where,
        message:
          `config_path = "${configPath}": containerd reads its hosts from those directories and ignores mirrors ` +
          'and configs here: import the directories instead',
      });
      findings.push(...registry.unknownKeys());
      models.push({ mirrorSets: [], hosts: [], findings });
      continue;
    }
    const hosts = legacyConfigs(configs, where, findings);
    for (const [host, value] of Object.entries(mirrors)) {
      const at = `${where}.mirrors."${host}"`;
      const mirror = new TableReader(isTable(value) ? value : {}, at);
      const endpoints = mirror.strings('endpoint') ?? [];
      findings.push(...mirror.unknownKeys());
      if (host === '*') {
        findings.push({
          kind: 'unsupported',
          where: at,
          message:
            'a mirror for every registry: regroute routes by prefix; write a route for each registry it serves',
        });
        continue;
      }
      models.push(legacyHosts(host, endpoints, at));
    }
    if (registry.raw('auths') !== undefined) {
      findings.push({
        kind: 'unsupported',
        where: `${where}.auths`,
        message: 'credentials are not copied into a config; use registries.<host>.auth or a pull secret',
      });
    }
    if (registry.raw('headers') !== undefined) {
      findings.push({
        kind: 'unsupported',
        where: `${where}.headers`,
        message: 'regroute sends no extra headers',
      });
    }
    findings.push(...registry.unknownKeys());
    models.push({ mirrorSets: [], hosts, findings });
  }
  if (models.length === 0) {
    models.push({
      mirrorSets: [],
      hosts: [],
      findings: [
        {
          kind: 'no-effect',
          where: file.name,
          message: 'no CRI registry section: nothing about mirrors to import',
        },
      ],
    });
  }
  return mergeModels(models);
}
