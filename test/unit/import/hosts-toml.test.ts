// containerd hosts.toml import, run against containerd's own test vectors (test/fixtures/import/hosts-toml.json:
// core/remotes/docker/config/hosts_test.go @ 0223ad3c949e92b66ceaaf6850fe54b0def8cc41, Apache-2.0): the hosts are
// read exactly as containerd reads them, then translated into what regroute can reach.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { importContainerdConfig } from '../../../src/import/containerd-config.js';
import {
  configureHosts,
  type HostConfig,
  hostFromDirectory,
  importHostsToml,
  isLocalhost,
  locationOf,
  parseGoDuration,
  parseHostsFile,
  splitHostPort,
} from '../../../src/import/hosts-toml.js';
import { ImportError } from '../../../src/import/model.js';
import { configOf, toConfig } from '../../../src/import/to-config.js';
import { fixture } from '../../helpers/fixtures.js';
import { candidatesFor, loadDocument } from './helpers.js';

interface ExpectedHost {
  scheme: string;
  host: string;
  path: string;
  capabilities: string[];
  caCerts?: string[];
  clientPairs?: [string, string][];
  skipVerify?: boolean;
  header?: Record<string, string[]>;
  dialTimeoutSeconds?: number;
}
interface Corpus {
  parseHostsFile: { toml: string; expectedHosts: ExpectedHost[] }[];
  defaultHosts: { host: string; expectedHosts: ExpectedHost[] }[];
  httpFallback: {
    host: string;
    options: { defaultScheme?: string; defaultTLSInsecureSkipVerify?: boolean };
    expectedScheme: string;
    usesHTTPFallback: boolean;
  }[];
}

const corpus = fixture<Corpus>('import/hosts-toml.json');

/** The fields containerd's test compares (TLS objects aside): everything but where a host was read from. */
const asserted = ({
  origin: _origin,
  ...host
}: HostConfig & { httpFallback?: boolean; defaulted?: boolean }) => {
  const { httpFallback: _fallback, defaulted: _defaulted, ...rest } = host;
  return { ...rest, capabilities: [...rest.capabilities] };
};

describe('hosts.toml as containerd reads it (TestParseHostFile, TestDefaultHosts, TestHTTPFallback)', () => {
  for (const [index, c] of corpus.parseHostsFile.entries()) {
    it(`parseHostsFile #${index + 1}: ${c.expectedHosts.length} hosts in file order, the server last`, () => {
      const { hosts } = parseHostsFile(c.toml, {
        name: 'hosts.toml',
        // containerd's test passes no base directory: a client pair's empty key stays ''.
        baseDir: '',
      });
      assert.deepEqual(hosts.map(asserted), c.expectedHosts);
    });
  }

  for (const c of corpus.defaultHosts) {
    it(`defaultHosts: ${c.host} without hosts.toml, which regroute names ${c.host}`, () => {
      const hosts = configureHosts(c.host, null);
      assert.deepEqual(hosts.map(asserted), c.expectedHosts);
      assert.deepEqual(hosts.map(locationOf), [c.host]);
    });
  }

  for (const c of corpus.httpFallback) {
    const options = {
      ...(c.options.defaultScheme ? { defaultScheme: c.options.defaultScheme } : {}),
      ...(c.options.defaultTLSInsecureSkipVerify ? { defaultTLS: true } : {}),
    };
    it(`httpFallback: ${c.host} ${JSON.stringify(c.options)} → ${c.expectedScheme}${c.usesHTTPFallback ? ', then http' : ''}`, () => {
      const [host] = configureHosts(c.host, null, options);
      assert.equal(host?.scheme, c.expectedScheme);
      assert.equal(host?.httpFallback, c.usesHTTPFallback);
    });
  }
});

