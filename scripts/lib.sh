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

# lab_lock: one lab command at a time on this machine. The lab's containers and network have
# fixed names (k3s-gpu-lab-*), so `make lab`, `make demo`, `make bench` or `make lab-destroy`
# run from two checkouts at once would remove or reuse each other's nodes. The lock is held until
# the calling script exits; the scripts it runs see LAB_LOCK_HELD and do not lock again.
LAB_LOCK_FILE="${LAB_LOCK_FILE:-/tmp/k3s-gpu-lab-containers.lock}"
lab_lock() {
  [ -n "${LAB_LOCK_HELD:-}" ] && return 0
  exec 9>>"${LAB_LOCK_FILE}"
  flock -n 9 || die "another lab command is running on this machine (it holds ${LAB_LOCK_FILE}: make lab, make demo, make bench or make lab-destroy, from this or another checkout); the lab's containers have fixed names, so wait until it ends and run this again"
  export LAB_LOCK_HELD=1
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

# The host's apt source files, deb822 (.sources) first.
_apt_source_files() {
  local f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && echo "$f"
  done
  return 0
}

# _mirror_from_sources KIND: print the first URI of a Debian archive in the host's apt
# sources. KIND=archive: a suite without '-' (bookworm, trixie, stable...) from a Debian
# archive; KIND=security: a '<suite>-security' suite.
_mirror_from_sources() {
  local kind="$1" f
  while read -r f; do
    case "$f" in
      *.sources)
        # deb822: paragraphs separated by blank lines; fields URIs, Suites, Types.
        awk -v kind="$kind" '
          function flush() {
            if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris != "" && suites != "" && enabled != "no") {
              n = split(suites, s, /[ \t]+/)
              for (i = 1; i <= n; i++) {
                if (kind == "security" && s[i] ~ /-security$/) { split(uris, u, /[ \t]+/); print u[1]; exit }
                if (kind == "archive" && s[i] ~ /^(buster|bullseye|bookworm|trixie|forky|sid|stable|testing|unstable|oldstable)$/) { split(uris, u, /[ \t]+/); print u[1]; exit }
              }
            }
            types = ""; uris = ""; suites = ""; enabled = ""
          }
          /^[ \t]*#/ { next }
          /^[ \t]*$/ { flush(); next }
          tolower($1) == "types:" { sub(/^[^:]*:[ \t]*/, ""); types = $0 }
          tolower($1) == "uris:" { sub(/^[^:]*:[ \t]*/, ""); uris = $0 }
          tolower($1) == "suites:" { sub(/^[^:]*:[ \t]*/, ""); suites = $0 }
          tolower($1) == "enabled:" { sub(/^[^:]*:[ \t]*/, ""); enabled = tolower($0) }
          END { flush() }
        ' "$f"
        ;;
      *)
        # one-line format: deb [options] URI SUITE COMPONENTS...
        awk -v kind="$kind" '
          $1 != "deb" { next }
          {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            uri = $i; suite = $(i + 1)
            if (kind == "security" && suite ~ /-security$/) { print uri; exit }
            if (kind == "archive" && suite ~ /^(buster|bullseye|bookworm|trixie|forky|sid|stable|testing|unstable|oldstable)$/) { print uri; exit }
          }
        ' "$f"
        ;;
    esac
  done < <(_apt_source_files) | head -n 1
}

# debian_mirror [VAR]: the Debian archive URL, without a trailing '/': the value of the
# environment variable VAR (default DEBIAN_MIRROR) when set, else the first Debian archive
# in the host's apt sources.
debian_mirror() {
  local var="${1:-DEBIAN_MIRROR}" m
  m="${!var:-}"
  [ -n "$m" ] || m="$(_mirror_from_sources archive)"
  [ -n "$m" ] || die "no Debian archive found in /etc/apt/sources.list or /etc/apt/sources.list.d/: set ${var} to a Debian mirror URL (http://<mirror>/debian) and retry"
  case "$m" in
    http://* | https://* | file:/*) ;;
    *) die "the Debian mirror '${m}' is not an http(s):// or file:/ URL: set ${var} to one and retry" ;;
  esac
  echo "${m%/}"
}

