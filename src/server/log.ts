// The process logger: pino JSON lines, written without holding the event loop.
import { type Logger, pino } from 'pino';

/**
 * Audit lines are written on the admission path, one per rerouted image. Written synchronously, each is a system
 * call while the review waits (about a tenth of an admission's CPU, measured with the benchmark); written
 * asynchronously, lines queued meanwhile go out together. What is queued is flushed on shutdown (`log.flush()`)
 * and, by pino, when the process exits.
 */
export function processLogger(dest: number | string = 1): Logger {
  return pino({ name: 'regroute' }, pino.destination({ dest, sync: false }));
}
