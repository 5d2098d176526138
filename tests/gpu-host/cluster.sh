#!/usr/bin/env bash
# A real Kubernetes node on the GPU host (issue 11): the collection's modules configure it,
# k3s-upstream (NOT K3s: real kube-apiserver, controller-manager, scheduler, kubelet, etcd,
# containerd 2.x and runc behind a launcher of ours, tests/upstream/cluster) runs it, the
# collection's gpu_device_plugin role deploys a device plugin (the STAND-IN
# gpu-device-plugin-standin: NVIDIA's module was refused by the Go proxy), and pods run
# the CUDA vectoradd kernel.
#
# Run as root on the GPU host (no systemd, no network), from the repository root, with the
# bundle of tests/gpu-host/build-cluster-bundle.sh at $GPU_HOST_CLUSTER_BUNDLE (default
# .gpuhost):  tests/gpu-host/cluster.sh
# GPU_HOST_CLUSTER_NO_GPU=1 rehearses everything but the GPU parts on a machine without one
# (a plain container: the node, the device plugin pod waiting for GPUs, a pod);
# GPU_HOST_CLUSTER_EXTRA_CONFIG adds lines to config.yaml there (tests/gpu-host/rehearse.sh).
#
# Steps (PASS/FAIL each; results in $OUT: run.log, summary.txt, timings.txt, state.txt,
# logs.tar.gz):
#   1. host: binaries in place (k3s-upstream release, the toolkit's runtime and nvidia-ctk)
#   2. cdi_spec (native) writes /etc/cdi/nvidia.yaml; k3s_containerd_runtime decides the
#      containerd runtime wiring (at the standard path: nothing to write, detection does it)
#   3. the node starts (k3s server) and is Ready; its containerd loaded the nvidia runtime
#   4. the gpu_device_plugin role (real role, stand-in image) -> nvidia.com/gpu allocatable
#   5. a pod with limits nvidia.com/gpu: 1 lists one GPU (nvidia-smi -L) and prints Test PASSED;
#      on a host with more GPUs, a pod asking for all of them lists them all
#   6. a pod without the request sees no GPU
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
CB="${GPU_HOST_CLUSTER_BUNDLE:-${REPO}/.gpuhost}"
NO_GPU="${GPU_HOST_CLUSTER_NO_GPU:-0}"
OUT="${OUT:-/tmp/gpu-host-out}"
mkdir -p "${OUT}"
# The helpers of run.sh (section, ok, bad, setup_ansible, ap, build_vectoradd, ...).
GPU_HOST_BUNDLE="${CB}/bundle"
# shellcheck source=tests/gpu-host/run.sh
. "${HERE}/run.sh"

DATA_DIR=/var/lib/rancher/k3s
KUBECONFIG=/etc/rancher/k3s/k3s.yaml
export KUBECONFIG
K=(/usr/local/bin/k3s kubectl)
TEST_IMAGE=k3s-upstream.local/gpu-test:vectoradd
PLUGIN_IMAGE=k3s-upstream.local/gpu-device-plugin-standin:v0.0.0-standin
NODE=""
T_READY=""

kc() { "${K[@]}" "$@"; }

# Wait until "$@" succeeds, every 2 s, at most $1 seconds.
wait_for() {
  local limit="$1" t0
  shift
  t0="$(date +%s)"
  until "$@" >/dev/null 2>&1; do
    [ $(($(date +%s) - t0)) -lt "${limit}" ] || return 1
    sleep 2
  done
}

