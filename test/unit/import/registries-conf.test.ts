// containers-registries.conf(5) import, run against containers/image's own test vectors
// (test/fixtures/import/registries-conf.json: containers/image pkg/sysregistriesv2 and docker tests, and the man
// page's examples @ df7e80d2d19872b61f352a8a182ec934dc0c2346, Apache-2.0). Loading is checked against what
// containers/image asserts; the pull order against what regroute then does with the printed config. Where regroute
// departs, the case is named below with the reason (and in test/fixtures/import/README.md).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Route } from '../../../src/config/schema.js';
import { ImportError, type SourceText } from '../../../src/import/model.js';
import {
  importRegistriesConf,
  loadRegistriesConf,
  parseLocation,
  readRegistriesConfFile,
} from '../../../src/import/registries-conf.js';
import { configOf, toConfig } from '../../../src/import/to-config.js';
import { formatReference, parseReference } from '../../../src/reference/index.js';
import { matchRoute } from '../../../src/routing/route.js';
import { fixture } from '../../helpers/fixtures.js';
import { candidatesFor, loadDocument } from './helpers.js';

interface CorpusConfig {
  mainFile: string;
  main: string;
  dropIns: { file: string; text: string; loaded: boolean }[];
}
interface Source {
  location: string;
  insecure: boolean;
  reference: string;
}
interface Case {
  id: string;
  kind:
    | 'getRegistries'
    | 'findRegistry'
    | 'pullSources'
    | 'firstPullSource'
    | 'invalidConfig'
    | 'prefixSemantics';
  config?: CorpusConfig;
  query?: string;
  placeholders?: Record<string, string>;
  examples?: { ref: string; prefix: string; matches: boolean }[];
  expected: {
    count?: number;
    locationsInOrder?: string[];
    unqualifiedSearchRegistries?: string[];
    matched?: boolean;
    prefix?: string;
    location?: string;
    insecure?: boolean;
    blocked?: boolean;
    mirrors?: { location: string; insecure: boolean }[];
    sources?: Source[];
    sourcesInOrder?: string[];
    mirrorsConsulted?: string[];
    notConsulted?: string[];
    physicalReference?: string;
    error?: boolean;
    errorContains?: string;
  };
}
interface Corpus {
  cases: Case[];
  prefixMatch: { ref: string; prefix: string; expectedMatchLength: number }[];
  rewriteReference: {
    inputRef: string;
    prefix: string;
    location: string;
    expected?: string;
    expectedError?: boolean;
    note?: string;
  }[];
  parseLocation: { input: string; expected?: string | null; errorContains?: string }[];
}

const corpus = fixture<Corpus>('import/registries-conf.json');
const byKind = (kind: Case['kind']) => corpus.cases.filter((c) => c.kind === kind);
/** The test registry of containers/image's image-source tests; any host:port does. */
const REGISTRY = '127.0.0.1:5000';

/** The main file and the drop-ins the directory walk would load (names ending in .conf). */
function files(config: CorpusConfig): { main: SourceText; dropIns: SourceText[] } {
  for (const dropIn of config.dropIns)
    assert.equal(dropIn.file.endsWith('.conf'), dropIn.loaded, dropIn.file);
  return {
    main: { name: config.mainFile, text: config.main.replaceAll('@REGISTRY@', REGISTRY) },
    dropIns: config.dropIns.filter((d) => d.loaded).map((d) => ({ name: d.file, text: d.text })),
  };
}

function imported(config: CorpusConfig) {
  const { main, dropIns } = files(config);
  const result = toConfig(importRegistriesConf(main, dropIns));
  return { result, config: loadDocument(configOf(result)) };
}

/**
 * Queries containers/image matches as strings but that are no image reference (a bare host, a host and '/'); the
 * kubelet never hands such a name to anyone, so regroute is asked about an image under it instead.
 */
const asImage = (query: string): string =>
  query.includes('/') && !query.endsWith('/') ? query : `${query.replace(/\/$/, '')}/image`;

/** Where containers/image's expectation and regroute part ways, with the reason; asserted differently below. */
const FIND_DEPARTURES: Record<string, string> = {
  'find-06': 'wildcard prefix and a host with a port',
  'find-07': 'wildcard prefix and a host with a port',
  'find-08': 'wildcard prefix and a host with a port',
  'find-09': 'wildcard prefix and a host with a port',
  'find-10': 'wildcard prefix and a host with a port',
};
const WILDCARD_PORT =
  "regroute's *.domain prefixes match hosts without a port only (the port is part of the host it compares); " +
  'containers/image ignores the port for wildcards and keeps it after the location';

