#!/usr/bin/env bash
# Build the k3s-upstream "release" (NOT K3s: real upstream Kubernetes, containerd, etcd, runc,
# CNI plugins and crictl behind a launcher of ours) from the pinned Go modules of
# tests/upstream/cluster and tests/upstream/cluster-node, in the layout of a K3s airgap
# release folder, so that the collection's roles install it with k3s_airgap_dir:
#
#   <out>/<version>/k3s                            launcher + payload (tests/cluster/release.py pack)
#   <out>/<version>/k3s-airgap-images-amd64.tar    OCI archive: our pause image and the device
#                                                  plugin STAND-IN image (imported at start)
#   <out>/<version>/sha256sum-amd64.txt
#   <out>/node/                                    node programs the tests install themselves:
#                                                  nvidia-container-runtime(.cdi), nvidia-ctk,
#                                                  nvidia-cdi-hook, gpu-device-plugin-standin, pause
#
# Two releases: the k8s-upstream build of tests/upstream/cluster/go.mod (Kubernetes v1.36.3)
# and of prev.mod (v1.36.1), the one molecule/k3s-real upgrades from.
# Usage: tests/cluster/build.sh [OUT]   (default .cache/cluster/release). Prints the current
# version last.
# The first build of Kubernetes takes 10-40 minutes on 2 cores; later ones reuse Go's cache.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh"

OUT="${1:-${CACHE_DIR}/cluster/release}"
BIN="${UPSTREAM_BIN:-${CACHE_DIR}/upstream/bin}"
HERE="${REPO_ROOT}/tests/cluster"

"${REPO_ROOT}/scripts/upstream.sh" cluster cluster-node >&2

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
mkdir -p "${work}/payload" "${OUT}/node"
for p in containerd-shim-runc-v2 runc crictl bridge host-local loopback portmap; do
  cp "${BIN}/${p}" "${work}/payload/${p}"
done
for p in nvidia-container-runtime nvidia-container-runtime.cdi nvidia-ctk nvidia-cdi-hook gpu-device-plugin-standin pause; do
  cp "${BIN}/${p}" "${OUT}/node/${p}"
done

# release BINARY: one release folder for the k8s-upstream build BINARY; prints its version.
release() {
  local binary="$1" version rel pause_tag
  version="$("${binary}" kubelet --version | awk '{print $2}')"
  case "${version}" in
    v*+k3s*) ;;
    *) die "${binary} reports version '${version}': it must be built by scripts/upstream.sh (tests/upstream/cluster/ldflags)" ;;
  esac
  rel="${OUT}/${version}"
  mkdir -p "${rel}"
  log "packing ${rel#"${REPO_ROOT}"/}/k3s"
  python3 "${HERE}/release.py" pack --binary "${binary}" --payload-dir "${work}/payload" --out "${rel}/k3s" >/dev/null
  pause_tag="${version/+/-}"
  cat >"${work}/pause.json" <<EOF
{"name": "k3s-upstream.local/pause:${pause_tag}", "files": {"/pause": "${BIN}/pause"},
 "entrypoint": ["/pause"], "description": "pause program of tests/upstream/cluster-node (ours)"}
EOF
  # The device plugin STAND-IN for the lab: no GPU and no CDI spec there, so its image carries
  # no NVIDIA_VISIBLE_DEVICES (the GPU host builds its own image, with it).
  cat >"${work}/plugin.json" <<EOF
{"name": "k3s-upstream.local/gpu-device-plugin-standin:v0.0.0-standin",
 "files": {"/usr/bin/gpu-device-plugin-standin": "${BIN}/gpu-device-plugin-standin"},
 "entrypoint": ["/usr/bin/gpu-device-plugin-standin"], "dirs": ["/tmp"],
 "description": "STAND-IN device plugin of tests/upstream/cluster-node (not NVIDIA's k8s-device-plugin)"}
EOF
  python3 "${HERE}/release.py" image --out "${rel}/k3s-airgap-images-amd64.tar" "${work}/pause.json" "${work}/plugin.json" >&2
  (cd "${rel}" && sha256sum k3s k3s-airgap-images-amd64.tar >sha256sum-amd64.txt)
  log "k3s-upstream release ${version}: $(du -sh "${rel}/k3s" | cut -f1) in ${rel#"${REPO_ROOT}"/}"
  echo "${version}"
}

# The earlier patch release first (molecule/k3s-real upgrades from it); the last line printed
# is the current one.
release "${BIN}/k8s-upstream-prev" >&2
release "${BIN}/k8s-upstream"