# ---------------------------------------------------------------- 1. binaries
step_install() {
  section "1. k3s-upstream release and the toolkit's programs"
  local f
  for f in k3s.xz node.tar.xz; do
    [ -f "${CB}/${f}" ] || { bad "1 install" "${CB}/${f} is missing: build it with tests/gpu-host/build-cluster-bundle.sh"; return 1; }
  done
  # Python's lzma and tarfile: the xz program is not everywhere (the rehearsal container).
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
    "${CB}/k3s.xz" /usr/local/bin/k3s.tmp && chmod 0755 /usr/local/bin/k3s.tmp && mv /usr/local/bin/k3s.tmp /usr/local/bin/k3s || return 1
  for f in kubectl crictl ctr; do ln -sfn /usr/local/bin/k3s "/usr/local/bin/${f}"; done
  mkdir -p "${WORK}/node"
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "${CB}/node.tar.xz" "${WORK}/node" || return 1
  # Where the toolkit's packages put them (the nvidia runtime K3s and k3s-upstream detect).
  for f in nvidia-container-runtime nvidia-container-runtime.cdi nvidia-ctk nvidia-cdi-hook; do
    install -m 0755 "${WORK}/node/${f}" "/usr/bin/${f}" || return 1
  done
  /usr/local/bin/k3s --version | tee "${OUT}/versions.txt"
  {
    nvidia-ctk --version | head -1
    nvidia-container-runtime --version | head -1
    /usr/local/bin/k3s kubectl version --client 2>&1 | head -1
  } | tee -a "${OUT}/versions.txt"
  # The toolkit's runtime config (its package ships one): CDI mode, so that
  # NVIDIA_VISIBLE_DEVICES becomes the CDI devices of the spec cdi_spec wrote.
  mkdir -p /etc/nvidia-container-runtime
  nvidia-ctk config default --output /etc/nvidia-container-runtime/config.toml &&
    nvidia-ctk config --in-place --config /etc/nvidia-container-runtime/config.toml \
      --set nvidia-container-runtime.mode=cdi || return 1
  grep -E '^\s*mode|default-kind|spec-dirs' /etc/nvidia-container-runtime/config.toml
  ok "1 k3s-upstream $(/usr/local/bin/k3s --version | awk 'NR==1 {print $3}') and nvidia-container-toolkit programs installed"
}

# ---------------------------------------------------------------- 2. collection modules
step_modules() {
  section "2. collection modules: cdi_spec and k3s_containerd_runtime"
  local skip=()
  if [ "${NO_GPU}" = 1 ]; then
    note "no GPU (rehearsal): cdi_spec skipped"
    skip=(--skip-tags cdi)
  fi
  if ap cluster-modules -i localhost, -c local "${skip[@]}" "${HERE}/playbooks/cluster-node.yml"; then
    ok "2 cdi_spec wrote /etc/cdi/nvidia.yaml${skip:+ (skipped: no GPU)}; k3s_containerd_runtime: $(cat "${OUT}/containerd-runtime.txt" 2>/dev/null)"
  else
    bad "2 collection modules" "the play failed: see ${WORK}/cluster-modules.log"
    return 1
  fi
}

# ---------------------------------------------------------------- 3. the node
write_config() {
  local snapshotter=overlayfs probe="${DATA_DIR}/.overlay-probe"
  mkdir -p "${probe}"/{l,u,w,m} /etc/rancher/k3s
  if ! mount -t overlay overlay -o "lowerdir=${probe}/l,upperdir=${probe}/u,workdir=${probe}/w" "${probe}/m" 2>/dev/null; then
    snapshotter=native
    note "overlay mounts fail under ${DATA_DIR} ($(stat -fc %T "${DATA_DIR}")): containerd uses the native snapshotter"
  else
    umount "${probe}/m"
  fi
  rm -rf "${probe}"
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >/etc/rancher/k3s/cluster-token
  chmod 0600 /etc/rancher/k3s/cluster-token
  # What the k3s_server role writes for a GPU node (its systemd parts cannot run here).
  cat >/etc/rancher/k3s/config.yaml <<EOF
# tests/gpu-host/cluster.sh: the settings k3s_server computes for a GPU node
data-dir: ${DATA_DIR}
node-label:
- nvidia.com/gpu.present=true
node-taint:
- nvidia.com/gpu=true:NoSchedule
snapshotter: ${snapshotter}
token-file: /etc/rancher/k3s/cluster-token
write-kubeconfig-mode: '0600'
EOF
  # Rehearsals elsewhere may add settings (e.g. kubelet-arg: [cgroup-root=...]); unset on the GPU host.
  [ -z "${GPU_HOST_CLUSTER_EXTRA_CONFIG:-}" ] || printf '%s\n' "${GPU_HOST_CLUSTER_EXTRA_CONFIG}" >>/etc/rancher/k3s/config.yaml
  chmod 0600 /etc/rancher/k3s/config.yaml
  cat /etc/rancher/k3s/config.yaml
}

