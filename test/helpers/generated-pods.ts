// Generated Pods as the apiserver hands them to a mutating webhook: any number of containers of each kind, image
// volumes among other volumes, names that are hostile to JSON pointers and to plain objects, existing annotations
// and pull secrets, and the record an earlier invocation of regroute (or someone else) left behind.
import fc from 'fast-check';
import { SKIP_LABEL } from '../../src/admission/mutate.js';
import { ORIGINAL_IMAGES_ANNOTATION, VOLUMES_RECORD_KEY } from '../../src/admission/patch.js';
import { CONTAINER_KINDS, type ContainerKind } from '../../src/admission/pod.js';
import { SECRETS } from './routing-world.js';

export interface Container {
  name: string;
  image?: string;
  imagePullPolicy?: string;
}

/** A volume: an image volume (Kubernetes 1.31+), whose reference is optional in the schema, or another source. */
export interface Volume {
  name: string;
  image?: { reference?: string; pullPolicy?: string };
  emptyDir?: Record<string, never>;
}

export interface GeneratedPod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: {
    name?: string;
    generateName?: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: {
    containers: Container[];
    initContainers?: Container[];
    ephemeralContainers?: Container[];
    imagePullSecrets?: { name: string }[];
    volumes?: Volume[];
    restartPolicy: string;
  };
}

/**
 * Container names. The Pod schema types them as any string; the apiserver checks they are DNS labels only after
 * mutating admission, so the webhook sees `~`, `/` and names that are also properties of every JS object.
 */
export const containerName = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.string({ unit: fc.constantFrom(...'abcxyz019-.~/_'), minLength: 1, maxLength: 10 }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'constructor',
      '__proto__',
      'toString',
      'hasOwnProperty',
      '~0',
      '~1',
      '/',
      '~',
      'a/b~1c',
      'web',
    ),
  },
);

/** Between none and `max` containers of one kind, often few, sometimes close to the maximum. */
const containers = (image: fc.Arbitrary<string>, max: number) =>
  fc
    .oneof(
      { weight: 3, arbitrary: fc.integer({ min: 0, max: Math.min(3, max) }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max }) },
    )
    .chain((count) =>
      fc.array(
        fc
          .record({
            name: containerName,
            // An image is optional in the schema (a controller may fill it in later): now and then there is none.
            image: fc.option(image, { nil: undefined, freq: 15 }),
            imagePullPolicy: fc.constantFrom('Always', 'IfNotPresent'),
          })
          .map(({ image, ...rest }): Container => (image === undefined ? rest : { ...rest, image })),
        { minLength: count, maxLength: count },
      ),
    );

/** Between none and a few volumes, image volumes (now and then without a reference) among others. */
const volumes = (image: fc.Arbitrary<string>) =>
  fc.array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc
          .record({
            name: containerName,
            reference: fc.option(image, { nil: undefined, freq: 15 }),
            pullPolicy: fc.constantFrom('Always', 'IfNotPresent', undefined),
          })
          .map(({ name, reference, pullPolicy }): Volume => {
            const source = {
              ...(reference === undefined ? {} : { reference }),
              ...(pullPolicy === undefined ? {} : { pullPolicy }),
            };
            return { name, image: source };
          }),
      },
      { weight: 1, arbitrary: containerName.map((name): Volume => ({ name, emptyDir: {} })) },
    ),
    { maxLength: 4 },
  );

/** Entries of name → image for some of `names`, and a name no longer in the pod. */
const entriesOf = (names: readonly string[], image: fc.Arbitrary<string>) =>
  fc.uniqueArray(fc.tuple(fc.constantFrom(...names, 'gone'), image), {
    selector: ([name]) => name,
    maxLength: 4,
  });

