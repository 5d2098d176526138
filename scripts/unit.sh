#!/usr/bin/env bash
# Unit tests with pytest. A run that collects no test fails (pytest exit code 5).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
activate_venv
cd "${REPO_ROOT}"
set +e
python -m pytest -p no:cacheprovider -q tests/unit "$@"
rc=$?
set -e
[ "$rc" -eq 5 ] && die "pytest collected no unit tests under tests/unit: an empty selection is a failure"
exit "$rc"
