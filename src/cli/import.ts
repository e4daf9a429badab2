// `regroute import`: node-level mirror configs (registries.conf, containerd hosts.toml) read from disk and printed as
// a regroute config. Reading files is all this does; the translation is src/import/.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, parseConfigText } from '../config/load.js';
import { importContainerdConfig, isContainerdConfig } from '../import/containerd-config.js';
import { certFilesModel, importHostsToml } from '../import/hosts-toml.js';
import { ImportError, type ImportModel, mergeModels, type SourceText } from '../import/model.js';
import { importRegistriesConf } from '../import/registries-conf.js';
import { renderConfig, toConfig } from '../import/to-config.js';
import { parseToml } from '../import/toml.js';
import { EXIT, type Io } from './io.js';
import { importUsage } from './usage.js';

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new ImportError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

async function list(path: string): Promise<{ name: string; directory: boolean }[]> {
  try {
    const entries = await readdir(path, { withFileTypes: true });
    return entries
      .map((entry) => ({ name: entry.name, directory: entry.isDirectory() }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (error) {
    throw new ImportError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

const hasHostsToml = async (directory: string): Promise<boolean> =>
  (await list(directory)).some((entry) => entry.name === 'hosts.toml' && !entry.directory);

async function hostDirectory(directory: string): Promise<ImportModel> {
  const entries = await list(directory);
  if (entries.some((entry) => entry.name === 'hosts.toml' && !entry.directory)) {
    const name = join(directory, 'hosts.toml');
    return importHostsToml({ name, text: await readText(name), directory });
  }
  return certFilesModel(
    directory,
    entries.filter((entry) => !entry.directory).map((entry) => entry.name),
  );
}

/** What the arguments hold, read in order: registries.conf layers are gathered into one model, placed first seen. */
async function readInputs(paths: readonly string[]): Promise<ImportModel[]> {
  const models: (ImportModel | 'registries.conf')[] = [];
  let main: SourceText | null = null;
  const dropIns: SourceText[] = [];
  const ignored: ImportModel['findings'][number][] = [];
  const addRegistriesConf = (file: SourceText) => {
    if (!models.includes('registries.conf')) {
      models.push('registries.conf');
      if (dropIns.length === 0) {
        main = file;
        return;
      }
    }
    dropIns.push(file);
  };

  for (const path of paths) {
    let directory: boolean;
    try {
      directory = (await stat(path)).isDirectory();
    } catch (error) {
      throw new ImportError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    if (!directory) {
      const text = await readText(path);
      if (basename(path) === 'hosts.toml')
        models.push(importHostsToml({ name: path, text, directory: dirname(path) }));
      else if (isContainerdConfig(parseToml(path, text)))
        models.push(importContainerdConfig({ name: path, text }));
      else addRegistriesConf({ name: path, text });
      continue;
    }
    const entries = await list(path);
    if (entries.some((entry) => entry.name === 'hosts.toml' && !entry.directory)) {
      models.push(await hostDirectory(path));
      continue;
    }
    const subdirectories = entries.filter((entry) => entry.directory);
    const isCertsD =
      basename(path) === 'certs.d' ||
      (await Promise.all(subdirectories.map((entry) => hasHostsToml(join(path, entry.name))))).some(Boolean);
    if (isCertsD) {
      for (const entry of subdirectories) models.push(await hostDirectory(join(path, entry.name)));
      continue;
    }
    // A registries.conf.d directory: *.conf files in lexical order, nothing else (containers-registries.conf.d(5)).
    if (!models.includes('registries.conf')) models.push('registries.conf');
    for (const entry of entries) {
      const file = join(path, entry.name);
      if (entry.directory) continue;
      if (!entry.name.endsWith('.conf')) {
        ignored.push({ kind: 'no-effect', where: file, message: 'not read: only *.conf files are drop-ins' });
        continue;
      }
      dropIns.push({ name: file, text: await readText(file) });
    }
  }
  const registriesConf = importRegistriesConf(main, dropIns);
  const result = models.map((model) => (model === 'registries.conf' ? registriesConf : model));
  result.push({ mirrorSets: [], hosts: [], findings: ignored });
  return result;
}

export async function importCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'source-first': { type: 'boolean', default: false } },
  });
  if (positionals.length === 0) {
    io.err(importUsage);
    return EXIT.usage;
  }
  let model: ImportModel;
  try {
    model = mergeModels(await readInputs(positionals));
  } catch (error) {
    if (error instanceof ImportError) {
      io.err(error.message);
      return EXIT.usage;
    }
    throw error;
  }
  const options = { sourceFirst: values['source-first'] };
  const result = toConfig(model, options);
  const text = renderConfig(result, positionals, options);
  try {
    // What is printed must load: a config regroute refuses would be the import's fault, not the input's.
    parseConfigText(text, '(imported)');
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`the imported config does not load, which is a bug in regroute import:\n${error.message}`);
      return EXIT.failure;
    }
    throw error;
  }
  io.out(text.replace(/\n$/, ''));
  io.err(
    `regroute import: ${result.routes.length} route(s), ${Object.keys(result.registries).length} registry ` +
      `setting(s), ${result.findings.length} finding(s) listed in the comments`,
  );
  return EXIT.ok;
}
