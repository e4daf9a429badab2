// From the common import model to a regroute config: order, merging, what cannot be written, and the printed YAML.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../../src/config/load.js';
import type { ImportModel, MirrorSet } from '../../../src/import/model.js';
import { importRegistriesConf } from '../../../src/import/registries-conf.js';
import { configOf, renderConfig, toConfig } from '../../../src/import/to-config.js';
import { candidatesFor } from './helpers.js';

const set = (
  prefix: string,
  sources: string[],
  upstream: string | null = sources.at(-1) ?? null,
): MirrorSet => ({
  prefix,
  upstream,
  sources,
  digestOnly: [],
  where: `test ${prefix}`,
});
const model = (mirrorSets: MirrorSet[], hosts: ImportModel['hosts'] = []): ImportModel => ({
  mirrorSets,
  hosts,
  findings: [],
});

describe('toConfig', () => {
  it('lists routes longest prefix first, so that regroute picks the route containers/image picks', () => {
    const conf = importRegistriesConf({
      name: 'r.conf',
      text: [
        '[[registry]]\nprefix = "*.example.com"\nlocation = "a.mirror"',
        '[[registry]]\nprefix = "*.team.example.com"\nlocation = "b.mirror"',
        '[[registry]]\nprefix = "x.team.example.com/apps"\nlocation = "c.mirror"',
      ].join('\n'),
    });
    const config = parseConfigText(JSON.stringify(configOf(toConfig(conf))), 't');
    assert.deepEqual(
      config.routes.map((r) => r.prefix),
      ['x.team.example.com/apps', '*.team.example.com', '*.example.com'],
    );
    assert.deepEqual(candidatesFor(config, 'y.team.example.com/app:1').candidates, ['b.mirror/app:1']);
    assert.deepEqual(candidatesFor(config, 'y.example.com/app:1').candidates, ['a.mirror/app:1']);
    assert.deepEqual(candidatesFor(config, 'x.team.example.com/apps/web:1').candidates, ['c.mirror/web:1']);
  });

  it('keeps the first of two mirror sets for one prefix, and says so', () => {
    const result = toConfig(
      model([set('docker.io', ['m1.io', 'docker.io']), set('docker.io', ['m2.io', 'docker.io'])]),
    );
    assert.deepEqual(configOf(result).routes, [{ prefix: 'docker.io', registries: ['m1.io', 'docker.io'] }]);
    assert.match(result.findings[0]?.message ?? '', /imported from test docker\.io already/);
  });

  it('puts the registry itself first with sourceFirst, and sets source only where tags resolve elsewhere', () => {
    const sets = [
      set('quay.io', ['m.io/quay', 'quay.io']),
      set('example.com/foo', ['m.io/foo', 'internal.io/bar']),
    ];
    assert.deepEqual(configOf(toConfig(model(sets), { sourceFirst: true })).routes, [
      { prefix: 'example.com/foo', source: 'internal.io/bar', registries: ['internal.io/bar', 'm.io/foo'] },
      { prefix: 'quay.io', registries: ['quay.io', 'm.io/quay'] },
    ]);
  });

  it('writes no route a regroute config would refuse, and says why', () => {
    const result = toConfig(model([set('Example.com', ['m.io', 'Example.com'])]));
    assert.deepEqual(configOf(result).routes, []);
    assert.equal(result.findings[0]?.kind, 'unsupported');
    assert.match(result.findings[0]?.message ?? '', /cannot be written as a regroute route \(prefix: /);
  });

  it('keeps one transport per host, the first read, and reports the other', () => {
    const result = toConfig(
      model(
        [set('a.io', ['m.io', 'a.io'])],
        [
          { host: 'm.io', caFile: '/ca.pem', where: 'first' },
          { host: 'm.io', insecure: true, where: 'second' },
          { host: 'unused.io', insecure: true, where: 'third' },
        ],
      ),
    );
    assert.deepEqual(configOf(result).registries, { 'm.io': { caFile: '/ca.pem' } });
    assert.deepEqual(
      result.findings.map((f) => [f.kind, f.where]),
      [
        ['unsupported', 'second'],
        ['no-effect', 'third'],
      ],
    );
  });

  it('says once what digest-only mirrors mean for tags when the source fails', () => {
    const result = toConfig(
      model([{ ...set('a.io', ['m1.io', 'm2.io', 'a.io']), digestOnly: ['m1.io', 'm2.io'] }]),
    );
    assert.equal(result.findings.length, 1);
    assert.equal(result.findings[0]?.where, 'm1.io, m2.io');
    assert.match(result.findings[0]?.message ?? '', /admission\.unverifiedTags: deny/);
  });
});

describe('renderConfig', () => {
  const conf = importRegistriesConf({
    name: '/etc/containers/registries.conf',
    text: [
      'unqualified-search-registries = ["docker.io"]',
      '[[registry]]\nlocation = "fra.ocir.io"\n[[registry.mirror]]\nlocation = "ams.ocir.io"',
      '[[registry]]\nlocation = "cache.local:5000"\ninsecure = true',
      // The table of cache.local:5000 itself has nothing to route; its mirror use here says insecure on its own.
      '[[registry]]\nprefix = "quay.io"\nlocation = "quay.io"\n[[registry.mirror]]\nlocation = "cache.local:5000/quay"\ninsecure = true',
      '[[registry]]\nlocation = "blocked.io"\nblocked = true',
    ].join('\n'),
  });
  const result = toConfig(conf);
  const text = renderConfig(result, ['/etc/containers/registries.conf']);

  it('prints a config that loads, with the same routes and registries', () => {
    const config = parseConfigText(text, 'printed');
    assert.deepEqual(
      config.routes.map((r) => [r.prefix, r.registries]),
      [
        ['fra.ocir.io', ['ams.ocir.io', 'fra.ocir.io']],
        ['quay.io', ['cache.local:5000/quay', 'quay.io']],
      ],
    );
    assert.equal(config.registries['cache.local:5000']?.insecure, true);
  });

  it('opens with the inputs, the order it keeps, and every finding as # lines', () => {
    const head = text.slice(0, text.indexOf('\nroutes:'));
    assert.ok(head.split('\n').every((line) => line === '' || line.startsWith('#')));
    assert.match(
      head,
      /^# regroute config written by `regroute import` from:\n# {3}\/etc\/containers\/registries\.conf\n/,
    );
    assert.match(head, /mirrors first, the registry itself last/);
    assert.match(head, /--source-first/);
    assert.match(head, new RegExp(`\\(${result.findings.length}\\):`));
    for (const label of ['[unsupported] ', '[out of scope] ', '[changed meaning] '])
      assert.ok(head.includes(label), label);
    assert.ok(
      head.split('\n').every((line) => line.length <= 112),
      'wrapped',
    );
  });

  it('says above each route and registry where it came from', () => {
    assert.match(
      text,
      /routes:\n {2}# from \/etc\/containers\/registries\.conf: \[\[registry\]\] prefix "fra\.ocir\.io"\n {2}- prefix: fra\.ocir\.io/,
    );
    assert.match(
      text,
      /# plain HTTP: regroute logs a warning about it at start\n {2}cache\.local:5000:\n {4}insecure: true/,
    );
  });

  it('prints an empty but loadable config when nothing is routed', () => {
    const empty = renderConfig(toConfig(model([])), ['x']);
    assert.deepEqual(parseConfigText(empty, 'empty').routes, []);
  });
});
