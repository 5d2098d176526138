#!/usr/bin/env bash
# Prove k3s_gpu.cluster's modules and roles on a real GPU host (issue 7), with only what
# this checkout carries: tests/gpu-host/bundle/ (built by build-bundle.sh on a machine
# with network) and the collection's working tree.
#
# Run as root on the GPU host (Ubuntu 24.04, Python 3.12, NVIDIA driver loaded, nvcc):
#   tests/gpu-host/run.sh
# Results go to $OUT (default /tmp/gpu-host-out): run.log, summary.txt, timings.txt,
# host.txt, nvidia_smi_facts.json, cdi_spec.json, cdi-spec.yaml, containers.log.
#
# Steps (each PASS or FAIL; the script goes on after a failure where it can, and exits
# non-zero at the end naming every failed step):
#   0. host facts and the reference timing of a bare `nvidia-smi -q -x`
#   1. k3s_gpu.cluster.nvidia_smi_facts vs `nvidia-smi --query-gpu` (playbooks/facts.yml)
#   2. roles preflight (passes) and nvidia_driver (driver present: changed=0)
#   3. k3s_gpu.cluster.cdi_spec, backend native, twice (second run unchanged)
#   4. the spec used by a real CDI consumer: Debian 13's podman + crun start a container
#      whose root filesystem holds only busybox, glibc and the test program: without the
#      CDI device the GPU must be invisible; with nvidia.com/gpu=0, =<uuid>, =all,
#      `nvidia-smi -L` must list the GPU and vectoradd (nvcc, static cudart) must pass.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
BUNDLE="${GPU_HOST_BUNDLE:-${HERE}/bundle}"
OUT="${OUT:-/tmp/gpu-host-out}"
PY="${GPU_HOST_PYTHON:-/usr/bin/python3}"
CDI_PATH="${GPU_HOST_CDI_PATH:-/etc/cdi/nvidia.yaml}"
# GPU_HOST_PODMAN_RUN_ARGS: extra `podman run` options, for trying run.sh elsewhere
# (e.g. --cgroups=disabled on a cgroup v1 machine). Unset on the GPU host.
# What NVIDIA's CUDA images set; the native CDI spec mounts the driver there.
CTR_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/nvidia/bin"
CTR_LD_LIBRARY_PATH="/usr/local/nvidia/lib:/usr/local/nvidia/lib64"

SUMMARY=()
FAILED=()

section() { printf '\n======== %s ========\n' "$*"; }
note() { printf -- '--- %s\n' "$*"; }
ok() {
  SUMMARY+=("PASS  $1")
  printf '>>> PASS: %s\n' "$1"
}
bad() {
  SUMMARY+=("FAIL  $1: $2")
  FAILED+=("$1")
  printf '>>> FAIL: %s: %s\n' "$1" "$2"
}
die() {
  printf '>>> FATAL: %s\n' "$*"
  exit 2
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
timing() { printf '%s=%s\n' "$1" "$2" | tee -a "${OUT}/timings.txt"; }
# min and median of numbers given as arguments
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "min=%s median=%s n=%d", v[1], v[int((NR + 1) / 2)], NR }'; }

# ---------------------------------------------------------------- 0. prerequisites
check_prerequisites() {
  [ "$(id -u)" -eq 0 ] || die "run as root: the CDI spec goes to /etc/cdi and podman runs rootful"
  command -v nvidia-smi >/dev/null || die "nvidia-smi is not on PATH: this must run on a host with a loaded NVIDIA driver"
  [ -x "${PY}" ] || die "${PY} not found: set GPU_HOST_PYTHON to a Python 3.12"
  "${PY}" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
    || die "${PY} is not Python 3.12 (the carried wheels are cp312): set GPU_HOST_PYTHON"
  ls "${BUNDLE}"/wheels/ansible_core-*.whl >/dev/null 2>&1 \
    || die "no wheels under ${BUNDLE}/wheels: run tests/gpu-host/build-bundle.sh on a machine with network and carry tests/gpu-host/bundle"
  command -v dpkg-deb >/dev/null || die "dpkg-deb not found: this expects an Ubuntu/Debian host"
}

