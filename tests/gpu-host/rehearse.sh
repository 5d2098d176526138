#!/usr/bin/env bash
# Rehearse tests/gpu-host/cluster.sh here, without a GPU, before spending device time: a
# plain Docker container like the GPU host (no systemd, root, no network needed; caps
# SYS_ADMIN and NET_ADMIN, no CAP_SYS_RESOURCE) runs it with GPU_HOST_CLUSTER_NO_GPU=1:
# the k3s-upstream node starts, the gpu_device_plugin role deploys the stand-in plugin
# (which waits for GPUs) and a pod with runtimeClassName nvidia runs through the real
# nvidia-container-runtime and sees no GPU.
# Differences from the GPU host, made by tests/cluster/container-node-prep.sh: shadowed
# sysctls, /dev/kmsg, a cgroup root of its own (cgroup v1 here, v2 there).
# Usage: tests/gpu-host/rehearse.sh [BUNDLE] (default .gpuhost, from build-cluster-bundle.sh).
# Results in .cache/gpu-host-rehearsal/. The container is removed at the end.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh"

BUNDLE="$(cd "${1:-${REPO_ROOT}/.gpuhost}" && pwd)"
NAME=gpu-host-rehearsal
OUTDIR="${CACHE_DIR}/gpu-host-rehearsal"
IMAGE="${REHEARSAL_IMAGE:-k3s-gpu-lab/debian:13}"
rm -rf "${OUTDIR}" && mkdir -p "${OUTDIR}"
docker rm -f "${NAME}" >/dev/null 2>&1 || true
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  docker rm -f "${NAME}" >/dev/null 2>&1 || true
  # the cgroup root the node used, in every v1 hierarchy of the host
  for h in /sys/fs/cgroup/*/"${NAME}"; do
    if [ -d "$h" ]; then find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
}
trap cleanup EXIT
docker run -d --name "${NAME}" --hostname "${NAME}" --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined --cgroupns host \
  -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run:exec --tmpfs /var/lib/rancher:exec \
  -v "${REPO_ROOT}:/src:ro" -v "${BUNDLE}:/bundle:ro" -v "${OUTDIR}:/out" \
  --entrypoint sleep "${IMAGE}" infinity >/dev/null
docker exec "${NAME}" sh -c 'mkdir -p /repo && tar -C /src --exclude=./.venv --exclude=./.cache --exclude=./.gpuhost --exclude=./.collections -cf - . | tar -C /repo -xf -'
docker exec "${NAME}" sh /repo/tests/cluster/container-node-prep.sh "${NAME}"
set +e
docker exec -e OUT=/out -e GPU_HOST_CLUSTER_NO_GPU=1 -e GPU_HOST_CLUSTER_BUNDLE=/bundle \
  -e GPU_HOST_CLUSTER_EXTRA_CONFIG="kubelet-arg: [cgroup-root=/${NAME}]" \
  -w /repo "${NAME}" tests/gpu-host/cluster.sh
rc=$?
set -e
log "rehearsal exit status ${rc}; results in ${OUTDIR#"${REPO_ROOT}"/}"
exit "${rc}"
