// The OCI distribution-spec facts in test/fixtures/registry/registry-api.json, checked twice over: a real registry
// (distribution 2.8 on loopback) answers as the spec says, and regroute's registry client reads those answers right.
// Facts about what regroute never does (push, delete, list tags, follow referrers) are listed with the reason and
// not run; every endpoint and error code of the file is either run or listed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRegistryClient, type RegistryClient } from '../../src/registry/index.js';
import {
  type FaultProxy,
  type Harness,
  header,
  type PushedImage,
  pushImage,
  type Registry,
  registryRequest,
  startHarness,
} from '../harness/index.js';
import { fixture } from '../helpers/fixtures.js';

interface Endpoint {
  id: string;
  methods: string[];
  endpoint: string;
  success: number[];
  failure: number[];
}

const FILE = 'registry/registry-api.json';
const spec = fixture<{
  endpoints: Endpoint[];
  errorCodes: { id: string; code: string }[];
  tagRegexp: string;
  tagMaxLength: number;
  nameRegexp: string;
  warningHeaderExamples: string[];
  referrersTagSchema: unknown[];
}>(FILE);

/** Endpoints regroute never calls: it only pings and reads manifests. */
const NOT_CALLED: Record<string, string> = {
  'end-2': 'blobs are never read: a manifest names the content',
  'end-4a': 'push',
  'end-4b': 'push',
  'end-4c': 'push',
  'end-5': 'push',
  'end-6': 'push',
  'end-7a': 'push',
  'end-7b': 'push',
  'end-8a': 'tags are resolved one by one with a manifest HEAD, never listed',
  'end-8b': 'as end-8a',
  'end-9': 'delete',
  'end-10': 'delete',
  'end-11': 'push (cross-repository mount)',
  'end-12a': 'referrers are not followed',
  'end-12b': 'as end-12a',
  'end-13': 'push (upload status)',
  'end-14': 'push (cancel upload)',
};

/** Error codes a pull-only client never meets (push, delete, blobs), or that regroute reads by status. */
const CODES_NOT_MET: Record<string, string> = {
  BLOB_UNKNOWN: 'blobs are never read',
  BLOB_UPLOAD_INVALID: 'push',
  BLOB_UPLOAD_UNKNOWN: 'push',
  DIGEST_INVALID: 'push',
  MANIFEST_BLOB_UNKNOWN: 'push',
  MANIFEST_INVALID: 'push',
  NAME_INVALID: 'an invalid name is refused by the client before any request (run below)',
  SIZE_INVALID: 'push',
  DENIED: 'read by its 401/403 status, like UNAUTHORIZED',
  NAME_UNKNOWN:
    'distribution 2.8 answers a manifest of an unknown repository with MANIFEST_UNKNOWN (run below); NAME_UNKNOWN comes with tags/list, never called',
  UNSUPPORTED: 'push and delete',
};

