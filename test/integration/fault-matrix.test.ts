// The fault matrix: every fault a registry shows in practice × every role it can hold in a route, against real
// registries. Each cell asserts the decisions, that the answer came within the deadline, and the audit reasons.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type ImageDecision, mutate } from '../../src/admission/mutate.js';
import { type AdmissionRequest, decodeReview } from '../../src/admission/review.js';
import { auditRecords } from '../../src/audit/audit.js';
import { Config, type ConfigInput } from '../../src/config/schema.js';
import type { Reason } from '../../src/routing/decision.js';
import { createStateHandle } from '../../src/state/create.js';
import {
  type FaultMode,
  type FaultOptions,
  type FaultProxy,
  type Harness,
  pushImageToAll,
  startHarness,
  type TokenIssuer,
} from '../harness/index.js';
import { fixture } from '../helpers/fixtures.js';

const DEADLINE_MS = 2000;
/** Shorter than the deadline: a probe of a blackholed registry ends before an admission would give up. */
const PROBE_TIMEOUT_MS = 1500;
/**
 * How long after its deadline fired an answer may still come: measured from the deadline signal's abort, not from
 * the request, so that a loaded machine's slow start is not counted. The fallback takes one turn of the event loop;
 * a second is a hang guard, not a target.
 */
const LATE_BOUND_MS = 1000;

type Role = 'source' | 'preferred' | 'last';
type Fault =
  | 'refused'
  | 'reset'
  | 'blackhole'
  | 'slow'
  | '5xx'
  | '429'
  | 'bad-tls'
  | 'token-server-down'
  | 'wrong-digest';

const PROXY_MODE: Record<Exclude<Fault, 'token-server-down'>, { mode: FaultMode; options?: FaultOptions }> = {
  refused: { mode: 'refuse' },
  reset: { mode: 'reset' },
  blackhole: { mode: 'blackhole' },
  // Slower than a probe may take: a registry this slow is of no use to a pod being admitted.
  slow: { mode: 'slow', options: { delayMs: PROBE_TIMEOUT_MS * 3 } },
  '5xx': { mode: 'status', options: { status: 503 } },
  '429': { mode: 'rate-limit', options: { retryAfterSeconds: 60 } },
  'bad-tls': { mode: 'bad-tls' },
  'wrong-digest': { mode: 'wrong-digest' },
};
const FAULTS = [...Object.keys(PROXY_MODE), 'token-server-down'] as Fault[];

interface Expected {
  /** Where the container ends up: a role's registry, or null for unchanged. */
  readonly to: Role | null;
  readonly reason: Reason;
}
interface Cell {
  readonly tagged: Expected;
  readonly pinned: Expected;
}

/**
 * The expected decision for a cell. Each role's cells start from the state that makes the role matter: for the
 * preferred mirror, the source is down; for the last mirror, the source is down and the preferred mirror lacks
 * the image. Caches are cold, so a tag is never known from history: with its source down it can only be routed
 * unverified, by a mirror's own answer for the tag (unverifiedTags: allow).
 */
function expected(fault: Fault, role: Role): Cell {
  // A registry announcing another digest than the manifest's is caught: asked for a digest, it claims other
  // content, so the pod goes to a registry whose bytes hash to the digest; asked for a tag with the body (the source
  // down, nothing of it known), its bytes disagree with its own announcement, and it is passed over.
  if (fault === 'wrong-digest') {
    if (role === 'source') {
      return {
        tagged: { to: null, reason: 'source-healthy' },
        pinned: { to: 'preferred', reason: 'source-missing-digest' },
      };
    }
    if (role === 'preferred') {
      return {
        tagged: { to: 'last', reason: 'unverified-tag' },
        pinned: { to: 'last', reason: 'source-unhealthy' },
      };
    }
    return { tagged: { to: null, reason: 'no-candidate' }, pinned: { to: null, reason: 'no-candidate' } };
  }
  // Every other fault makes the probes call the registry down (or rate-limited): it is skipped.
  if (role === 'source') {
    return {
      tagged: { to: 'preferred', reason: 'unverified-tag' },
      pinned: { to: 'preferred', reason: 'source-unhealthy' },
    };
  }
  if (role === 'preferred') {
    return {
      tagged: { to: 'last', reason: 'unverified-tag' },
      pinned: { to: 'last', reason: 'source-unhealthy' },
    };
  }
  return { tagged: { to: null, reason: 'no-candidate' }, pinned: { to: null, reason: 'no-candidate' } };
}

