// Renders deploy/ without kubectl: the kustomize subset the manifests use, and a check against `kubectl kustomize`.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** What kubectl and this renderer agree to call one object: kind, namespace and name. */
export const idOf = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

interface Target {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
  /** Comma-separated `key=value` and `key` terms, all of which must hold. */
  labelSelector?: string;
}

interface Generator {
  name: string;
  namespace?: string;
  /** `replace` swaps the data of an object of the same kind, namespace and name already accumulated. */
  behavior?: 'create' | 'replace';
  type?: string;
  files: string[];
  options?: { disableNameSuffixHash?: boolean };
}

interface Kustomization {
  kind?: string;
  namespace?: string;
  resources?: string[];
  components?: string[];
  labels?: { pairs: Record<string, string> }[];
  patches?: { path: string; target?: Target }[];
  configMapGenerator?: Generator[];
  secretGenerator?: Generator[];
}

/** A rendered object, and whether kustomize would append a content hash to its name at the end of the build. */
interface Resource {
  object: KubeObject;
  hashName: boolean;
}

// Anything outside the subset is refused, so a manifest change that needs more of kustomize fails loudly here
// instead of rendering something kubectl would not.
const KUSTOMIZATION_FIELDS = [
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'components',
  'labels',
  'patches',
  'configMapGenerator',
  'secretGenerator',
];
const GENERATOR_FIELDS = ['name', 'namespace', 'behavior', 'type', 'files', 'options'];
const PATCH_FIELDS = ['path', 'target'];
const TARGET_FIELDS = ['group', 'version', 'kind', 'name', 'labelSelector'];
const COMPONENT_KIND = 'Component';

// kustomize takes the scope of a kind from its built-in OpenAPI document and counts unknown kinds (custom
// resources such as cert-manager's Issuer) as namespaced; these are the cluster-scoped kinds deploy/ uses.
// ValidatingAdmissionPolicy and its binding are cluster-scoped too, but kustomize (5.7) does not know them and puts
// them in the kustomization's namespace like any namespaced kind; so does this renderer.
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
  'PriorityClass',
]);

function onlyFields(value: object, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key))
      throw new Error(`${where}: "${key}" is outside the kustomize subset this renderer knows`);
  }
}

function readYamlDocuments(path: string): unknown[] {
  const documents = parseAllDocuments(readFileSync(path, 'utf8'));
  return documents.flatMap((document) => {
    if (document.errors.length > 0) throw new Error(`${path}: ${document.errors[0]?.message}`);
    const value: unknown = document.toJS();
    return value === null || value === undefined ? [] : [value];
  });
}

function readKustomization(dir: string): Kustomization {
  const file = ['kustomization.yaml', 'kustomization.yml', 'Kustomization']
    .map((name) => join(dir, name))
    .find((path) => existsSync(path));
  if (file === undefined) throw new Error(`${dir}: no kustomization file`);
  const [document] = readYamlDocuments(file);
  const kustomization = (document ?? {}) as Kustomization;
  onlyFields(kustomization, KUSTOMIZATION_FIELDS, file);
  for (const generator of [
    ...(kustomization.configMapGenerator ?? []),
    ...(kustomization.secretGenerator ?? []),
  ]) {
    onlyFields(generator, GENERATOR_FIELDS, `${file} generator ${generator.name}`);
    if (![undefined, 'create', 'replace'].includes(generator.behavior))
      throw new Error(
        `${file} generator ${generator.name}: behavior ${generator.behavior} is outside the subset`,
      );
    onlyFields(
      generator.options ?? {},
      ['disableNameSuffixHash'],
      `${file} generator ${generator.name} options`,
    );
  }
  for (const patch of kustomization.patches ?? []) {
    onlyFields(patch, PATCH_FIELDS, `${file} patch ${patch.path}`);
    onlyFields(patch.target ?? {}, TARGET_FIELDS, `${file} patch ${patch.path} target`);
  }
  for (const label of kustomization.labels ?? []) onlyFields(label, ['pairs'], `${file} labels`);
  return kustomization;
}

