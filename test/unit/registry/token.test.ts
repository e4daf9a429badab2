// Specification of the bearer token pieces, driven by test/fixtures/registry/token-auth.json.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseWwwAuthenticate } from '../../../src/registry/challenge.js';
import {
  mergeScopes,
  parseTokenResponse,
  repositoryScope,
  type Token,
  TokenCache,
  type TokenOutcome,
  tokenRequestUrl,
} from '../../../src/registry/token.js';

interface Corpus {
  specExamples: {
    name: string;
    response: { headers: Record<string, string>; bodyText?: string };
    tokenRequestUrl?: string;
    expected?: { token: string; expiresInSeconds: number; issuedAt?: string; expiresAt?: string };
    bodyIsValidJson?: boolean;
  }[];
  clientExchanges: {
    name: string;
    challenge: string;
    repository: string;
    actions: string[];
    credentials: { username?: string; password?: string; refreshToken?: string } | null;
    expectedTokenRequest: { method: string; path: string; query?: Record<string, string[]> };
    tokenResponseBody: string;
    expectedAuthorization: string;
  }[];
  tokenLifetime: {
    name: string;
    tokenResponseBody: string;
    requestsAtSeconds: number[];
    expectedTokenExchangesAfterEach: number[];
  }[];
  repositoryScope: { locator: string; push: boolean; expected: string }[];
  mergeScopes: {
    cases: {
      contextScopes: string[];
      commonScopes: string[];
      appendPullRepository?: string;
      expected: string[];
    }[];
  };
}

const corpus = JSON.parse(
  readFileSync(new URL('../../fixtures/registry/token-auth.json', import.meta.url), 'utf8'),
) as Corpus;

const queryOf = (url: URL): Record<string, string[]> => {
  const query: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) query[name] = [...(query[name] ?? []), value];
  return query;
};

describe('token spec examples (distribution token.md, oauth.md)', () => {
  for (const example of corpus.specExamples) {
    it(example.name, () => {
      const challenge = example.response.headers['Www-Authenticate'];
      if (challenge !== undefined && example.tokenRequestUrl !== undefined) {
        const [bearer] = parseWwwAuthenticate(challenge) ?? [];
        assert.ok(bearer?.params.realm);
        const url = tokenRequestUrl({
          realm: bearer.params.realm,
          service: bearer.params.service,
          scopes: mergeScopes([bearer.params.scope ?? '']),
        });
        const expected = new URL(example.tokenRequestUrl);
        assert.equal(url.origin + url.pathname, expected.origin + expected.pathname);
        assert.deepEqual(queryOf(url), queryOf(expected));
      }
      if (example.response.bodyText === undefined) return;
      const receivedAt = Date.parse('2030-01-01T00:00:00Z');
      const token = parseTokenResponse(example.response.bodyText, receivedAt);
      if (example.bodyIsValidJson === false) {
        assert.equal(token, undefined, 'an invalid body is a failed exchange');
        return;
      }
      assert.ok(token && example.expected);
      assert.equal(token.value, example.expected.token);
      const start = example.expected.issuedAt ? Date.parse(example.expected.issuedAt) : receivedAt;
      assert.equal(token.expiresAt, start + example.expected.expiresInSeconds * 1000);
      if (example.expected.expiresAt) assert.equal(token.expiresAt, Date.parse(example.expected.expiresAt));
    });
  }
});

describe('client token exchanges (distribution session_test.go)', () => {
  for (const exchange of corpus.clientExchanges) {
    // The refresh-token grant (POST) needs an identity token, which regroute's settings cannot configure.
    if (exchange.expectedTokenRequest.method !== 'GET') continue;
    it(exchange.name, () => {
      const challenge = exchange.challenge.replace('<token-server>', 'https://127.0.0.1:5001');
      const [bearer] = parseWwwAuthenticate(challenge) ?? [];
      assert.ok(bearer?.params.realm);
      const url = tokenRequestUrl({
        realm: bearer.params.realm,
        service: bearer.params.service,
        scopes: [repositoryScope(exchange.repository, exchange.actions)],
        ...(exchange.credentials?.username ? { account: exchange.credentials.username } : {}),
      });
      assert.equal(url.pathname, exchange.expectedTokenRequest.path);
      assert.deepEqual(queryOf(url), exchange.expectedTokenRequest.query);
      const token = parseTokenResponse(exchange.tokenResponseBody, 0);
      assert.equal(`Bearer ${token?.value}`, exchange.expectedAuthorization);
    });
  }
});