activate_venv() {
  [ -x "${VENV}/bin/ansible" ] || die "the toolchain is not installed: run 'make bootstrap' first"
  # shellcheck disable=SC1091
  . "${VENV}/bin/activate"
  export ANSIBLE_CONFIG="${REPO_ROOT}/ansible.cfg"
  export ANSIBLE_COLLECTIONS_PATH="${COLLECTIONS_DIR}"
  export ANSIBLE_HOME="${REPO_ROOT}/.ansible"
}

# private_apt_init DIR SUITE: an apt state of its own under DIR for Debian SUITE (main) from
# the host's mirror (DEBIAN_MIRROR overrides), updated; the host's sources and lists are not
# touched. Sets PRIVATE_APT_MIRROR and PRIVATE_APT_OPTS, the options to give apt-get and
# apt-cache (download, show) to use that state.
private_apt_init() {
  local dir="$1" suite="$2"
  command -v apt-get >/dev/null || die "apt-get not found: this needs a Debian or Ubuntu machine to fetch packages of Debian ${suite}"
  mkdir -p "${dir}/lists/partial" "${dir}/cache/archives/partial"
  PRIVATE_APT_MIRROR="$(debian_mirror DEBIAN_MIRROR)"
  echo "deb ${PRIVATE_APT_MIRROR} ${suite} main" >"${dir}/sources.list"
  PRIVATE_APT_OPTS=(-o "Dir::Etc::SourceList=${dir}/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=${dir}/lists" -o "Dir::Cache=${dir}/cache" -o APT::Sandbox::User=root)
  apt-get "${PRIVATE_APT_OPTS[@]}" --error-on=any update -qq >/dev/null \
    || die "apt-get update for Debian ${suite} from ${PRIVATE_APT_MIRROR} failed: check that it is reachable and carries ${suite}, or set DEBIAN_MIRROR"
}

# Go toolchain used to build the upstream peers (scripts/upstream.sh).
GO_TOOLCHAIN_VERSION="${GO_TOOLCHAIN_VERSION:-1.26.8}"

# ensure_go GO_MOD: put a Go toolchain at least as new as GO_MOD's `go` line on PATH. The
# machine's own `go` when it is new enough; else the official toolchain GO_TOOLCHAIN_VERSION,
# fetched as the module golang.org/toolchain from the Go module proxy (GOPROXY's first entry)
# into .cache/go (no download site other than the proxy is needed).
ensure_go() {
  local want have arch proxy zip dest
  want="$(awk '$1 == "go" {print $2; exit}' "$1")"
  [ -n "$want" ] || die "$1 has no 'go' line"
  if command -v go >/dev/null 2>&1; then
    have="$(go env GOVERSION 2>/dev/null | sed 's/^go//')"
    if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" = "$want" ]; then
      return 0
    fi
  fi
  dest="${CACHE_DIR}/go/go${GO_TOOLCHAIN_VERSION}"
  if [ ! -x "${dest}/bin/go" ]; then
    case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) die "no Go toolchain for $(uname -m)" ;; esac
    proxy="${GOPROXY:-https://proxy.golang.org}"
    proxy="${proxy%%[,|]*}"
    zip="${CACHE_DIR}/go/toolchain.zip"
    mkdir -p "${CACHE_DIR}/go"
    log "Go ${want}+ not found (have: ${have:-none}): fetching golang.org/toolchain go${GO_TOOLCHAIN_VERSION} from ${proxy}"
    command -v curl >/dev/null || apt_install curl
    command -v unzip >/dev/null || apt_install unzip
    curl -fsSL -o "$zip" "${proxy}/golang.org/toolchain/@v/v0.0.1-go${GO_TOOLCHAIN_VERSION}.linux-${arch}.zip" \
      || die "cannot fetch the Go toolchain from ${proxy}: install Go ${want} or newer, or set GOPROXY"
    rm -rf "${dest}.tmp" && mkdir -p "${dest}.tmp"
    unzip -q "$zip" -d "${dest}.tmp" && rm -f "$zip"
    chmod +x "${dest}.tmp"/golang.org/toolchain@*/bin/* "${dest}.tmp"/golang.org/toolchain@*/pkg/tool/*/* 2>/dev/null || true
    mv "${dest}.tmp"/golang.org/toolchain@* "${dest}" && rm -rf "${dest}.tmp"
  fi
  export PATH="${dest}/bin:${PATH}" GOTOOLCHAIN=local
  go version >/dev/null 2>&1 || die "the Go toolchain in ${dest} does not run: remove it and retry"
}
