// `regroute explain` live, against real registries: why a registry is unhealthy — the last failure's cause, when,
// and how many in a row — in text and in --json.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { explainCommand } from '../../src/cli/explain.js';
import type { Io } from '../../src/cli/io.js';
import type { ConfigInput } from '../../src/config/schema.js';
import {
  type FaultProxy,
  type Harness,
  pushImageToAll,
  type Registry,
  startHarness,
} from '../harness/index.js';

function capture(): Io & { stdout: string[] } {
  const stdout: string[] = [];
  return { stdout, out: (line) => stdout.push(line), err: () => {} };
}

describe('regroute explain says why a registry is unhealthy (distribution 2.8 on loopback)', () => {
  let harness: Harness;
  let source: FaultProxy;
  let mirror: Registry;
  let configFile: string;
  let image: string;

  before(async () => {
    harness = await startHarness();
    const origin = await harness.startRegistry({ name: 'source' });
    mirror = await harness.startRegistry({ name: 'mirror' });
    source = await harness.startFaultProxy(origin);
    await pushImageToAll([origin, mirror], 'team/app', 'v1');
    image = `${source.host}/team/app:v1`;
    const config: ConfigInput = {
      probe: { timeoutMs: 1000, failureThreshold: 2 },
      registries: { [source.host]: { caFile: harness.caFile }, [mirror.host]: { caFile: harness.caFile } },
      routes: [{ prefix: `${source.host}/team`, registries: [`${source.host}/team`, `${mirror.host}/team`] }],
    };
    configFile = join(harness.dir, 'explain.yaml');
    await writeFile(configFile, stringify(config));
  });
  after(() => harness?.stop());

  /** explain --json on the image, between two clocks: the explanation and the window its failure times must fall in. */
  async function explainJson() {
    const io = capture();
    const before = Date.now();
    assert.equal(await explainCommand([image, '--config', configFile, '--json'], io), 0);
    const [explanation] = io.stdout.map((line) => JSON.parse(line));
    return { explanation, before, after: Date.now() };
  }

  it('shows both registries healthy, with no failure, while the source answers', async () => {
    const { explanation } = await explainJson();
    assert.deepEqual(explanation.registries, {
      [source.host]: { health: 'healthy' },
      [mirror.host]: { health: 'healthy' },
    });
    assert.deepEqual(Object.keys(explanation), [
      'image',
      'reference',
      'route',
      'candidates',
      'decision',
      'registries',
    ]);
  });

  for (const { mode, cause } of [
    { mode: 'status', cause: /503/ },
    { mode: 'refuse', cause: /ECONNREFUSED/ },
    { mode: 'blackhole', cause: /timeout|TimeoutError|aborted/i },
  ] as const) {
    it(`gives the cause of a source answering ${mode}: ${cause}, when, and the failures in a row`, async () => {
      await source.setMode(mode);
      try {
        const { explanation, before, after } = await explainJson();
        const status = explanation.registries[source.host];
        assert.equal(status.health, 'unhealthy');
        assert.match(status.lastFailure.error, cause);
        // The first probe round confirms a first failure with a second probe (failureThreshold 2).
        assert.equal(status.lastFailure.consecutiveFailures, 2);
        const at = Date.parse(status.lastFailure.at);
        assert.ok(at >= before && at <= after, `${status.lastFailure.at} falls within the run`);
        assert.deepEqual(explanation.registries[mirror.host], { health: 'healthy' });

        const io = capture();
        assert.equal(await explainCommand([image, '--config', configFile], io), 0);
        const line = io.stdout.find((l) => l.trimStart().startsWith(`${source.host}:`));
        assert.ok(line, io.stdout.join('\n'));
        assert.match(line, /unhealthy \(last failure \S+Z, 2 in a row: .+\)$/);
        assert.match(line, cause);
      } finally {
        await source.setMode('pass');
      }
    });
  }
});
