// The configuration file's schema: the single source of the config's types and of every default.
import { z } from 'zod';

/** `host[:port]`, lower-case, as it appears first in a normalized image reference. */
const RegistryHost = z
  .string()
  .regex(
    /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$/,
    {
      message: 'must be a registry host[:port] in lower case, like "registry.local:5000"',
    },
  );

/** `host[:port][/path…]` on path-component boundaries; used by routes and candidates. */
const Location = z.string().regex(/^[a-z0-9.[\]:-]+(?:\/[a-z0-9._-]+)*$/, {
  message: 'must be host[:port] optionally followed by /path components, in lower case, without a tag',
});

/** A route prefix: a Location whose host may start with `*.` to match any subdomain. */
const Prefix = z.string().regex(/^(?:\*\.)?[a-z0-9.[\]:-]+(?:\/[a-z0-9._-]+)*$/, {
  message: 'must be host[:port][/path], optionally starting with "*." for any subdomain',
});

export const Auth = z.union(
  [
    z.strictObject({ username: z.string().min(1), passwordFile: z.string().min(1) }),
    z.strictObject({ dockerConfigJson: z.string().min(1) }),
  ],
  {
    // Says which of the two forms the input started and what it lacks, rather than zod's "Invalid input".
    error: (issue) => {
      const input = (issue.input ?? {}) as Record<string, unknown>;
      if (typeof input !== 'object' || input === null)
        return 'must be {username, passwordFile} or {dockerConfigJson}';
      if ('dockerConfigJson' in input && ('username' in input || 'passwordFile' in input))
        return 'takes {username, passwordFile} or {dockerConfigJson}, not both';
      if ('username' in input && !('passwordFile' in input))
        return 'passwordFile is missing: a username needs the file holding its password';
      if ('passwordFile' in input && !('username' in input))
        return 'username is missing: passwordFile needs a username';
      return 'must be {username, passwordFile} (both non-empty) or {dockerConfigJson} (a file path)';
    },
  },
);
export type Auth = z.infer<typeof Auth>;

export const HealthCheck = z.strictObject({
  repository: z.string().min(1),
  reference: z.string().min(1).default('latest'),
});
export type HealthCheck = z.infer<typeof HealthCheck>;

export const RegistrySettings = z.strictObject({
  auth: Auth.optional(),
  /** PEM bundle of a private CA; TLS is always verified, against this CA when given. */
  caFile: z.string().min(1).optional(),
  /** Plain HTTP. Explicit only, and warned about at start. */
  insecure: z.boolean().default(false),
  /** Secret name added to imagePullSecrets of pods routed to this registry. */
  pullSecret: z.string().min(1).optional(),
  /** An authenticated deep probe: this manifest must be readable for the registry to count as healthy. */
  healthCheck: HealthCheck.optional(),
  /**
   * Pulls kept in reserve: while the registry announces this many or fewer left (Docker Hub's
   * `ratelimit-remaining` header on manifest requests), it counts as rate-limited and pods go to a mirror before it
   * answers 429. No effect on registries that announce no budget.
   */
  rateLimitReserve: z.number().int().min(0).default(10),
  /**
   * A cache regroute cannot see from its own pod (a node-local registry at each node's loopback, an in-cluster
   * cache on the node network): never probed, never asked; assumed healthy and assumed to serve any digest the
   * source named, as a pull-through cache fetches it on demand. Exact content still holds (the image is pinned by
   * digest and the kubelet checks it); availability is the operator's word. List it after the mirrors regroute
   * can check.
   */
  trusted: z.boolean().default(false),
  /**
   * A pull-through cache of the route's source: the warm-up asks it for the manifests of images the cluster uses
   * (which makes it fetch them from its upstream) while the source is healthy, so it holds them when the source is
   * down. Needs `cluster.warm`. Absent means false.
   */
  pullThroughCache: z.boolean().optional(),
});
export type RegistrySettings = z.infer<typeof RegistrySettings>;

export const Route = z.strictObject({
  prefix: Prefix,
  /** Where tags are resolved to digests; defaults to the part of the image the prefix matched. */
  source: Location.optional(),
  /** Candidates in order of preference; the image's remainder after the prefix is appended to each. */
  registries: z.array(Location).min(1),
});
export type Route = z.infer<typeof Route>;

