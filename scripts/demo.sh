#!/usr/bin/env bash
# `make demo`: run site.yml against the local lab (scripts/lab/lab.sh up has started it).
# The lab has no GPU and no network beyond Debian's archive, so the demo uses the stand-ins
# of tests/lab/demo-prepare.yml; it shows the whole composition converging and a second run
# changing nothing, not a GPU pod (docs/lab.md, "make demo").
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
activate_venv
cd "${REPO_ROOT}"
lab_lock
inv="${REPO_ROOT}/inventories/lab"
[ -f "${inv}/hosts.yml" ] || die "no lab inventory at ${inv}/hosts.yml: run 'make lab' first"

# The stand-ins go where tests/lab/lab-vars.yml (the lab's group_vars) looks for them; the
# prepare playbooks are the molecule scenarios' own, which read this variable.
export MOLECULE_EPHEMERAL_DIRECTORY="${CACHE_DIR}/lab-standins"
mkdir -p "${MOLECULE_EPHEMERAL_DIRECTORY}"

log "preparing the stand-ins (toolkit repository, K3s release)"
ansible-playbook -i "${inv}/hosts.yml" tests/lab/demo-prepare.yml

log "running site.yml against the lab"
t0=$(date +%s)
ansible-playbook -i "${inv}/hosts.yml" site.yml
t1=$(date +%s)
log "running site.yml again: it must change nothing"
out="$(mktemp)"
trap 'rm -f "${out}"' EXIT
ansible-playbook -i "${inv}/hosts.yml" site.yml | tee "${out}"
t2=$(date +%s)
if grep -E '^[^ ].*: ok=[0-9]+ +changed=[1-9]' "${out}" >/dev/null; then
  die "the second run of site.yml changed something (see the recap above): idempotence is broken"
fi
log "demo done: first run $((t1 - t0)) s, second run $((t2 - t1)) s with no change"
log "this ran on stand-ins for NVIDIA's packages and K3s; see docs/lab.md for what it does not prove"
