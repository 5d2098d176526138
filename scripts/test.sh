#!/usr/bin/env bash
# `make test`: every test, in order, stopping at the first failure. .ci/run calls exactly this.
# Prints a timing table at the end and a closing `N passed, N failed` line.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "make test needs root (it installs packages with apt-get and runs dockerd): run it as root, e.g. 'sudo make test'"
require_disk "${REPO_ROOT}" 15
require_disk /var/lib 10

STEPS=(
  "bootstrap:scripts/bootstrap.sh"
  "yamllint:scripts/lint.sh yamllint"
  "changelog:scripts/lint.sh changelog"
  "ansible-lint:scripts/lint.sh ansible-lint"
  "build:scripts/build.sh"
  "sanity:scripts/sanity.sh"
  "unit:scripts/unit.sh"
  "peers:scripts/peers.sh"
  "cdi-peer:tests/cdi-peer/podman43.sh"
  "integration:scripts/integration.sh"
  "molecule:scripts/molecule.sh"
)

start_all=$(date +%s)
passed=0
summary=()
for step in "${STEPS[@]}"; do
  name="${step%%:*}"
  cmd="${step#*:}"
  printf '\n########## %s: %s\n' "$name" "$cmd"
  t0=$(date +%s)
  # shellcheck disable=SC2086
  "${REPO_ROOT}"/$cmd
  rc=$?
  dt=$(( $(date +%s) - t0 ))
  summary+=("$(printf '%-14s %-6s %5ss' "$name" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$dt")")
  if [ $rc -ne 0 ]; then
    printf '\n'; printf '%s\n' "${summary[@]}"
    printf '\nmake test: step %s failed (exit %s) after %ss in all\n' "$name" "$rc" "$(( $(date +%s) - start_all ))"
    printf 'test steps: %s passed, 1 failed\n' "$passed"
    exit 1
  fi
  passed=$((passed + 1))
done
printf '\n'; printf '%s\n' "${summary[@]}"
printf '\nmake test: all %s steps passed in %ss\n' "$passed" "$(( $(date +%s) - start_all ))"
printf 'test steps: %s passed, 0 failed\n' "$passed"