describe('hosts.toml in regroute', () => {
  it("parseHostsFile #1 as certs.d/test-default.registry: every host regroute can reach, in containerd's order", () => {
    const [c] = corpus.parseHostsFile;
    const model = importHostsToml({
      name: 'certs.d/test-default.registry/hosts.toml',
      text: c?.toml ?? '',
      directory: 'certs.d/test-default.registry',
    });
    const result = toConfig(model);
    const config = loadDocument(configOf(result));
    assert.deepEqual(configOf(result).routes, [
      {
        prefix: 'test-default.registry',
        registries: [
          'mirror.registry',
          'test-1.registry',
          'test-2.registry',
          'test-3.registry',
          'no-referrers.registry',
          'noncompliantmirror.registry/namespaceprefix',
          'onlyheader.registry',
          'dial-timeout.registry',
          'test-default.registry',
        ],
      },
    ]);
    // https://mirror.registry's CA; its http:// twin conflicts (one transport per host), the first one read wins.
    assert.deepEqual(configOf(result).registries, {
      'mirror.registry': { caFile: '/etc/certs/mirror.pem' },
      'test-default.registry': { caFile: '/etc/path/default' },
    });
    assert.deepEqual(result.registries['mirror.registry']?.comment, [
      'from certs.d/test-default.registry/hosts.toml: [host."https://mirror.registry"]',
    ]);
    const said = (where: string, text: string) =>
      assert.ok(
        result.findings.some((f) => f.where.includes(where) && f.message.includes(text)),
        `${where}: ${text}`,
      );
    said('[host."https://mirror-bak.registry/us"]', 'the API is at /us/v2');
    said('[host."http://mirror.registry"]', 'plain HTTP here, TLS with a CA elsewhere');
    said('[host."https://test-1.registry"]', 'ca lists 2 files');
    said('[host."https://test-1.registry"]', 'client certificates');
    said('[host."https://test-2.registry"]', 'client certificates');
    said('[host."https://noprefixnoncompliant.registry"]', 'the API is at the host root');
    said('[host."https://mirror.registry"]', 'header (x-custom-2)');
    said('[host."https://onlyheader.registry"]', 'header (x-custom-1)');
    said('[host."https://dial-timeout.registry"]', 'dial_timeout');
    said('server', 'header (x-custom-1)');
    // pull without resolve: containerd asks those mirrors for digests only.
    said('mirror.registry', 'the node pulls only by digest from these mirrors');
    const candidates = candidatesFor(config, 'test-default.registry/team/app:1').candidates;
    assert.equal(candidates[5], 'noncompliantmirror.registry/namespaceprefix/team/app:1');
  });

  it('names Docker Hub docker.io whichever of its API hosts the server is', () => {
    for (const server of [
      'https://registry-1.docker.io',
      'https://index.docker.io',
      'https://docker.io',
      '',
    ]) {
      const text = `${server ? `server = "${server}"\n` : ''}[host."https://mirror.gcr.io"]\ncapabilities = ["pull", "resolve"]\n`;
      const result = toConfig(
        importHostsToml({ name: 'h', text, directory: '/etc/containerd/certs.d/docker.io' }),
      );
      assert.deepEqual(configOf(result).routes, [
        { prefix: 'docker.io', registries: ['mirror.gcr.io', 'docker.io'] },
      ]);
    }
  });

  it('resolves tags at a server other than the directory’s registry, the last candidate', () => {
    const text =
      'server = "https://quay-cache.internal"\n[host."https://quay-mirror.internal/v2/quay"]\noverride_path = true\n';
    const result = toConfig(importHostsToml({ name: 'h', text, directory: 'certs.d/quay.io' }));
    assert.deepEqual(configOf(result).routes, [
      {
        prefix: 'quay.io',
        source: 'quay-cache.internal',
        registries: ['quay-mirror.internal/quay', 'quay-cache.internal'],
      },
    ]);
  });

  it('leaves out a host without pull, and writes no route when the server is out of reach', () => {
    const noPull = toConfig(
      importHostsToml({
        name: 'h',
        text: '[host."https://push-only.internal"]\ncapabilities = ["push"]\n',
        directory: 'certs.d/ghcr.io',
      }),
    );
    assert.deepEqual(configOf(noPull).routes, []);
    assert.ok(noPull.findings.some((f) => f.message.startsWith('no pull capability')));
    const unreachable = toConfig(
      importHostsToml({
        name: 'h',
        text: 'server = "https://registry.internal/api"\n[host."https://mirror.internal"]\n',
        directory: 'certs.d/registry.internal',
      }),
    );
    assert.deepEqual(configOf(unreachable).routes, []);
    assert.ok(unreachable.findings.some((f) => f.message.includes('cannot resolve tags there')));
  });

  it('reports the HTTP fallback of a loopback registry with a port, and keeps HTTPS', () => {
    const result = toConfig(
      importHostsToml({
        name: 'h',
        text: '[host."https://mirror.internal"]\n',
        directory: 'certs.d/localhost_5000_',
      }),
    );
    assert.deepEqual(configOf(result).routes, [
      { prefix: 'localhost:5000', registries: ['mirror.internal', 'localhost:5000'] },
    ]);
    assert.deepEqual(configOf(result).registries, {});
    assert.ok(result.findings.some((f) => f.message.includes('falls back to plain HTTP for localhost:5000')));
    assert.ok(
      !result.findings.some((f) => f.message.startsWith('skip_verify')),
      'containerd’s own default, not the file’s',
    );
  });

  it('reports _default, which applies to every registry', () => {
    const model = importHostsToml({
      name: 'certs.d/_default/hosts.toml',
      text: '',
      directory: 'certs.d/_default',
    });
    assert.equal(model.mirrorSets.length, 0);
    assert.match(model.findings[0]?.message ?? '', /every registry/);
  });

  it('refuses what containerd refuses: an unknown capability, a malformed client pair, a bad duration, bad TOML', () => {
    const refused = (text: string, pattern: RegExp) =>
      assert.throws(
        () => importHostsToml({ name: 'certs.d/x.io/hosts.toml', text, directory: 'certs.d/x.io' }),
        (e) => e instanceof ImportError && pattern.test(e.message),
      );
    refused('[host."https://m"]\ncapabilities = ["pull", "mirror"]\n', /unknown capability mirror/);
    refused('[host."https://m"]\nclient = [["a", "b", "c"]]\n', /invalid pair for "client"/);
    refused('[host."https://m"]\ndial_timeout = "3 seconds"\n', /invalid duration "3 seconds"/);
    refused('[host."https://m"]\nca = 3\n', /invalid type for "ca"/);
    refused(
      'server = "https://x.io"\n[host."https://m"\n',
      /^certs\.d\/x\.io\/hosts\.toml:2:\d+: not valid TOML/,
    );
  });

  it('reports unknown keys, at the top and in host tables', () => {
    const model = importHostsToml({
      name: 'h',
      text: 'server = "https://x.io"\nmirrors = ["https://m"]\n[host."https://m"]\ncapability = ["pull"]\n',
      directory: 'certs.d/x.io',
    });
    assert.deepEqual(
      model.findings.filter((f) => f.kind === 'unknown-key').map((f) => [f.where, f.message.split(' ')[0]]),
      [
        ['h: [host."https://m"]', '"capability"'],
        ['h', '"mirrors"'],
      ],
    );
  });

  it('reads relative ca and client paths from the host directory, as containerd does', () => {
    const { hosts } = parseHostsFile('[host."https://m"]\nca = "ca.pem"\nclient = "client.pem"\n', {
      name: 'h',
      baseDir: '/etc/containerd/certs.d/x.io',
    });
    assert.deepEqual(hosts[0]?.caCerts, ['/etc/containerd/certs.d/x.io/ca.pem']);
    assert.deepEqual(hosts[0]?.clientPairs, [['/etc/containerd/certs.d/x.io/client.pem', '']]);
  });
});

