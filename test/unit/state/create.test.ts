import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Config } from '../../../src/config/schema.js';
import { createStateHandle } from '../../../src/state/create.js';

const silent = pino({ level: 'silent' });
const location = { registry: 'source.local:5000', repository: 'team/app' };
const digest = `sha256:${'a'.repeat(64)}`;

describe('createStateHandle on a config reload', () => {
  it('keeps what is known of tags and digests when the cache settings are unchanged', async (t) => {
    const config = Config.parse({});
    const first = createStateHandle(config, silent, { probe: false });
    first.state.tags.record(location, 'v1', digest);
    first.state.presence.record(location, digest, true);
    const next = createStateHandle(Config.parse({ admission: { deadlineMs: 500 } }), silent, {
      probe: false,
      previous: { config, handle: first },
    });
    t.after(() => Promise.all([first.close(), next.close()]));
    assert.equal(next.state.tags.lastKnown(location, 'v1')?.digest, digest);
    assert.equal(next.state.knownPresence(location, digest), 'present');
  });

  it('starts empty caches when the cache settings changed, since their TTLs and bounds did', async (t) => {
    const config = Config.parse({});
    const first = createStateHandle(config, silent, { probe: false });
    first.state.tags.record(location, 'v1', digest);
    const next = createStateHandle(Config.parse({ cache: { tagTtlSeconds: 5 } }), silent, {
      probe: false,
      previous: { config, handle: first },
    });
    t.after(() => Promise.all([first.close(), next.close()]));
    assert.equal(next.state.tags.lastKnown(location, 'v1')?.digest, undefined);
  });
});