function asObject(value: unknown, where: string): KubeObject {
  const o = value as KubeObject;
  if (
    typeof o?.apiVersion !== 'string' ||
    typeof o.kind !== 'string' ||
    typeof o.metadata?.name !== 'string'
  ) {
    throw new Error(`${where}: not a Kubernetes object (apiVersion, kind and metadata.name are required)`);
  }
  return o;
}

/** `key=path` names the data key; a bare path uses the file's name. */
function generatorData(dir: string, generator: Generator, encode: (bytes: Buffer) => string) {
  const data: Record<string, string> = {};
  for (const entry of generator.files) {
    const [key, path] = entry.includes('=') ? entry.split('=', 2) : [entry.split('/').at(-1), entry];
    if (key === undefined || path === undefined)
      throw new Error(`generator ${generator.name}: bad file "${entry}"`);
    data[key] = encode(readFileSync(resolve(dir, path)));
  }
  return data;
}

/**
 * Base64 as kustomize writes Secret data: 70 characters a line, each line ending in a newline, when it takes more
 * than one line. The apiserver's base64 decoder skips the newlines.
 */
function wrappedBase64(bytes: Buffer): string {
  const encoded = bytes.toString('base64');
  if (encoded.length < 70) return encoded;
  return encoded.replace(/.{1,70}/g, (line) => `${line}\n`);
}

const generatedMetadata = (g: Generator) => ({
  name: g.name,
  ...(g.namespace === undefined ? {} : { namespace: g.namespace }),
});

/** Adds the generated objects to `resources`, or puts their data into the objects they replace. */
function generate(dir: string, k: Kustomization, resources: Resource[]): void {
  const configMaps = (k.configMapGenerator ?? []).map((g) => ({
    generator: g,
    object: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: generatedMetadata(g),
      data: generatorData(dir, g, (bytes) => bytes.toString('utf8')),
    },
  }));
  const secrets = (k.secretGenerator ?? []).map((g) => ({
    generator: g,
    object: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: generatedMetadata(g),
      type: g.type ?? 'Opaque',
      data: generatorData(dir, g, wrappedBase64),
    },
  }));
  for (const { generator, object } of [...configMaps, ...secrets]) {
    const generated = { object, hashName: generator.options?.disableNameSuffixHash !== true };
    if (generator.behavior !== 'replace') {
      resources.push(generated);
      continue;
    }
    // As kustomize: the new data, under the old object's labels and annotations merged with any new ones.
    const index = resources.findIndex((r) => idOf(r.object) === idOf(object));
    const old = resources[index];
    if (old === undefined)
      throw new Error(`${dir}: generator ${generator.name} replaces ${idOf(object)}, absent`);
    object.metadata = { ...old.object.metadata, ...object.metadata };
    resources[index] = generated;
  }
}

function groupAndVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** Equality and existence terms only; `!=`, `!key` and set-based terms are refused, not misread. */
function selects(selector: string, labels: Record<string, string> = {}): boolean {
  return selector.split(',').every((term) => {
    const match = /^\s*([A-Za-z0-9._/-]+)\s*(?:={1,2}\s*([A-Za-z0-9._-]*))?\s*$/.exec(term);
    if (!match) throw new Error(`label selector term "${term}" is outside the subset`);
    const [, key = '', value] = match;
    return value === undefined ? Object.hasOwn(labels, key) : labels[key] === value;
  });
}

function matches(o: KubeObject, target: Target): boolean {
  const { group, version } = groupAndVersion(o.apiVersion);
  return (
    (target.group === undefined || target.group === group) &&
    (target.version === undefined || target.version === version) &&
    (target.kind === undefined || target.kind === o.kind) &&
    (target.name === undefined || target.name === o.metadata.name) &&
    (target.labelSelector === undefined || selects(target.labelSelector, o.metadata.labels))
  );
}