describe('containerd helpers', () => {
  it('decodes host directories: host_port_ is host:port', () => {
    assert.equal(hostFromDirectory('registry.local_5000_'), 'registry.local:5000');
    assert.equal(hostFromDirectory('[::1]_5000_'), '[::1]:5000');
    assert.equal(hostFromDirectory('docker.io'), 'docker.io');
    assert.equal(hostFromDirectory('_default'), null);
  });

  it("splits host and port as Go's net.SplitHostPort does", () => {
    assert.deepEqual(splitHostPort('localhost:80'), { host: 'localhost', port: '80' });
    assert.deepEqual(splitHostPort('[::1]:5000'), { host: '::1', port: '5000' });
    assert.equal(splitHostPort('::1'), null);
    assert.equal(splitHostPort('example.com'), null);
  });

  it('knows loopback hosts', () => {
    for (const host of ['localhost', 'localhost:5000', '127.0.0.254:5000', '[::1]:5000', '::1'])
      assert.ok(isLocalhost(host), host);
    for (const host of ['example.com', '10.0.0.1:5000', 'localhost.example.com'])
      assert.ok(!isLocalhost(host), host);
  });

  it("parses Go durations as containerd's dial_timeout", () => {
    assert.equal(parseGoDuration('3s'), 3);
    assert.equal(parseGoDuration('1m30s'), 90);
    assert.equal(parseGoDuration('250ms'), 0.25);
    assert.equal(parseGoDuration('0'), 0);
    assert.equal(parseGoDuration('3'), null);
  });
});

