#!/usr/bin/env bash
# `make bench`: how long site.yml takes on the local lab, first converge against a no-change re-run,
# and how it scales from one node to four.
#
# For each size in BENCH_NODES (default "1 2 4"): a fresh lab of that many nodes (one server, the
# rest agents; every agent, or the lone server, is a GPU node), the stand-ins of `make demo`, then
# site.yml twice. The second run must change nothing. Printed at the end: the wall time of each
# run, re-run / first converge per size, the largest size / one node (first converges), and the
# ten slowest tasks of each run (ansible.posix.profile_tasks).
#
# Targets on the 2-core reference machine (issue #14): re-run <= 0.35 x first converge, 4 nodes
# <= 1.6 x one node. The script exits non-zero only when a run fails or the re-run changes
# something; the ratios are reported, not enforced (times vary between machines).
# Each run's CPU time is read from /proc/stat (the whole machine: run it on an idle one): the
# core-seconds it used, the cores it kept busy on average, and for the largest size the floor of
# its ratio to one node on this machine, CPU(largest) / (cores x wall(one node)): what the ratio
# would be if the larger run kept every core busy the whole time.
# Logs: .cache/bench/<date>/ (one log per run, summary.txt). The lab is removed at the end.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
activate_venv
cd "${REPO_ROOT}"

lab_lock
sizes="${BENCH_NODES:-1 2 4}"
for n in $sizes; do
  [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "BENCH_NODES='${sizes}': each size must be a number of nodes from 1 to 99"
done
out="${CACHE_DIR}/bench/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "${out}"
summary="${out}/summary.txt"
inv="${REPO_ROOT}/inventories/lab/hosts.yml"
export MOLECULE_EPHEMERAL_DIRECTORY="${CACHE_DIR}/lab-standins"
mkdir -p "${MOLECULE_EPHEMERAL_DIRECTORY}"
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
export PROFILE_TASKS_TASK_OUTPUT_LIMIT=10
export PROFILE_TASKS_SORT_ORDER=descending

trap 'scripts/lab/lab.sh down >/dev/null 2>&1 || true' EXIT

# busy_ticks: the CPU time of the whole machine so far, in clock ticks (user, nice, system, irq and
# softirq of /proc/stat's cpu line; not steal, the time a hypervisor gave to other machines).
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# steal_ticks: the time the hypervisor took from this machine so far (a run with much of it was
# measured on a machine slower than usual: its ratios are not comparable).
steal_ticks() { awk '$1 == "cpu" { print $9 }' /proc/stat; }
ticks_per_s="$(getconf CLK_TCK)"
cores="$(nproc)"

# run_site LOG: site.yml against the lab; prints the wall seconds and the CPU core-seconds used.
run_site() {
  local log_file="$1" t0 t1 c0 c1 s0 s1
  t0=$(date +%s.%N)
  c0=$(busy_ticks)
  s0=$(steal_ticks)
  ansible-playbook -i "${inv}" site.yml >"${log_file}" 2>&1 \
    || { tail -n 40 "${log_file}" >&2; die "site.yml failed (whole log: ${log_file})"; }
  c1=$(busy_ticks)
  s1=$(steal_ticks)
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v c="$c0" -v d="$c1" -v e="$s0" -v f="$s1" -v hz="$ticks_per_s" \
    'BEGIN { printf "%.1f %.1f %.1f", b - a, (d - c) / hz, (f - e) / hz }'
}

# slowest LOG: the profile_tasks lines of a run (the ten slowest tasks).
slowest() {
  sed -n '/^=\{10,\}/,$p' "$1" | grep -E ' -+ [0-9.]+s$' | head -n 10 | sed 's/^/    /'
}

declare -A first rerun first_cpu rerun_cpu first_steal rerun_steal
for n in $sizes; do
  log "bench: ${n} node(s)"
  scripts/lab/lab.sh down >/dev/null
  LAB_AGENTS=$((n - 1)) scripts/lab/lab.sh up
  ansible-playbook -i "${inv}" tests/lab/demo-prepare.yml >"${out}/prepare-${n}.log" 2>&1 \
    || { tail -n 40 "${out}/prepare-${n}.log" >&2; die "preparing the stand-ins failed (${out}/prepare-${n}.log)"; }
  read -r "first[$n]" "first_cpu[$n]" "first_steal[$n]" <<<"$(run_site "${out}/first-${n}.log")"
  read -r "rerun[$n]" "rerun_cpu[$n]" "rerun_steal[$n]" <<<"$(run_site "${out}/rerun-${n}.log")"
  if grep -E '^[^ ].*: ok=[0-9]+ +changed=[1-9]' "${out}/rerun-${n}.log" >/dev/null; then
    die "the re-run on ${n} node(s) changed something: see the recap in ${out}/rerun-${n}.log"
  fi
  log "bench: ${n} node(s): first ${first[$n]} s, re-run ${rerun[$n]} s"
done

{
  echo "make bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
  printf '%-6s %10s %10s %8s %12s %12s %12s %10s\n' nodes first_s rerun_s ratio first_cpu_s first_cores rerun_cpu_s steal_s
  for n in $sizes; do
    printf '%-6s %10s %10s %8s %12s %12s %12s %10s\n' "$n" "${first[$n]}" "${rerun[$n]}" \
      "$(awk -v a="${rerun[$n]}" -v b="${first[$n]}" 'BEGIN { printf "%.2f", a / b }')" \
      "${first_cpu[$n]}" "$(awk -v a="${first_cpu[$n]}" -v b="${first[$n]}" 'BEGIN { printf "%.2f", a / b }')" \
      "${rerun_cpu[$n]}" "$(awk -v a="${first_steal[$n]}" -v b="${rerun_steal[$n]}" 'BEGIN { printf "%.1f", a + b }')"
  done
  echo "(steal_s: time the hypervisor took from this machine during both runs; much of it makes the run slower than usual and its ratios not comparable)"
  read -r -a size_list <<<"$sizes"
  small="${size_list[0]}"
  large="${size_list[${#size_list[@]} - 1]}"
  if [ "$small" != "$large" ]; then
    echo "first converge, ${large} nodes / ${small} node(s): $(awk -v a="${first[$large]}" -v b="${first[$small]}" 'BEGIN { printf "%.2f", a / b }') (target <= 1.6 for 4 / 1)"
    echo "  its floor on ${cores} cores, CPU(${large}) / (${cores} x wall(${small})): $(awk -v c="${first_cpu[$large]}" -v k="$cores" -v w="${first[$small]}" 'BEGIN { printf "%.2f", c / (k * w) }')" \
      "(CPU(${large}) / CPU(${small}) = $(awk -v a="${first_cpu[$large]}" -v b="${first_cpu[$small]}" 'BEGIN { printf "%.2f", a / b }'))"
  fi
  echo "target: re-run / first <= 0.35"
  for n in $sizes; do
    echo "ten slowest tasks, ${n} node(s), first converge:"
    slowest "${out}/first-${n}.log"
    echo "ten slowest tasks, ${n} node(s), re-run:"
    slowest "${out}/rerun-${n}.log"
  done
} | tee "${summary}"
log "bench logs: ${out#"${REPO_ROOT}"/}"
