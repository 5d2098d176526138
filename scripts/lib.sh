# shellcheck shell=bash
# Shared helpers for the scripts under scripts/. Source it; do not run it.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"
CACHE_DIR="${REPO_ROOT}/.cache"
COLLECTIONS_DIR="${REPO_ROOT}/.collections"
export REPO_ROOT VENV CACHE_DIR COLLECTIONS_DIR

# One line, what is wrong and how to fix it, then exit.
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

log() {
  printf '==> %s\n' "$*" >&2
}

require_root() {
  [ "$(id -u)" -eq 0 ] || die "this needs root (it installs packages with apt-get and runs dockerd): run it as root, e.g. 'sudo make $1'"
}

# require_disk PATH GIB: fail when fewer than GIB gibibytes are free under PATH.
require_disk() {
  local path="$1" need_gib="$2" avail_kib
  mkdir -p "$path"
  avail_kib="$(df -Pk "$path" | awk 'NR==2 {print $4}')"
  if [ "${avail_kib:-0}" -lt $((need_gib * 1024 * 1024)) ]; then
    die "only $((avail_kib / 1024 / 1024)) GiB free under ${path}; ${need_gib} GiB are needed: free some space (docker system prune, remove .cache) and retry"
  fi
}

# apt_install PKG...: install Debian packages that are missing, quietly.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "apt-get not found: this needs a Debian or Ubuntu machine to install ${missing[*]}"
  log "installing ${missing[*]} with apt-get"
  if [ ! -f "${CACHE_DIR}/.apt-updated" ] || [ -n "$(find "${CACHE_DIR}/.apt-updated" -mmin +360 2>/dev/null)" ]; then
    apt-get update -qq >/dev/null || die "apt-get update failed: check the apt sources in /etc/apt/sources.list.d"
    mkdir -p "${CACHE_DIR}" && touch "${CACHE_DIR}/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed: run it by hand to see why"
}

activate_venv() {
  [ -x "${VENV}/bin/ansible" ] || die "the toolchain is not installed: run 'make bootstrap' first"
  # shellcheck disable=SC1091
  . "${VENV}/bin/activate"
  export ANSIBLE_CONFIG="${REPO_ROOT}/ansible.cfg"
  export ANSIBLE_COLLECTIONS_PATH="${COLLECTIONS_DIR}"
  export ANSIBLE_HOME="${REPO_ROOT}/.ansible"
}