/** Tag pulls: regroute resolves the tag at the source and pulls by digest, so mirrors see digest pulls only. */
const TAG_DEPARTURES = new Set([
  'pull-registry-b-foo-tag',
  'pull-registry-b-baz-tag',
  'pull-registry-c-baz-tag',
  'pull-registry-d-baz-tag',
  'pull-registry-e-baz-tag',
  'pull-registry-f-baz-tag',
  'pull-registry-g-baz-tag',
]);

describe('registries.conf loading (containers/image getRegistries, invalid configs)', () => {
  for (const c of byKind('getRegistries')) {
    it(`${c.id}: loads as containers/image does, and the import of it loads as a regroute config`, () => {
      const { main, dropIns } = files(c.config as CorpusConfig);
      const conf = loadRegistriesConf(main, dropIns);
      if (c.expected.count !== undefined) assert.equal(conf.registries.length, c.expected.count);
      if (c.expected.locationsInOrder) {
        assert.deepEqual(
          conf.registries.map((r) => r.location),
          c.expected.locationsInOrder,
        );
      }
      if (c.expected.unqualifiedSearchRegistries) {
        assert.deepEqual(conf.unqualifiedSearchRegistries, c.expected.unqualifiedSearchRegistries);
      }
      imported(c.config as CorpusConfig);
    });
  }

  for (const c of byKind('invalidConfig')) {
    it(`${c.id}: is refused${c.expected.errorContains ? ` with "${c.expected.errorContains}"` : ''}`, () => {
      const { main, dropIns } = files(c.config as CorpusConfig);
      assert.throws(
        () => importRegistriesConf(main, dropIns),
        (error) =>
          error instanceof ImportError &&
          error.message.startsWith(main.name) &&
          (c.expected.errorContains === undefined || error.message.includes(c.expected.errorContains)),
      );
    });
  }

  it('refuses a v1 drop-in, and reads drop-ins over the main file by prefix', () => {
    assert.throws(
      () =>
        loadRegistriesConf(null, [
          { name: 'v1.conf', text: '[registries.search]\nregistries = ["a.com"]\n' },
        ]),
      /registry must be in v2 format but is in v1/,
    );
    const conf = loadRegistriesConf(
      { name: 'main', text: '[[registry]]\nlocation = "a.com"\ninsecure = true\n' },
      [
        {
          name: 'd.conf',
          text: '[[registry]]\nlocation = "a.com"\n[[registry.mirror]]\nlocation = "m.com"\n',
        },
      ],
    );
    assert.deepEqual(
      conf.registries.map((r) => [r.prefix, r.insecure, r.mirrors.length, r.origin]),
      [['a.com', false, 1, 'd.conf']],
    );
    assert.ok(conf.findings.some((f) => f.message.includes('replaced by the drop-in d.conf')));
  });

  it('names the key and the expected type of a wrong value', () => {
    assert.throws(
      () =>
        readRegistriesConfFile(
          { name: 'r.conf', text: '[[registry]]\nlocation = "a.com"\ninsecure = "yes"\n' },
          false,
        ),
      /r\.conf: \[\[registry\]\] #1: "insecure" must be true or false, not a string/,
    );
  });
});

