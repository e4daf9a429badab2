#!/usr/bin/env bash
# The podman set-up of the image test, apart from the machine's own: a containers.conf and a storage.conf of its own
# in the cache, written afresh on each call. Prints them as NAME=value lines, for `export` or a child's environment.
#
# runc, not crun; limits no higher than this machine's hard limits, since the container's init may not raise them
# (podman's defaults, 1048576 open files and 4194304 processes, are refused where the hard limits are lower);
# cgroupfs and a file for events, which need no systemd; images in the cache, so that the built base and the build's
# layers are kept from one run to the next without touching the machine's own image store.
set -euo pipefail

cache="${REGROUTE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/regroute}/containers"
run="${XDG_RUNTIME_DIR:-/run}/regroute-containers"
mkdir -p "$cache"

at_most() {
  local limit="$1" cap="$2"
  if [ "$limit" = unlimited ] || [ "$limit" -gt "$cap" ]; then echo "$cap"; else echo "$limit"; fi
}
nofile="$(at_most "$(ulimit -Hn)" 65536)"
nproc="$(at_most "$(ulimit -Hu)" 4096)"

cat >"$cache/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$run/events.log"
EOF

cat >"$cache/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$cache/storage"
runroot = "$run/storage"
EOF

echo "CONTAINERS_CONF=$cache/containers.conf"
echo "CONTAINERS_STORAGE_CONF=$cache/storage.conf"