interface RoleRegistry {
  readonly proxy: FaultProxy;
  readonly issuer: TokenIssuer;
}

describe('fault matrix: each fault × each role, against real registries (distribution 2.8 on loopback)', () => {
  let harness: Harness;
  const roles = {} as Record<Role, RoleRegistry>;
  const digests = { app: '', lastOnly: '' };
  const cases: string[] = [];
  let registries: NonNullable<ConfigInput['registries']> = {};

  before(async () => {
    harness = await startHarness();
    // Every role is token-authenticated with an issuer of its own, so "token server down" hits one role only.
    for (const role of ['source', 'preferred', 'last'] as const) {
      const issuer = await harness.startTokenIssuer();
      const registry = await harness.startRegistry({ name: role, auth: { kind: 'token', issuer } });
      roles[role] = { proxy: await harness.startFaultProxy(registry), issuer };
      const passwordFile = join(harness.dir, `${role}.password`);
      await writeFile(passwordFile, issuer.credentials.password);
      registries = {
        ...registries,
        [roles[role].proxy.host]: {
          caFile: harness.caFile,
          insecure: false,
          auth: { username: issuer.credentials.username, passwordFile },
        },
      };
    }
    const { source, preferred, last } = roles;
    digests.app = (
      await pushImageToAll([source.proxy, preferred.proxy, last.proxy], 'team/app', 'v1')
    ).digest;
    // Absent from the preferred mirror: what makes the last mirror the only one left.
    digests.lastOnly = (await pushImageToAll([source.proxy, last.proxy], 'team/last-only', 'v1')).digest;
  });

  after(async () => {
    if (cases.length > 0) process.stdout.write(`fault matrix: ${cases.length} cells ran\n`);
    await harness?.stop();
  });

  const host = (role: Role) => roles[role].proxy.host;

  function config() {
    return Config.parse({
      admission: { deadlineMs: DEADLINE_MS, unverifiedTags: 'allow' },
      probe: { timeoutMs: PROBE_TIMEOUT_MS, failureThreshold: 1, successThreshold: 1 },
      registries,
      routes: [
        {
          prefix: `${host('source')}/team`,
          registries: [`${host('source')}/team`, `${host('preferred')}/team`, `${host('last')}/team`],
        },
      ],
    });
  }

  function request(repository: string, digest: string): AdmissionRequest {
    const review = fixture<{
      request: { object: { spec: { containers: unknown[]; initContainers?: unknown } } };
    }>('admission/pod-create-replicaset.json');
    review.request.object.spec.containers = [
      { name: 'tagged', image: `${host('source')}/${repository}:v1` },
      { name: 'pinned', image: `${host('source')}/${repository}@${digest}` },
    ];
    delete review.request.object.spec.initContainers;
    const decoded = decodeReview(review);
    assert.ok(decoded.ok);
    return decoded.review.request;
  }

  async function applyFault(fault: Fault, role: Role): Promise<() => Promise<void>> {
    const { proxy, issuer } = roles[role];
    if (fault === 'token-server-down') {
      await issuer.stop();
      return () => issuer.start();
    }
    const { mode, options } = PROXY_MODE[fault];
    await proxy.setMode(mode, options);
    return () => proxy.setMode('pass');
  }

  /** The fault in place, probes have had a round, then a pod is admitted on cold caches. */
  async function admit(fault: Fault, role: Role, options: { probeFaulted: boolean }) {
    const restore: (() => Promise<void>)[] = [];
    // Setting the scene: the source is down for the mirrors' cells.
    if (role !== 'source') restore.push(await applyFault('refused', 'source'));
    restore.push(await applyFault(fault, role));
    const handle = createStateHandle(config(), pino({ level: 'silent' }), { probe: false });
    try {
      const probed = (['source', 'preferred', 'last'] as const).filter(
        (r) => options.probeFaulted || r !== role,
      );
      await Promise.all(probed.map((r) => handle.prober.probe(host(r))));
      const admission =
        role === 'last' ? request('team/last-only', digests.lastOnly) : request('team/app', digests.app);
      const started = performance.now();
      const deadline = AbortSignal.timeout(DEADLINE_MS);
      let firedAt: number | null = null;
      deadline.addEventListener('abort', () => {
        firedAt = performance.now();
      });
      const outcome = await mutate(admission, { config: config(), state: handle.state }, deadline);
      const answeredAt = performance.now();
      const elapsedMs = answeredAt - started;
      // Answered before its deadline fired, or this long after it.
      const lateMs = firedAt === null ? 0 : answeredAt - firedAt;
      return { outcome, elapsedMs, lateMs, audit: auditRecords(admission, outcome, elapsedMs) };
    } finally {
      await handle.close();
      for (const undo of restore.reverse()) await undo();
    }
  }

  const imageOf = (decisions: readonly ImageDecision[], name: string) =>
    decisions.find((d) => d.site.name === name)?.decision;

  for (const role of ['source', 'preferred', 'last'] as const) {
    describe(`${role} registry faulted`, () => {
      for (const fault of FAULTS) {
        const cell = expected(fault, role);
        const describeTarget = (e: Expected) => (e.to ? `to the ${e.to} registry` : 'nowhere');
        it(`${fault}: the tag goes ${describeTarget(cell.tagged)} (${cell.tagged.reason}), the digest ${describeTarget(cell.pinned)} (${cell.pinned.reason})`, async () => {
          const { outcome, lateMs, audit } = await admit(fault, role, { probeFaulted: true });
          cases.push(`${role}/${fault}`);
          assert.ok(lateMs < LATE_BOUND_MS, `answered ${lateMs.toFixed(0)} ms after its deadline`);
          for (const [name, want] of [
            ['tagged', cell.tagged],
            ['pinned', cell.pinned],
          ] as const) {
            const decision = imageOf(outcome.decisions, name);
            assert.equal(decision?.reason, want.reason, `${name}: ${JSON.stringify(decision?.verdicts)}`);
            if (want.to === null) {
              assert.equal(decision?.target, null, name);
            } else {
              assert.ok(
                decision?.target?.startsWith(`${host(want.to)}/team/`),
                `${name}: ${decision?.target}`,
              );
              // A rewrite always names the digest it was routed by.
              assert.ok(decision?.target?.endsWith(`@${decision.digest}`), `${name}: ${decision?.target}`);
            }
            // Whatever moved or was left for a fault is in the audit trail with the same reason.
            const line = audit.find((record) => record.container === name);
            if (want.to !== null || want.reason !== 'source-healthy') {
              assert.equal(line?.reason, want.reason, `${name} audit`);
              assert.equal(line?.to, decision?.target ?? null);
            } else {
              assert.equal(line, undefined, `${name}: nothing to audit`);
            }
          }
          // Fail open: whatever happened, the pod is admitted.
          assert.equal(outcome.response.allowed, true);
        });
      }
    });
  }

  describe('a blackholed registry the probes have not yet noticed', () => {
    it('as the source: the answer comes in time; both images stay, since no probe has found the source failing', async () => {
      const { outcome, lateMs, audit } = await admit('blackhole', 'source', { probeFaulted: false });
      cases.push('source/blackhole-unprobed');
      assert.ok(lateMs < LATE_BOUND_MS, `answered ${lateMs.toFixed(0)} ms after its deadline`);
      // The source's own location did not answer: no reason to move a pinned image away from it.
      const pinned = imageOf(outcome.decisions, 'pinned');
      assert.equal(pinned?.reason, 'deadline');
      assert.equal(pinned?.target, null);
      // The tag: the source gave no digest in time, and while the probes find it up, it alone defines the tag.
      const tagged = imageOf(outcome.decisions, 'tagged');
      assert.equal(tagged?.reason, 'deadline');
      assert.equal(tagged?.target, null);
      assert.deepEqual(
        audit.map((record) => [record.container, record.reason]),
        [
          ['tagged', 'deadline'],
          ['pinned', 'deadline'],
        ],
      );
    });

    it('as the preferred mirror: the digest still reaches the last mirror, by the deadline', async () => {
      const { outcome, lateMs } = await admit('blackhole', 'preferred', { probeFaulted: false });
      cases.push('preferred/blackhole-unprobed');
      assert.ok(lateMs < LATE_BOUND_MS, `answered ${lateMs.toFixed(0)} ms after its deadline`);
      const pinned = imageOf(outcome.decisions, 'pinned');
      assert.equal(pinned?.reason, 'source-unhealthy');
      assert.equal(pinned?.target, `${host('last')}/team/app@${digests.app}`);
    });
  });
});
