#!/usr/bin/env bash
# Installs what the image test needs to build and run the Dockerfile without a Docker engine: podman (its build is
# buildah's) with runc, and mmdebstrap for the base image's Debian root. Fast and silent when they are already there:
# apt is only touched when something is missing.
set -euo pipefail

here="$(dirname "$0")"
# shellcheck source=scripts/apt-packages.sh
. "$here/apt-packages.sh"

# runc is asked for by name: crun, podman's recommended runtime, cannot run containers in some sandboxes.
ensure_packages container-deps "the image test needs them, and root to run containers" \
  podman:podman runc:runc mmdebstrap:mmdebstrap
