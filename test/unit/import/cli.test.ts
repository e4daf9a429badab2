// `regroute import` end to end: files and directories as they lie on a node, errors and exit codes, and the round
// trip through `regroute explain --offline`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../../../src/config/load.js';
import { explainCandidates, runImport, tree } from './helpers.js';

const node = {
  'etc/containers/registries.conf': [
    'unqualified-search-registries = ["docker.io"]',
    '[[registry]]',
    'prefix = "docker.io"',
    'location = "docker.io"',
    '[[registry.mirror]]',
    'location = "harbor.local/dockerhub"',
    '[[registry]]',
    'location = "fra.ocir.io"',
    'mirror-by-digest-only = true',
    'colour = "blue"',
    '[[registry.mirror]]',
    'location = "ams.ocir.io"',
    '',
  ].join('\n'),
  // Drop-ins: read in lexical order, *.conf only; 10-quay.conf overrides nothing, 20-fra.conf replaces fra.ocir.io.
  'etc/containers/registries.conf.d/20-fra.conf':
    '[[registry]]\nlocation = "fra.ocir.io"\n[[registry.mirror]]\nlocation = "ams.ocir.io"\n[[registry.mirror]]\nlocation = "lhr.ocir.io"\n',
  'etc/containers/registries.conf.d/10-quay.conf':
    '[[registry]]\nprefix = "quay.io"\nlocation = "quay.io"\n[[registry.mirror]]\nlocation = "cache.local:5000/quay"\ninsecure = true\n',
  'etc/containers/registries.conf.d/README': 'not a drop-in\n',
  'etc/containers/registries.conf.d/old/99-ignored.conf': '[[registry]]\nlocation = "ignored.io"\n',
  // containerd: a certs.d with one hosts.toml, and a directory in Docker's layout holding the mirror's CA.
  'etc/containerd/certs.d/ghcr.io/hosts.toml':
    'server = "https://ghcr.io"\n[host."https://harbor.local/v2/ghcr"]\ncapabilities = ["pull", "resolve"]\noverride_path = true\n',
  'etc/containerd/certs.d/harbor.local/ca.crt': '-----BEGIN CERTIFICATE-----\n',
  'etc/containerd/certs.d/docker.io/hosts.toml':
    'server = "https://registry-1.docker.io"\n[host."https://mirror.gcr.io"]\n',
  'etc/containerd/config.toml':
    'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.k8s.io"]\nendpoint = ["https://k8s-mirror.local"]\n',
};

