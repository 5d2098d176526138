#!/usr/bin/env bash
# Mutation testing of the critical module_utils (make mutation; NOT part of make test).
# Installs the pinned mutmut (tests/mutation/requirements.txt) into a virtualenv of its own,
# .cache/mutmut-venv, then runs tests/mutation/mutation.py: one target at a time, each in
# .cache/mutation/<target>/ with its report.txt. Fails when a target kills fewer than
# MUTATION_MIN % (default 90) of its logic mutants. docs/development.md, "Mutation testing".
# Usage: scripts/mutation.sh [nvidia_smi|cdi|containerd ...]   (MUTATION_JOBS=2: parallel mutants)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

cd "${REPO_ROOT}"
if [ "$(id -u)" -eq 0 ]; then
  apt_install python3 python3-venv
fi
command -v python3 >/dev/null || die "python3 not found: install it (apt-get install python3 python3-venv) and retry"

MUTMUT_VENV="${CACHE_DIR}/mutmut-venv"
requirements="tests/mutation/requirements.txt"
stamp="${MUTMUT_VENV}/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ ! -x "${MUTMUT_VENV}/bin/mutmut" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "creating ${MUTMUT_VENV} and installing ${requirements}"
  rm -rf "${MUTMUT_VENV}"
  python3 -m venv "${MUTMUT_VENV}" || die "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"
  "${MUTMUT_VENV}/bin/pip" install -q --disable-pip-version-check -r "$requirements" \
    || die "pip install -r ${requirements} failed: check that PyPI is reachable"
  echo "$want" >"$stamp"
fi

exec "${MUTMUT_VENV}/bin/python" tests/mutation/mutation.py "$@"
