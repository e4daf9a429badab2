// The auditAnnotations of every answer over the corpus reviews: keys the apiserver accepts once it prefixes them with
// the webhook's name, short values, and a decision that says what the patch did.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AUDIT_KEYS,
  auditAnnotationsOf,
  imagesSummary,
  MAX_AUDIT_VALUE_BYTES,
} from '../../../src/admission/audit-annotations.js';
import { type MutateOutcome, mutate } from '../../../src/admission/mutate.js';
import { type AdmissionRequest, decodeReview } from '../../../src/admission/review.js';
import { parseConfig } from '../../../src/config/load.js';
import { unchanged } from '../../../src/routing/decision.js';
import type {
  Health,
  Presence,
  RegistryState,
  RepositoryLocation,
  TagAnswer,
} from '../../../src/state/state.js';
import { digestOf } from '../../helpers/digests.js';
import { admissionReviews, fixture, fixtureNames } from '../../helpers/fixtures.js';

/** The webhook's name in deploy/ and the chart: the apiserver writes `pods.regroute.io/<key>`. */
const WEBHOOK_NAME = 'pods.regroute.io';

/** k8s.io/apimachinery IsQualifiedName: an optional DNS-subdomain prefix and `/`, then a name of 63 at most. */
function assertQualifiedName(key: string): void {
  const [prefix, name] = key.includes('/') ? (key.split('/') as [string, string]) : [undefined, key];
  assert.ok(name.length >= 1 && name.length <= 63, `${key}: name part of 1 to 63 characters`);
  assert.match(name, /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, key);
  if (prefix !== undefined) {
    assert.ok(prefix.length <= 253, key);
    assert.match(prefix, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, key);
  }
}

const MIRROR = 'mirror.local:5000';
const SOURCES = ['docker.io', 'quay.io', 'ghcr.io', 'fra.ocir.io', 'registry.local:5000', 'k8s.gcr.io'];
const config = parseConfig(
  {
    registries: { [MIRROR]: { pullSecret: 'mirror-pull' } },
    routes: [
      ...SOURCES.filter((s) => s !== 'fra.ocir.io' && s !== 'registry.local:5000').map((prefix) => ({
        prefix,
        registries: [prefix, `${MIRROR}/${prefix}`],
      })),
      { prefix: 'fra.ocir.io/tenancy', registries: ['fra.ocir.io/tenancy', `${MIRROR}/ocir`] },
      { prefix: 'registry.local:5000/team', registries: ['registry.local:5000/team', `${MIRROR}/team`] },
    ],
  },
  'test',
);

/** Sources up (`down` empty) or down; in every case the mirror holds whatever a source would have served. */
class World implements RegistryState {
  constructor(private readonly down: readonly string[]) {}
  health(registry: string): Health {
    return this.down.includes(registry) ? 'unhealthy' : 'healthy';
  }
  resolveTag(location: RepositoryLocation, tag: string): Promise<TagAnswer> {
    const digest = digestOf(`${location.registry}/${location.repository}:${tag}`);
    return Promise.resolve({ kind: 'digest', digest, from: 'last-known', ageMs: 1000 });
  }
  hasManifest(): Promise<Presence> {
    return Promise.resolve('present');
  }
  knownPresence(): Presence {
    return 'unknown';
  }
}

/** Every corpus review: the AdmissionReview fixtures, and the public Pods sent as a CREATE. */
function corpus(): { name: string; request: AdmissionRequest }[] {
  const reviews = admissionReviews().map(({ name, review }) => {
    const decoded = decodeReview(review);
    assert.ok(decoded.ok, name);
    return { name, request: decoded.review.request };
  });
  const pods = fixtureNames('pods').flatMap((file) =>
    fixture<{ objects: { object?: Record<string, unknown> }[] }>(`pods/${file}`)
      .objects.map((entry) => (entry.object ?? entry) as Record<string, unknown>)
      .filter((object) => object.kind === 'Pod')
      .map((object, i) => ({
        name: `${file} #${i}`,
        request: {
          uid: `uid-${file}-${i}`,
          kind: { group: '', version: 'v1', kind: 'Pod' },
          resource: { group: '', version: 'v1', resource: 'pods' },
          namespace: 'default',
          operation: 'CREATE' as const,
          object,
        },
      })),
  );
  return [...reviews, ...pods];
}

const noDeadline = () => new AbortController().signal;

