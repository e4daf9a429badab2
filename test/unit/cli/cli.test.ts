import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { certsCommand } from '../../../src/cli/certs.js';
import { explainCommand } from '../../../src/cli/explain.js';
import type { Io } from '../../../src/cli/io.js';

function capture(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

const routesConfig = `
routes:
  - prefix: docker.io
    registries: [docker.io, mirror.local:5000/hub]
  - prefix: fra.ocir.io/tenancy
    registries: [fra.ocir.io/tenancy, ams.ocir.io/tenancy]
`;

async function configFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'regroute-cli-'));
  const path = join(dir, 'config.yaml');
  await writeFile(path, text);
  return path;
}

describe('regroute explain --offline --json', () => {
  it('prints one JSON object per image, in argument order, with reference, route and candidates', async () => {
    const io = capture();
    const config = await configFile(routesConfig);
    const code = await explainCommand(
      [
        'nginx:1.27',
        `fra.ocir.io/tenancy/app@sha256:${'a'.repeat(64)}`,
        'quay.io/x/y',
        '--config',
        config,
        '--offline',
        '--json',
      ],
      io,
    );
    assert.equal(code, 0);
    const lines = io.stdout.map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    assert.deepEqual(lines[0], {
      image: 'nginx:1.27',
      reference: { registry: 'docker.io', repository: 'library/nginx', tag: '1.27', digest: null },
      route: { prefix: 'docker.io', source: 'docker.io/library/nginx' },
      candidates: ['docker.io/library/nginx:1.27', 'mirror.local:5000/hub/library/nginx:1.27'],
    });
    assert.deepEqual(lines[1].candidates, [
      `fra.ocir.io/tenancy/app@sha256:${'a'.repeat(64)}`,
      `ams.ocir.io/tenancy/app@sha256:${'a'.repeat(64)}`,
    ]);
    assert.equal(lines[2].route, null);
    assert.deepEqual(Object.keys(lines[0]), ['image', 'reference', 'route', 'candidates']);
  });

  it('reports an invalid image as {image, error} and exits 2, still explaining the others', async () => {
    const io = capture();
    const code = await explainCommand(['Nginx:1', 'nginx', '--offline', '--json'], io);
    assert.equal(code, 2);
    const [bad, good] = io.stdout.map((l) => JSON.parse(l));
    assert.deepEqual(Object.keys(bad), ['image', 'error']);
    assert.equal(bad.image, 'Nginx:1');
    assert.ok(bad.error.length > 0);
    assert.equal(good.reference.repository, 'library/nginx');
  });

  it('asks for images when given none', async () => {
    const io = capture();
    assert.equal(await explainCommand(['--offline'], io), 2);
    assert.match(io.stderr.join('\n'), /regroute explain IMAGE/);
  });
});

describe('regroute certs', () => {
  it('writes a CA and a serving certificate for the Service names that the CA signed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regroute-certs-'));
    const io = capture();
    assert.equal(await certsCommand(['--out', dir, '--service', 'rr', '--namespace', 'ops'], io), 0);
    const ca = new X509Certificate(await readFile(join(dir, 'ca.crt')));
    const serving = new X509Certificate(await readFile(join(dir, 'tls.crt')));
    assert.ok(serving.checkIssued(ca));
    assert.ok(serving.verify(ca.publicKey));
    for (const name of ['rr', 'rr.ops', 'rr.ops.svc', 'rr.ops.svc.cluster.local', 'localhost']) {
      assert.ok(serving.checkHost(name), `covers ${name}`);
    }
    assert.ok(ca.ca);
    assert.match(await readFile(join(dir, 'tls.key'), 'utf8'), /PRIVATE KEY/);
  });
});

describe('regroute as a person meets it', () => {
  const CLI = join(import.meta.dirname, '..', '..', '..', 'src', 'cli.ts');
  /** The command as its own process: what a person types and sees. */
  const run = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', CLI, ...args], (error, stdout, stderr) =>
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
      );
    });

  it('prints its version', async () => {
    const { code, stdout } = await run('--version');
    assert.equal(code, 0);
    assert.match(stdout, /^regroute \d+\.\d+\.\d+\n$/);
  });

  it('tells a missing config or review file in one line, without a stack trace', async () => {
    const missing = await run('explain', 'nginx', '--config', '/nonexistent/regroute.yaml', '--offline');
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, 'config file /nonexistent/regroute.yaml not found\n');
    const review = await run('review', '/nonexistent/review.json');
    assert.equal(review.stderr, '/nonexistent/review.json: not found\n');
  });

  it('tells a bad port flag in one line before starting anything, and exits 2', async () => {
    for (const [args, flag, value] of [
      [['--port', 'abc'], '--port', 'abc'],
      [['--port', ''], '--port', ''],
      [['--metrics-port', '70000'], '--metrics-port', '70000'],
      [['--metrics-port=-1'], '--metrics-port', '-1'],
    ] as const) {
      const { code, stdout, stderr } = await run('serve', ...args);
      assert.equal(code, 2, args.join(' '));
      assert.equal(
        stderr,
        `regroute serve: ${flag}: expected a port number from 0 to 65535, got ${JSON.stringify(value)}\n`,
      );
      assert.equal(stdout, '', 'nothing started, nothing logged');
    }
  });

  it('says what an auth block lacks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regroute-cli-'));
    const file = join(dir, 'c.yaml');
    await writeFile(file, 'registries:\n  a.io:\n    auth: { username: u }\n');
    await assert.rejects(
      explainCommand(['nginx', '--config', file, '--offline'], capture()),
      (error: Error) => {
        assert.match(error.message, /passwordFile is missing/);
        assert.match(error.message, /registries\["a\.io"\]\.auth/);
        return true;
      },
    );
  });

  it('keeps an existing CA unless asked to replace it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regroute-certs-'));
    assert.equal(await certsCommand(['--out', dir], capture()), 0);
    const ca = await readFile(join(dir, 'ca.crt'), 'utf8');
    const again = capture();
    assert.equal(await certsCommand(['--out', dir], again), 2);
    assert.match(again.stderr[0] ?? '', /exists.*--force/);
    assert.equal(await readFile(join(dir, 'ca.crt'), 'utf8'), ca);
    assert.equal(await certsCommand(['--out', dir, '--force'], capture()), 0);
    assert.notEqual(await readFile(join(dir, 'ca.crt'), 'utf8'), ca);
  });
});
