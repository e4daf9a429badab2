// A registry announcing its pull budget (Docker Hub's ratelimit-remaining header) is avoided before it answers 429,
// through the real client and state, against a scripted stand-in (no real registry sends the header).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Metrics } from '../../../src/audit/metrics.js';
import { Config } from '../../../src/config/schema.js';
import { parseRateLimitRemaining } from '../../../src/registry/availability.js';
import { createStateHandle } from '../../../src/state/create.js';
import { HealthTracker } from '../../../src/state/health.js';
import { manifestStore, sha256, startHttp } from '../registry/loopback.js';

describe('pull budget announced by a registry', () => {
  it('reads ratelimit-remaining as Docker Hub writes it', () => {
    assert.equal(parseRateLimitRemaining('76;w=21600'), 76);
    assert.equal(parseRateLimitRemaining('0'), 0);
    assert.equal(parseRateLimitRemaining(' 12 ; w=60'), 12);
    assert.equal(parseRateLimitRemaining(undefined), undefined);
    assert.equal(parseRateLimitRemaining('lots'), undefined);
  });

  it('holds a registry within its reserve as rate-limited, and lets it go once the budget is back', () => {
    const tracker = new HealthTracker({ failureThreshold: 2, successThreshold: 1 });
    tracker.succeeded('hub.io');
    tracker.budget('hub.io', 50, 10);
    assert.equal(tracker.health('hub.io'), 'healthy');
    tracker.budget('hub.io', 10, 10);
    assert.equal(tracker.health('hub.io'), 'rate-limited');
    assert.equal(tracker.snapshot('hub.io').rateLimitRemaining, 10);
    tracker.budget('hub.io', 11, 10);
    assert.equal(tracker.health('hub.io'), 'healthy');
  });

  it('sends pods elsewhere once a lookup says the budget is down to the reserve, and exports it (scripted stand-in)', async (t) => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [] }));
    let remaining = 40;
    const store = manifestStore({
      'library/app:v1': { mediaType: 'application/vnd.oci.image.manifest.v1+json', body },
    });
    const registry = await startHttp((req, res) => {
      res.setHeader('ratelimit-limit', '100;w=21600');
      res.setHeader('ratelimit-remaining', `${remaining};w=21600`);
      store(req, res);
    });
    t.after(() => registry.close());
    const config = Config.parse({
      registries: { [registry.host]: { insecure: true, rateLimitReserve: 5 } },
      routes: [{ prefix: registry.host, registries: [registry.host] }],
    });
    const metrics = new Metrics();
    const handle = createStateHandle(config, pino({ level: 'silent' }), { probe: false, metrics });
    t.after(() => handle.close());
    const where = { registry: registry.host, repository: 'library/app' };
    const first = await handle.state.resolveTag(where, 'v1', AbortSignal.timeout(5000));
    assert.deepEqual(first, { kind: 'digest', digest: sha256(body), from: 'registry' });
    assert.equal(handle.tracker.health(registry.host), 'healthy');

    remaining = 5;
    await handle.state.hasManifest(where, sha256('other'), AbortSignal.timeout(5000));
    assert.equal(handle.tracker.health(registry.host), 'rate-limited');
    const gauge = await metrics.registry.getSingleMetricAsString('regroute_registry_rate_limit_remaining');
    assert.match(gauge, / 5$/m);
  });
});