describe('auditAnnotations over the corpus reviews', () => {
  for (const { name, request } of corpus()) {
    it(`${name}: valid keys, bounded values, and the decision the answer carries out`, async () => {
      for (const down of [[], SOURCES]) {
        const outcome = await mutate(request, { config, state: new World(down) }, noDeadline());
        const annotations = outcome.response.auditAnnotations;
        if (outcome.skipped === 'not-a-pod') {
          assert.equal(annotations, undefined, 'nothing is said of an object regroute does not look at');
          continue;
        }
        assert.ok(annotations, 'every pod answer says what became of the pod');
        for (const [key, value] of Object.entries(annotations)) {
          assert.ok((AUDIT_KEYS as readonly string[]).includes(key), key);
          assertQualifiedName(key);
          assertQualifiedName(`${WEBHOOK_NAME}/${key}`);
          assert.equal(typeof value, 'string');
          assert.ok(
            Buffer.byteLength(value) <= MAX_AUDIT_VALUE_BYTES,
            `${key}: ${Buffer.byteLength(value)} bytes`,
          );
        }
        const rewritten = outcome.decisions.filter((d) => d.decision.target !== null);
        if (outcome.skipped) {
          assert.deepEqual({ ...annotations }, { decision: 'skipped', 'skip-reason': outcome.skipped });
        } else if (outcome.response.patch) {
          assert.equal(annotations.decision, 'rewritten');
          assert.equal(annotations.rewrites, String(rewritten.length));
        } else {
          assert.equal(annotations.decision, 'unchanged');
          assert.equal(annotations.rewrites, undefined);
        }
        if (outcome.skipped) continue;
        // One entry per image, each naming its site, its reason and, when rewritten, its target; a summary past
        // the bound ends by counting the entries it left out.
        const entries = (annotations.images ?? '').split('; ');
        const cut = Number(/^… (\d+) more$/.exec(entries.at(-1) ?? '')?.[1] ?? 0);
        if (cut > 0) entries.pop();
        assert.equal(entries.length + cut, outcome.decisions.length);
        for (const [i, entry] of entries.entries()) {
          const { site, decision } = outcome.decisions[i] as (typeof outcome.decisions)[number];
          assert.ok(entry.startsWith(`${site.kind}/${site.name} ${decision.reason} `), entry);
          if (decision.target) assert.ok(entry.endsWith(` -> ${decision.target}`), entry);
        }
        // The counts per reason are whole, cut or not.
        const counted = (annotations.reasons ?? '')
          .split(',')
          .reduce((sum, pair) => sum + Number(pair.split('=')[1]), 0);
        assert.equal(counted, outcome.decisions.length, annotations.reasons);
      }
    });
  }
});

describe('auditAnnotationsOf', () => {
  /** An outcome of `count` images rewritten to the mirror, as mutate returns it for a pod of that many. */
  const manyRewritten = (count: number, name = (i: number) => `c${i}`): MutateOutcome => ({
    response: { uid: 'u', allowed: true, patchType: 'JSONPatch', patch: 'W10=' },
    skipped: null,
    decisions: Array.from({ length: count }, (_, i) => {
      const image = `quay.io/team/app${i}:v1`;
      const digest = digestOf(image);
      return {
        site: { kind: 'containers' as const, index: i, name: name(i), image },
        decision: {
          reason: 'source-unhealthy' as const,
          target: `${MIRROR}/quay/team/app${i}:v1@${digest}`,
          digest,
          candidate: null,
          verdicts: [],
        },
      };
    }),
  });

  it('cuts the image summary of a very large pod under the bound, saying how many entries it left out', () => {
    const outcome = manyRewritten(2000);
    const images = auditAnnotationsOf(outcome)?.images ?? '';
    assert.ok(Buffer.byteLength(images) <= MAX_AUDIT_VALUE_BYTES, `${Buffer.byteLength(images)} bytes`);
    const entries = images.split('; ');
    const marker = entries.at(-1) ?? '';
    const left = Number(/^… (\d+) more$/.exec(marker)?.[1]);
    assert.equal(entries.length - 1 + left, 2000, marker);
    assert.equal(auditAnnotationsOf(outcome)?.rewrites, '2000');
    assert.equal(auditAnnotationsOf(outcome)?.reasons, 'source-unhealthy=2000');
  });

  it('keeps a summary that fits whole, with no marker', () => {
    const images = imagesSummary(manyRewritten(3).decisions);
    assert.equal(images.split('; ').length, 3);
    assert.doesNotMatch(images, /more$/);
  });

  it('bounds one hostile name and takes out its control characters', () => {
    const outcome = manyRewritten(1, () => `evil\u001b[2J\u0007${'x'.repeat(10_000)}`);
    const images = auditAnnotationsOf(outcome)?.images ?? '';
    assert.ok(images.startsWith('containers/evil?[2J?xxx'), images.slice(0, 40));
    assert.ok(images.length < 1000);
    assert.ok(![...images].some((c) => (c.codePointAt(0) ?? 0) < 0x20));
  });

  it('says a patch that could not be proven was not applied, and counts no rewrite', () => {
    const outcome = { ...manyRewritten(2), response: { uid: 'u', allowed: true }, patchError: 'boom' };
    const annotations = auditAnnotationsOf(outcome);
    assert.equal(annotations?.decision, 'patch-failed');
    assert.equal(annotations?.rewrites, undefined);
    assert.match(annotations?.images ?? '', / \(not applied\)$/);
  });

  it('summarises a pod whose images all stayed', () => {
    const annotations = auditAnnotationsOf({
      response: { uid: 'u', allowed: true },
      skipped: null,
      decisions: [
        {
          site: { kind: 'volumes', index: 0, name: 'models', image: 'alpine' },
          decision: unchanged('no-route'),
        },
      ],
    });
    assert.deepEqual(annotations, {
      decision: 'unchanged',
      images: 'volumes/models no-route alpine',
      reasons: 'no-route=1',
    });
  });
});