/** Strategic merge restricted to maps: lists merge by key in kustomize, which this subset does not do. */
function mergeMaps(into: Record<string, unknown>, patch: Record<string, unknown>, path: string): void {
  for (const [key, value] of Object.entries(patch)) {
    if (Array.isArray(value) || value === null) {
      throw new Error(
        `${path}/${key}: lists and deletions in strategic-merge patches are outside the subset`,
      );
    }
    const current = into[key];
    if (
      typeof value === 'object' &&
      typeof current === 'object' &&
      current !== null &&
      !Array.isArray(current)
    ) {
      mergeMaps(current as Record<string, unknown>, value as Record<string, unknown>, `${path}/${key}`);
    } else {
      into[key] = structuredClone(value);
    }
  }
}

function applyPatch(dir: string, patch: { path: string; target?: Target }, resources: Resource[]): void {
  const file = resolve(dir, patch.path);
  const [document] = readYamlDocuments(file);
  // As in kustomize: a list is a JSON 6902 patch and needs a target; an object is a strategic-merge patch
  // whose own apiVersion, kind and name pick the object it applies to.
  if (Array.isArray(document)) {
    if (patch.target === undefined) throw new Error(`${file}: a JSON 6902 patch needs a target`);
    const targets = resources.filter((r) => matches(r.object, patch.target ?? {}));
    if (targets.length === 0) throw new Error(`${file}: the target matches no object`);
    for (const r of targets) fastJsonPatch.applyPatch(r.object, document as Operation[], true, true);
    return;
  }
  if (patch.target !== undefined)
    throw new Error(`${file}: targets of strategic-merge patches are outside the subset`);
  const smp = asObject(document, file);
  const { group, version } = groupAndVersion(smp.apiVersion);
  const targets = resources.filter((r) =>
    matches(r.object, { group, version, kind: smp.kind, name: smp.metadata.name }),
  );
  if (targets.length !== 1) throw new Error(`${file}: matches ${targets.length} objects, not one`);
  const { apiVersion: _a, kind: _k, $patch: directive, ...body } = smp;
  // `$patch: delete` on the whole object removes it, as an overlay does to replace an object of its base.
  if (directive === 'delete') {
    resources.splice(resources.indexOf(targets[0] as Resource), 1);
    return;
  }
  if (directive !== undefined) throw new Error(`${file}: $patch: ${directive} is outside the subset`);
  mergeMaps((targets[0] as Resource).object, body, file);
}

/**
 * One kustomization and everything it includes, before names get their content hash. A Component is accumulated
 * into the list of the kustomization that names it, after that one's resources: its own resources join the list,
 * and its generators, patches and labels apply to everything in it, as kustomize does.
 */
function accumulate(dir: string, resources: Resource[] = [], asComponent = false): Resource[] {
  const k = readKustomization(dir);
  if ((k.kind === COMPONENT_KIND) !== asComponent) {
    throw new Error(
      `${dir}: ${asComponent ? 'a component must be' : 'only components may be'} a ${COMPONENT_KIND}`,
    );
  }
  for (const entry of k.resources ?? []) {
    const path = resolve(dir, entry);
    if (statSync(path).isDirectory()) resources.push(...accumulate(path));
    else
      resources.push(...readYamlDocuments(path).map((d) => ({ object: asObject(d, path), hashName: false })));
  }
  for (const entry of k.components ?? []) accumulate(resolve(dir, entry), resources, true);
  generate(dir, k, resources);

  if (k.namespace !== undefined) {
    for (const { object } of resources) {
      if (!CLUSTER_SCOPED.has(object.kind)) object.metadata.namespace = k.namespace;
    }
  }
  for (const patch of k.patches ?? []) applyPatch(dir, patch, resources);
  for (const { pairs } of k.labels ?? []) {
    for (const { object } of resources) object.metadata.labels = { ...object.metadata.labels, ...pairs };
  }

  const seen = new Set<string>();
  for (const { object } of resources) {
    if (seen.has(idOf(object))) throw new Error(`${dir}: ${idOf(object)} is defined twice`);
    seen.add(idOf(object));
  }
  return resources;
}

