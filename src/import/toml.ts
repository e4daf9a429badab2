// Reading TOML for the importers: parse errors with file, line and column, and typed access to untyped tables.
import { parse, TomlError } from 'smol-toml';
import { type Finding, ImportError } from './model.js';

export type Table = Record<string, unknown>;

export function parseToml(name: string, text: string): Table {
  try {
    return parse(text, { unsafeKeyBehaviour: 'throw' }) as Table;
  } catch (error) {
    if (error instanceof TomlError) {
      // The message's first line without smol-toml's excerpt of the file: the position says where to look.
      const first = (error.message.split('\n')[0] ?? error.message).replace(/^Invalid TOML document: /, '');
      throw new ImportError(`${name}:${error.line}:${error.column}: not valid TOML: ${first}`);
    }
    throw new ImportError(
      `${name}: not valid TOML: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

export const isTable = (value: unknown): value is Table =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);

/** Describes a TOML value's type the way an error message should. */
function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (isTable(value)) return 'a table';
  if (value instanceof Date) return 'a date';
  return `a ${typeof value}`;
}

/** Typed reads of one table's keys; a wrong type is invalid input, as for the Go decoders the runtimes use. */
export class TableReader {
  private readonly read = new Set<string>();

  constructor(
    readonly table: Table,
    /** Names the table in messages, e.g. `registries.conf: [[registry]] #2`. */
    readonly where: string,
  ) {}

  has(key: string): boolean {
    return this.table[key] !== undefined;
  }

  private take(key: string): unknown {
    this.read.add(key);
    return this.table[key];
  }

  private wrong(key: string, expected: string, value: unknown): never {
    throw new ImportError(`${this.where}: "${key}" must be ${expected}, not ${typeName(value)}`);
  }

  string(key: string): string | undefined {
    const value = this.take(key);
    if (value === undefined || typeof value === 'string') return value;
    return this.wrong(key, 'a string', value);
  }

  boolean(key: string): boolean | undefined {
    const value = this.take(key);
    if (value === undefined || typeof value === 'boolean') return value;
    return this.wrong(key, 'true or false', value);
  }

  strings(key: string): string[] | undefined {
    const value = this.take(key);
    if (value === undefined) return undefined;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
    return this.wrong(key, 'an array of strings', value);
  }

  tables(key: string): Table[] | undefined {
    const value = this.take(key);
    if (value === undefined) return undefined;
    if (Array.isArray(value) && value.every(isTable)) return value;
    return this.wrong(key, 'an array of tables', value);
  }

  tableOf(key: string): Table | undefined {
    const value = this.take(key);
    if (value === undefined || isTable(value)) return value;
    return this.wrong(key, 'a table', value);
  }

  /** Any value, left for the caller to check (keys whose type varies, like containerd's `ca`). */
  raw(key: string): unknown {
    return this.take(key);
  }

  /** Marks keys as known without reading them (they are reported elsewhere). */
  known(...keys: string[]): void {
    for (const key of keys) this.read.add(key);
  }

  /** One finding per key nothing read: the runtime's decoder ignores unknown keys, so nothing else would say. */
  unknownKeys(): Finding[] {
    return Object.keys(this.table)
      .filter((key) => !this.read.has(key))
      .map((key) => ({
        kind: 'unknown-key' as const,
        where: this.where,
        message: `"${key}" is not a key of this format; the runtime ignores it, and so does the import`,
      }));
  }
}