describe('containerd config.toml registry mirrors (deprecated CRI form)', () => {
  it('keeps the endpoints in order and adds the registry itself last when it is not listed', () => {
    const text = [
      'version = 2',
      '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]',
      '  endpoint = ["https://mirror.gcr.io", "localhost:5000/v2/hub"]',
      '[plugins."io.containerd.grpc.v1.cri".registry.configs."mirror.gcr.io".tls]',
      '  ca_file = "/etc/ssl/gcr.pem"',
      '  insecure_skip_verify = true',
      '[plugins."io.containerd.grpc.v1.cri".registry.configs."mirror.gcr.io".auth]',
      '  username = "u"',
      '  password = "p"',
    ].join('\n');
    const result = toConfig(importContainerdConfig({ name: 'config.toml', text }));
    assert.deepEqual(configOf(result), {
      routes: [{ prefix: 'docker.io', registries: ['mirror.gcr.io', 'localhost:5000/hub', 'docker.io'] }],
      registries: { 'localhost:5000': { insecure: true }, 'mirror.gcr.io': { caFile: '/etc/ssl/gcr.pem' } },
    });
    const messages = result.findings.map((f) => f.message).join('\n');
    assert.match(messages, /insecure_skip_verify = true/);
    assert.match(messages, /credentials are not copied/);
    assert.ok(!messages.includes('"p"') && !messages.includes('password = '), 'no credential is repeated');
  });

  it('reads containerd 2 (config version 3) too, and defers to config_path', () => {
    const v3 = toConfig(
      importContainerdConfig({
        name: 'config.toml',
        text: '[plugins."io.containerd.cri.v1.images".registry.mirrors."quay.io"]\nendpoint = ["https://quay.io", "https://quay-mirror.internal"]\n',
      }),
    );
    assert.deepEqual(configOf(v3).routes, [
      { prefix: 'quay.io', registries: ['quay.io', 'quay-mirror.internal'] },
    ]);
    const withPath = importContainerdConfig({
      name: 'config.toml',
      text: '[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "/etc/containerd/certs.d"\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."quay.io"]\nendpoint = ["https://m"]\n',
    });
    assert.equal(withPath.mirrorSets.length, 0);
    assert.match(withPath.findings[0]?.message ?? '', /import the directories instead/);
  });

  it('reports a mirror for every registry ("*")', () => {
    const model = importContainerdConfig({
      name: 'config.toml',
      text: '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."*"]\nendpoint = ["https://m"]\n',
    });
    assert.equal(model.mirrorSets.length, 0);
    assert.match(model.findings.map((f) => f.message).join('\n'), /a mirror for every registry/);
  });
});