/** Go's json.Marshal, which kustomize hashes: sorted keys, and <, >, &, U+2028 and U+2029 escaped. */
function goJson(value: unknown): string {
  const sorted = (v: unknown): unknown =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((key) => [key, sorted((v as Record<string, unknown>)[key])]),
        )
      : v;
  return JSON.stringify(sorted(value)).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * kustomize's name suffix: the first ten hex digits of a SHA-256 of kind, data (and a Secret's type), with 0, 1,
 * 3, a and e swapped so that no word appears. The name hashed is empty: kustomize (5.5, measured against
 * `kubectl kustomize`) hashes a generated object before it carries its name.
 */
export function kustomizeHash(o: KubeObject): string {
  const encoded =
    o.kind === 'ConfigMap'
      ? { kind: 'ConfigMap', name: '', data: o.data ?? '' }
      : { kind: 'Secret', type: o.type ?? '', name: '', data: o.data ?? '' };
  const swap: Record<string, string> = { '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' };
  return createHash('sha256')
    .update(goJson(encoded))
    .digest('hex')
    .slice(0, 10)
    .replace(/[013ae]/g, (c) => swap[c] ?? c);
}

interface PodVolume {
  configMap?: { name?: string };
  secret?: { secretName?: string };
}

/** References to renamed ConfigMaps and Secrets follow the new names; deploy/ refers to them from volumes only. */
function renameReferences(resources: Resource[], renamed: Map<string, string>): void {
  for (const { object } of resources) {
    const spec = object.spec as { template?: { spec?: { volumes?: PodVolume[] } } } | undefined;
    for (const volume of spec?.template?.spec?.volumes ?? []) {
      const namespace = object.metadata.namespace ?? '';
      const configMap = renamed.get(`ConfigMap/${namespace}/${volume.configMap?.name}`);
      if (volume.configMap && configMap) volume.configMap.name = configMap;
      const secret = renamed.get(`Secret/${namespace}/${volume.secret?.secretName}`);
      if (volume.secret && secret) volume.secret.secretName = secret;
    }
  }
}

/** The objects `kubectl kustomize DIR` prints, rendered with the subset above. */
export function renderKustomization(dir: string): KubeObject[] {
  const resources = accumulate(resolve(dir));
  // Hashes are taken last, from the finished objects, as kustomize does after every transformer has run.
  const renamed = new Map<string, string>();
  for (const r of resources.filter((r) => r.hashName)) {
    const before = idOf(r.object);
    r.object.metadata.name = `${r.object.metadata.name}-${kustomizeHash(r.object)}`;
    renamed.set(before, r.object.metadata.name);
  }
  renameReferences(resources, renamed);
  return resources.map((r) => r.object);
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const pinnedKubectl = join(repoRoot, '.tools', 'bin', 'kubectl');

/**
 * The kubectl that scripts/install-tools.mjs pins, installed first when missing (the test set-up normally has):
 * the comparison runs on every machine, against one kustomize version, instead of skipping where none is found.
 */
export function kubectl(): string {
  if (!existsSync(pinnedKubectl)) {
    const install = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'install-tools.mjs')], {
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 600_000,
    });
    if (install.status !== 0 || !existsSync(pinnedKubectl))
      throw new Error(`no kubectl at ${pinnedKubectl}: run node scripts/install-tools.mjs`);
  }
  return pinnedKubectl;
}

/** The reference renderer. */
export function renderWithKubectl(dir: string): KubeObject[] {
  const result = spawnSync(kubectl(), ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${result.stderr || result.error}`);
  return parseAllDocuments(result.stdout).flatMap((d) => {
    const value: unknown = d.toJS();
    return value === null ? [] : [asObject(value, 'kubectl kustomize output')];
  });
}

/** The objects keyed and sorted by id, for comparing two renders with one deepEqual. */
export const byId = (objects: KubeObject[]): [string, KubeObject][] =>
  objects.map((o): [string, KubeObject] => [idOf(o), o]).sort(([a], [b]) => a.localeCompare(b));
