import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, defaultConfig, loadConfigFile, parseConfigText } from '../../../src/config/load.js';

const example = `
server:    { port: 8443, metricsPort: 9090, tlsCert: certs/tls.crt, tlsKey: certs/tls.key }
admission: { deadlineMs: 2000, unverifiedTags: allow }
probe:     { intervalSeconds: 10, timeoutMs: 2000, failureThreshold: 3, successThreshold: 1 }
registries:
  ams.ocir.io:
    auth: { username: u, passwordFile: /secrets/ams/password }
    caFile: /etc/regroute/ca/ams.crt
    insecure: false
    pullSecret: amsregcred
    healthCheck: { repository: tenancy/helidon-pod, reference: latest }
  registry.local:5000:
    auth: { dockerConfigJson: /secrets/local/.dockerconfigjson }
routes:
  - prefix: fra.ocir.io/tenancy
    source: fra.ocir.io/tenancy
    registries:
      - fra.ocir.io/tenancy
      - ams.ocir.io/tenancy
      - registry.local:5000/fra-cache/tenancy
`;

const rejects = (text: string, ...fragments: string[]) => {
  assert.throws(
    () => parseConfigText(text, 'test.yaml'),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      for (const fragment of fragments)
        assert.ok(error.message.includes(fragment), `"${error.message}" names ${fragment}`);
      return true;
    },
  );
};

describe('config', () => {
  it('accepts the documented example with every field', () => {
    const config = parseConfigText(example, 'example');
    assert.equal(config.registries['ams.ocir.io']?.pullSecret, 'amsregcred');
    assert.equal(config.routes[0]?.registries.length, 3);
  });

  it('fills every default in the embedded config, which has no routes', () => {
    const config = defaultConfig();
    assert.equal(config.server.port, 8443);
    assert.equal(config.admission.deadlineMs, 2000);
    assert.equal(config.admission.unverifiedTags, 'allow');
    assert.deepEqual(config.probe, {
      intervalSeconds: 1,
      timeoutMs: 500,
      failureThreshold: 2,
      successThreshold: 1,
    });
    assert.deepEqual(config.routes, []);
    assert.deepEqual(config.registries, {});
  });

  it('treats an empty file as the defaults', () => {
    assert.deepEqual(parseConfigText('', 'empty'), defaultConfig());
  });

  it('names the path of a wrongly typed field', () =>
    rejects('admission: { deadlineMs: soon }', 'admission.deadlineMs'));
  it('names an unknown field, catching typos', () => rejects('admision: {}', 'admision'));
  it('rejects an unknown unverifiedTags policy', () =>
    rejects('admission: { unverifiedTags: maybe }', 'admission.unverifiedTags'));
  it('rejects a route without candidates', () =>
    rejects('routes: [{ prefix: quay.io, registries: [] }]', 'routes[0].registries'));
  it('rejects a candidate with a tag', () =>
    rejects('routes: [{ prefix: quay.io, registries: ["mirror.local/x:1"] }]', 'routes[0].registries[0]'));
  for (const option of ['tlsVerify: false', 'insecureSkipVerify: true', 'skipVerify: true']) {
    it(`has no way to turn TLS verification off but insecure (rejects ${option})`, () =>
      rejects(`registries: { registry.local: { ${option} } }`, option.split(':')[0] ?? option));
  }
  it('rejects upper-case registry hosts', () => rejects('registries: { AMS.ocir.io: {} }', 'AMS.ocir.io'));
  it('rejects auth with both a password file and a docker config', () =>
    rejects(
      'registries: { a.io: { auth: { username: u, passwordFile: /p, dockerConfigJson: /d } } }',
      'registries',
    ));
  it('rejects a repeated route prefix', () =>
    rejects(
      'routes: [{ prefix: quay.io, registries: [a.io] }, { prefix: quay.io, registries: [b.io] }]',
      'routes[1].prefix',
    ));
  it('rejects insecure with a CA file', () =>
    rejects('registries: { a.io: { insecure: true, caFile: /ca } }', 'a.io'));
  it('rejects text that is not YAML', () => rejects('routes: [', 'not YAML'));
  it('places a YAML error by line and column without quoting the line, which may hold anything', () => {
    const text = 'registries:\n  a.io: { auth: { username: u, password: hunter2: x } }\n';
    rejects(text, 'not YAML', 'at line 2, column');
    assert.throws(
      () => parseConfigText(text, 'test.yaml'),
      (error: Error) => !error.message.includes('hunter2') && !error.message.includes('\n'),
    );
  });
  it('names a misplaced key without its value', () =>
    assert.throws(
      () =>
        parseConfigText('registries: { a.io: { auth: { username: u, password: hunter2 } } }', 'test.yaml'),
      (error: Error) => error instanceof ConfigError && !error.message.includes('hunter2'),
    ));

  it('reads a file and names it in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regroute-config-'));
    const path = join(dir, 'config.yaml');
    await writeFile(path, example);
    assert.equal((await loadConfigFile(path)).routes.length, 1);
    await writeFile(path, 'probe: { intervalSeconds: -1 }');
    await assert.rejects(
      loadConfigFile(path),
      (error: Error) => error.message.includes(path) && error.message.includes('probe.intervalSeconds'),
    );
    await assert.rejects(loadConfigFile(join(dir, 'missing.yaml')), /config file .*missing\.yaml not found/);
  });
});
