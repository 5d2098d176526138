#!/usr/bin/env bash
# ansible-test integration targets (tests/integration/targets/*) run for real on localhost.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
activate_venv
targets=$(find "${REPO_ROOT}/tests/integration/targets" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
[ "$targets" -gt 0 ] || die "no integration targets under tests/integration/targets: an empty selection is a failure"
work="$(mktemp -d "${TMPDIR:-/tmp}/k3s_gpu-ansible-test.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
tree="$("${REPO_ROOT}/scripts/collection-tree.sh" "${work}")"
cd "${tree}"
log "ansible-test integration (${targets} targets) in ${tree}"
ansible-test integration --local --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --color no "$@"
