// The --config option shared by subcommands: a file when given, the embedded default otherwise.
import { defaultConfig, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';

export const loadConfigOption = (path: string | undefined): Promise<Config> =>
  path ? loadConfigFile(path) : Promise.resolve(defaultConfig());