build_images() {
  local img="${DATA_DIR}/agent/images"
  mkdir -p "${img}"
  local glibc_deb busybox_deb
  glibc_deb="$(ls "${GPU_HOST_BUNDLE}"/debs/rootfs/libc6_*.deb)"
  busybox_deb="$(ls "${GPU_HOST_BUNDLE}"/debs/rootfs/busybox-static_*.deb)"
  local files='"/opt/gpu-test/pause": "'"${WORK}/node/pause"'"'
  if [ "${NO_GPU}" != 1 ]; then
    build_vectoradd >"${WORK}/vectoradd-build.log" 2>&1 || { cat "${WORK}/vectoradd-build.log"; return 1; }
    files+=', "/opt/gpu-test/vectoradd": "'"${WORK}/vectoradd"'"'
  fi
  # NVIDIA's CUDA images put the driver's folders on these paths; the native spec mounts there.
  cat >"${WORK}/gpu-test.json" <<EOF
{"name": "${TEST_IMAGE}", "debs": ["${glibc_deb}", "${busybox_deb}"], "files": {${files}},
 "links": {"/bin/sh": "busybox", "/bin/ls": "busybox", "/bin/cat": "busybox", "/bin/echo": "busybox"},
 "dirs": ["/tmp", "/proc", "/sys", "/dev"],
 "env": ["PATH=${CTR_PATH}", "LD_LIBRARY_PATH=${CTR_LD_LIBRARY_PATH}"],
 "entrypoint": ["/opt/gpu-test/vectoradd"], "description": "tests/gpu-host vectoradd (nvcc on this host), busybox, glibc"}
EOF
  # Like NVIDIA's plugin image: all GPUs, through the nvidia runtime (which turns it into
  # the CDI device nvidia.com/gpu=all). Not in a rehearsal: no GPU, no CDI spec there.
  local plugin_env=', "NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=utility"'
  [ "${NO_GPU}" = 1 ] && plugin_env=""
  cat >"${WORK}/plugin.json" <<EOF
{"name": "${PLUGIN_IMAGE}", "debs": ["${glibc_deb}", "${busybox_deb}"],
 "files": {"/usr/bin/gpu-device-plugin-standin": "${WORK}/node/gpu-device-plugin-standin"},
 "links": {"/bin/sh": "busybox"}, "dirs": ["/tmp", "/proc", "/sys", "/dev"],
 "env": ["PATH=${CTR_PATH}", "LD_LIBRARY_PATH=${CTR_LD_LIBRARY_PATH}"${plugin_env}],
 "entrypoint": ["/usr/bin/gpu-device-plugin-standin"], "description": "STAND-IN device plugin (not NVIDIA's k8s-device-plugin)"}
EOF
  # The sandbox image the release names (tests/cluster/build.sh puts it into the lab
  # release's airgap tarball; here it is built on the host like the others).
  cat >"${WORK}/pause.json" <<EOF
{"name": "k3s-upstream.local/pause:$(/usr/local/bin/k3s --version | awk 'NR==1 {print $3}' | tr + -)",
 "files": {"/pause": "${WORK}/node/pause"}, "entrypoint": ["/pause"]}
EOF
  python3 "${HERE}/../cluster/release.py" image --out "${img}/gpu-host-images.tar" "${WORK}/pause.json" "${WORK}/gpu-test.json" "${WORK}/plugin.json"
}

