// Why a registry client could not be built from its settings: a closed set of codes for the config loader.
import { readFile } from 'node:fs/promises';

export type RegistrySetupErrorCode =
  | 'password-file-unreadable'
  | 'password-empty'
  | 'docker-config-unreadable'
  | 'docker-config-invalid'
  | 'docker-config-no-entry'
  | 'ca-file-unreadable'
  | 'ca-file-invalid';

/** Its message names the registry and the file, never any file content: the files hold secrets. */
export class RegistrySetupError extends Error {
  override readonly name = 'RegistrySetupError';
  constructor(
    readonly code: RegistrySetupErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The file's text, or a RegistrySetupError with `code` that says why it could not be read (ENOENT, EACCES…). */
export async function readSetupFile(
  path: string,
  code: RegistrySetupErrorCode,
  registry: string,
): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as { code?: unknown }).code;
    throw new RegistrySetupError(
      code,
      `registry ${registry}: cannot read ${path}${typeof reason === 'string' ? ` (${reason})` : ''}`,
    );
  }
}