describe('regroute import', () => {
  it('reads a registries.conf with its drop-in directory, a certs.d tree and a containerd config.toml', async () => {
    const root = await tree(node);
    const run = await runImport(root, [
      'etc/containers/registries.conf',
      'etc/containers/registries.conf.d',
      'etc/containerd/certs.d',
      'etc/containerd/config.toml',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.document, {
      routes: [
        { prefix: 'registry.k8s.io', registries: ['k8s-mirror.local', 'registry.k8s.io'] },
        { prefix: 'fra.ocir.io', registries: ['ams.ocir.io', 'lhr.ocir.io', 'fra.ocir.io'] },
        { prefix: 'docker.io', registries: ['harbor.local/dockerhub', 'docker.io'] },
        { prefix: 'ghcr.io', registries: ['harbor.local/ghcr', 'ghcr.io'] },
        { prefix: 'quay.io', registries: ['cache.local:5000/quay', 'quay.io'] },
      ],
      registries: {
        'cache.local:5000': { insecure: true },
        'harbor.local': { caFile: join(root, 'etc/containerd/certs.d/harbor.local/ca.crt') },
      },
    });
    const comments = run.comments.join('\n').replace(/\n# {4,}/g, ' ');
    assert.match(
      comments,
      /\[unknown key\] [^\n]*registries\.conf: \[\[registry\]\] #2: "colour" is not a key/,
    );
    assert.match(comments, /\[nothing to route\] [^\n]*registries\.conf\.d\/README: not read: only \*\.conf/);
    assert.match(
      comments,
      /\[nothing to route\] [^\n]*registries\.conf: \[\[registry\]\] prefix "fra\.ocir\.io": replaced by the drop-in/,
    );
    assert.match(
      comments,
      /\[nothing to route\] [^\n]*certs\.d\/docker\.io\/hosts\.toml: prefix "docker\.io" was imported from/,
    );
    assert.match(comments, /\[out of scope\] [^\n]*"unqualified-search-registries"/);
    assert.ok(!run.text.includes('ignored.io'), 'subdirectories of registries.conf.d are not read');
    assert.match(run.stderr, /5 route\(s\), 2 registry setting\(s\)/);
  });

  it('reads a lone hosts.toml, naming the registry after its directory', async () => {
    const root = await tree({ 'certs.d/registry.local_5000_/hosts.toml': '[host."https://mirror.local"]\n' });
    const run = await runImport(root, ['certs.d/registry.local_5000_/hosts.toml']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.document.routes, [
      { prefix: 'registry.local:5000', registries: ['mirror.local', 'registry.local:5000'] },
    ]);
  });

  it('prints what `explain --offline` routes as the node pulls, and --source-first the other way round', async () => {
    const root = await tree(node);
    for (const [args, expected] of [
      [[], ['harbor.local/dockerhub/library/nginx:1.27', 'docker.io/library/nginx:1.27']],
      [['--source-first'], ['docker.io/library/nginx:1.27', 'harbor.local/dockerhub/library/nginx:1.27']],
    ] as const) {
      const run = await runImport(root, ['etc/containers/registries.conf', ...args]);
      assert.equal(run.code, 0);
      parseConfigText(run.text, 'printed');
      const configPath = join(root, `regroute${args.length}.yaml`);
      await writeFile(configPath, run.text);
      assert.deepEqual(await explainCandidates(configPath, 'nginx:1.27'), expected);
    }
  });

  it('refuses TOML it cannot parse, with the file, line and column, and exit status 2', async () => {
    const root = await tree({ 'registries.conf': '[[registry]]\nlocation = "a.io"\n[[registry.mirror]\n' });
    const run = await runImport(root, ['registries.conf']);
    assert.equal(run.code, 2);
    assert.equal(run.text, '');
    assert.match(run.stderr, new RegExp(`^${join(root, 'registries.conf')}:3:\\d+: not valid TOML: `));
  });

  it('refuses a registries.conf containers/image would refuse, and a path it cannot read', async () => {
    const root = await tree({
      'registries.conf': '[[registry]]\nlocation = "a.io"\n[[registry.mirror]]\ninsecure = true\n',
    });
    const invalid = await runImport(root, ['registries.conf']);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /invalid condition: mirror location is unset/);
    const missing = await runImport(root, ['nowhere.conf']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*nowhere\.conf: ENOENT/);
  });

  it('asks for inputs when given none', async () => {
    const run = await runImport('/', []);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /regroute import FILE\|DIR/);
  });

  it('is a subcommand of the regroute command', () => {
    const cli = fileURLToPath(new URL('../../../src/cli.ts', import.meta.url));
    const root = fileURLToPath(new URL('../../fixtures/import/', import.meta.url));
    const ok = spawnSync(
      process.execPath,
      ['--import', 'tsx', cli, 'import', join(root, 'hosts-toml.json')],
      {
        encoding: 'utf8',
      },
    );
    // Not TOML: a JSON file is refused as input, through the real entry point and its exit status.
    assert.equal(ok.status, 2, ok.stderr);
    assert.match(ok.stderr, /not valid TOML/);
    const help = spawnSync(process.execPath, ['--import', 'tsx', cli, 'help'], { encoding: 'utf8' });
    assert.match(help.stdout, /regroute import FILE\|DIR\.\.\. \[--source-first\]/);
  });
});