describe('OCI distribution-spec facts against a real registry and regroute’s client', () => {
  let harness: Harness;
  let open: Registry;
  let basic: Registry;
  let limited: FaultProxy;
  let client: RegistryClient;
  let image: PushedImage;
  const signal = () => AbortSignal.timeout(15_000);
  const ran = { endpoints: new Set<string>(), codes: new Set<string>() };

  before(async () => {
    harness = await startHarness();
    [open, basic] = await Promise.all([
      harness.startRegistry({ name: 'open' }),
      harness.startRegistry({ name: 'basic', auth: { kind: 'htpasswd' } }),
    ]);
    image = await pushImage(open, 'api/app', 'v1');
    // A scripted stand-in: distribution 2.8 has no rate limit, so the fault proxy answers 429 in front of it.
    limited = await harness.startFaultProxy(open, { mode: 'rate-limit', options: { retryAfterSeconds: 7 } });
    client = await createRegistryClient({ registry: open.host, settings: { caFile: harness.caFile } });
  });
  after(async () => {
    await client?.close();
    await harness?.stop();
  });

  it('end-1 GET /v2/: 200 from an open registry, 401 with a challenge from one that wants credentials', async () => {
    const end1 = spec.endpoints.find((e) => e.id === 'end-1');
    assert.ok(end1);
    const ping = await client.ping({ signal: signal() });
    assert.ok(end1.success.includes(ping.status ?? 0) && ping.ok);
    const anonymous = await createRegistryClient({
      registry: basic.host,
      settings: { caFile: harness.caFile },
    });
    try {
      const challenged = await anonymous.ping({ signal: signal() });
      assert.ok(end1.failure.includes(challenged.status ?? 0), `status ${challenged.status}`);
      assert.equal(challenged.status, 401);
      assert.ok(challenged.ok, 'a challenge is all a healthy registry owes a client without credentials');
    } finally {
      await anonymous.close();
    }
    ran.endpoints.add('end-1');
  });

  it('end-3 HEAD and GET /v2/<name>/manifests/<reference>: 200 with Docker-Content-Digest, 404 when absent', async () => {
    const end3 = spec.endpoints.find((e) => e.id === 'end-3');
    assert.ok(end3);
    assert.ok(end3.methods.includes('HEAD') && end3.methods.includes('GET'));
    for (const method of ['HEAD', 'GET'] as const) {
      const raw = await registryRequest(open, method, '/v2/api/app/manifests/v1', {
        headers: { accept: image.mediaType },
      });
      assert.ok(end3.success.includes(raw.statusCode));
      assert.equal(header(raw.headers, 'docker-content-digest'), image.digest);
      const missing = await registryRequest(open, method, '/v2/api/app/manifests/v9');
      assert.ok(end3.failure.includes(missing.statusCode));
    }
    assert.deepEqual(await client.headManifest('api/app', 'v1', { signal: signal() }), {
      kind: 'found',
      digest: image.digest,
      mediaType: image.mediaType,
    });
    const read = await client.getManifest('api/app', image.digest, { signal: signal() });
    assert.equal(read.kind === 'found' && read.digest, image.digest);
    assert.deepEqual(await client.headManifest('api/app', 'v9', { signal: signal() }), { kind: 'not-found' });
    assert.deepEqual(await client.getManifest('api/app', 'v9', { signal: signal() }), { kind: 'not-found' });
    ran.endpoints.add('end-3');
  });

  it('error codes MANIFEST_UNKNOWN and UNAUTHORIZED come in the documented body; regroute reads them', async () => {
    const codeOf = (body: Buffer) =>
      (JSON.parse(body.toString()) as { errors: { code: string }[] }).errors[0]?.code;
    const unknownTag = await registryRequest(open, 'GET', '/v2/api/app/manifests/v9');
    assert.equal(codeOf(unknownTag.body), 'MANIFEST_UNKNOWN');
    const unknownName = await registryRequest(open, 'GET', '/v2/api/nothing-here/manifests/v1');
    assert.equal(unknownName.statusCode, 404);
    assert.equal(codeOf(unknownName.body), 'MANIFEST_UNKNOWN', 'not NAME_UNKNOWN, for a manifest');
    assert.deepEqual(await client.getManifest('api/nothing-here', 'v1', { signal: signal() }), {
      kind: 'not-found',
    });
    const unauthorized = await registryRequest(
      { url: basic.url, dispatcher: basic.dispatcher },
      'GET',
      '/v2/',
    );
    assert.equal(unauthorized.statusCode, 401);
    assert.equal(codeOf(unauthorized.body), 'UNAUTHORIZED');
    for (const code of ['MANIFEST_UNKNOWN', 'UNAUTHORIZED']) ran.codes.add(code);
  });

  it('TOOMANYREQUESTS: a 429 with Retry-After makes the registry rate-limited for that long (fault proxy stand-in)', async () => {
    const raw = await registryRequest(limited, 'GET', '/v2/api/app/manifests/v1');
    assert.equal(raw.statusCode, 429);
    assert.equal(header(raw.headers, 'retry-after'), '7');
    const viaProxy = await createRegistryClient({
      registry: limited.host,
      settings: { caFile: harness.caFile },
    });
    try {
      const result = await viaProxy.headManifest('api/app', 'v1', { signal: signal() });
      assert.equal(result.kind, 'error');
      assert.ok(result.kind === 'error' && result.availability === 'rate-limited');
      assert.ok(result.kind === 'error' && result.retryAfterMs === 7000);
    } finally {
      await viaProxy.close();
    }
    ran.codes.add('TOOMANYREQUESTS');
  });

  it('tags of up to 128 characters of the tag grammar are asked for; longer or other ones are refused unasked', async () => {
    assert.equal(spec.tagMaxLength, 128);
    const tagRegexp = new RegExp(`^${spec.tagRegexp}$`);
    const longest = `t${'a'.repeat(spec.tagMaxLength - 1)}`;
    assert.ok(tagRegexp.test(longest) && !tagRegexp.test(`${longest}a`));
    assert.deepEqual(await client.headManifest('api/app', longest, { signal: signal() }), {
      kind: 'not-found',
    });
    for (const refused of [`${longest}a`, '-leading-dash', 'with space']) {
      assert.ok(!tagRegexp.test(refused));
      const result = await client.headManifest('api/app', refused, { signal: signal() });
      assert.equal(result.kind, 'error', refused);
    }
  });

  it('names outside the name grammar are refused unasked (NAME_INVALID is never provoked)', async () => {
    const nameRegexp = new RegExp(`^${spec.nameRegexp}$`);
    for (const name of ['API/app', 'api//app', 'api/app-', '_api/app']) {
      assert.ok(!nameRegexp.test(name), name);
      const result = await client.headManifest(name, 'v1', { signal: signal() });
      assert.ok(result.kind === 'error' && /invalid repository name/.test(result.message), name);
    }
    assert.ok(nameRegexp.test('api/app'));
  });

  it('every endpoint and error code of the file was run above or is listed as one regroute never meets', (t) => {
    for (const { id } of spec.endpoints) {
      assert.ok(ran.endpoints.has(id) !== id in NOT_CALLED, `${id}: run, or listed as not called, not both`);
    }
    for (const { code } of spec.errorCodes) {
      assert.ok(ran.codes.has(code) !== code in CODES_NOT_MET, `${code}: run, or listed, not both`);
    }
    // Not run: Warning headers (clients MUST NOT act on them, and regroute does not read them) and the referrers
    // fallback tag (referrers are not followed).
    assert.equal(spec.warningHeaderExamples.length, 3);
    assert.equal(spec.referrersTagSchema.length, 3);
    t.diagnostic(
      `${ran.endpoints.size} of ${spec.endpoints.length} endpoints and ${ran.codes.size} of ${spec.errorCodes.length} error codes run`,
    );
  });
});
