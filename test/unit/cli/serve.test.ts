import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Io } from '../../../src/cli/io.js';
import {
  logLevelOption,
  portOption,
  SHUTDOWN_SIGNALS,
  serveCommand,
  shutdownSignal,
} from '../../../src/cli/serve.js';
import { freePort } from '../../harness/ports.js';
import { accepts, captureLog, certDir, scrape, servedSerial } from '../server/support.js';

describe('shutdownSignal', () => {
  for (const signal of SHUTDOWN_SIGNALS) {
    it(`resolves on ${signal} and stops listening, so a second signal ends the process at once`, async () => {
      const emitter = new EventEmitter();
      const stopping = shutdownSignal(emitter);
      for (const s of SHUTDOWN_SIGNALS) assert.equal(emitter.listenerCount(s), 1);
      emitter.emit(signal);
      assert.equal(await stopping, signal);
      for (const s of SHUTDOWN_SIGNALS) assert.equal(emitter.listenerCount(s), 0);
    });
  }
});

describe('regroute serve', () => {
  it('serves until SIGTERM, applies a changed config meanwhile, then drains and exits 0', async () => {
    const certs = await certDir();
    await certs.install(certs.issue());
    const configFile = join(certs.dir, 'config.yaml');
    const serverSettings = `server: { host: 127.0.0.1, metricsPort: 0, tlsCert: ${certs.certFile}, tlsKey: ${certs.keyFile} }`;
    await writeFile(configFile, `${serverSettings}\n`);
    const signals = new EventEmitter();
    let listening: (line: string) => void = () => {};
    const listeningLine = new Promise<string>((resolve) => {
      listening = resolve;
    });
    const io: Io = { out: () => {}, err: (line) => line.includes('listening') && listening(line) };
    const { log, lines, waitFor } = captureLog();
    try {
      const exited = serveCommand(['--config', configFile, '--port', '0'], io, {
        signals,
        log,
        reloadIntervalMs: 20,
      });
      const port = Number(/:(\d+)$/.exec(await listeningLine)?.[1]);
      assert.ok((await servedSerial(port)).length > 0);

      await writeFile(
        configFile,
        // A loopback port nothing listens on: the rebuilt registry state probes it, and contacts nothing else.
        `${serverSettings}\nroutes: [{ prefix: 127.0.0.1:9/app, registries: [127.0.0.1:9/app] }]\n`,
      );
      assert.equal((await waitFor((l) => l.msg === 'config reloaded')).routes, 1);

      signals.emit('SIGTERM');
      assert.equal(await exited, 0);
      assert.ok(
        lines.some((l) => l.msg === 'shutting down: draining requests in flight' && l.signal === 'SIGTERM'),
      );
    } finally {
      await certs.dispose();
    }
  });
});

/** `regroute serve` in this process on a config of its own: the listening line, the log, and a way to stop it. */
async function serving(configText: (certs: { certFile: string; keyFile: string }) => string, args: string[]) {
  const certs = await certDir();
  await certs.install(certs.issue());
  const configFile = join(certs.dir, 'config.yaml');
  await writeFile(configFile, configText(certs));
  const signals = new EventEmitter();
  let listening: (line: string) => void = () => {};
  const listeningLine = new Promise<string>((resolve) => {
    listening = resolve;
  });
  const io: Io = { out: () => {}, err: (line) => line.includes('listening') && listening(line) };
  const captured = captureLog();
  const exited = serveCommand(['--config', configFile, '--port', '0', ...args], io, {
    signals,
    log: captured.log,
    reloadIntervalMs: 20,
  });
  // A start that fails rejects `exited` before any listening line.
  await Promise.race([listeningLine, exited]);
  return {
    ...captured,
    configFile,
    async stop() {
      signals.emit('SIGINT');
      assert.equal(await exited, 0);
      await certs.dispose();
    },
  };
}

