#!/usr/bin/env bash
# Measure the K3s roles on the k3s-lab molecule scenario (1 server + 1 GPU agent running
# the K3S STAND-IN, see docs/k3s.md "Testing"): first converge time, second (idempotent)
# converge time, and the second run's changed and restart counts (both must be 0).
#
#   tests/perf/k3s_lab_perf.sh          create the lab, measure, destroy it
#   tests/perf/k3s_lab_perf.sh --keep   leave the instances running afterwards
#
# The times include the docker connection's overhead and depend on the machine's load;
# they measure the roles, not K3s (the stand-in starts in well under a second).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../../scripts/lib.sh"
cd "${REPO_ROOT}"
activate_venv
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0

keep=false
[ "${1:-}" = "--keep" ] && keep=true
scenario=k3s-lab
out="${CACHE_DIR}/perf"
mkdir -p "$out"

run() {  # run NAME COMMAND...: time a molecule step, log to $out/NAME.log
  local name="$1" start rc
  shift
  start=$(date +%s.%N)
  set +e
  "$@" >"${out}/${name}.log" 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 0 ] || die "${name} failed (exit ${rc}): see ${out}/${name}.log"
  awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { printf "%.1f", a - b }'
}

cleanup() { "$keep" || molecule destroy -s "$scenario" >/dev/null 2>&1 || true; }
trap cleanup EXIT

log "creating and preparing ${scenario}"
molecule destroy -s "$scenario" >/dev/null 2>&1 || true
run create molecule create -s "$scenario" >/dev/null
run prepare molecule prepare -s "$scenario" >/dev/null
log "first converge"
first=$(run converge-1 molecule converge -s "$scenario")
log "second converge"
second=$(run converge-2 molecule converge -s "$scenario")

recap() {  # recap LOG: sum of changed= over the PLAY RECAP lines
  grep -E '^[^ ].*: ok=[0-9]+ +changed=' "$1" | sed -E 's/.* changed=([0-9]+).*/\1/' | awk '{ s += $1 } END { print s + 0 }'
}
restarts() {  # restarts LOG: K3s starts/restarts that reported a change
  grep -A2 -E 'TASK \[k3s_gpu.cluster.k3s_common : (Start K3s|Restart K3s)' "$1" | grep -c '^changed:' || true
}

printf '\nk3s-lab (K3S STAND-IN, 1 server + 1 GPU agent)\n'
printf '%-34s %10.1f s\n' "first converge" "$first"
printf '%-34s %10.1f s\n' "second converge (idempotent)" "$second"
printf '%-34s %10s\n' "first converge: changed tasks" "$(recap "${out}/converge-1.log")"
printf '%-34s %10s\n' "first converge: K3s (re)starts" "$(restarts "${out}/converge-1.log")"
printf '%-34s %10s\n' "second converge: changed tasks" "$(recap "${out}/converge-2.log")"
printf '%-34s %10s\n' "second converge: K3s (re)starts" "$(restarts "${out}/converge-2.log")"
if [ "$(recap "${out}/converge-2.log")" -ne 0 ] || [ "$(restarts "${out}/converge-2.log")" -ne 0 ]; then
  die "the second converge changed or restarted something: see ${out}/converge-2.log"
fi
