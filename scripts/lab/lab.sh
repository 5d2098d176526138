#!/usr/bin/env bash
# The local lab: Debian 12 containers with systemd as PID 1 on one Docker network, and an
# Ansible inventory that reaches them through the community.docker.docker connection.
#
#   scripts/lab/lab.sh up       start k3s-gpu-lab-server-1 and k3s-gpu-lab-agent-1 (no-op when
#                               they run) and (re)write inventories/lab/
#   scripts/lab/lab.sh down     remove the lab containers, the network and inventories/lab/
#   scripts/lab/lab.sh status   show the containers, their systemd state and the inventory
#
# Environment:
#   LAB_IMAGE        image of every lab node (default k3s-gpu-lab/debian:12, built when missing)
#   LAB_AGENTS       number of agent containers (default 1; 0 makes a one-node lab, the server alone)
#   LAB_DOCKER_ARGS  extra `docker run` arguments for every node (e.g. "-v /lib/modules:/lib/modules:ro")
set -euo pipefail
# shellcheck source=scripts/lab/docker.sh
. "$(dirname "$0")/docker.sh"

LAB_PREFIX="k3s-gpu-lab"
LAB_NETWORK="k3s-gpu-lab"
LAB_LABEL="io.k3s-gpu.lab=lab"
LAB_IMAGE="${LAB_IMAGE:-k3s-gpu-lab/debian:12}"
LAB_AGENTS="${LAB_AGENTS:-1}"
LAB_INVENTORY="${REPO_ROOT}/inventories/lab"
# What systemd as PID 1 needs without --privileged (see docs/lab.md).
SYSTEMD_RUN_ARGS=(
  --cap-add SYS_ADMIN --cap-add NET_ADMIN
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined
  --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw
  --tmpfs /run --tmpfs /run/lock
)

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

nodes() {
  local i
  echo "${LAB_PREFIX}-server-1"
  for i in $(seq 1 "$LAB_AGENTS"); do echo "${LAB_PREFIX}-agent-${i}"; done
}

state_of() {
  local s
  s="$(docker inspect -f '{{.State.Status}}' "$1" 2>/dev/null)" && [ -n "$s" ] || s=absent
  echo "$s"
}

# wait_systemd NAME: until `systemctl is-system-running` says running (or degraded).
wait_systemd() {
  local name="$1" s="" i
  for i in $(seq 1 60); do
    s="$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)"
    case "$s" in
      running) return 0 ;;
      degraded)
        log "${name}: systemd is degraded: $(docker exec "$name" systemctl --failed --no-legend --plain 2>/dev/null | awk '{print $1}' | paste -sd' ')"
        return 0
        ;;
    esac
    [ "$(state_of "$name")" = running ] || break
    sleep 1
  done
  docker logs --tail 20 "$name" >&2 2>&1 || true
  die "${name}: systemd did not come up (state '${s:-none}', container $(state_of "$name")): see the log above and docs/lab.md (cgroups, capabilities)"
}

start_node() {
  local name="$1" role="$2" st
  st="$(state_of "$name")"
  case "$st" in
    running) return 0 ;;
    absent)
      log "starting ${name} from ${LAB_IMAGE}"
      # shellcheck disable=SC2086 # LAB_DOCKER_ARGS is a list of words on purpose
      docker run -d --name "$name" --hostname "$name" --network "$LAB_NETWORK" \
        --label "$LAB_LABEL" --label "io.k3s-gpu.lab.role=${role}" \
        "${SYSTEMD_RUN_ARGS[@]}" ${LAB_DOCKER_ARGS:-} "$LAB_IMAGE" >/dev/null \
        || die "docker run ${name} failed: see the message above ('scripts/lab/lab.sh down' clears a half-built lab)"
      ;;
    *)
      log "${name} is ${st}: starting it again"
      docker start "$name" >/dev/null || die "docker start ${name} failed: run 'scripts/lab/lab.sh down' and 'up' again"
      ;;
  esac
}

write_inventory() {
  local name agents=() n g arch_group other_arch
  case "$(uname -m)" in
    aarch64 | arm64) arch_group=aarch64 other_arch=x86_64 ;;
    *) arch_group=x86_64 other_arch=aarch64 ;;
  esac
  while read -r name; do
    case "$name" in *-agent-*) agents+=("$name") ;; esac
  done < <(nodes)
  rm -rf "$LAB_INVENTORY"
  mkdir -p "${LAB_INVENTORY}/group_vars/all" "${LAB_INVENTORY}/group_vars/agent"
  {
    echo "---"
    echo "# Written by scripts/lab/lab.sh up; removed by 'make lab-destroy'. Do not edit: rerun 'make lab'."
    echo "# Same group structure as inventories/example (k3s_cluster -> server/agent, OS and"
    echo "# architecture groups); the nodes are Docker containers reached with docker exec."
    echo "all:"
    echo "  vars:"
    echo "    ansible_connection: community.docker.docker"
    echo "    ansible_python_interpreter: /usr/bin/python3"
    echo "  children:"
    echo "    k3s_cluster:"
    echo "      children:"
    echo "        server:"
    echo "          hosts:"
    echo "            ${LAB_PREFIX}-server-1:"
    echo "        agent:"
    echo "          hosts:"
    [ "${#agents[@]}" -gt 0 ] || echo "            {}"
    for n in "${agents[@]}"; do echo "            ${n}:"; done
    echo "    debian:"
    echo "      hosts:"
    while read -r n; do echo "        ${n}:"; done < <(nodes)
    echo "    ${arch_group}:"
    echo "      hosts:"
    while read -r n; do echo "        ${n}:"; done < <(nodes)
    for g in ubuntu rhel nixos jetson "$other_arch"; do
      echo "    ${g}:"
      echo "      hosts: {}"
    done
  } >"${LAB_INVENTORY}/hosts.yml"
  # Lab-only settings (no GPU, stand-ins for NVIDIA's repository and K3s's release): one
  # file under tests/lab/, so that `make lab` and `make demo` use the same.
  install -m 0644 "${REPO_ROOT}/tests/lab/lab-vars.yml" "${LAB_INVENTORY}/group_vars/all/lab.yml"
  cat >"${LAB_INVENTORY}/group_vars/agent/lab.yml" <<'YAML'
