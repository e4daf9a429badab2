import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ConfigError, defaultConfig, parseConfigText } from '../../../src/config/load.js';

describe('log.level', () => {
  afterEach(() => {
    delete process.env.REGROUTE_LOG_LEVEL;
  });

  it('is info unless set', () => {
    assert.equal(defaultConfig().log.level, 'info');
  });

  it('takes its default from REGROUTE_LOG_LEVEL, read when a config is parsed', () => {
    process.env.REGROUTE_LOG_LEVEL = 'debug';
    assert.equal(defaultConfig().log.level, 'debug');
    assert.equal(parseConfigText('routes: []\n', 'test.yaml').log.level, 'debug');
  });

  it("is the file's where the file sets one", () => {
    process.env.REGROUTE_LOG_LEVEL = 'debug';
    assert.equal(parseConfigText('log: { level: warn }\n', 'test.yaml').log.level, 'warn');
  });

  it('refuses a level pino does not have, naming the variable it may have come from', () => {
    process.env.REGROUTE_LOG_LEVEL = 'loud';
    assert.throws(
      () => defaultConfig(),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /log\.level/);
        assert.match(error.message, /trace\|debug\|info\|warn\|error\|fatal\|silent, got "loud"/);
        assert.match(error.message, /REGROUTE_LOG_LEVEL/);
        return true;
      },
    );
    delete process.env.REGROUTE_LOG_LEVEL;
    assert.throws(() => parseConfigText('log: { level: verbose }\n', 'test.yaml'), /got "verbose"/);
  });
});
