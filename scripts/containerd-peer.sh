#!/usr/bin/env bash
# Real-peer check of k3s_containerd_runtime (tests/unit/test_containerd_peer.py and
# test_containerd_dropin_peer.py): the template it writes, rendered as K3s renders it, and its
# drop-in, imported by the config K3s generates, must load in a real containerd.
#   config version 2: Debian's own containerd 1.x (apt-get install containerd).
#   config version 3: containerd 2.x, which Debian ships only in unstable: the .deb is
#   fetched with apt from Debian's archive through a private apt state under
#   .cache/containerd-peer (the host's apt sources are not touched) and unpacked there.
# Environment:
#   DEBIAN_MIRROR  the Debian archive to fetch unstable from (default: the one in the
#                  host's apt sources)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
activate_venv
peer="${CACHE_DIR}/containerd-peer"
mkdir -p "${peer}"

if [ "$(id -u)" -eq 0 ]; then
  apt_install containerd golang-go
fi
command -v containerd >/dev/null || die "containerd is not installed: run 'apt-get install containerd' (Debian 12 ships 1.6) as root"
command -v go >/dev/null || die "go is not installed: run 'apt-get install golang-go' as root (it renders the template with Go's text/template, as K3s does)"

v3_bin() { find "${peer}" -path '*/containerd_2*/usr/bin/containerd' -type f 2>/dev/null | sort | tail -1; }
if [ -z "$(v3_bin)" ]; then
  log "fetching containerd 2.x from Debian unstable into ${peer}"
  private_apt_init "${peer}/apt" unstable
  version="$(apt-cache "${PRIVATE_APT_OPTS[@]}" show containerd 2>/dev/null | awk '/^Version: 2\./ && !v {v = $2} END {print v}')"
  [ -n "${version}" ] || die "Debian unstable has no containerd 2.x package: set CONTAINERD_V3 to a containerd 2 binary"
  (cd "${peer}" && apt-get "${PRIVATE_APT_OPTS[@]}" download -qq "containerd=${version}" >/dev/null) \
    || die "apt-get download containerd=${version} from ${PRIVATE_APT_MIRROR} failed: check that it is reachable, or set DEBIAN_MIRROR"
  deb="$(find "${peer}" -maxdepth 1 -name 'containerd_2*.deb' | sort | tail -1)"
  dest="${peer}/$(basename "${deb}" .deb)"
  dpkg-deb -x "${deb}" "${dest}" || die "cannot unpack ${deb}: remove ${peer} and retry"
  rm -f "${deb}"
fi
log "containerd for version 2: $(containerd --version)"
log "containerd for version 3: $("$(v3_bin)" --version)"
cd "${REPO_ROOT}"
K3S_GPU_CONTAINERD_PEER=1 python -m pytest -p no:cacheprovider -q tests/unit/test_containerd_peer.py \
  tests/unit/test_containerd_dropin_peer.py "$@"