---
# The lab agent has no GPU; it is marked as a GPU node so that the GPU roles run on it
# (their hardware checks and stand-ins decide what can be proven in a container).
k3s_gpu_node: true
YAML
  if [ "${#agents[@]}" -eq 0 ]; then
    # A one-node lab is the single GPU box of a homelab: the server is the GPU node.
    mkdir -p "${LAB_INVENTORY}/group_vars/server"
    cp "${LAB_INVENTORY}/group_vars/agent/lab.yml" "${LAB_INVENTORY}/group_vars/server/lab.yml"
  fi
  log "wrote ${LAB_INVENTORY#"${REPO_ROOT}"/}/hosts.yml ($(nodes | paste -sd' '))"
}

cmd_up() {
  local name
  [[ "$LAB_AGENTS" =~ ^(0|[1-9][0-9]?)$ ]] || die "LAB_AGENTS='${LAB_AGENTS}' is not a number from 0 to 99: set it to the number of agent containers"
  ensure_docker
  if ! docker image inspect "$LAB_IMAGE" >/dev/null 2>&1; then
    case "$LAB_IMAGE" in
      k3s-gpu-lab/debian:*) "$(dirname "$0")/images.sh" "${LAB_IMAGE##*:}" ;;
      *) die "image ${LAB_IMAGE} is not here and the lab cannot pull images: build it or unset LAB_IMAGE" ;;
    esac
  fi
  if ! docker network inspect "$LAB_NETWORK" >/dev/null 2>&1; then
    require_docker_disk 1
    docker network create --label "$LAB_LABEL" "$LAB_NETWORK" >/dev/null \
      || die "docker network create ${LAB_NETWORK} failed: see the message above"
  fi
  while read -r name; do
    case "$name" in *-server-*) start_node "$name" server ;; *) start_node "$name" agent ;; esac
  done < <(nodes)
  while read -r name; do wait_systemd "$name"; done < <(nodes)
  write_inventory
}

cmd_down() {
  local ids=()
  docker_answers || { rm -rf "$LAB_INVENTORY"; log "no Docker engine answers: removed inventories/lab only"; return 0; }
  mapfile -t ids < <(docker ps -aq --filter "label=${LAB_LABEL}")
  if [ "${#ids[@]}" -gt 0 ]; then
    log "removing lab containers: $(docker inspect -f '{{.Name}}' "${ids[@]}" | tr -d / | paste -sd' ')"
    docker rm -f "${ids[@]}" >/dev/null
  fi
  if docker network inspect "$LAB_NETWORK" >/dev/null 2>&1; then
    docker network rm "$LAB_NETWORK" >/dev/null || die "docker network rm ${LAB_NETWORK} failed: a container outside the lab still uses it ('docker network inspect ${LAB_NETWORK}')"
  fi
  rm -rf "$LAB_INVENTORY"
  log "lab removed"
}

cmd_status() {
  local name st sd rc=0
  docker_answers || die "no Docker engine answers: run 'make lab' (it starts one)"
  printf '%-28s %-10s %-10s %s\n' NODE CONTAINER SYSTEMD IMAGE
  while read -r name; do
    st="$(state_of "$name")"
    sd="-"
    [ "$st" = running ] && sd="$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)"
    [ "$st" = running ] || rc=1
    printf '%-28s %-10s %-10s %s\n' "$name" "$st" "${sd:--}" "$(docker inspect -f '{{.Config.Image}}' "$name" 2>/dev/null | grep . || echo -)"
  done < <(nodes)
  if [ -f "${LAB_INVENTORY}/hosts.yml" ]; then
    echo "inventory: inventories/lab/hosts.yml"
  else
    echo "inventory: none (run 'make lab')"
    rc=1
  fi
  return "$rc"
}

case "${1:-}" in
  up) lab_lock && cmd_up ;;
  down) lab_lock && cmd_down ;;
  status) cmd_status ;;
  -h | --help | help) usage ;;
  *) usage >&2; die "unknown command '${1:-}': use up, down or status" ;;
esac