host_facts() {
  section "0. host facts"
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel: $(uname -r) ($(uname -m))"
    echo "os: $(. /etc/os-release && echo "${PRETTY_NAME}")"
    echo "python: ${PY} $("${PY}" -c 'import platform; print(platform.python_version())')"
    echo "init (pid 1): $(ps -p 1 -o comm= 2>/dev/null || cat /proc/1/comm)"
    echo "systemctl: $(command -v systemctl || echo absent)"
    echo "cgroup: $(stat -fc %T /sys/fs/cgroup)"
    echo "nvidia-smi: $(command -v nvidia-smi) -> $(readlink -f "$(command -v nvidia-smi)")"
    echo "driver (/proc/driver/nvidia/version): $(head -1 /proc/driver/nvidia/version 2>/dev/null)"
    echo "nvcc: $(find_nvcc || echo absent)"
    echo "nvidia-ctk: $(command -v nvidia-ctk || echo absent)"
    echo "gcc: $(gcc --version 2>/dev/null | head -1 || echo absent); sudo: $(command -v sudo || echo absent); pip for ${PY}: $("${PY}" -m pip --version 2>/dev/null | cut -d' ' -f1-2 || echo absent)"
    echo "host glibc: $(ldd --version 2>/dev/null | head -1)"
    echo "--- nvidia-smi -L"
    nvidia-smi -L
    echo "--- nvidia-smi --query-gpu=index,uuid,name,driver_version,memory.total,pci.bus_id,compute_cap --format=csv"
    nvidia-smi --query-gpu=index,uuid,name,driver_version,memory.total,pci.bus_id,compute_cap --format=csv
    echo "--- /dev/nvidia*"
    ls -l /dev/nvidia* 2>&1
  } | tee "${OUT}/host.txt"
}

# A bare `nvidia-smi -q -x`, the work nvidia_smi_facts wraps: 5 runs.
time_bare_nvidia_smi() {
  local i t0 t1 times=()
  for i in 1 2 3 4 5; do
    t0="$(now)"
    nvidia-smi -q -x >/dev/null || {
      bad "bare nvidia-smi -q -x" "exit status $?"
      return
    }
    t1="$(now)"
    times+=("$(secs "$t0" "$t1")")
  done
  timing bare_nvidia_smi_q_x_seconds "$(stats "${times[@]}")"
}

