// What each command says about itself, apart from the commands: `regroute help` and a usage error print it without
// loading a command's module (and what that module loads: the Kubernetes client, the demo's registries).

export const serveUsage = `regroute serve [--config FILE] [--port N] [--metrics-port N] [--log-level LEVEL]
  Serves POST /mutate, GET /healthz and GET /readyz over HTTPS, /healthz and /readyz over HTTP on the health
  port, and GET /metrics on the metrics port. --port and --metrics-port override server.port and
  server.metricsPort; --metrics-port 0 turns the metrics listener off. --log-level (trace, debug, info, warn,
  error, fatal, silent) overrides log.level and REGROUTE_LOG_LEVEL, also across reloads.
  Without --config: the embedded default (port 8443, no routes) with dev certs made in certs/ when missing.
  The config file, the files it names, and the serving cert and key are re-read when they change.
  SIGTERM: serves on for server.shutdownDelaySeconds (5), every answer closing its connection, then drains
  requests in flight and exits. SIGINT drains at once. A second signal exits at once.`;

export const syncPullSecretsUsage = `regroute sync-pull-secrets --config FILE
  Copies each registries.<host>.pullSecret Secret from pullSecretSync.namespace into every namespace labelled
  regroute.io/enabled=true and keeps the copies current, as the pod's service account (or the kubeconfig).
  Runs whatever pullSecretSync.enabled says: that field starts the same sync inside serve. Serves no HTTP.
  SIGTERM or SIGINT stops the watches and the pass in progress, and exits; the copies stay.`;

export const reviewUsage = `regroute review FILE|- [--config FILE]
  Prints the AdmissionReview answer to stdout, and one line per image decision to stderr.`;

export const explainUsage = `regroute explain IMAGE... [--config FILE] [--offline] [--json]
  Prints each image's normalized reference, the route that takes it and its candidates; unless --offline,
  also probes the registries once and prints the decision and each registry's health, with the last failure's
  cause (error code, HTTP status, timeout), time and count in a row for one that failed. --json prints one JSON
  object per image, per line.`;

export const probeUsage = `regroute probe [IMAGE...] [--config FILE] [--json]
  Probes each registry the config names, as the webhook's prober does (with credentials and the
  healthCheck manifest), and prints health, latency and last error. Then checks, at every mirror of its
  route, each registry's healthCheck image (a mirror's as the source image it mirrors) and each IMAGE given:
  whether the mirror holds the digest the source names for the tag, holds one platform of the source's index
  (and how to copy them all), or names other content. Exits 1 when any registry is down or a mirror cannot
  serve an image it was checked for, 2 when an IMAGE is invalid or no route takes it.`;

export const certsUsage = `regroute certs [--out DIR] [--service NAME] [--namespace NS] [--dns NAME]... [--kustomize] [--force]
  Writes ca.crt, ca.key, tls.crt and tls.key to DIR (default: certs). The serving certificate covers the
  Service's DNS names (NAME, NAME.NS, NAME.NS.svc, NAME.NS.svc.cluster.local), localhost and loopback.
  --kustomize also writes DIR/webhook-ca-patch.yaml, a kustomize patch setting the webhook's caBundle to the CA
  (deploy/overlays/self-signed uses it). An existing CA is kept unless --force is given.`;

export const importUsage = `regroute import FILE|DIR... [--source-first]
  Prints the regroute routes and registries equivalent to node-level mirror configs, as YAML with comments:
  containers-registries.conf(5) files and registries.conf.d directories (CRI-O, podman: the first file is the main
  one, later files and directories are drop-ins), containerd certs.d directories or <host>/hosts.toml files, and the
  registry mirrors of a containerd config.toml. Settings with no regroute equivalent are listed in the comments.
  --source-first lists each registry before its mirrors instead of after them. Exits 2 when an input cannot be read
  or is invalid.`;

export const demoUsage = `regroute demo
  Runs two registries (Debian's docker-registry) and the webhook on 127.0.0.1, pushes a small image to both, and
  admits a pod while the source is up, down (the pod goes to the mirror, pinned to its digest) and back up, saying
  what happens at each step. Takes seconds; installs nothing; removes everything it started, also on Ctrl-C.`;
