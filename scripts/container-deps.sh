#!/usr/bin/env bash
# Installs what the image test needs to build and run the Dockerfile without a Docker engine: podman (its build is
# buildah's) with runc, and mmdebstrap for the base image's Debian root. Fast and silent when they are already there:
# apt is only touched when something is missing.
set -euo pipefail

packages=(podman runc mmdebstrap)
missing=()
for tool in "${packages[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

install_cmd="DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends ${packages[*]}"

if [ "$(id -u)" -ne 0 ]; then
  echo "container-deps: missing ${missing[*]}; the image test needs them, and root to run containers. Run as root:" >&2
  echo "  sudo sh -c '${install_cmd}'" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "container-deps: missing ${missing[*]} and no apt-get here; install podman, runc and mmdebstrap by hand." >&2
  exit 1
fi

echo "container-deps: installing ${packages[*]} (missing: ${missing[*]})" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Without recommends: crun among them, which cannot run containers in some sandboxes; runc is asked for instead.
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
podman --version >&2