# ---------------------------------------------------------------- ansible from wheels
WORK=""
setup_ansible() {
  section "setup: ansible-core from the carried wheels"
  local site="${WORK}/site" w
  mkdir -p "${site}" "${WORK}/bin" "${WORK}/collections/ansible_collections/k3s_gpu" "${WORK}/ansible-tmp" "${WORK}/ansible-home"
  if "${PY}" -m pip --version >/dev/null 2>&1; then
    "${PY}" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
      --target "${site}" "${BUNDLE}"/wheels/*.whl || return 1
  else
    # No pip for this Python: a wheel is a zip whose top level goes into site-packages.
    for w in "${BUNDLE}"/wheels/*.whl; do
      "${PY}" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$w" "${site}" || return 1
    done
  fi
  # Launchers instead of PYTHONPATH, so that modules (run by the same Python on the target)
  # see only the standard library, as on a real target.
  for w in playbook:ansible-playbook adhoc:ansible; do
    printf '#!%s\nimport sys\nsys.path.insert(0, %s)\nfrom ansible.cli.%s import main\nsys.exit(main())\n' \
      "${PY}" "'${site}'" "${w%%:*}" >"${WORK}/bin/${w#*:}"
    chmod +x "${WORK}/bin/${w#*:}"
  done
  ln -sfn "${REPO}" "${WORK}/collections/ansible_collections/k3s_gpu/cluster"
  if [ -f "${BUNDLE}/collections.tar.gz" ]; then
    tar -xzf "${BUNDLE}/collections.tar.gz" -C "${WORK}/collections" || return 1
  fi
  cat >"${WORK}/ansible.cfg" <<EOF
[defaults]
collections_path = ${WORK}/collections
interpreter_python = ${PY}
stdout_callback = default
callback_result_format = yaml
callbacks_enabled = ansible.posix.profile_tasks
host_key_checking = False
retry_files_enabled = False
nocolor = True
local_tmp = ${WORK}/ansible-tmp
remote_tmp = ${WORK}/ansible-tmp
EOF
  export ANSIBLE_CONFIG="${WORK}/ansible.cfg" ANSIBLE_HOME="${WORK}/ansible-home" LC_ALL=C.UTF-8 LANG=C.UTF-8
  unset PYTHONPATH ANSIBLE_COLLECTIONS_PATH
  "${WORK}/bin/ansible-playbook" --version >"${WORK}/ansible-version.txt" || return 1
  head -3 "${WORK}/ansible-version.txt"
}

# ap NAME ARGS...: run ansible-playbook from ${WORK}, its output also in ${WORK}/NAME.log
ap() {
  local name="$1" rc
  shift
  (cd "${WORK}" && "${WORK}/bin/ansible-playbook" -e "gpu_host_out=${OUT}" "$@") 2>&1 | tee "${WORK}/${name}.log"
  rc="${PIPESTATUS[0]}"
  return "$rc"
}

# Run a module file directly, as ansible does after unpacking it, to time the module alone.
run_module() {
  local module="$1" args="$2"
  printf '{"ANSIBLE_MODULE_ARGS": %s}' "$args" >"${WORK}/args.json"
  PYTHONPATH="${WORK}/site:${WORK}/collections" "${PY}" "${REPO}/plugins/modules/${module}.py" "${WORK}/args.json"
}

# ---------------------------------------------------------------- 1. nvidia_smi_facts
step_facts() {
  section "1. k3s_gpu.cluster.nvidia_smi_facts"
  if [ ! -f "${REPO}/plugins/modules/nvidia_smi_facts.py" ]; then
    bad "1 nvidia_smi_facts" "plugins/modules/nvidia_smi_facts.py does not exist in this tree"
    return
  fi
  if ap facts -i localhost, -c local "${HERE}/playbooks/facts.yml"; then
    ok "1 nvidia_smi_facts matches nvidia-smi --query-gpu (status, count, model, UUID, driver)"
  else
    bad "1 nvidia_smi_facts" "the play failed: see the failed task above (${WORK}/facts.log)"
  fi
  local i t0 t1 times=() out
  for i in 1 2 3 4 5; do
    t0="$(now)"
    out="$(run_module nvidia_smi_facts '{}')" || {
      bad "1 nvidia_smi_facts (direct run)" "exit status $?: ${out}"
      return
    }
    t1="$(now)"
    times+=("$(secs "$t0" "$t1")")
  done
  timing nvidia_smi_facts_module_direct_seconds "$(stats "${times[@]}")"
  [ -f "${OUT}/nvidia_smi_facts.json" ] &&
    timing nvidia_smi_facts_playbook_task_seconds "$(sed -n 's/.*"task_seconds": \([0-9.]*\).*/\1/p' "${OUT}/nvidia_smi_facts.json")"
}

# ---------------------------------------------------------------- 2. roles
step_roles() {
  # A root shell without sudo (minimal images): become through su, as a user would set it.
  local inv=(-i "${HERE}/inventory.yml")
  command -v sudo >/dev/null || {
    note "sudo is absent: the role steps use ansible_become_method=ansible.builtin.su"
    inv+=(-e ansible_become_method=ansible.builtin.su)
  }
  section "2a. role k3s_gpu.cluster.preflight (GPU node)"
  if [ ! -f "${REPO}/roles/preflight/tasks/main.yml" ]; then
    bad "2a preflight role" "roles/preflight/tasks/main.yml does not exist in this tree"
  elif ap preflight "${inv[@]}" "${HERE}/playbooks/preflight.yml"; then
    ok "2a preflight passes on the GPU host as a GPU node"
  else
    bad "2a preflight role" "the play failed: see the failed task above (${WORK}/preflight.log)"
  fi

  section "2b. role k3s_gpu.cluster.nvidia_driver (driver already present)"
  if [ ! -f "${REPO}/roles/nvidia_driver/tasks/main.yml" ]; then
    bad "2b nvidia_driver role" "roles/nvidia_driver/tasks/main.yml does not exist in this tree"
  elif ! ap driver "${inv[@]}" "${HERE}/playbooks/driver.yml"; then
    bad "2b nvidia_driver role" "the play failed: see the failed task above (${WORK}/driver.log)"
  elif ! grep -Eq '^localhost +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0' "${WORK}/driver.log"; then
    bad "2b nvidia_driver role" "the play changed something on a host whose driver is present: $(grep -E '^localhost +:' "${WORK}/driver.log")"
  else
    ok "2b nvidia_driver leaves a present driver alone (changed=0)"
  fi
}