describe('registries.conf pull order (containers/image findRegistry, pullSources) in regroute', () => {
  for (const c of byKind('findRegistry')) {
    const departure = FIND_DEPARTURES[c.id];
    const image = asImage(c.query as string);
    const asked = image === c.query ? image : `${image} (${JSON.stringify(c.query)} names no image)`;
    it(`${c.id}: ${departure ? `departs: ${departure}` : `${asked} has the node's pull sources as candidates`}`, () => {
      const { result, config } = imported(c.config as CorpusConfig);
      const view = candidatesFor(config, image);
      if (departure) {
        assert.equal(view.routed, false, 'regroute leaves the image as written');
        assert.ok(result.findings.some((f) => f.message.includes('matches subdomains without a port only')));
        return;
      }
      if (c.expected.matched === false || c.expected.blocked) {
        assert.equal(view.routed, false);
        if (c.expected.blocked) {
          assert.ok(
            result.findings.some((f) => f.kind === 'unsupported' && f.message.startsWith('blocked = true')),
          );
        }
        return;
      }
      const reference = parseReference(image);
      assert.ok(reference.ok);
      const expectedMirrors = c.expected.mirrors ?? [];
      if (c.expected.location !== undefined || expectedMirrors.length > 0) {
        // Where the node pulls: the mirrors, then location + the rest of the name after the prefix.
        const location = c.expected.location;
        if (!view.routed) {
          // A table with neither mirrors nor another location changes nothing: regroute leaves the image too.
          assert.equal(location, c.expected.prefix ?? location);
          assert.ok(result.findings.some((f) => f.kind === 'no-effect'));
          return;
        }
        const match = matchRoute(reference.reference, config.routes);
        if (c.expected.prefix !== undefined) assert.equal(match?.route.prefix, c.expected.prefix);
        const candidateLocations = match?.candidates.map((candidate) => candidate.location) ?? [];
        assert.deepEqual(
          candidateLocations.slice(0, expectedMirrors.length),
          expectedMirrors.map((m) => m.location),
        );
        if (location !== undefined) {
          assert.equal(candidateLocations.at(-1), location);
          const rest = `${reference.reference.registry}/${reference.reference.repository}`.slice(
            (match?.route.prefix.startsWith('*.')
              ? reference.reference.registry
              : (match?.route.prefix ?? '')
            ).length,
          );
          assert.equal(view.source, `${location}${rest}`);
        }
        for (const mirror of expectedMirrors) {
          const host = mirror.location.split('/')[0] as string;
          assert.equal(config.registries[host]?.insecure ?? false, mirror.insecure, host);
        }
      } else {
        // matched, nothing more asserted upstream: some route takes it, or the table has nothing to route.
        assert.ok(view.routed || result.findings.some((f) => f.kind === 'no-effect'));
      }
    });
  }

  for (const c of [...byKind('pullSources'), ...byKind('firstPullSource')]) {
    const tagDeparture = TAG_DEPARTURES.has(c.id);
    const title = tagDeparture
      ? 'departs: a tag is resolved at the source, and mirrors are asked for its digest only'
      : "regroute's candidates are the sources the node tries, in order";
    it(`${c.id}: ${title}`, () => {
      const { config } = imported(c.config as CorpusConfig);
      const query = (c.query as string).replaceAll('@REGISTRY@', REGISTRY);
      const view = candidatesFor(config, query);
      const expected = c.expected;
      if (expected.sources) {
        let sources = expected.sources;
        if (tagDeparture) {
          // The same image by digest: what containers/image pulls then is what regroute pulls (pinned).
          const sibling = corpus.cases.find((other) => other.id === c.id.replace(/-tag$/, '-digest'));
          sources = (sibling?.expected.sources ?? []).map((s) => ({
            ...s,
            reference: s.reference.replace(/@sha256:[a-f0-9]{64}$/, ':aaa'),
          }));
          assert.notDeepEqual(
            sources.map((s) => s.reference),
            expected.sources.map((s) => s.reference),
          );
        }
        assert.deepEqual(
          view.candidates,
          sources.map((s) => s.reference),
        );
        for (const source of sources) {
          const host = source.location.split('/')[0] as string;
          assert.equal(config.registries[host]?.insecure ?? false, source.insecure, host);
        }
      }
      if (expected.sourcesInOrder) assert.deepEqual(view.candidates, expected.sourcesInOrder);
      if (expected.mirrorsConsulted) {
        const hosts = view.candidates.map((candidate) => candidate.split('/')[0]);
        for (const mirror of expected.mirrorsConsulted) assert.ok(hosts.includes(mirror));
        for (const other of expected.notConsulted ?? []) assert.ok(!hosts.includes(other));
        assert.equal(view.candidates.at(-1), query, 'the registry itself comes after its mirrors');
      }
      if (expected.physicalReference) {
        assert.equal(view.candidates[0], expected.physicalReference.replaceAll('@REGISTRY@', REGISTRY));
      }
    });
  }

  for (const c of byKind('prefixSemantics')) {
    it(`${c.id}: prefixes match normalized names`, () => {
      for (const example of c.examples ?? []) {
        const reference = parseReference(example.ref);
        assert.ok(reference.ok);
        const match = matchRoute(reference.reference, [
          { prefix: example.prefix, registries: ['mirror.example'] },
        ]);
        assert.equal(match !== null, example.matches, `${example.ref} ~ ${example.prefix}`);
      }
    });
  }
});

