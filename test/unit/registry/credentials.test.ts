// Specification of credential loading and of dockerconfigjson key matching (kubelet keyring vectors).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import {
  Credentials,
  credentialsFromDockerConfig,
  loadCredentials,
} from '../../../src/registry/credentials.js';
import {
  isDefaultRegistryMatch,
  lookupConfigKeys,
  lookupConfigKeysForHost,
  normalizeConfigKey,
  urlsMatch,
} from '../../../src/registry/keyring.js';
import { RegistrySetupError } from '../../../src/registry/setup-error.js';

interface Keyring {
  urlsMatch: { glob: string; target: string; match: boolean }[];
  singleKeyLookup: {
    configKey: string;
    image: string;
    found: boolean;
    maxHits?: number;
    sourceTest: string;
  }[];
  orderedLookup: {
    config: Record<string, string>;
    sourceTest: string;
    cases: { image: string; matches: string[]; found: boolean }[];
  }[];
  isDefaultRegistryMatch: { image: string; expected: boolean }[];
}

const keyring = JSON.parse(
  readFileSync(new URL('../../fixtures/registry/kubelet-credential-keyring.json', import.meta.url), 'utf8'),
) as Keyring;

const PASSWORD = 'pa$$-w0rd:with:colons';
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const basicOf = (user: string, password: string): string => `Basic ${b64(`${user}:${password}`)}`;

describe('kubelet keyring rules (pkg/credentialprovider keyring_test.go)', () => {
  for (const c of keyring.urlsMatch) {
    it(`urlsMatch(${c.glob}, ${c.target}) is ${c.match}`, () => {
      assert.equal(urlsMatch(c.glob, c.target), c.match);
    });
  }

  for (const c of keyring.singleKeyLookup) {
    it(`${c.sourceTest}: key ${c.configKey} ${c.found ? 'serves' : 'does not serve'} ${c.image}`, () => {
      const hits = lookupConfigKeys([c.configKey], c.image);
      assert.equal(hits.length > 0, c.found);
      if (c.maxHits !== undefined) assert.ok(hits.length <= c.maxHits);
    });
  }

  for (const table of keyring.orderedLookup) {
    for (const c of table.cases) {
      it(`${table.sourceTest}: ${c.image} → [${c.matches.join(', ')}]`, () => {
        const hits = lookupConfigKeys(Object.keys(table.config), c.image).map((key) => table.config[key]);
        assert.deepEqual(hits, c.matches);
      });
    }
  }

  for (const c of keyring.isDefaultRegistryMatch) {
    it(`isDefaultRegistryMatch(${JSON.stringify(c.image)}) is ${c.expected}`, () => {
      assert.equal(isDefaultRegistryMatch(c.image), c.expected);
    });
  }

  it('normalizes keys the way the kubelet indexes them', () => {
    assert.equal(normalizeConfigKey('https://index.docker.io/v1/'), 'index.docker.io');
    assert.equal(normalizeConfigKey('https://*.docker.io/v2/foo'), '*.docker.io/foo');
    assert.equal(normalizeConfigKey('http://registry.local:5000/'), 'registry.local:5000');
    assert.equal(normalizeConfigKey('registry.local:5000'), 'registry.local:5000');
  });
});

