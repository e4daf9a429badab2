// `regroute review`: answers an AdmissionReview from a file or stdin exactly as POST /mutate would.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { mutate } from '../admission/mutate.js';
import { decodeReview, reviewOf } from '../admission/review.js';
import { createStateHandle } from '../state/create.js';
import { loadConfigOption } from './config-option.js';
import { EXIT, type Io } from './io.js';
import { reviewUsage } from './usage.js';

async function readInput(path: string): Promise<string> {
  if (path !== '-') return readFile(path, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function reviewCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' } },
  });
  const [path] = positionals;
  if (path === undefined) {
    io.err(reviewUsage);
    return EXIT.usage;
  }
  const config = await loadConfigOption(values.config);
  let body: unknown;
  let text: string;
  try {
    text = await readInput(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    io.err(code === 'ENOENT' ? `${path}: not found` : `${path}: cannot be read (${code ?? String(error)})`);
    return EXIT.usage;
  }
  try {
    body = JSON.parse(text);
  } catch (error) {
    io.err(`${path}: not JSON: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.usage;
  }
  const decoded = decodeReview(body);
  if (!decoded.ok) {
    io.err(`${path}: ${decoded.message}`);
    return EXIT.usage;
  }
  const state = createStateHandle(config, pino({ level: 'silent' }), { probe: false });
  try {
    await state.prober.probeAll();
    const signal = AbortSignal.timeout(config.admission.deadlineMs);
    const outcome = await mutate(decoded.review.request, { config, state: state.state }, signal);
    io.out(JSON.stringify(reviewOf(outcome.response), null, 2));
    if (outcome.skipped) io.err(`pod skipped: ${outcome.skipped}`);
    for (const { site, decision } of outcome.decisions) {
      io.err(
        `${site.kind}/${site.name}: ${String(site.image)} → ${decision.target ?? 'unchanged'} (${decision.reason})`,
      );
    }
    return EXIT.ok;
  } finally {
    await state.close();
  }
}
