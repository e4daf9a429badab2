// Preloaded (node --import, after tsx) into a regroute process: every module it loads through import is appended,
// as a URL per line, to the file REGROUTE_TEST_MODULES_FILE names, so that a test can tell what a command loaded.
import { register } from 'node:module';

const hooks = `
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(file, resolved.url + '\\n');
  return resolved;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, {
  data: { file: process.env.REGROUTE_TEST_MODULES_FILE },
});
