// What every node-level mirror format is read into before it becomes a regroute config: routes to be, per-host
// settings, and findings about whatever regroute cannot carry over.

/**
 * - `unsupported`: a setting regroute cannot honour; it is left out of the config.
 * - `changed`: imported, but it means something different in regroute; check it.
 * - `out-of-scope`: not about where an image is pulled from, so regroute has no part in it.
 * - `unknown-key`: a key the format does not define; the node's runtime ignores it too.
 * - `no-effect`: a table that gives regroute nothing to route (no mirror, no rewrite).
 */
export type FindingKind = 'unsupported' | 'changed' | 'out-of-scope' | 'unknown-key' | 'no-effect';

export interface Finding {
  readonly kind: FindingKind;
  /** File and table the setting was read from, as a person would look it up. */
  readonly where: string;
  readonly message: string;
}

/**
 * The node's ordered pull sources for the images under one prefix: what becomes one regroute route.
 */
export interface MirrorSet {
  /** A regroute route prefix: host[:port][/path] or *.domain, matched against normalized image names. */
  readonly prefix: string;
  /**
   * The registry the mirrors stand in for: where tags mean what they mean. host[:port][/path], or null when it is
   * the image's own location whatever that is (a wildcard prefix without a location).
   */
  readonly upstream: string | null;
  /** Every location the runtime pulls from, in the order it tries them; the upstream among them (usually last). */
  readonly sources: readonly string[];
  /** Sources the runtime uses for pulls by digest only (no tag lookups there). */
  readonly digestOnly: readonly string[];
  readonly where: string;
}

/** One statement about a registry host's transport: regroute keeps one setting per host, merged in to-config. */
export interface HostSetting {
  /** host[:port] as regroute keys its `registries`. */
  readonly host: string;
  /** Plain HTTP. */
  readonly insecure?: boolean;
  /** PEM bundle of a private CA. */
  readonly caFile?: string;
  readonly where: string;
}

export interface ImportModel {
  readonly mirrorSets: readonly MirrorSet[];
  readonly hosts: readonly HostSetting[];
  readonly findings: readonly Finding[];
}

/** Input that cannot be read as the format it claims to be: the node's runtime would refuse it too. */
export class ImportError extends Error {
  override readonly name = 'ImportError';
}

/** A named text: a file's path as the user gave it, and its content. */
export interface SourceText {
  readonly name: string;
  readonly text: string;
}

export const emptyModel = (): ImportModel => ({ mirrorSets: [], hosts: [], findings: [] });

export function mergeModels(models: readonly ImportModel[]): ImportModel {
  return {
    mirrorSets: models.flatMap((m) => m.mirrorSets),
    hosts: models.flatMap((m) => m.hosts),
    findings: models.flatMap((m) => m.findings),
  };
}
