#!/usr/bin/env bash
# Real-peer check of cdi_spec against an old CDI consumer: Debian 12's podman 4.3.1, built
# against CDI library 0.5.x, which reads specs up to cdiVersion 0.5.0 and knows no
# annotations (containerd 1.7, in K3s before v1.31.6, vendors a library of that age too).
#
#   1. podman 4.3.1, conmon and crun are fetched from Debian 12 (bookworm) with apt through a
#      private apt state under .cache/cdi-peer and unpacked there (nothing is installed).
#   2. A stand-in driver tree (tests/unit/fake_driver.py: empty library files, not NVIDIA's)
#      whose /dev nodes are character devices 1:3 (the null device), so that the runtime can
#      create them in the container.
#   3. cdi_spec (native backend, the module file run directly) writes the spec, under a vendor
#      of its own (k3s-gpu-cdi-peer.example), to /var/run/cdi/k3s-gpu-cdi-peer.yaml: podman 4.3
#      reads only /etc/cdi and /var/run/cdi. The file is removed on exit.
#   4. podman run --device <vendor>/gpu=0, =<uuid>, =all must start a busybox container that
#      sees /dev/nvidia0, the libraries under /usr/local/nvidia/lib64 and no /dev/nvidia-caps.
#   5. The spec the earlier cdi_spec wrote (cdiVersion 0.6.0 with its annotation) must be
#      refused by this podman (so the check can fail), and cdi_spec must rewrite it into one
#      podman accepts.
# On a hybrid cgroup host (a cgroup2 mount with controllers at /sys/fs/cgroup/unified, which crun
# refuses) the script re-runs itself in a private mount namespace without that mount.
# What it does not prove: that a CUDA program runs (no GPU here; see docs/validation/h100.md),
# or containerd 1.7 itself.
#
# Run as root (it writes /var/run/cdi and runs rootful podman). Environment: DEBIAN_MIRROR
# (default: the host's), PODMAN_RUN_ARGS (default: --cgroups=disabled, for a cgroup v1 host
# without systemd).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "${HERE}/../../scripts/lib.sh"
activate_venv
[ "$(id -u)" -eq 0 ] || die "run as root: the spec goes to /var/run/cdi and podman runs rootful"
command -v apt-get >/dev/null || die "apt-get not found: this needs a Debian or Ubuntu machine to fetch podman"

