// `regroute serve` with a short reload interval, as its own process: the same command, with the file checks that
// run every 10 s in production run often enough for a test to see a rotation within a second.
import { processIo } from '../../src/cli/io.js';
import { serveCommand } from '../../src/cli/serve.js';

const reloadIntervalMs = Number(process.env.REGROUTE_TEST_RELOAD_INTERVAL_MS ?? '250');
serveCommand(process.argv.slice(2), processIo, { reloadIntervalMs }).then((code) => {
  process.exitCode = code;
});
