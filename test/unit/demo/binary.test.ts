import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { demoCommand } from '../../../src/cli/demo.js';
import { findRegistryBinary, missingRegistryMessage } from '../../../src/demo/binary.js';
import { capture } from './capture.js';

describe('findRegistryBinary', () => {
  let dir: string;
  let empty: string;
  let executable: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regroute-demo-binary-'));
    empty = await mkdtemp(join(tmpdir(), 'regroute-demo-empty-'));
    executable = join(dir, 'docker-registry');
    await writeFile(executable, '#!/bin/sh\n');
    await chmod(executable, 0o755);
    await writeFile(join(dir, 'not-executable'), '');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(empty, { recursive: true, force: true });
  });

  it('finds docker-registry in the first PATH directory holding it', () => {
    assert.equal(findRegistryBinary({ PATH: [empty, '', dir].join(delimiter) }), executable);
  });

  it('answers null when no PATH directory holds it', () => {
    assert.equal(findRegistryBinary({ PATH: empty }), null);
    assert.equal(findRegistryBinary({}), null);
  });

  it('takes REGROUTE_DOCKER_REGISTRY as a path, or as a name looked up on PATH', () => {
    assert.equal(findRegistryBinary({ PATH: empty, REGROUTE_DOCKER_REGISTRY: executable }), executable);
    assert.equal(findRegistryBinary({ PATH: dir, REGROUTE_DOCKER_REGISTRY: 'docker-registry' }), executable);
  });

  it('refuses a file that is not executable, and a directory', () => {
    assert.equal(findRegistryBinary({ REGROUTE_DOCKER_REGISTRY: join(dir, 'not-executable') }), null);
    assert.equal(findRegistryBinary({ PATH: dir, REGROUTE_DOCKER_REGISTRY: 'not-executable' }), null);
    assert.equal(findRegistryBinary({ REGROUTE_DOCKER_REGISTRY: dir }), null);
  });
});

describe('missingRegistryMessage', () => {
  it('gives the apt command and says that nothing is installed', () => {
    const message = missingRegistryMessage({ PATH: '/nowhere' });
    assert.match(message, /^ {2}sudo apt-get install docker-registry$/m);
    assert.match(message, /docker-registry is not on PATH/);
    assert.match(message, /nothing is installed/);
  });

  it('names the binary REGROUTE_DOCKER_REGISTRY points at', () => {
    assert.match(
      missingRegistryMessage({ REGROUTE_DOCKER_REGISTRY: '/opt/registry' }),
      /REGROUTE_DOCKER_REGISTRY=\/opt\/registry is not an executable registry binary/,
    );
  });
});

describe('regroute demo without docker-registry', () => {
  it('exits 1 with the apt command and starts nothing', async () => {
    const io = capture();
    const parent = await mkdtemp(join(tmpdir(), 'regroute-demo-parent-'));
    try {
      const code = await demoCommand([], io, { env: { PATH: '/nowhere' }, tmpdir: parent });
      assert.equal(code, 1);
      assert.deepEqual(io.stdout, []);
      assert.match(io.stderr.join('\n'), /sudo apt-get install docker-registry/);
      assert.deepEqual(await readdir(parent), []);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('refuses options it does not know', async () => {
    await assert.rejects(demoCommand(['--fast'], capture()), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
  });
});