# crun refuses a hybrid cgroup layout (v1 controllers plus a cgroup2 mount at
# /sys/fs/cgroup/unified that has a controller, e.g. hugetlb) even with --cgroups=disabled.
# On such a host the check runs in a private mount namespace without that cgroup2 mount, so
# crun sees plain cgroup v1; the host's mounts are not touched.
unified=/sys/fs/cgroup/unified
if [ -z "${K3S_GPU_CDI_PEER_NS:-}" ] && [ -n "$(cat "${unified}/cgroup.controllers" 2>/dev/null)" ] \
  && [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
  command -v unshare >/dev/null || die "hybrid cgroup host and no unshare(1): install util-linux"
  log "hybrid cgroups (${unified} has: $(tr '\n' ' ' <"${unified}/cgroup.controllers")): running in a private mount namespace without ${unified}"
  # shellcheck disable=SC2016 # $1 and $@ belong to the inner sh
  K3S_GPU_CDI_PEER_NS=1 exec unshare --mount --propagation private \
    sh -c 'umount -l "$1" && shift && exec "$@"' sh "${unified}" bash "${BASH_SOURCE[0]}" "$@"
fi

peer="${CACHE_DIR}/cdi-peer"
prefix="${peer}/root"
vendor="k3s-gpu-cdi-peer.example"
spec="/var/run/cdi/k3s-gpu-cdi-peer.yaml"
uuid="GPU-89fcfae2-3b36-7d29-858e-7396743c537e" # the H100 capture's
work="$(mktemp -d "${TMPDIR:-/tmp}/k3s_gpu-cdi-peer.XXXXXX")"
cleanup() {
  rm -f "${spec}"
  rmdir /var/run/cdi 2>/dev/null || true
  rm -rf "${work}"
}
trap cleanup EXIT

# ---- 1. podman 4.3.1 from Debian 12
if [ ! -x "${prefix}/usr/bin/podman" ]; then
  mkdir -p "${peer}/debs"
  log "fetching podman 4.3.1 from Debian 12 into ${peer}"
  private_apt_init "${peer}/apt" bookworm
  (cd "${peer}/debs" && apt-get "${PRIVATE_APT_OPTS[@]}" download -qq podman conmon crun golang-github-containers-common \
    golang-github-containers-image busybox-static libsubid4 libgpgme11 libassuan0 libyajl2 >/dev/null) \
    || die "apt-get download of podman and its libraries from ${PRIVATE_APT_MIRROR} failed: check that it is reachable"
  for deb in "${peer}"/debs/*.deb; do dpkg-deb -x "${deb}" "${prefix}" || die "cannot unpack ${deb}: remove ${peer} and retry"; done
  rm -f "${peer}"/debs/*.deb
fi
libs="${prefix}/usr/lib/x86_64-linux-gnu:${prefix}/lib/x86_64-linux-gnu"
mkdir -p "${work}/bin" "${work}/storage" "${work}/run" "${work}/tmp" "${work}/rootfs/bin"
for b in conmon crun podman; do
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "${libs}" "${prefix}/usr/bin/${b}" >"${work}/bin/${b}"
  chmod +x "${work}/bin/${b}"
done
cat >"${work}/containers.conf" <<EOF
[containers]
seccomp_profile = "${prefix}/usr/share/containers/seccomp.json"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${work}/events.log"
conmon_path = ["${work}/bin/conmon"]
runtime = "crun"
tmp_dir = "${work}/tmp"
[engine.runtimes]
crun = ["${work}/bin/crun"]
EOF
: >"${work}/registries.conf"
printf '[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n' "${work}/run" "${work}/storage" >"${work}/storage.conf"
podman() {
  CONTAINERS_CONF="${work}/containers.conf" CONTAINERS_REGISTRIES_CONF="${work}/registries.conf" \
    CONTAINERS_STORAGE_CONF="${work}/storage.conf" "${work}/bin/podman" --root "${work}/storage" \
    --runroot "${work}/run" --tmpdir "${work}/tmp" --conmon "${work}/bin/conmon" --runtime "${work}/bin/crun" \
    --cgroup-manager cgroupfs --events-backend file --storage-driver vfs "$@"
}
version="$(podman --version)"
case "${version}" in
  *" 4.3."*) log "CDI consumer: ${version}" ;;
  *) die "expected podman 4.3.x, got '${version}': remove ${peer} and retry" ;;
esac
cp "${prefix}/bin/busybox" "${work}/rootfs/bin/busybox"
for a in sh ls cat; do ln -s busybox "${work}/rootfs/bin/${a}"; done

# ---- 2. the stand-in driver tree, with character devices
drv="${work}/driver"
python - "${drv}" <<'EOF'
import os
import sys
sys.path.insert(0, os.path.join(os.environ['REPO_ROOT'], 'tests', 'unit'))
import fake_driver  # noqa: E402
root = fake_driver.build(sys.argv[1])
dev = os.path.join(root, 'dev')
for folder, _dirs, names in os.walk(dev):
    for name in names:
        path = os.path.join(folder, name)
        os.unlink(path)
        os.mknod(path, 0o666 | 0o020000, os.makedev(1, 3))
EOF
printf '#!/bin/sh\ncat %s\n' "${REPO_ROOT}/tests/unit/fixtures/h100-ubuntu2404/nvidia-smi-q.xml" >"${work}/nvidia-smi"
chmod +x "${work}/nvidia-smi"

# cdi_spec MODULE_ARGS_JSON -> prints the result's "changed reason"
cdi_spec() {
  printf '{"ANSIBLE_MODULE_ARGS": %s}' "$1" >"${work}/args.json"
  PYTHONPATH="${COLLECTIONS_DIR}" python "${REPO_ROOT}/plugins/modules/cdi_spec.py" "${work}/args.json" \
    | python -c 'import json, sys; r = json.load(sys.stdin); print(r.get("failed", False), r["changed"], r.get("reason", r.get("msg")))'
}
args="{\"path\": \"${spec}\", \"backend\": \"native\", \"driver_root\": \"${drv}\", \"dev_root\": \"${drv}\",
       \"nvidia_smi_path\": \"${work}/nvidia-smi\", \"vendor\": \"${vendor}\"}"

# ---- 3./4. the spec cdi_spec writes, used by podman 4.3.1
failed=0
read -ra run_args <<<"${PODMAN_RUN_ARGS:---cgroups=disabled}"
# ctr DEVICE: run the check inside a container given DEVICE; prints its output
ctr() {
  podman run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "${run_args[@]}" \
    --device "$1" --rootfs "${work}/rootfs" /bin/sh -c \
    'ls /dev/nvidia0 && cat /usr/local/nvidia/lib64/libcuda.so.1 && echo "caps: $(ls /dev/nvidia-caps 2>/dev/null | wc -l)"' 2>&1
}
expect_ok() {
  local out
  if out="$(ctr "$1")" && grep -q '^stand-in for libcuda.so.580.159.04' <<<"${out}" && grep -q '^caps: 0$' <<<"${out}"; then
    log "PASS: ${2}: podman 4.3.1 ran a container with --device $1 (/dev/nvidia0, libcuda.so.1, no /dev/nvidia-caps)"
  else
    printf '%s\n' "${out}" >&2
    log "FAIL: ${2}: --device $1"
    failed=1
  fi
}
mkdir -p /var/run/cdi
log "cdi_spec: $(cdi_spec "${args}")"
log "declared: $(grep '^cdiVersion' "${spec}")"
for d in 0 "${uuid}" all; do expect_ok "${vendor}/gpu=${d}" "spec of this cdi_spec"; done

# ---- 5. the earlier cdi_spec's shape is refused; cdi_spec rewrites it
sed -i 's/^cdiVersion: .*/cdiVersion: 0.6.0\nannotations:\n  cdi.k3s-gpu.io\/driver-version: 580.159.04/' "${spec}"
if out="$(ctr "${vendor}/gpu=0")"; then
  log "FAIL: podman 4.3.1 accepted a cdiVersion 0.6.0 spec with annotations: this check cannot tell the versions apart"
  failed=1
else
  log "PASS: podman 4.3.1 refuses the earlier shape: $(grep -m1 -i 'cdi' <<<"${out}")"
fi
result="$(cdi_spec "${args}")"
log "cdi_spec on the earlier shape: ${result}"
grep -q '^False True the spec was written by an earlier cdi_spec' <<<"${result}" || {
  log "FAIL: cdi_spec did not rewrite the earlier shape"
  failed=1
}
expect_ok "${vendor}/gpu=0" "rewritten spec"
[ "${failed}" -eq 0 ] || die "the CDI real-peer check failed (see FAIL above)"
log "all CDI real-peer checks passed"
