// Specification of the pullSecretSync config block: its defaults and what it rejects.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ConfigError, parseConfigText } from '../../../src/config/load.js';

const saved = process.env.POD_NAMESPACE;

describe('pullSecretSync config', () => {
  afterEach(() => {
    if (saved === undefined) delete process.env.POD_NAMESPACE;
    else process.env.POD_NAMESPACE = saved;
  });

  it('is disabled by default, so that a run outside a cluster contacts no API server', () => {
    delete process.env.POD_NAMESPACE;
    assert.deepEqual(parseConfigText('', 'empty').pullSecretSync, {
      enabled: false,
      namespace: 'regroute-system',
      resyncSeconds: 300,
    });
  });

  it('defaults the namespace to POD_NAMESPACE, read when the config is parsed', () => {
    process.env.POD_NAMESPACE = 'platform-regroute';
    assert.equal(parseConfigText('', 'empty').pullSecretSync.namespace, 'platform-regroute');
    assert.equal(
      parseConfigText('pullSecretSync: { enabled: true }', 'partial').pullSecretSync.namespace,
      'platform-regroute',
    );
  });

  it('takes every field from the file when given', () => {
    const config = parseConfigText(
      'pullSecretSync: { enabled: true, namespace: regroute, resyncSeconds: 60 }',
      'full',
    );
    assert.deepEqual(config.pullSecretSync, { enabled: true, namespace: 'regroute', resyncSeconds: 60 });
  });

  it('rejects a namespace that is not a namespace name, and an unknown field, naming the path', () => {
    for (const text of [
      'pullSecretSync: { namespace: Regroute_System }',
      'pullSecretSync: { resyncSeconds: 0 }',
      'pullSecretSync: { enable: true }',
    ]) {
      assert.throws(
        () => parseConfigText(text, 'bad'),
        (error: unknown) => error instanceof ConfigError && error.message.includes('pullSecretSync'),
        text,
      );
    }
  });
});
