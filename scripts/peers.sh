#!/usr/bin/env bash
# Upstream peers (docs/development.md, "Upstream peers"): the project's output checked by real
# upstream programs instead of models of them.
#
#   1. scripts/upstream.sh peers peers-toolkit: cdi-verdict (ours, on the reference CDI
#      library) and the NVIDIA container toolkit's nvidia-ctk, runtimes and hooks, built from
#      their Go modules at the versions in tests/upstream/peers*/go.mod (cached).
#   2. containerd 1.7 (config version 2) from Debian 13 (trixie) and containerd 2.x (config
#      version 3) from Debian unstable: fetched with apt through a private apt state under
#      .cache/peers/containerd and unpacked there (nothing is installed; the host's apt sources
#      are not touched). Cached; remove the folder to fetch the current packages again.
#   3. pytest on the peer tests with K3S_GPU_UPSTREAM_PEER=1 (a missing program fails them
#      instead of skipping): tests/unit/test_cdi_peer.py, test_containerd_peer.py and
#      test_containerd_dropin_peer.py. (The device
#      plugin's peer, tests/unit/plugins/test_device_plugin_peer.py, needs no upstream program
#      since its Go module is not served: it runs in the unit step.)
#
# Environment: DEBIAN_MIRROR (default: the host's), CONTAINERD_V2 / CONTAINERD_V3 (containerd
# binaries to use instead of Debian's), UPSTREAM_BIN, GOMODCACHE/GOCACHE.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
activate_venv
start=$(date +%s)

"${REPO_ROOT}/scripts/upstream.sh" peers peers-toolkit

peer="${CACHE_DIR}/peers/containerd"
# fetch_containerd SUITE MAJOR: unpack Debian SUITE's containerd (its version must start with
# MAJOR.) under ${peer} once; prints the path of its binary.
fetch_containerd() {
  local suite="$1" major="$2" version deb dest found
  found="$(find "${peer}" -path "*/containerd_${major}.*/usr/bin/containerd" -type f 2>/dev/null | sort | tail -1)"
  if [ -z "${found}" ]; then
    mkdir -p "${peer}"
    log "fetching containerd ${major}.x from Debian ${suite} into ${peer}"
    private_apt_init "${peer}/apt-${suite}" "${suite}"
    version="$(apt-cache "${PRIVATE_APT_OPTS[@]}" show containerd 2>/dev/null \
      | awk -v m="${major}." '/^Version: / && index($2, m) == 1 && !v {v = $2} END {print v}')"
    [ -n "${version}" ] || die "Debian ${suite} has no containerd ${major}.x package: set CONTAINERD_V$([ "${major}" = 1 ] && echo 2 || echo 3) to a containerd ${major}.x binary"
    (cd "${peer}" && apt-get "${PRIVATE_APT_OPTS[@]}" download -qq "containerd=${version}" >/dev/null) \
      || die "apt-get download containerd=${version} from ${PRIVATE_APT_MIRROR} (${suite}) failed: check that it is reachable, or set DEBIAN_MIRROR"
    deb="$(find "${peer}" -maxdepth 1 -name "containerd_${major}.*.deb" | sort | tail -1)"
    dest="${peer}/$(basename "${deb}" .deb)"
    dpkg-deb -x "${deb}" "${dest}" || die "cannot unpack ${deb}: remove ${peer} and retry"
    rm -f "${deb}"
    found="${dest}/usr/bin/containerd"
  fi
  echo "${found}"
}
CONTAINERD_V2="${CONTAINERD_V2:-$(fetch_containerd trixie 1)}"
CONTAINERD_V3="${CONTAINERD_V3:-$(fetch_containerd unstable 2)}"
{ [ -x "${CONTAINERD_V2}" ] && [ -x "${CONTAINERD_V3}" ]; } || die "no containerd binaries (v2: '${CONTAINERD_V2}', v3: '${CONTAINERD_V3}'): see the errors above"
export CONTAINERD_V2 CONTAINERD_V3
log "containerd for config version 2: $("${CONTAINERD_V2}" --version)"
log "containerd for config version 3: $("${CONTAINERD_V3}" --version)"
ensure_go "${REPO_ROOT}/tests/upstream/peers/go.mod" # the K3s stand-in renders with Go's text/template

cd "${REPO_ROOT}"
K3S_GPU_UPSTREAM_PEER=1 python -m pytest -p no:cacheprovider -q tests/unit/test_cdi_peer.py \
  tests/unit/test_containerd_peer.py tests/unit/test_containerd_dropin_peer.py "$@"
log "upstream peers passed in $(($(date +%s) - start))s"
