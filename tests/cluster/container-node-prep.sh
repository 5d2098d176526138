#!/bin/sh
# Make a lab container (Docker, not privileged: caps SYS_ADMIN and NET_ADMIN, the host's
# cgroup tree mounted with cgroupns=host) able to host a real kubelet, WITHOUT changing the
# shared host. Used by molecule/k3s-real (prepare) and tests/gpu-host/rehearse.sh; the GPU
# host needs none of it (a VM of its own). Idempotent. Usage: container-node-prep.sh CGROUP_ROOT
#
# 1. Sysctls: the kubelet sets vm.overcommit_memory=1, kernel.panic=10,
#    kernel.panic_on_oops=1 (and checks three more) and fails when /proc/sys is read-only, as
#    it is in such a container. These settings are the host kernel's, shared by everyone on
#    the machine, so instead of changing them the container shows the kubelet files holding
#    the values it wants (read-only bind mounts over /proc/sys/...): it then writes nothing.
# 2. /dev/kmsg: the kubelet's OOM watcher opens it; a container has none. As K3s does in a
#    container, /dev/kmsg becomes a link to /dev/console (or /dev/null): no OOM events.
# 3. cgroups (v1 hierarchies shared with the host): every node gets its own cgroup root
#    (kubelet-arg cgroup-root=/CGROUP_ROOT), so that two kubelets never manage one tree. It
#    is created here in every v1 hierarchy (cpuset with its parent's cpus and mems).
set -eu
root="${1:?usage: $0 CGROUP_ROOT}"

shadow=/run/k3s-real-sysctl
mkdir -p "${shadow}"
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
  kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  key="${kv%%=*}" want="${kv#*=}" have="$(cat "/proc/sys/${key}")"
  [ "${have}" = "${want}" ] && continue
  if echo "${want}" >"/proc/sys/${key}" 2>/dev/null; then
    echo "set ${key}=${want}"
    continue
  fi
  f="${shadow}/$(echo "${key}" | tr / .)"
  echo "${want}" >"${f}"
  mount --bind -o ro "${f}" "/proc/sys/${key}"
  echo "shadowed ${key}=${want} (the host keeps ${have})"
done

if [ ! -e /dev/kmsg ]; then
  if [ -e /dev/console ]; then ln -sfn /dev/console /dev/kmsg; else ln -sfn /dev/null /dev/kmsg; fi
  echo "/dev/kmsg -> $(readlink /dev/kmsg)"
fi

if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
  for h in /sys/fs/cgroup/*/; do
    h="${h%/}"
    [ -L "${h}" ] && continue
    case "$(basename "${h}")" in unified) continue ;; esac
    [ -f "${h}/cgroup.procs" ] || continue
    mkdir -p "${h}/${root}"
    if [ -f "${h}/cpuset.cpus" ]; then
      cat "${h}/cpuset.cpus" >"${h}/${root}/cpuset.cpus"
      cat "${h}/cpuset.mems" >"${h}/${root}/cpuset.mems"
    fi
  done
  echo "cgroup root /${root} in every v1 hierarchy"
fi
