#!/usr/bin/env bash
# Builds the base the image test gives the Dockerfile (--build-arg BASE=…) where no public registry is reachable:
# what node:<major>-slim holds, made from parts this machine can fetch. A Debian minbase root by mmdebstrap from the
# machine's own Debian mirror and release, the npm registry's Node binary of the image's major (scripts/node-bin.sh),
# npm, and the node user (1000:1000). Imported into the image test's podman store (scripts/container-env.sh) under a
# tag named by its inputs, so a second run finds it and takes a second. Prints the image's name.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
NPM_MAJOR=11

if [ "$(id -u)" -ne 0 ]; then
  echo "image-base: mmdebstrap and podman run as root here; run as root" >&2
  exit 1
fi
while IFS='=' read -r name value; do export "$name=$value"; done < <(bash "$here/container-env.sh")

# The machine's own release and Debian mirror: the ones apt already reaches.
. /etc/os-release
suite="${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"
mirror="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | grep -m1 debian || true)"
if [ -z "$mirror" ]; then
  mirror="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | grep -m1 debian || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

node_bin="$(bash "$here/node-bin.sh")"
node_version="$("$node_bin/node" --version)"
npm_version="$(npm view "npm@$NPM_MAJOR" version --json | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log([JSON.parse(s)].flat().join("\n")))' | sort -V | tail -n 1)"

key="$(printf '%s\n' "$(sha256sum "$0" | cut -c1-64)" "$suite" "$mirror" "$node_version" "$npm_version" | sha256sum | cut -c1-16)"
major="${node_version#v}"
major="${major%%.*}"
image="localhost/regroute-test-base:node$major-$suite-$key"

if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

echo "image-base: building $image (Debian $suite from $mirror, Node $node_version, npm $npm_version)" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

# libatomic1: the Node binary links it, as node:<major>-slim's Dockerfile knows.
mmdebstrap --quiet --variant=minbase --mode=root \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --include=libatomic1 \
  "$suite" "$rootfs" "deb $mirror $suite main"

install -D -m 0755 "$node_bin/node" "$rootfs/usr/local/bin/node"
npm pack --silent --pack-destination "$work" "npm@$npm_version" >/dev/null
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm-$npm_version.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
chroot "$rootfs" node -e 'process.exit(0)'

tar -C "$rootfs" --numeric-owner -c . |
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' \
    --message "Debian $suite minbase, Node $node_version, npm $npm_version" \
    - "$image" >/dev/null

# Earlier bases (other inputs) are not used again.
podman images --format '{{.Repository}}:{{.Tag}}' --filter reference=localhost/regroute-test-base |
  { grep -vxF "$image" || true; } | xargs -r podman rmi --force >/dev/null 2>&1 || true
echo "$image"
