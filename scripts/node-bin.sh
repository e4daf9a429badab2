#!/usr/bin/env bash
# Prints the bin directory of a Node.js binary of one major version, the newest of that major in the npm registry's
# node-linux-<arch> package (the binaries the `node` package installs), unpacked once into the cache.
#   scripts/node-bin.sh            the major the image ships: the Dockerfile's default BASE (node:<major>-…)
#   scripts/node-bin.sh --oldest   the oldest major package.json's engines.node allows
#   scripts/node-bin.sh 24         that major
# CI puts it first on PATH to run the suite on each; the image test copies the image's one into its base.
# Without the registry, the newest of that major already in the cache is used.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

case "${1:-}" in
  '') major="$(sed -n 's/^ARG BASE=node:\([0-9][0-9]*\)[-.:@].*/\1/p' "$root/Dockerfile")" ;;
  --oldest) major="$(node -p "/(\\d+)/.exec(require('$root/package.json').engines.node)[1]")" ;;
  *) major="$1" ;;
esac
if ! [[ "$major" =~ ^[0-9]+$ ]]; then
  echo "node-bin: no Node major given, nor found as ARG BASE=node:<major>-… in the Dockerfile" >&2
  exit 1
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "node-bin: no npm Node package for $(uname -m)" >&2; exit 1 ;;
esac

cache="${REGROUTE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/regroute}/node"
mkdir -p "$cache"
package="node-linux-$arch"

newest_cached() {
  find "$cache" -mindepth 1 -maxdepth 1 -type d -name "$major.*" -printf '%f\n' | sort -V | tail -n 1
}

version="$(npm view "$package@$major" version --json 2>/dev/null |
  node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log([JSON.parse(s||"[]")].flat().join("\n")))' |
  sort -V | tail -n 1 || true)"
if [ -z "$version" ]; then
  version="$(newest_cached)"
  [ -n "$version" ] || { echo "node-bin: $package@$major not found in the npm registry nor in $cache" >&2; exit 1; }
  echo "node-bin: the registry did not answer; using the cached Node $version" >&2
fi

target="$cache/$version"
if [ ! -x "$target/bin/node" ]; then
  work="$(mktemp -d "$cache/.unpack.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  # npm checks the tarball against the integrity the registry publishes for it.
  npm pack --silent --pack-destination "$work" "$package@$version" >/dev/null
  mkdir "$work/package"
  tar -xzf "$work/$package-$version.tgz" -C "$work/package" --strip-components=1 package/bin/node
  "$work/package/bin/node" --version >/dev/null
  rm -rf "$target"
  mv "$work/package" "$target"
fi
echo "$target/bin"
