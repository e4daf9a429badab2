// Builds the registry state a process routes with, from the config.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { StateHandle } from '../server/run.js';
import { MemoryState } from './memory-state.js';

export function createStateHandle(_config: Config, _log: Logger): StateHandle {
  const state = new MemoryState();
  return { state, isReady: () => true, close: async () => {} };
}
