# Sourced by the scripts that install what tests need: installs Debian packages whose commands are missing, and
# is fast and silent when they are all there (apt is only touched when something is missing).
#
#   ensure_packages LABEL "WHY" package:command...
#
# Without root or without apt-get it says what to install and exits 1. Packages are installed without
# recommends: crun among podman's, which cannot run containers in some sandboxes.
ensure_packages() {
  local label=$1 why=$2
  shift 2
  local packages=() missing=() entry
  for entry in "$@"; do
    packages+=("${entry%%:*}")
    command -v "${entry#*:}" >/dev/null 2>&1 || missing+=("${entry%%:*}")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0

  local install_cmd="DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends ${packages[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "$label: missing ${missing[*]}; $why. Run as root:" >&2
    echo "  sudo sh -c '${install_cmd}'" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$label: missing ${missing[*]} and no apt-get here; install ${packages[*]} by hand." >&2
    exit 1
  fi
  echo "$label: installing ${packages[*]} (missing: ${missing[*]})" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}