/**
 * A server default the environment may set. The Deployment passes its container ports and mount paths this way
 * (REGROUTE_PORT, REGROUTE_HEALTH_PORT, REGROUTE_METRICS_PORT, REGROUTE_TLS_CERT, REGROUTE_TLS_KEY), so that a
 * config file of routes alone serves as the pod expects. A file may name other certificate paths, and may repeat a
 * port but not contradict it. Read when a config is parsed, and checked like a value from the file.
 */
const fromEnv = (name: string, fallback: string) => () => process.env[name] || fallback;
const portFromEnv = (name: string, fallback: number) => (): number => {
  const value = process.env[name];
  if (!value) return fallback;
  // Anything but digits goes on as it is, for the schema to refuse with the variable's name.
  return (/^[0-9]+$/.test(value) ? Number(value) : value) as unknown as number;
};
const Port = (env: string) =>
  z
    .number({
      error: (issue) =>
        issue.code === 'invalid_type'
          ? `expected a port number, got ${JSON.stringify(issue.input)} (from ${env} when the file sets none)`
          : undefined,
    })
    .int();

const PORT_ENV = [
  ['port', 'REGROUTE_PORT'],
  ['healthPort', 'REGROUTE_HEALTH_PORT'],
  ['metricsPort', 'REGROUTE_METRICS_PORT'],
] as const;

export const ServerSettings = z
  .strictObject({
    /** HTTPS: /mutate (and /healthz, /readyz). */
    port: Port('REGROUTE_PORT').min(1).max(65535).prefault(portFromEnv('REGROUTE_PORT', 8443)),
    metricsPort: Port('REGROUTE_METRICS_PORT')
      .min(0)
      .max(65535)
      .prefault(portFromEnv('REGROUTE_METRICS_PORT', 9090)),
    /**
     * Plain-HTTP /healthz and /readyz on a listener of their own, for the kubelet's probes: no TLS handshake per
     * probe, and no queue behind a storm of reviews on the admission port. 0 (off) unless set: the Deployment sets
     * 8081, while a webhook run by hand is probed on its HTTPS port and binds nothing more.
     */
    healthPort: Port('REGROUTE_HEALTH_PORT')
      .min(0)
      .max(65535)
      .prefault(portFromEnv('REGROUTE_HEALTH_PORT', 0)),
    host: z.string().default('0.0.0.0'),
    tlsCert: z.string().min(1).prefault(fromEnv('REGROUTE_TLS_CERT', 'certs/tls.crt')),
    tlsKey: z.string().min(1).prefault(fromEnv('REGROUTE_TLS_KEY', 'certs/tls.key')),
    /**
     * After SIGTERM, how long the webhook keeps accepting connections and answering reviews, each answer closing its
     * connection, before it stops listening: Kubernetes sends SIGTERM when a pod's deletion starts, and takes its
     * endpoint out of every node's Service rules about a second later; meanwhile the apiserver still calls it, on
     * new connections and on those it keeps alive. Closing a kept-alive connection under the apiserver instead would
     * reset the review it may be sending on it, and the pod would be admitted without regroute.
     */
    shutdownDelaySeconds: z.number().min(0).max(60).default(5),
  })
  .superRefine((server, context) => {
    // The environment names the ports the container is reached on: a file that says otherwise would listen where
    // nothing arrives (the Service sends to the container port), and the pods would be admitted unrouted.
    for (const [key, env] of PORT_ENV) {
      const value = process.env[env];
      if (value && /^[0-9]+$/.test(value) && Number(value) !== server[key])
        context.addIssue({
          code: 'custom',
          path: [key],
          message: `${server[key]} differs from ${env}=${value}, the port the container is reached on: leave server.${key} out of the file, or change both`,
        });
    }
    for (const other of ['port', 'metricsPort'] as const) {
      if (server.healthPort !== 0 && server.healthPort === server[other])
        context.addIssue({
          code: 'custom',
          path: ['healthPort'],
          message: `must differ from server.${other}`,
        });
    }
  });
