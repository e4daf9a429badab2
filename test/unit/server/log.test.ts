import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { inOneWrite, processLogger } from '../../../src/server/log.js';

const dir = mkdtempSync(join(tmpdir(), 'regroute-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const linesOf = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('the process logger', () => {
  it('writes each line as it comes, synchronously', () => {
    const file = join(dir, 'each.log');
    const log = processLogger(file);
    log.info({ registry: 'a' }, 'first');
    assert.deepEqual(
      linesOf(file).map((line) => line.msg),
      ['first'],
    );
    log.warn('second');
    assert.deepEqual(
      linesOf(file).map((line) => [line.msg, line.level, line.name]),
      [
        ['first', 30, 'regroute'],
        ['second', 40, 'regroute'],
      ],
    );
  });

  it('writes the lines logged in inOneWrite together, once it returns, in order and unchanged', () => {
    const file = join(dir, 'together.log');
    const log = processLogger(file);
    const child = log.child({ component: 'audit-test' });
    inOneWrite(log, () => {
      log.info({ audit: { container: 'web' } }, 'image rerouted');
      child.warn({ audit: { container: 'sidecar' } }, 'image left unchanged');
      inOneWrite(log, () => log.info({ audit: { container: 'init' } }, 'image rerouted'));
      assert.deepEqual(linesOf(file), [], 'nothing written before the batch ends');
    });
    const lines = linesOf(file);
    assert.deepEqual(
      lines.map((line) => [(line.audit as { container: string }).container, line.msg, line.component]),
      [
        ['web', 'image rerouted', undefined],
        ['sidecar', 'image left unchanged', 'audit-test'],
        ['init', 'image rerouted', undefined],
      ],
    );
    log.info('after');
    assert.equal(linesOf(file).at(-1)?.msg, 'after', 'lines after the batch are written at once again');
  });

  it('writes what was held even when the batch throws', () => {
    const file = join(dir, 'throws.log');
    const log = processLogger(file);
    assert.throws(() =>
      inOneWrite(log, () => {
        log.info('held');
        throw new Error('boom');
      }),
    );
    assert.deepEqual(
      linesOf(file).map((line) => line.msg),
      ['held'],
    );
  });

  it('leaves any other logger as it is', () => {
    const written: string[] = [];
    const log = pino({ name: 'regroute' }, { write: (line: string) => written.push(line) });
    inOneWrite(log, () => {
      log.info('one');
      assert.equal(written.length, 1);
    });
  });
});
