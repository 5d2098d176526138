#!/usr/bin/env bash
# shellcheck shell=bash
# Make sure a Docker engine answers: install Debian's docker.io when the CLI is missing and
# start dockerd in the background when no engine answers (systemd's docker.service first
# where systemd runs). Source it and call ensure_docker, or run it directly.
#
#   LAB_DOCKERD_LOG   where a dockerd started here logs (default /var/log/k3s-gpu-lab-dockerd.log)
#   LAB_DOCKERD_WAIT  seconds to wait for the engine to answer (default 60)

# shellcheck source=scripts/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

docker_answers() {
  command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1
}

# _docker_wait PID LOG: wait until `docker info` answers; die with the log tail otherwise.
_docker_wait() {
  local pid="$1" logf="$2" waited=0 limit="${LAB_DOCKERD_WAIT:-60}"
  until docker_answers; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      _dockerd_failed "$logf" "dockerd (pid ${pid}) exited while starting"
    fi
    if [ "$waited" -ge "$limit" ]; then
      _dockerd_failed "$logf" "dockerd did not answer within ${limit}s"
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

_dockerd_failed() {
  local logf="$1" why="$2"
  if [ -n "$logf" ] && [ -s "$logf" ]; then
    printf -- '--- last 20 lines of %s ---\n' "$logf" >&2
    tail -n 20 "$logf" >&2
    printf -- '---\n' >&2
  fi
  die "${why}: read ${logf:-the engine log} (above), fix the cause (storage driver, iptables, cgroups, a stale /var/run/docker.pid) and retry"
}

ensure_docker() {
  docker_answers && return 0

  if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      command -v docker >/dev/null 2>&1 \
        || die "Docker is not installed and installing it needs root: run this as root (it installs docker.io), or install Docker and retry"
    else
      apt_install docker.io
    fi
  fi
  docker_answers && return 0

  if [ "$(id -u)" -ne 0 ]; then
    local why
    why="$(docker info 2>&1 | grep -m1 -iE 'error|cannot|denied' | sed -e 's/^ERROR: //' -e 's/: Get .*//' | cut -c1-160 || true)"
    die "no Docker engine answers (${why:-docker info failed}) and starting dockerd needs root: start Docker (sudo systemctl start docker), give this user access to the socket, or run as root"
  fi

  local logf="${LAB_DOCKERD_LOG:-/var/log/k3s-gpu-lab-dockerd.log}"
  if [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
    log "starting docker.service"
    if systemctl start docker.service 2>/dev/null; then
      _docker_wait "" "" && return 0
    fi
    journalctl -u docker.service -n 20 --no-pager >&2 2>/dev/null || true
    die "systemctl start docker.service failed: see 'journalctl -u docker.service' (tail above), fix the cause and retry"
  fi

  command -v dockerd >/dev/null 2>&1 || die "dockerd not found: install docker.io (apt-get install docker.io) and retry"
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  mkdir -p "$(dirname "$logf")"
  log "no Docker engine answers: starting dockerd in the background (log: ${logf})"
  : >"$logf"
  setsid nohup dockerd >>"$logf" 2>&1 </dev/null &
  local pid=$!
  _docker_wait "$pid" "$logf"
  log "dockerd is up (pid ${pid})"
}

# require_docker_disk GIB: fail when Docker's data root has fewer than GIB free.
require_docker_disk() {
  local root
  root="$(docker info -f '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker)"
  require_disk "${root:-/var/lib/docker}" "$1"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  ensure_docker
  log "Docker engine answers: $(docker version -f '{{.Server.Version}}' 2>/dev/null)"
fi