describe('regroute serve --metrics-port', () => {
  const server = (certs: { certFile: string; keyFile: string }, metricsPort: number) =>
    `server: { host: 127.0.0.1, metricsPort: ${metricsPort}, tlsCert: ${certs.certFile}, tlsKey: ${certs.keyFile} }\n`;

  it('serves /metrics on the port given rather than the one configured', async () => {
    const [configured, given] = [await freePort(), await freePort()];
    const serve = await serving((certs) => server(certs, configured), ['--metrics-port', String(given)]);
    try {
      assert.match(await scrape(given), /regroute_admission_requests_total/);
      assert.equal(await accepts(configured), false);
      assert.equal((await serve.waitFor((l) => l.msg === 'regroute serving')).metricsPort, given);
    } finally {
      await serve.stop();
    }
  });

  it('turns the metrics listener off with 0, as server.metricsPort 0 does', async () => {
    const configured = await freePort();
    const serve = await serving((certs) => server(certs, configured), ['--metrics-port', '0']);
    try {
      assert.equal((await serve.waitFor((l) => l.msg === 'regroute serving')).metricsPort, 0);
      assert.equal(await accepts(configured), false);
    } finally {
      await serve.stop();
    }
  });
});

describe('portOption', () => {
  it('takes 0 to 65535', () => {
    assert.equal(portOption('port', '0'), 0);
    assert.equal(portOption('port', '65535'), 65535);
    assert.equal(portOption('port', undefined), undefined);
  });

  for (const bad of ['', 'abc', '1.5', '-1', '65536', '0x10', ' 80', '8443abc', '1e3']) {
    it(`refuses ${JSON.stringify(bad)}, naming the flag`, () => {
      assert.throws(
        () => portOption('metrics-port', bad),
        (error: Error) => {
          assert.equal(error.name, 'UsageError');
          assert.equal(
            error.message,
            `--metrics-port: expected a port number from 0 to 65535, got ${JSON.stringify(bad)}`,
          );
          return true;
        },
      );
    });
  }
});

describe('regroute serve --log-level and log.level', () => {
  const withLevel = (certs: { certFile: string; keyFile: string }, level: string) =>
    `server: { host: 127.0.0.1, metricsPort: 0, tlsCert: ${certs.certFile}, tlsKey: ${certs.keyFile} }\nlog: { level: ${level} }\n`;

  /** The logger's level once `accept` holds for it: a reload is seen on the logger, not on a line it may drop. */
  async function levelBecomes(log: { level: string }, accept: (level: string) => boolean): Promise<string> {
    const until = Date.now() + 10_000;
    while (!accept(log.level) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    return log.level;
  }

  it("applies the file's level at start and again when the file changes", async () => {
    let certs: { certFile: string; keyFile: string } | undefined;
    const serve = await serving((c) => {
      certs = c;
      return withLevel(c, 'warn');
    }, []);
    try {
      assert.equal(serve.log.level, 'warn');
      assert.equal(
        serve.lines.some((l) => l.msg === 'regroute serving'),
        false,
        'an info line is not written at warn',
      );
      await writeFile(serve.configFile, withLevel(certs as { certFile: string; keyFile: string }, 'debug'));
      assert.equal(await levelBecomes(serve.log, (level) => level === 'debug'), 'debug');
    } finally {
      await serve.stop();
    }
  });

  it('keeps the level given on the command line across reloads', async () => {
    let certs: { certFile: string; keyFile: string } | undefined;
    const serve = await serving(
      (c) => {
        certs = c;
        return withLevel(c, 'warn');
      },
      ['--log-level', 'error'],
    );
    try {
      assert.equal(serve.log.level, 'error');
      // Lowered by hand so that the reload's own line is written, and the level seen after it.
      serve.log.level = 'info';
      await writeFile(serve.configFile, withLevel(certs as { certFile: string; keyFile: string }, 'debug'));
      await serve.waitFor((l) => l.msg === 'config reloaded');
      // The level is set once the reload is done, just after its line.
      assert.equal(await levelBecomes(serve.log, (level) => level !== 'info'), 'error');
    } finally {
      await serve.stop();
    }
  });
});

describe('logLevelOption', () => {
  it('takes the levels of log.level and refuses others in one line', () => {
    assert.equal(logLevelOption('debug'), 'debug');
    assert.equal(logLevelOption(undefined), undefined);
    assert.throws(
      () => logLevelOption('verbose'),
      (error: Error) =>
        error.name === 'UsageError' &&
        error.message ===
          '--log-level: expected one of trace|debug|info|warn|error|fatal|silent, got "verbose"',
    );
  });
});
