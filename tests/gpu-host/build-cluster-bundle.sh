#!/usr/bin/env bash
# Build what tests/gpu-host/cluster.sh carries to the GPU host (no network there), into DEST
# (default .gpuhost in this checkout; add it to .git/info/exclude):
#   k3s.xz          the k3s-upstream release file (tests/cluster/build.sh), xz-compressed
#   node.tar.xz     nvidia-container-runtime(.cdi), nvidia-ctk, nvidia-cdi-hook (toolkit v1.20.0,
#                   built from its module), gpu-device-plugin-standin, pause
#   bundle/         wheels/, debs/rootfs/ and collections.tar.gz of tests/gpu-host/build-bundle.sh
#                   (not its podman packages)
#   tests/          this checkout's tests/gpu-host and tests/cluster/release.py, to lay over the
#                   copy of the repository the GPU host gets (its scripts may be newer there)
# The device tool carries at most 64 MiB per call: the script prints the sizes and, with
# --split, puts k3s.xz alone into DEST/part1 and the rest into DEST/part2 (two calls; the
# first copies part1 to /tmp on the device, the second runs).
# Usage: tests/gpu-host/build-cluster-bundle.sh [--split] [DEST]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh"

split=0
[ "${1:-}" = --split ] && { split=1; shift; }
DEST="${1:-${REPO_ROOT}/.gpuhost}"
REL="${CACHE_DIR}/cluster/release"

version="$("${REPO_ROOT}/tests/cluster/build.sh" "${REL}" | tail -1)"
"${REPO_ROOT}/tests/gpu-host/build-bundle.sh" >&2

rm -rf "${DEST}"
mkdir -p "${DEST}/bundle/debs" "${DEST}/tests/gpu-host" "${DEST}/tests/cluster"
log "compressing the release ${version} (xz -6, a few minutes)"
xz -6 -T2 -c "${REL}/${version}/k3s" >"${DEST}/k3s.xz"
tar -C "${REL}/node" -cJf "${DEST}/node.tar.xz" nvidia-container-runtime nvidia-container-runtime.cdi \
  nvidia-ctk nvidia-cdi-hook gpu-device-plugin-standin pause
B="${REPO_ROOT}/tests/gpu-host/bundle"
cp -r "${B}/wheels" "${DEST}/bundle/wheels"
cp -r "${B}/debs/rootfs" "${DEST}/bundle/debs/rootfs"
cp "${B}/collections.tar.gz" "${DEST}/bundle/"
cp -r "${REPO_ROOT}"/tests/gpu-host/{*.sh,*.yml,*.cu,playbooks} "${DEST}/tests/gpu-host/"
cp "${REPO_ROOT}/tests/cluster/release.py" "${DEST}/tests/cluster/"
if [ "${split}" = 1 ]; then
  mkdir -p "${DEST}/part1" "${DEST}/part2"
  mv "${DEST}/k3s.xz" "${DEST}/part1/"
  mv "${DEST}/node.tar.xz" "${DEST}/bundle" "${DEST}/tests" "${DEST}/part2/"
fi
(cd "${DEST}" && du -ah --max-depth=2 . | sort -k2)
total="$(du -sm "${DEST}" | cut -f1)"
log "bundle for k3s-upstream ${version}: ${total} MiB in ${DEST}"
