// What pods and workload templates teach about tags, and which lesson is believed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bestLessons,
  digestOfImageID,
  type Lesson,
  lessonKey,
  lessonsOfImages,
  lessonsOfPod,
} from '../../../src/cluster/lessons.js';
import { Interner, type PodRecord, podRecord } from '../../../src/kube/pod-record.js';
import { fixture } from '../kube/fake-apiserver.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const WEB_DIGEST = fixture('pod-team-a-web-running.json').status.containerStatuses[1].imageID.split('@')[1];

function pod(edit: (pod: ReturnType<typeof fixture>) => void = () => {}): PodRecord {
  const raw = fixture('pod-team-a-web-running.json');
  edit(raw);
  const record = podRecord(raw, new Interner());
  assert.ok(record);
  return record;
}

const summary = (lessons: Lesson[]) =>
  lessons.map((l) => `${l.origin} ${lessonKey(l.reference)} ${l.digest.slice(0, 12)}`).sort();

describe('digestOfImageID', () => {
  it('reads the digest of repo@digest, as containerd and CRI-O report it', () => {
    assert.equal(digestOfImageID(`registry.example.com/team/web@${D1}`), D1);
    assert.equal(digestOfImageID(`docker.io/library/nginx@${D1}`), D1);
  });
  it('reads it after the docker-pullable:// scheme the dockershim added', () => {
    assert.equal(digestOfImageID(`docker-pullable://nginx@${D1}`), D1);
  });
  it('takes nothing from a bare image ID (a config digest), an empty or a malformed one', () => {
    assert.equal(digestOfImageID(D1), undefined);
    assert.equal(digestOfImageID(`docker://${D1}`), undefined);
    assert.equal(digestOfImageID(''), undefined);
    assert.equal(digestOfImageID(undefined), undefined);
    assert.equal(digestOfImageID('Not@Valid'), undefined);
  });
});

describe('lessonsOfPod', () => {
  it("teaches a running tag image's digest from its imageID, dated by the container's start", () => {
    const lessons = lessonsOfPod(pod());
    assert.deepEqual(summary(lessons), [
      `running docker.io/envoyproxy/envoy:v1.31.2 ${lessons.find((l) => l.reference.registry === 'docker.io')?.digest.slice(0, 12)}`,
      'running registry.example.com/team/migrate:7 sha256:7a1c9',
      `running registry.example.com/team/web:1.4.2 ${WEB_DIGEST.slice(0, 12)}`,
    ]);
    const web = lessons.find((l) => l.reference.repository === 'team/web');
    assert.equal(web?.at, Date.parse('2025-03-10T08:01:14Z'));
    assert.equal(web?.reference.digest, null);
  });

  it('teaches nothing from a container that never started (no imageID)', () => {
    const stuck = podRecord(fixture('pod-team-a-web-stuck.json'), new Interner());
    assert.ok(stuck);
    assert.equal(
      lessonsOfPod(stuck).some((l) => l.reference.repository === 'team/web'),
      false,
    );
  });

  it('teaches the digest a rewritten container was pinned to, for its original tag image', () => {
    const rewritten = pod((p) => {
      p.spec.containers[0].image = `mirror.example.com/team/web:1.4.2@${D1}`;
      p.metadata.annotations['regroute.io/original-images'] = JSON.stringify({
        web: 'registry.example.com/team/web:1.4.2',
      });
    });
    const web = lessonsOfPod(rewritten).filter((l) => l.reference.repository === 'team/web');
    // Not the imageID's: the pinned digest is the one the source named.
    assert.deepEqual(summary(web), [`rewritten registry.example.com/team/web:1.4.2 ${D1.slice(0, 12)}`]);
  });

  it("teaches a tag@digest image's pair, and nothing from a digest-only image", () => {
    const pinned = pod((p) => {
      p.spec.containers[0].image = `registry.example.com/team/web:1.4.2@${D2}`;
      p.spec.initContainers[0].image = `registry.example.com/team/migrate@${D1}`;
    });
    const lessons = lessonsOfPod(pinned).filter((l) => l.reference.registry === 'registry.example.com');
    assert.deepEqual(summary(lessons), [`pinned registry.example.com/team/web:1.4.2 ${D2.slice(0, 12)}`]);
  });

  it('reads an untagged image as :latest, as the runtime pulls it', () => {
    const untagged = pod((p) => {
      p.spec.containers[0].image = 'registry.example.com/team/web';
    });
    assert.ok(
      lessonsOfPod(untagged).some((l) => lessonKey(l.reference) === 'registry.example.com/team/web:latest'),
    );
  });
});

describe('lessonsOfImages (workload templates)', () => {
  it('teaches only images pinned by tag and digest', () => {
    const lessons = lessonsOfImages([
      `registry.example.com/team/report:2.0@${D1}`,
      'registry.example.com/team/web:1.4.2',
      `registry.example.com/team/job@${D2}`,
      'NOT A REFERENCE',
    ]);
    assert.deepEqual(summary(lessons), [`pinned registry.example.com/team/report:2.0 ${D1.slice(0, 12)}`]);
  });
});

describe('bestLessons', () => {
  const reference = { registry: 'registry.example.com', repository: 'team/web', tag: '1.4.2', digest: null };
  const lesson = (origin: Lesson['origin'], digest: string, at: number): Lesson => ({
    reference,
    digest,
    origin,
    at,
  });

  it('believes a rewritten pod over a pinned image over a running one, whatever their age', () => {
    const best = bestLessons([
      lesson('running', D1, 300),
      lesson('rewritten', D2, 100),
      lesson('pinned', D1, 200),
    ]);
    assert.equal(best.get(lessonKey(reference))?.digest, D2);
    assert.equal(best.get(lessonKey(reference))?.origin, 'rewritten');
  });

  it('believes the newest of one origin: replicas started after the tag moved run the newer digest', () => {
    const best = bestLessons([
      lesson('running', D1, 100),
      lesson('running', D2, 200),
      lesson('running', D1, 150),
    ]);
    assert.equal(best.get(lessonKey(reference))?.digest, D2);
  });
});