/** What an annotation left by someone may hold: a valid record, or what regroute must survive reading. */
const recordedOriginals = (
  names: readonly string[],
  volumeNames: readonly string[],
  image: fc.Arbitrary<string>,
) =>
  fc.oneof(
    fc.constantFrom(
      'not json',
      '[]',
      '"x"',
      'null',
      '{}',
      '{"web": 5}',
      '{"web": null, "x": ["a"]}',
      `{"${VOLUMES_RECORD_KEY}": "x"}`,
      `{"${VOLUMES_RECORD_KEY}": ["a"]}`,
    ),
    fc
      .record({
        containers: entriesOf(names, image),
        volumes: fc.option(entriesOf(volumeNames, image), { nil: undefined }),
      })
      .map(({ containers, volumes }) =>
        JSON.stringify(
          Object.fromEntries([
            ...containers,
            ...(volumes ? [[VOLUMES_RECORD_KEY, Object.fromEntries(volumes)]] : []),
          ]),
        ),
      ),
  );

export interface PodOptions {
  /** Most containers of each kind. */
  readonly maxPerKind: number;
}

export function pod(image: fc.Arbitrary<string>, { maxPerKind }: PodOptions): fc.Arbitrary<GeneratedPod> {
  return fc
    .record({
      kinds: fc.tuple(...CONTAINER_KINDS.map(() => containers(image, maxPerKind))),
      volumes: volumes(image),
      present: fc.record({
        initContainers: fc.boolean(),
        ephemeralContainers: fc.boolean(),
        imagePullSecrets: fc.boolean(),
        volumes: fc.boolean(),
        annotations: fc.boolean(),
        labels: fc.boolean(),
      }),
      secrets: fc.uniqueArray(fc.constantFrom(...SECRETS, 'team-pull', 'other'), { maxLength: 3 }),
      otherAnnotations: fc.dictionary(
        fc.constantFrom('a.io/x', 'kubectl.kubernetes.io/restartedAt', 'b'),
        fc.string(),
      ),
      skip: fc.nat(30).map((n) => n === 0),
      named: fc.boolean(),
    })
    .chain(({ kinds, volumes, present, secrets, otherAnnotations, skip, named }) => {
      // Container names are unique across kinds in a Pod: duplicates are renamed, keeping their hostile characters.
      const seen = new Set<string>();
      const byKind = new Map<ContainerKind, Container[]>();
      for (const [i, kind] of CONTAINER_KINDS.entries()) {
        byKind.set(
          kind,
          (kinds[i] ?? []).map((container, index) => {
            let { name } = container;
            while (seen.has(name)) name = `${name}-${kind.length}${index}`;
            seen.add(name);
            return { ...container, name };
          }),
        );
      }
      const names = [...seen];
      // Volume names are unique among volumes, apart from container names.
      const volumeNames = new Set<string>();
      const podVolumes = volumes.map((volume, index) => {
        let { name } = volume;
        while (volumeNames.has(name)) name = `${name}-v${index}`;
        volumeNames.add(name);
        return { ...volume, name };
      });
      return fc
        .option(recordedOriginals(names.length > 0 ? names : ['web'], [...volumeNames, 'data'], image), {
          nil: undefined,
        })
        .map((recorded): GeneratedPod => {
          const annotations = {
            ...otherAnnotations,
            ...(recorded ? { [ORIGINAL_IMAGES_ANNOTATION]: recorded } : {}),
          };
          return {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: {
              ...(named ? { name: 'web-0' } : { generateName: 'web-7d4b9c8f6-' }),
              namespace: 'shop',
              ...(present.labels || skip
                ? { labels: { app: 'web', ...(skip ? { [SKIP_LABEL]: 'true' } : {}) } }
                : {}),
              ...(present.annotations || recorded ? { annotations } : {}),
            },
            spec: {
              containers: byKind.get('containers') ?? [],
              ...(present.initContainers ? { initContainers: byKind.get('initContainers') ?? [] } : {}),
              ...(present.ephemeralContainers
                ? { ephemeralContainers: byKind.get('ephemeralContainers') ?? [] }
                : {}),
              ...(present.imagePullSecrets ? { imagePullSecrets: secrets.map((name) => ({ name })) } : {}),
              ...(present.volumes ? { volumes: podVolumes } : {}),
              restartPolicy: 'Always',
            },
          };
        });
    });
}
