// Reason source-error against real registries: an image whose own registry is up (its probes pass) but answers the
// image's lookup with an error stays where it is, through POST /mutate, with a warning and an audit line. Two such
// errors: a 5xx, and credentials the registry refuses for that repository.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Metrics } from '../../src/audit/metrics.js';
import { parseConfig } from '../../src/config/load.js';
import { buildApp } from '../../src/server/app.js';
import { createStateHandle, type LiveStateHandle } from '../../src/state/create.js';
import {
  type FaultProxy,
  type Harness,
  type PushedImage,
  pushImage,
  type Registry,
  startHarness,
  type TokenIssuer,
} from '../harness/index.js';
import { fixture } from '../helpers/fixtures.js';

interface Routed {
  handle: LiveStateHandle;
  app: ReturnType<typeof buildApp>;
  metrics: Metrics;
  logs: Record<string, unknown>[];
}

describe('reason source-error, against real registries (distribution 2.8 on loopback)', () => {
  let harness: Harness;
  let issuer: TokenIssuer;
  let open: Registry;
  let mirror: Registry;
  let token: Registry;
  let flaky: FaultProxy;
  let image: PushedImage;
  const opened: Routed[] = [];

  before(async () => {
    harness = await startHarness();
    // Once the images are pushed, the issuer grants the robot every repository but team/private, as a registry
    // whose robot account lacks access to one repository would.
    let locked = false;
    issuer = await harness.startTokenIssuer({
      grant: (account, scope) => (account && !(locked && scope.name === 'team/private') ? scope.actions : []),
    });
    [open, mirror, token] = await Promise.all([
      harness.startRegistry({ name: 'source' }),
      harness.startRegistry({ name: 'mirror' }),
      harness.startRegistry({ name: 'token', auth: { kind: 'token', issuer } }),
    ]);
    image = await pushImage(open, 'team/app', 'v1');
    await pushImage(mirror, 'team/app', 'v1', { content: image.content });
    await pushImage(token, 'team/private', 'v1', { content: image.content });
    await pushImage(mirror, 'team/private', 'v1', { content: image.content });
    locked = true;
    flaky = await harness.startFaultProxy(open);
  });
  after(async () => {
    for (const routed of opened) {
      await routed.app.close();
      await routed.handle.close();
    }
    await harness?.stop();
  });

  /** Registry state for `source` and the mirror, probed once, and the webhook app over it. */
  async function route(source: string, registries: Record<string, unknown>): Promise<Routed> {
    const config = parseConfig(
      {
        admission: { deadlineMs: 10_000 },
        registries: { [mirror.host]: { caFile: harness.caFile, pullSecret: 'mirror-pull' }, ...registries },
        routes: [{ prefix: `${source}/team`, registries: [`${source}/team`, `${mirror.host}/team`] }],
      },
      'test',
    );
    const logs: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
    const metrics = new Metrics({ defaultMetrics: false });
    // Probing in the background, as in production; the round run here is the first one, awaited.
    const handle = createStateHandle(config, log, { metrics });
    await handle.prober.probeAll();
    assert.equal(handle.tracker.health(source), 'healthy', 'the source is up: its probe passed');
    const deps = { config, state: handle.state };
    const app = buildApp({ mutateDeps: () => deps, metrics, log, isReady: () => true });
    // Listening, as the webhook does: reviews are injected, but the open port holds the process while they wait.
    await app.listen({ host: '127.0.0.1', port: 0 });
    const routed = { handle, app, metrics, logs };
    opened.push(routed);
    return routed;
  }

  async function admit(routed: Routed, images: string) {
    const review = fixture<{
      request: { uid: string; object: { spec: { containers: { image: string }[] } } };
    }>('admission/pod-create-replicaset.json');
    review.request.uid = `source-error-${images}`;
    const [web] = review.request.object.spec.containers;
    assert.ok(web);
    web.image = images;
    const res = await routed.app.inject({ method: 'POST', url: '/mutate', payload: review as never });
    assert.equal(res.statusCode, 200);
    const audit = routed.logs.find(
      (l) =>
        (l.audit as { uid?: string; container?: string } | undefined)?.uid === review.request.uid &&
        (l.audit as { container?: string }).container === 'web',
    )?.audit as Record<string, unknown> | undefined;
    return { response: res.json().response, audit };
  }

  it('leaves an image whose source answers its lookup 503 (while GET /v2/ answers), though a mirror holds it', async () => {
    const routed = await route(flaky.host, { [flaky.host]: { caFile: harness.caFile } });
    // The manifests fail, the API root does not: probes keep finding the source up.
    await flaky.setMode('status', { status: 503, paths: /\/manifests\// });
    try {
      const { response, audit } = await admit(routed, `${flaky.host}/team/app:v1`);
      assert.equal(response.patch, undefined, 'the image stays at its source');
      assert.equal(audit?.reason, 'source-error');
      assert.equal(audit?.to, null);
      assert.ok(
        response.warnings?.some((w: string) => /"web".*left unchanged \(source-error\)/.test(w)),
        JSON.stringify(response.warnings),
      );
      assert.ok(flaky.requests.status >= 1, 'the source was asked, and answered 503');
      const text = await routed.metrics.registry.metrics();
      assert.match(text, /^regroute_image_decisions_total\{reason="source-error"\} 1$/m);
      assert.match(
        text,
        new RegExp(
          `regroute_registry_requests_total\\{registry="${flaky.host}",operation="manifest",outcome="server-error",status="503",kind="lookup"\\} [1-9]`,
        ),
      );
    } finally {
      await flaky.setMode('pass');
    }
  });

  it('leaves an image whose source refuses the configured credentials for its repository', async () => {
    const password = join(harness.dir, 'robot.password');
    await writeFile(password, issuer.credentials.password);
    const routed = await route(token.host, {
      [token.host]: {
        caFile: harness.caFile,
        auth: { username: issuer.credentials.username, passwordFile: password },
      },
    });
    const { response, audit } = await admit(routed, `${token.host}/team/private:v1`);
    assert.equal(response.patch, undefined);
    assert.equal(audit?.reason, 'source-error');
    assert.equal(audit?.to, null);
    const text = await routed.metrics.registry.metrics();
    // The token exchange is counted apart from the manifest lookup it was for.
    assert.match(
      text,
      new RegExp(
        `regroute_registry_requests_total\\{registry="${token.host}",operation="token",outcome="available",status="200",kind="lookup"\\} [1-9]`,
      ),
    );
    assert.match(
      text,
      new RegExp(
        `regroute_registry_requests_total\\{registry="${token.host}",operation="manifest",outcome="auth",status="401",kind="lookup"\\} [1-9]`,
      ),
    );

    // The same credentials for a repository the robot may read: the lookup succeeds and nothing is reported.
    const readable = await admit(routed, `${token.host}/team/app:v1`);
    assert.notEqual(readable.audit?.reason, 'source-error');
  });
});
