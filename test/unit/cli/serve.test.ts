import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Io } from '../../../src/cli/io.js';
import { SHUTDOWN_SIGNALS, serveCommand, shutdownSignal } from '../../../src/cli/serve.js';
import { captureLog, certDir, servedSerial } from '../server/support.js';

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
