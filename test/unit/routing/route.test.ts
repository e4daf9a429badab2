import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Route } from '../../../src/config/schema.js';
import type { Reference } from '../../../src/reference/index.js';
import { matchRoute } from '../../../src/routing/route.js';

const ref = (
  registry: string,
  repository: string,
  tag: string | null = 'v1',
  digest: string | null = null,
): Reference => ({
  registry,
  repository,
  tag,
  digest,
});
const route = (prefix: string, registries: string[], source?: string): Route => ({
  prefix,
  registries,
  ...(source ? { source } : {}),
});

describe('matchRoute', () => {
  it('appends the part of the name after the prefix to every candidate', () => {
    const match = matchRoute(ref('fra.ocir.io', 'tenancy/helidon-pod'), [
      route('fra.ocir.io/tenancy', [
        'fra.ocir.io/tenancy',
        'ams.ocir.io/tenancy',
        'registry.local:5000/fra-cache/tenancy',
      ]),
    ]);
    assert.ok(match);
    assert.deepEqual(
      match.candidates.map((c) => [c.registry, c.repository, c.isOwn]),
      [
        ['fra.ocir.io', 'tenancy/helidon-pod', true],
        ['ams.ocir.io', 'tenancy/helidon-pod', false],
        ['registry.local:5000', 'fra-cache/tenancy/helidon-pod', false],
      ],
    );
    assert.deepEqual(match.source, { registry: 'fra.ocir.io', repository: 'tenancy/helidon-pod' });
  });

  it('matches familiar Docker Hub names through their normalized form', () => {
    const routes = [route('docker.io/library', ['mirror.local/hub'])];
    const match = matchRoute(ref('docker.io', 'library/nginx'), routes);
    assert.equal(match?.candidates[0]?.repository, 'hub/nginx');
    assert.deepEqual(match?.source, { registry: 'docker.io', repository: 'library/nginx' });
  });

  it('matches on whole path components only', () => {
    const routes = [route('fra.ocir.io/ten', ['ams.ocir.io/ten'])];
    assert.equal(matchRoute(ref('fra.ocir.io', 'tenancy/app'), routes), null);
    assert.ok(matchRoute(ref('fra.ocir.io', 'ten/app'), routes));
  });

  it('lets the longest matching prefix win whatever the order', () => {
    const routes = [
      route('docker.io', ['a.local']),
      route('docker.io/library', ['b.local']),
      route('quay.io', ['c.local']),
    ];
    assert.equal(matchRoute(ref('docker.io', 'library/nginx'), routes)?.route.prefix, 'docker.io/library');
    assert.equal(matchRoute(ref('docker.io', 'bitnami/redis'), routes)?.route.prefix, 'docker.io');
  });

  it('does not match a host that only shares a prefix string or differs by port', () => {
    const routes = [route('registry.local', ['mirror.local'])];
    assert.equal(matchRoute(ref('registry.local:5000', 'app'), routes), null);
    assert.equal(matchRoute(ref('registry.localhost', 'app'), routes), null);
  });

  it('matches *.example.com wildcards on subdomains, not on the bare domain', () => {
    const routes = [route('*.ocir.io', ['backup.local/ocir'])];
    const match = matchRoute(ref('fra.ocir.io', 'tenancy/app'), routes);
    assert.equal(match?.candidates[0]?.repository, 'ocir/tenancy/app');
    // The source defaults to the image's own location when the prefix is a wildcard.
    assert.deepEqual(match?.source, { registry: 'fra.ocir.io', repository: 'tenancy/app' });
    assert.equal(matchRoute(ref('ocir.io', 'tenancy/app'), routes), null);
    assert.equal(matchRoute(ref('fra.ocir.io.evil.com', 'app'), routes), null);
  });

  it('prefers an exact host to a wildcard of the same length', () => {
    const routes = [route('*.b.io', ['wild.local']), route('aa.b.io', ['exact.local'])];
    assert.equal(matchRoute(ref('aa.b.io', 'x'), routes)?.route.prefix, 'aa.b.io');
  });

  it('resolves tags at the configured source when it differs from the prefix', () => {
    const routes = [
      route('registry.local:5000/cache', ['fra.ocir.io/t', 'registry.local:5000/cache'], 'fra.ocir.io/t'),
    ];
    const match = matchRoute(ref('registry.local:5000', 'cache/app'), routes);
    assert.deepEqual(match?.source, { registry: 'fra.ocir.io', repository: 't/app' });
    assert.deepEqual(
      match?.candidates.map((c) => c.isOwn),
      [false, true],
    );
  });

  it('drops a candidate that would name no repository', () => {
    const routes = [route('registry.local:5000/app', ['mirror.local', 'mirror.local/app'])];
    const match = matchRoute(ref('registry.local:5000', 'app'), routes);
    assert.deepEqual(
      match?.candidates.map((c) => `${c.registry}/${c.repository}`),
      ['mirror.local/app'],
    );
  });

  it('returns null without routes', () => {
    assert.equal(matchRoute(ref('docker.io', 'library/nginx'), []), null);
  });
});