export type ServerSettings = z.infer<typeof ServerSettings>;

/**
 * An Event on each pod rerouted at admission (reason Rerouted, Warning when a source was down), posted after the
 * answer through the Kubernetes API: it needs the pod's API token and RBAC to create Events
 * (deploy/components/admission-events, the chart's admissionEvents). Off unless the config or
 * REGROUTE_ADMISSION_EVENTS=true turns it on, so that a run outside a cluster contacts no API server. Started once:
 * a change applies on restart.
 */
export const AdmissionEventSettings = z.strictObject({
  enabled: z.boolean().default(() => process.env.REGROUTE_ADMISSION_EVENTS === 'true'),
});

export const AdmissionSettings = z.strictObject({
  /** Longest an admission may wait for registry state; the answer never comes later than this. */
  deadlineMs: z.number().int().min(10).max(25_000).default(2000),
  /** A tag whose digest cannot be learned anywhere: route by tag (`allow`) or leave it (`deny`). */
  unverifiedTags: z.enum(['allow', 'deny']).default('allow'),
  /**
   * `enforce` patches the images it routes. `report` decides, audits, counts and warns about every review as
   * enforce would, but answers without a patch: a rollout, or a change of routes, can be watched on real pods
   * before it changes any. Its audit lines say `mode: report`, its reviews that would have been patched count as
   * result="reported", and its warnings say "would reroute". Applied on reload, like every admission setting.
   */
  mode: z.enum(['enforce', 'report']).default('enforce'),
  /** Events on pods rerouted at admission. A function, so that REGROUTE_ADMISSION_EVENTS is read at parse. */
  events: AdmissionEventSettings.default(() => AdmissionEventSettings.parse({})),
});
export type AdmissionMode = z.infer<typeof AdmissionSettings>['mode'];

/**
 * Defaults sized to notice a failing registry within 2 s: a probe every second, ended after 500 ms (a registry that
 * slow serves no admission in time either); its first failure makes the registry suspect and is confirmed by an
 * immediate second probe (failureThreshold 2), so the worst case — a blackholed registry failing right after a
 * probe passed — is 1 s + 2 × 500 ms. One success brings a registry back. A probe is a `/v2/` ping, plus a
 * manifest and a blob HEAD of content known there (none of which Docker Hub counts as a pull).
 */
export const ProbeSettings = z.strictObject({
  intervalSeconds: z.number().positive().default(1),
  timeoutMs: z.number().int().min(1).default(500),
  failureThreshold: z.number().int().min(1).default(2),
  successThreshold: z.number().int().min(1).default(1),
});

export const CacheSettings = z.strictObject({
  /** How long a tag's digest is trusted before the source is asked again. */
  tagTtlSeconds: z.number().positive().default(30),
  /** How long "this registry holds this digest" is trusted: digests are immutable, only deletion changes it. */
  presentTtlSeconds: z.number().positive().default(3600),
  /** How long "this registry lacks this digest" is trusted: a mirror may be filled any moment. */
  absentTtlSeconds: z.number().positive().default(15),
  /**
   * Entries kept per cache (tags, presence); the least recently used go first. An entry costs about 500 bytes of
   * heap (measured with the benchmark); 20,000 covers thousands of distinct images times their candidates and keeps
   * both caches full under 20 MB.
   */
  maxEntries: z.number().int().min(100).default(20_000),
});

export const PullSecretSyncSettings = z.strictObject({
  /** Off by default so that a run outside a cluster never contacts an API server. */
  enabled: z.boolean().default(false),
  /**
   * Where the configured pull secrets live and regroute runs; the Deployment passes its own namespace in
   * POD_NAMESPACE through the downward API.
   */
  namespace: z
    .string()
    .regex(/^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/, { message: 'must be a namespace name (RFC 1123 label)' })
    .default(() => process.env.POD_NAMESPACE || 'regroute-system'),
  /** Every opted-in namespace is checked this often, repairing copies edited or deleted by hand. */
  resyncSeconds: z.number().min(1).default(300),
});
export type PullSecretSyncSettings = z.infer<typeof PullSecretSyncSettings>;