# ---------------------------------------------------------------- 3. cdi_spec
step_cdi() {
  section "3. k3s_gpu.cluster.cdi_spec (backend native), twice"
  if [ ! -f "${REPO}/plugins/modules/cdi_spec.py" ]; then
    bad "3 cdi_spec" "plugins/modules/cdi_spec.py does not exist in this tree"
    return 1
  fi
  local rc=0
  if ap cdi -i localhost, -c local -e "gpu_host_cdi_path=${CDI_PATH}" "${HERE}/playbooks/cdi.yml"; then
    ok "3 cdi_spec writes ${CDI_PATH} (devices by index, UUID, all; host paths exist) and a second run changes nothing"
  else
    bad "3 cdi_spec" "the play failed: see the failed task above (${WORK}/cdi.log)"
    rc=1
  fi
  [ -f "${CDI_PATH}" ] && cp "${CDI_PATH}" "${OUT}/cdi-spec.yaml"
  local i t0 t1 times=() out
  for i in 1 2 3 4 5; do
    t0="$(now)"
    out="$(run_module cdi_spec "{\"backend\": \"native\", \"path\": \"${WORK}/cdi-timing-${i}.yaml\"}")" || {
      bad "3 cdi_spec (direct run)" "exit status $?: ${out}"
      return 1
    }
    t1="$(now)"
    times+=("$(secs "$t0" "$t1")")
  done
  timing cdi_spec_generate_direct_seconds "$(stats "${times[@]}")"
  if [ -f "${OUT}/cdi_spec.json" ]; then
    timing cdi_spec_playbook_first_run_seconds "$(sed -n 's/.*"first_run_seconds": \([0-9.]*\).*/\1/p' "${OUT}/cdi_spec.json")"
    timing cdi_spec_playbook_second_run_seconds "$(sed -n 's/.*"second_run_seconds": \([0-9.]*\).*/\1/p' "${OUT}/cdi_spec.json")"
  fi
  return "$rc"
}

# ---------------------------------------------------------------- 4. podman + CDI
find_nvcc() {
  command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; }
}