describe('picking the entry for one registry host', () => {
  it('prefers the exact host over a glob, and ignores keys scoped to a repository path', () => {
    const keys = ['*.example.com', 'registry.example.com', 'registry.example.com/team'];
    assert.deepEqual(lookupConfigKeysForHost(keys, 'registry.example.com'), [
      'registry.example.com',
      '*.example.com',
    ]);
  });

  it("serves Docker Hub ('docker.io') from the https://index.docker.io/v1/ key", () => {
    const keys = ['https://index.docker.io/v1/', 'quay.io'];
    assert.deepEqual(lookupConfigKeysForHost(keys, 'docker.io'), ['https://index.docker.io/v1/']);
    assert.deepEqual(lookupConfigKeysForHost(keys, 'registry'), []);
    assert.deepEqual(lookupConfigKeysForHost(keys, 'registry.local:5000'), []);
  });

  it('matches ports exactly', () => {
    assert.deepEqual(lookupConfigKeysForHost(['registry.local'], 'registry.local:5000'), []);
    assert.deepEqual(lookupConfigKeysForHost(['https://registry.local:5000'], 'registry.local:5000'), [
      'https://registry.local:5000',
    ]);
  });

  it('reads auth (split at the first colon) before username/password, and skips unusable entries', () => {
    const config = {
      auths: {
        'registry.example.com': { auth: b64(`robot:${PASSWORD}`), username: 'ignored', password: 'ignored' },
        '*.example.com': { username: 'glob', password: 'x' },
        'broken.example.com': { auth: b64('no-colon') },
      },
    };
    assert.equal(
      credentialsFromDockerConfig(config, 'registry.example.com')?.basicAuthorization(),
      basicOf('robot', PASSWORD),
    );
    // The exact key is unusable, so the glob serves.
    assert.equal(
      credentialsFromDockerConfig(config, 'broken.example.com')?.basicAuthorization(),
      basicOf('glob', 'x'),
    );
    assert.equal(credentialsFromDockerConfig(config, 'other.org'), undefined);
  });

  it('accepts the legacy .dockercfg shape (the map without "auths")', () => {
    const legacy = { 'https://quay.io/v1/': { auth: b64('u:p') } };
    assert.equal(credentialsFromDockerConfig(legacy, 'quay.io')?.basicAuthorization(), basicOf('u', 'p'));
  });
});

describe('loadCredentials', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regroute-credentials-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const file = async (name: string, content: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, content);
    return path;
  };

  it('reads a password file, trimming exactly one trailing newline', async () => {
    const one = await loadCredentials(
      { username: 'u', passwordFile: await file('p1', `${PASSWORD}\n`) },
      'r',
    );
    assert.equal(one?.basicAuthorization(), basicOf('u', PASSWORD));
    const two = await loadCredentials(
      { username: 'u', passwordFile: await file('p2', `${PASSWORD}\n\n`) },
      'r',
    );
    assert.equal(two?.basicAuthorization(), basicOf('u', `${PASSWORD}\n`));
    const crlf = await loadCredentials(
      { username: 'u', passwordFile: await file('p3', ` ${PASSWORD}\r\n`) },
      'r',
    );
    assert.equal(crlf?.basicAuthorization(), basicOf('u', ` ${PASSWORD}`));
  });

  it('has no credentials when no auth is configured', async () => {
    assert.equal(await loadCredentials(undefined, 'r'), undefined);
  });

  it('reads a .dockerconfigjson and picks the registry host entry', async () => {
    const path = await file(
      'config.json',
      JSON.stringify({ auths: { 'https://index.docker.io/v1/': { username: 'hub', password: PASSWORD } } }),
    );
    const credentials = await loadCredentials({ dockerConfigJson: path }, 'docker.io');
    assert.equal(credentials?.basicAuthorization(), basicOf('hub', PASSWORD));
  });

  it('fails with coded errors that never quote the file', async () => {
    const expectCode = async (promise: Promise<unknown>, code: string): Promise<void> => {
      await assert.rejects(promise, (error: unknown) => {
        assert.ok(error instanceof RegistrySetupError);
        assert.equal(error.code, code);
        assert.ok(!error.message.includes(PASSWORD));
        return true;
      });
    };
    await expectCode(
      loadCredentials({ username: 'u', passwordFile: join(dir, 'missing') }, 'r'),
      'password-file-unreadable',
    );
    await expectCode(
      loadCredentials({ username: 'u', passwordFile: await file('empty', '\n') }, 'r'),
      'password-empty',
    );
    await expectCode(
      loadCredentials(
        { dockerConfigJson: await file('bad.json', `{"auths": {"r": {"password": "${PASSWORD}"`) },
        'r',
      ),
      'docker-config-invalid',
    );
    await expectCode(
      loadCredentials(
        {
          dockerConfigJson: await file(
            'other.json',
            JSON.stringify({ auths: { other: { auth: b64(`u:${PASSWORD}`) } } }),
          ),
        },
        'r',
      ),
      'docker-config-no-entry',
    );
  });

  it('never shows the password when serialized, printed or inspected', () => {
    const credentials = new Credentials('user', PASSWORD);
    for (const shown of [
      JSON.stringify(credentials),
      String(credentials),
      inspect(credentials),
      JSON.stringify({ credentials }),
    ]) {
      assert.ok(!shown.includes(PASSWORD), shown);
      assert.ok(!shown.includes(b64(`user:${PASSWORD}`)), shown);
    }
  });
});