node_ready() {
  kc get node "${NODE}" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

step_node() {
  section "3. k3s server (k3s-upstream) on this host"
  write_config || return 1
  build_images || { bad "3 images" "building the local images failed (see above)"; return 1; }
  NODE="$(hostname | tr '[:upper:]' '[:lower:]')"
  local t0
  t0="$(now)"
  setsid /usr/local/bin/k3s server >"${WORK}/k3s.log" 2>&1 </dev/null &
  echo $! >"${WORK}/k3s.pid"
  if ! wait_for 300 node_ready; then
    tail -40 "${WORK}/k3s.log"
    bad "3 node Ready" "node ${NODE} not Ready within 300s (k3s.log above; component logs in logs.tar.gz)"
    return 1
  fi
  T_READY="$(now)"
  timing node_ready_seconds_after_start "$(secs "$t0" "$T_READY")"
  kc get nodes -o wide
  local cfg="${DATA_DIR}/agent/etc/containerd/config.toml"
  /usr/local/bin/k3s crictl info >"${WORK}/crictl-info.json" 2>"${WORK}/crictl-info.err"
  if python3 - "${WORK}/crictl-info.json" <<'EOF'
import json, sys
info = json.load(open(sys.argv[1]))
cfg = info.get("config", {})
rt = cfg.get("containerd", {}).get("runtimes", {})
nv = rt.get("nvidia", {})
print("runtimes in the config containerd loaded:", sorted(rt))
print("nvidia:", json.dumps(nv.get("options", {})))
print("enableCDI:", cfg.get("enableCDI"), "cdiSpecDirs:", cfg.get("cdiSpecDirs"))
sys.exit(0 if nv.get("options", {}).get("BinaryName") == "/usr/bin/nvidia-container-runtime" else 1)
EOF
  then
    ok "3 node ${NODE} Ready ($(kc get node "${NODE}" -o jsonpath='{.status.nodeInfo.kubeletVersion} {.status.nodeInfo.containerRuntimeVersion}')); containerd loaded runtime nvidia -> /usr/bin/nvidia-container-runtime"
  else
    grep -n 'nvidia' "${cfg}"
    bad "3 containerd runtime" "crictl info shows no nvidia runtime with BinaryName /usr/bin/nvidia-container-runtime"
  fi
}

# ---------------------------------------------------------------- 4. device plugin
plugin_running() {
  kc -n kube-system get pods -l app.kubernetes.io/name=nvidia-device-plugin \
    -o jsonpath='{.items[*].status.containerStatuses[*].state.running.startedAt}' | grep -q .
}

step_plugin() {
  local restarts
  section "4. gpu_device_plugin role (device plugin STAND-IN image) -> nvidia.com/gpu allocatable"
  local extra=(-e "gpu_device_plugin_image=${PLUGIN_IMAGE}" -e gpu_device_plugin_version=v0.0.0)
  [ "${NO_GPU}" = 1 ] && extra+=(-e gpu_device_plugin_wait=false)
  if ! ap device-plugin -i "${HERE}/cluster-inventory.yml" "${extra[@]}" "${HERE}/playbooks/device-plugin.yml"; then
    bad "4 gpu_device_plugin" "the role failed: see the failed task above (${WORK}/device-plugin.log)"
    kc -n kube-system get pods -o wide
    kc -n kube-system logs -l app.kubernetes.io/name=nvidia-device-plugin --tail 30
    return 1
  fi
  # k3s-upstream applies the manifests folder every 10 s.
  if ! wait_for 120 kc get runtimeclass nvidia; then
    bad "4 RuntimeClass" "runtimeclass nvidia was not created from ${DATA_DIR}/server/manifests within 120s"
    return 1
  fi
  kc get runtimeclass nvidia -o wide
  if [ "${NO_GPU}" = 1 ]; then
    if wait_for 180 plugin_running; then
      kc -n kube-system get pods -o wide
      sleep 10
      kc -n kube-system logs -l app.kubernetes.io/name=nvidia-device-plugin --tail 20 | tee "${WORK}/plugin.log"
      restarts="$(kc -n kube-system get pods -l app.kubernetes.io/name=nvidia-device-plugin -o jsonpath='{.items[*].status.containerStatuses[*].restartCount}')"
      if grep -q 'waiting indefinitely' "${WORK}/plugin.log" && [ "${restarts}" = 0 ]; then
        ok "4 device plugin DaemonSet and RuntimeClass applied; the plugin runs and waits (no GPU: nothing allocatable)"
      else
        bad "4 device plugin" "the plugin did not keep waiting for GPUs (restarts: ${restarts})"
      fi
    else
      kc -n kube-system get pods -o wide
      kc -n kube-system describe pods -l app.kubernetes.io/name=nvidia-device-plugin | tail -20
      bad "4 device plugin pod" "not Running within 180s"
    fi
    return 0
  fi
  kc -n kube-system logs -l app.kubernetes.io/name=nvidia-device-plugin --tail 20 | tee "${WORK}/plugin.log"
  local alloc
  alloc="$(kc get node "${NODE}" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}')"
  timing device_plugin_allocatable_seconds_after_ready "$(secs "${T_READY}" "$(now)")"
  if [ "${alloc}" = "${NGPU}" ]; then
    ok "4 node ${NODE} reports nvidia.com/gpu: ${alloc} allocatable, one per GPU (device plugin stand-in registered with the real kubelet)"
  else
    bad "4 allocatable" "node ${NODE} reports nvidia.com/gpu '${alloc}', want ${NGPU} (the host's GPUs)"
    return 1
  fi
}

# ---------------------------------------------------------------- 5./6. pods
# pod_manifest NAME GPUS: the test pod, with limits nvidia.com/gpu: GPUS unless GPUS is 0.
pod_manifest() {
  local name="$1" gpu="$2"
  cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: default
spec:
  restartPolicy: Never
  runtimeClassName: nvidia
  automountServiceAccountToken: false
  enableServiceLinks: false
  tolerations:
    - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
  containers:
    - name: test
      image: ${TEST_IMAGE}
      imagePullPolicy: Never
      command: ["/bin/sh", "-c", $(printf '%s' "${CTR_SCRIPT}" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')]
EOF
  if [ "${gpu}" != 0 ]; then
    printf '      resources:\n        limits:\n          nvidia.com/gpu: %s\n' "${gpu}"
  fi
}

pod_done() {
  kc get pod "$1" -o jsonpath='{.status.phase}' 2>/dev/null | grep -Eqx 'Succeeded|Failed'
}

# gpu_pod NAME GPUS: a pod with limits nvidia.com/gpu: GPUS must list exactly GPUS of the
# host's GPUs (nvidia-smi -L) and print Test PASSED.
gpu_pod() {
  local name="$1" n="$2" listed t_pass u
  pod_manifest "${name}" "${n}" | tee "${WORK}/${name}.yaml" | kc apply -f - || { bad "5 ${name}" "kubectl apply failed"; return 1; }
  if ! wait_for 180 pod_done "${name}"; then
    kc describe pod "${name}" | tail -20
    bad "5 ${name}" "the pod did not finish within 180s"
    return 1
  fi
  t_pass="$(now)"
  kc logs "${name}" | tee "${WORK}/${name}.log"
  listed=0
  for u in "${UUIDS[@]}"; do grep -q "(UUID: ${u})" "${WORK}/${name}.log" && listed=$((listed + 1)); done
  if grep -q '^Test PASSED' "${WORK}/${name}.log" && [ "${listed}" = "${n}" ] &&
    [ "$(grep -c '^GPU [0-9]*: ' "${WORK}/${name}.log")" = "${n}" ]; then
    [ "${n}" = 1 ] && timing node_ready_to_test_passed_seconds "$(secs "${T_READY}" "${t_pass}")"
    ok "5 pod with nvidia.com/gpu: ${n}: nvidia-smi -L lists ${n} of the host's GPUs ($(grep -o 'UUID: [^)]*' "${WORK}/${name}.log" | cut -c7- | paste -sd' ')) and vectoradd prints Test PASSED"
  else
    bad "5 ${name}" "phase $(kc get pod "${name}" -o jsonpath='{.status.phase}'); want Test PASSED and ${n} GPU(s) listed, got ${listed}"
  fi
}

step_gpu_pod() {
  section "5. pod with limits nvidia.com/gpu: 1"
  gpu_pod gpu-vectoradd 1
  if [ "${NGPU}" -gt 1 ]; then
    section "5b. pod with limits nvidia.com/gpu: ${NGPU} (every GPU of the host)"
    kc delete pod gpu-vectoradd --wait=true >/dev/null
    gpu_pod gpu-all "${NGPU}"
  fi
}

step_no_gpu_pod() {
  section "6. pod without the request"
  pod_manifest no-gpu 0 | kc apply -f - || { bad "6 no-gpu pod" "kubectl apply failed"; return 1; }
  if ! wait_for 180 pod_done no-gpu; then
    kc describe pod no-gpu | tail -20
    bad "6 no-gpu pod" "the pod did not finish within 180s"
    return 1
  fi
  kc logs no-gpu | tee "${WORK}/no-gpu-pod.log"
  if grep -q '^container started' "${WORK}/no-gpu-pod.log" && ! grep -q 'Test PASSED' "${WORK}/no-gpu-pod.log" &&
    ! grep -q '^GPU [0-9]' "${WORK}/no-gpu-pod.log" && ! grep -q '^/dev/nvidia' "${WORK}/no-gpu-pod.log"; then
    ok "6 pod without nvidia.com/gpu (runtimeClassName nvidia) started and sees no GPU"
  else
    bad "6 no-gpu pod" "the pod did not start, or it saw a GPU"
  fi
}

collect() {
  {
    echo "### kubectl get nodes,pods -A -o wide"
    kc get nodes,pods -A -o wide 2>&1
    echo "### node ${NODE} (capacity, allocatable, nodeInfo, taints, labels)"
    kc get node "${NODE}" -o jsonpath='{.status.capacity}{"\n"}{.status.allocatable}{"\n"}{.status.nodeInfo}{"\n"}{.spec.taints}{"\n"}{.metadata.labels}{"\n"}' 2>&1
    echo "### runtimeclasses, daemonsets"
    kc get runtimeclass,ds -A 2>&1
    echo "### ${DATA_DIR}/agent/etc/containerd/config.toml"
    cat "${DATA_DIR}/agent/etc/containerd/config.toml" 2>&1
    echo "### /etc/cdi/nvidia.yaml (head)"
    head -40 /etc/cdi/nvidia.yaml 2>&1
    echo "### crictl info (runtimes, cdi)"
    python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]; print(json.dumps({"runtimes": c["containerd"]["runtimes"], "enableCDI": c.get("enableCDI"), "cdiSpecDirs": c.get("cdiSpecDirs")}, indent=1))' "${WORK}/crictl-info.json" 2>&1
    echo "### processes (token check)"
    grep -l -a -F "$(cat /etc/rancher/k3s/cluster-token 2>/dev/null || echo none)" /proc/[0-9]*/cmdline 2>/dev/null && echo "TOKEN FOUND IN A COMMAND LINE" || echo "the token is in no process's command line"
    echo "### k3s.log"
    cat "${WORK}/k3s.log" 2>&1
  } >"${OUT}/state.txt" 2>&1
  tar -czf "${OUT}/logs.tar.gz" -C "${DATA_DIR}/agent" logs 2>/dev/null
}

main() {
  [ "$(id -u)" -eq 0 ] || die "run as root"
  WORK="$(mktemp -d /tmp/gpu-cluster.XXXXXX)"
  : >"${OUT}/timings.txt"
  echo "work folder: ${WORK}; results: ${OUT}; bundle: ${CB}; no GPU: ${NO_GPU}"
  NGPU=0 UUIDS=()
  if [ "${NO_GPU}" != 1 ]; then
    host_facts
    mapfile -t UUIDS < <(nvidia-smi --query-gpu=uuid --format=csv,noheader | tr -d ' ')
    NGPU="${#UUIDS[@]}"
  fi
  setup_ansible || die "could not install the wheels from ${GPU_HOST_BUNDLE}/wheels"
  if step_install && step_modules && step_node && step_plugin; then
    if [ "${NO_GPU}" != 1 ]; then step_gpu_pod; fi
    step_no_gpu_pod
  fi
  collect
  summary
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@" 2>&1 | tee "${OUT}/run.log"
  exit "${PIPESTATUS[0]}"
fi