describe('token lifetime (distribution session_test.go), with an injected clock', () => {
  for (const timeline of corpus.tokenLifetime) {
    it(timeline.name, async () => {
      let now = Date.parse('2030-01-01T00:00:00Z');
      const t0 = now;
      const body = timeline.tokenResponseBody.replace(
        '<t0 - 1000 s, RFC 3339>',
        new Date(t0 - 1000_000).toISOString().replace(/\.\d+Z$/, 'Z'),
      );
      const cache = new TokenCache<string>(() => now);
      let exchanges = 0;
      const exchange = async (): Promise<TokenOutcome<string>> => {
        exchanges++;
        const token = parseTokenResponse(body, now);
        return token ? { ok: true, token } : { ok: false, failure: 'no token' };
      };
      for (const [i, at] of timeline.requestsAtSeconds.entries()) {
        now = t0 + at * 1000;
        const outcome = await cache.obtain('realm service scope', exchange);
        assert.ok(outcome.ok);
        assert.equal(exchanges, timeline.expectedTokenExchangesAfterEach[i], `after the request at ${at} s`);
      }
    });
  }
});

describe('TokenCache', () => {
  const token = (value: string, expiresAt: number): Token => ({ value, expiresAt });

  it('shares one exchange among concurrent requests for the same key', async () => {
    const cache = new TokenCache<string>(() => 0);
    let exchanges = 0;
    let release: (outcome: TokenOutcome<string>) => void = () => {};
    const exchange = (): Promise<TokenOutcome<string>> => {
      exchanges++;
      return new Promise((resolve) => {
        release = resolve;
      });
    };
    const waiting = [cache.obtain('k', exchange), cache.obtain('k', exchange), cache.obtain('k', exchange)];
    release({ ok: true, token: token('t', 60_000) });
    const outcomes = await Promise.all(waiting);
    assert.equal(exchanges, 1);
    for (const outcome of outcomes) assert.deepEqual(outcome, { ok: true, token: token('t', 60_000) });
  });

  it('keeps keys apart and does not cache failures', async () => {
    const cache = new TokenCache<string>(() => 0);
    let exchanges = 0;
    const failing = async (): Promise<TokenOutcome<string>> => {
      exchanges++;
      return { ok: false, failure: 'denied' };
    };
    assert.deepEqual(await cache.obtain('a', failing), { ok: false, failure: 'denied' });
    assert.deepEqual(await cache.obtain('a', failing), { ok: false, failure: 'denied' });
    assert.equal(exchanges, 2);
    await cache.obtain('b', async () => ({ ok: true, token: token('b', 60_000) }));
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.get('b'), 'b');
  });

  it('stops handing out a token shortly before it expires', async () => {
    let now = 0;
    const cache = new TokenCache<string>(() => now, 1000);
    await cache.obtain('k', async () => ({ ok: true, token: token('t', 60_000) }));
    now = 59_000;
    assert.equal(cache.get('k'), 't');
    now = 59_001;
    assert.equal(cache.get('k'), undefined);
  });

  it('invalidates only the token that was refused', async () => {
    const cache = new TokenCache<string>(() => 0);
    await cache.obtain('k', async () => ({ ok: true, token: token('new', 60_000) }));
    cache.invalidate('k', 'old');
    assert.equal(cache.get('k'), 'new');
    cache.invalidate('k', 'new');
    assert.equal(cache.get('k'), undefined);
  });
});

describe('parseTokenResponse', () => {
  it('prefers access_token, defaults the lifetime to 60 s, and rejects bodies without a token', () => {
    assert.deepEqual(parseTokenResponse('{"token":"a","access_token":"b"}', 1000), {
      value: 'b',
      expiresAt: 61_000,
    });
    assert.deepEqual(parseTokenResponse('{"token":"a","expires_in":0}', 0), {
      value: 'a',
      expiresAt: 60_000,
    });
    assert.equal(parseTokenResponse('{"expires_in":300}', 0), undefined);
    assert.equal(parseTokenResponse('{"token":""}', 0), undefined);
    assert.equal(parseTokenResponse('[]', 0), undefined);
    assert.equal(parseTokenResponse('not json', 0), undefined);
  });

  it('does not let an issued_at ahead of the local clock stretch the lifetime', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const token = parseTokenResponse(
      '{"token":"t","expires_in":300,"issued_at":"2030-01-01T01:00:00Z"}',
      now,
    );
    assert.equal(token?.expiresAt, now + 300_000);
  });
});

describe('scopes (containerd scope_test.go)', () => {
  for (const c of corpus.repositoryScope) {
    it(`repositoryScope ${c.locator} push=${c.push}`, () => {
      // containerd takes a host-qualified locator; regroute's client is per host and takes the path alone.
      const repository = c.locator.slice(c.locator.indexOf('/') + 1);
      assert.equal(repositoryScope(repository, c.push ? ['pull', 'push'] : ['pull']), c.expected);
    });
  }

  for (const [i, c] of corpus.mergeScopes.cases.entries()) {
    it(`mergeScopes #${i}`, () => {
      const extra = c.appendPullRepository ? [repositoryScope(c.appendPullRepository)] : [];
      assert.deepEqual(mergeScopes(c.contextScopes, c.commonScopes, extra), c.expected);
    });
  }

  it('splits space-separated scopes of a challenge', () => {
    assert.deepEqual(mergeScopes(['repository:b:pull repository:a:pull'], ['repository:a:pull']), [
      'repository:a:pull',
      'repository:b:pull',
    ]);
  });
});