/**
 * prefixMatch rows regroute cannot run as written, by `ref | prefix`: a bare host is no image name, and a prefix
 * naming a tag or digest is not a regroute route (the import reports such a table and writes no route).
 */
function prefixMatchDeparture(ref: string, prefix: string): string | null {
  if (!ref.includes('/'))
    return 'the reference is a bare host, not an image name: regroute routes image names';
  if (/^docker\.io\/[^/]+$/.test(ref) && prefix === 'docker.io/library' && ref !== prefix) {
    return (
      `a string-level row: the image ${ref} is docker.io/library/${ref.slice(10)} once normalized, which the ` +
      'prefix covers (for containers/image too, which matches normalized names)'
    );
  }
  const path = prefix.includes('/') ? prefix.slice(prefix.indexOf('/')) : '';
  if (/[:@]/.test(path)) return 'the prefix names a tag or digest: regroute routes whole repositories';
  return null;
}

describe('prefix matching (containers/image refMatchingPrefix) in regroute routes', () => {
  for (const row of corpus.prefixMatch) {
    const departure = prefixMatchDeparture(row.ref, row.prefix);
    const matches = row.expectedMatchLength !== -1;
    it(`${row.ref} ~ ${row.prefix}: ${departure ? `departs: ${departure}` : matches ? 'matches' : 'does not match'}`, () => {
      const route = Route.safeParse({ prefix: row.prefix, registries: ['mirror.example'] });
      if (departure?.startsWith('the prefix')) {
        assert.equal(route.success, false, 'not a regroute prefix');
        return;
      }
      if (departure?.startsWith('a string-level row')) {
        const reference = parseReference(row.ref);
        assert.ok(reference.ok && route.success && matchRoute(reference.reference, [route.data]) !== null);
        return;
      }
      if (departure) {
        // Read as an image, a bare name is a Docker Hub repository (or invalid): never the registry it names.
        const reference = parseReference(row.ref);
        assert.ok(!reference.ok || reference.reference.registry === 'docker.io');
        return;
      }
      const reference = parseReference(row.ref);
      assert.ok(reference.ok, row.ref);
      const match = route.success ? matchRoute(reference.reference, [route.data]) : null;
      assert.equal(match !== null, matches);
    });
  }
});

describe('reference rewriting (containers/image rewriteReference) in regroute routes', () => {
  for (const row of corpus.rewriteReference) {
    const portQuirk = row.note?.includes('port is kept');
    const outcome = row.expectedError ? 'leaves the image' : `gives ${row.expected}`;
    it(`${row.inputRef} with ${row.prefix} → "${row.location}": ${portQuirk ? `departs: ${WILDCARD_PORT}` : outcome}`, () => {
      const reference = parseReference(row.inputRef);
      assert.ok(reference.ok);
      const route =
        row.location === ''
          ? null
          : Route.safeParse({ prefix: row.prefix, source: row.location, registries: [row.location] });
      const match = route?.success ? matchRoute(reference.reference, [route.data]) : null;
      const rewritten = match?.candidates.map((c) =>
        formatReference({ ...reference.reference, registry: c.registry, repository: c.repository }),
      );
      if (portQuirk || row.expectedError) {
        // No route, no match, or nothing left to name an image: the image stays as it is.
        assert.ok(!rewritten || rewritten.length === 0, String(rewritten));
        return;
      }
      assert.deepEqual(rewritten ?? [row.inputRef], [row.expected]);
    });
  }
});

describe('locations (containers/image parseLocation)', () => {
  for (const row of corpus.parseLocation) {
    it(`${JSON.stringify(row.input)}`, () => {
      if (row.errorContains) {
        assert.throws(
          () => parseLocation(row.input),
          (e) => e instanceof ImportError && e.message.includes(row.errorContains as string),
        );
      } else if (row.expected === null) assert.doesNotThrow(() => parseLocation(row.input));
      else assert.equal(parseLocation(row.input), row.expected);
    });
  }
});