/** What the cluster teaches regroute: tag → digest from pods and workloads, learned before a replica is ready. */
export const LearnSettings = z.strictObject({
  enabled: z.boolean().default(true),
});

/** Keeping known images warm: the cluster's tags resolved and the candidates' presence checked ahead of need. */
export const WarmSettings = z.strictObject({
  enabled: z.boolean().default(true),
  /** Images looked up per second at most: each costs a tag lookup at the source and a check per candidate. */
  ratePerSecond: z.number().positive().default(5),
  /** How often the workloads of opted-in namespaces are listed and their images looked up again. */
  intervalSeconds: z.number().min(10).default(300),
  /** Manifests asked of pull-through caches per pass at most (an index counts with its platform manifests). */
  fillsPerPass: z.number().int().min(0).default(200),
});

/** Repair of pods already stuck on a registry that is down: their waiting containers' images are patched. */
export const RepairSettings = z.strictObject({
  enabled: z.boolean().default(true),
  /** Pods patched per minute at most, across the cluster. */
  ratePerMinute: z.number().positive().default(60),
});

/**
 * Everything regroute does with the Kubernetes API beside admission: learning, warm-up and repair in the opted-in
 * namespaces (label regroute.io/enabled=true). Off unless the config or REGROUTE_CLUSTER=true (what
 * deploy/components/repair sets, with the RBAC it needs) turns it on, so that a run outside a cluster contacts no
 * API server.
 */
export const ClusterSettings = z.strictObject({
  enabled: z.boolean().default(() => process.env.REGROUTE_CLUSTER === 'true'),
  /**
   * Longest a starting replica stays unready while it lists pods and learns from them; past it, it is ready with
   * what it has (an unreachable API server must not keep admission down).
   */
  readyTimeoutSeconds: z.number().min(0).default(10),
  learn: LearnSettings.default(() => LearnSettings.parse({})),
  warm: WarmSettings.default(() => WarmSettings.parse({})),
  repair: RepairSettings.default(() => RepairSettings.parse({})),
});
export type ClusterSettings = z.infer<typeof ClusterSettings>;

/** pino's levels: a line below the level is not written. */
export const LogLevel = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
  error: (issue) =>
    issue.code === 'invalid_value'
      ? `expected one of ${issue.values.join('|')}, got ${JSON.stringify(issue.input)} (from REGROUTE_LOG_LEVEL when the file sets none)`
      : undefined,
});
export type LogLevel = z.infer<typeof LogLevel>;

export const LogSettings = z.strictObject({
  /**
   * The process log's level, applied again on every reload. Audit lines are info (an image rerouted) and warn
   * (left unchanged for a fault): above info, the lines of rerouted images are not written. REGROUTE_LOG_LEVEL
   * sets the default; `serve --log-level` overrides both, for the process's life.
   */
  level: LogLevel.prefault(fromEnv('REGROUTE_LOG_LEVEL', 'info') as () => LogLevel),
});

export const Config = z.strictObject({
  // A function, so that the REGROUTE_* server defaults are read when a config is parsed.
  server: ServerSettings.prefault(() => ({})),
  // A function, so that REGROUTE_ADMISSION_EVENTS is read when a config is parsed.
  admission: AdmissionSettings.default(() => AdmissionSettings.parse({})),
  probe: ProbeSettings.default(ProbeSettings.parse({})),
  cache: CacheSettings.default(CacheSettings.parse({})),
  registries: z.record(RegistryHost, RegistrySettings).default({}),
  routes: z.array(Route).default([]),
  // A function, so that POD_NAMESPACE is read when a config is parsed rather than when this module loads.
  pullSecretSync: PullSecretSyncSettings.default(() => PullSecretSyncSettings.parse({})),
  // A function, so that REGROUTE_CLUSTER is read when a config is parsed.
  cluster: ClusterSettings.default(() => ClusterSettings.parse({})),
  // A function, so that REGROUTE_LOG_LEVEL is read when a config is parsed.
  log: LogSettings.prefault(() => ({})),
});
export type Config = z.infer<typeof Config>;
/** What a config file may say: every field optional where a default exists. */
export type ConfigInput = z.input<typeof Config>;