# Debian 13's podman, conmon, crun and netavark with their libraries (all but glibc) unpacked
# into ${WORK}/podman, never into /. podman starts conmon and crun with a cleared
# environment: wrappers set their library path.
setup_podman() {
  local p="${WORK}/podman" d problems libs
  mkdir -p "${p}"/{root,bin,storage,run,tmp,net,static} "${WORK}/bin"
  for d in "${BUNDLE}"/debs/podman/*.deb; do dpkg-deb -x "$d" "${p}/root" || return 1; done
  libs="${p}/root/usr/lib/x86_64-linux-gnu:${p}/root/lib/x86_64-linux-gnu"
  # Only the host's glibc may be used; anything missing (or too old) is an error.
  problems="$(LD_LIBRARY_PATH="${libs}" ldd "${p}/root/usr/bin/podman" "${p}/root/usr/bin/conmon" \
    "${p}/root/usr/bin/crun" "${p}/root/usr/lib/podman/netavark" 2>&1 | grep -E 'not found|not a dynamic')"
  if [ -n "${problems}" ]; then
    echo "${problems}"
    echo "the carried podman does not load on this host: add the missing library's Debian 13 package to build-bundle.sh"
    return 1
  fi
  for b in conmon crun podman; do
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "${libs}" "${p}/root/usr/bin/${b}" >"${p}/bin/${b}"
    chmod +x "${p}/bin/${b}"
  done
  cat >"${p}/containers.conf" <<EOF
[containers]
seccomp_profile = "${p}/root/usr/share/containers/seccomp.json"
[engine]
helper_binaries_dir = ["${p}/root/usr/lib/podman"]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${p}/events.log"
conmon_path = ["${p}/bin/conmon"]
runtime = "crun"
static_dir = "${p}/static"
tmp_dir = "${p}/tmp"
[engine.runtimes]
crun = ["${p}/bin/crun"]
[network]
network_backend = "netavark"
network_config_dir = "${p}/net"
EOF
  : >"${p}/registries.conf"
  printf '[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n' "${p}/run" "${p}/storage" >"${p}/storage.conf"
  # The podman command the test uses: every option the VM needs, nothing from /etc/containers.
  cat >"${WORK}/bin/podman" <<EOF
#!/bin/sh
export CONTAINERS_CONF="${p}/containers.conf" CONTAINERS_REGISTRIES_CONF="${p}/registries.conf" CONTAINERS_STORAGE_CONF="${p}/storage.conf"
exec "${p}/bin/podman" --root "${p}/storage" --runroot "${p}/run" --tmpdir "${p}/tmp" \\
  --conmon "${p}/bin/conmon" --runtime "${p}/bin/crun" \\
  --cgroup-manager cgroupfs --events-backend file --storage-driver vfs "\$@"
EOF
  chmod +x "${WORK}/bin/podman"
  "${WORK}/bin/podman" --version && "${p}/bin/crun" --version | head -1 && "${p}/bin/conmon" --version | head -1
}

# The container's whole root filesystem: busybox and glibc (Debian 13) and the test
# program. No NVIDIA file: whatever of the driver the container sees, the CDI spec gave it.
build_rootfs() {
  local r="$1" vectoradd="$2" a
  mkdir -p "$r"
  for d in "${BUNDLE}"/debs/rootfs/*.deb; do dpkg-deb -x "$d" "$r" || return 1; done
  # Debian 13 ships under /usr only (merged /usr): add the links base-files would.
  for a in bin sbin lib lib64; do
    [ -e "$r/$a" ] || [ ! -d "$r/usr/$a" ] || ln -s "usr/$a" "$r/$a"
  done
  rm -rf "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/lintian"
  mkdir -p "$r"/{dev,proc,sys,tmp,etc,root,opt/gpu-test}
  for a in sh ls cat echo env head grep test true false; do ln -sfn busybox "$r/bin/$a"; done
  [ -z "${vectoradd}" ] || cp "${vectoradd}" "$r/opt/gpu-test/vectoradd"
}

build_vectoradd() {
  local nvcc cc out="${WORK}/vectoradd" need glibc
  glibc="$(dpkg-deb -f "$(find "${BUNDLE}/debs/rootfs" -name 'libc6_*.deb' | head -1)" Version | cut -d- -f1)"
  nvcc="$(find_nvcc)" || {
    echo "nvcc not found (PATH, /usr/local/cuda/bin): the CUDA toolkit is needed to build vectoradd"
    return 1
  }
  cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')"
  note "building vectoradd with ${nvcc} for sm_${cc}, CUDA runtime linked statically"
  "${nvcc}" --version | tail -2
  # The C++ runtime is linked in too: the container holds glibc alone.
  "${nvcc}" -O2 -arch="sm_${cc}" -cudart static -Xcompiler -static-libstdc++ -Xcompiler -static-libgcc \
    -Xlinker --as-needed -o "${out}" "${HERE}/vectoradd.cu" || return 1
  if readelf -d "${out}" | grep -Eq 'NEEDED.*(libstdc\+\+|libgcc_s)'; then
    note "nvcc kept libstdc++/libgcc_s dynamic: compiling with nvcc -c and linking with g++ -static-libstdc++"
    "${nvcc}" -O2 -arch="sm_${cc}" -c -o "${WORK}/vectoradd.o" "${HERE}/vectoradd.cu" || return 1
    g++ -o "${out}" "${WORK}/vectoradd.o" -L"$(dirname "$(dirname "${nvcc}")")/lib64" -lcudart_static \
      -static-libstdc++ -static-libgcc -Wl,--as-needed -ldl -lpthread -lrt || return 1
  fi
  note "vectoradd needs: $(readelf -d "${out}" | awk '/NEEDED/ { printf "%s ", $5 }')"
  if readelf -d "${out}" | grep -Eq 'NEEDED.*(libstdc\+\+|libgcc_s)'; then
    echo "vectoradd still needs libstdc++ or libgcc_s, which the container does not have"
    return 1
  fi
  need="$(readelf -V "${out}" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)"
  note "vectoradd needs glibc ${need}; the container's glibc is ${glibc}"
  if [ "$(printf '%s\n%s\n' "${need}" "${glibc}" | sort -V | tail -1)" != "${glibc}" ]; then
    echo "vectoradd needs glibc ${need}, newer than the container's ${glibc}"
    return 1
  fi
}

# The commands run inside every container. It prints a marker first, so that a container
# that did not start can never pass as "GPU not visible". It expands inside the container.
# shellcheck disable=SC2016
CTR_SCRIPT='echo "container started"
echo "-- ls /dev/nvidia*"; ls /dev/nvidia* 2>&1
echo "-- nvidia-smi -L"; nvidia-smi -L 2>&1; r1=$?
echo "-- /opt/gpu-test/vectoradd"; /opt/gpu-test/vectoradd 2>&1; r2=$?
echo "-- exit status: nvidia-smi=$r1 vectoradd=$r2"
[ "$r1" -eq 0 ] && [ "$r2" -eq 0 ]'

# run_container LABEL EXPECT DEVICE...: EXPECT is "gpu" (UUIDs that must be listed follow)
# or "none"; DEVICE is a CDI name or "-" for none.
run_container() {
  local label="$1" device="$2" expect="$3"
  shift 3
  local r="${WORK}/rootfs-${label}" log="${WORK}/ctr-${label}.log" rc t0 t1 u dev_args=() extra=() leftovers
  read -ra extra <<<"${GPU_HOST_PODMAN_RUN_ARGS:-}"
  rm -rf "$r" && cp -a "${WORK}/rootfs-template" "$r"
  leftovers="$(find "$r" \( -iname '*nvidia*' -o -name 'libcuda*' \) -print)"
  if [ -n "${leftovers}" ]; then
    bad "4 container ${label}" "the root filesystem already holds NVIDIA files: ${leftovers}"
    return
  fi
  [ "${device}" = "-" ] || dev_args=(--device "${device}")
  section "4. podman run ${dev_args[*]:-(no CDI device)} --rootfs (busybox + glibc)"
  t0="$(now)"
  "${WORK}/bin/podman" run --rm --network none \
    --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
    "${extra[@]}" "${dev_args[@]}" -e "PATH=${CTR_PATH}" -e "LD_LIBRARY_PATH=${CTR_LD_LIBRARY_PATH}" \
    --rootfs "$r" /bin/sh -c "${CTR_SCRIPT}" >"${log}" 2>&1
  rc=$?
  t1="$(now)"
  cat "${log}"
  { printf '\n### podman run %s (exit %s, %ss)\n' "${dev_args[*]:-(no device)}" "$rc" "$(secs "$t0" "$t1")"; cat "${log}"; } >>"${OUT}/containers.log"
  timing "container_${label}_seconds" "$(secs "$t0" "$t1")"
  if ! grep -q '^container started' "${log}"; then
    bad "4 container ${label}" "the container did not start (podman exit ${rc}): see above"
    return
  fi
  if [ "${expect}" = "none" ]; then
    if [ "$rc" -ne 0 ] && ! grep -q 'Test PASSED' "${log}" && ! grep -q '^GPU [0-9]' "${log}" && ! grep -q '^/dev/nvidia' "${log}"; then
      ok "4 without a CDI device the container sees no GPU (no /dev/nvidia*, nvidia-smi absent, vectoradd fails)"
    else
      bad "4 container ${label}" "the container saw a GPU without a CDI device (exit ${rc}): the isolation proof fails"
    fi
    return
  fi
  local missing=""
  for u in "$@"; do grep -q "^GPU [0-9]*: .*(UUID: ${u})" "${log}" || missing+=" ${u}"; done
  if [ "$rc" -ne 0 ]; then
    bad "4 container ${label}" "exit ${rc}: nvidia-smi -L or vectoradd failed inside (see above)"
  elif [ -n "${missing}" ]; then
    bad "4 container ${label}" "nvidia-smi -L did not list${missing}"
  elif ! grep -q '^Test PASSED' "${log}"; then
    bad "4 container ${label}" "vectoradd did not print Test PASSED"
  else
    ok "4 --device ${device}: nvidia-smi -L lists $* and vectoradd prints Test PASSED"
  fi
}

step_containers() {
  section "4. setup: podman (Debian 13), root filesystem, vectoradd"
  local out
  if ! out="$(setup_podman 2>&1)"; then
    echo "${out}"
    bad "4 podman setup" "$(echo "${out}" | tail -1)"
    return
  fi
  echo "${out}"
  if ! out="$(build_vectoradd 2>&1)"; then
    echo "${out}"
    bad "4 vectoradd build" "$(echo "${out}" | tail -1)"
    return
  fi
  echo "${out}"
  build_rootfs "${WORK}/rootfs-template" "${WORK}/vectoradd" || {
    bad "4 root filesystem" "could not unpack busybox-static and libc6"
    return
  }
  note "root filesystem: $(du -sh "${WORK}/rootfs-template" | cut -f1), $(find "${WORK}/rootfs-template" -type f | wc -l) files"
  if [ ! -f "${CDI_PATH}" ]; then
    bad "4 containers" "no CDI spec at ${CDI_PATH} (step 3 failed): nothing to test"
    return
  fi
  local uuids=() first
  mapfile -t uuids < <(nvidia-smi --query-gpu=uuid --format=csv,noheader | tr -d ' ')
  first="$(nvidia-smi --query-gpu=index,uuid --format=csv,noheader | awk -F', *' '$1 == 0 { print $2 }')"
  run_container none - none
  run_container index nvidia.com/gpu=0 gpu "${first}"
  run_container uuid "nvidia.com/gpu=${first}" gpu "${first}"
  run_container all nvidia.com/gpu=all gpu "${uuids[@]}"
}

summary() {
  section "summary"
  printf '%s\n' "${SUMMARY[@]}" | tee "${OUT}/summary.txt"
  echo "--- timings (${OUT}/timings.txt)"
  cat "${OUT}/timings.txt"
  if [ "${#FAILED[@]}" -gt 0 ]; then
    printf '\n%d step(s) FAILED: %s\n' "${#FAILED[@]}" "${FAILED[*]}" | tee -a "${OUT}/summary.txt"
    return 1
  fi
  printf '\nall %d steps passed\n' "${#SUMMARY[@]}" | tee -a "${OUT}/summary.txt"
}

main() {
  check_prerequisites
  WORK="$(mktemp -d /tmp/gpu-host.XXXXXX)"
  : >"${OUT}/timings.txt"
  echo "work folder: ${WORK}; results: ${OUT}; collection: ${REPO} ($(git -C "${REPO}" log -1 --format='%h %s' 2>/dev/null || echo 'no git'))"
  host_facts
  time_bare_nvidia_smi
  if ! setup_ansible; then
    bad "setup ansible" "could not install the wheels from ${BUNDLE}/wheels"
  else
    step_facts
    step_roles
    step_cdi
  fi
  step_containers
  summary
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  mkdir -p "${OUT}"
  # Everything also goes to ${OUT}/run.log; the exit status is main's.
  main "$@" 2>&1 | tee "${OUT}/run.log"
  exit "${PIPESTATUS[0]}"
fi
