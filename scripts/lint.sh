#!/usr/bin/env bash
# yamllint and ansible-lint (profile: production, see .ansible-lint).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
activate_venv
cd "${REPO_ROOT}"
case "${1:-all}" in
  yamllint)
    log "yamllint"
    yamllint --strict . ;;
  ansible-lint)
    log "ansible-lint (production profile)"
    ansible-lint ;;
  changelog)
    log "antsibull-changelog lint (changelogs/fragments)"
    antsibull-changelog lint ;;
  all)
    "$0" yamllint
    "$0" changelog
    "$0" ansible-lint ;;
  *) die "unknown lint step '$1': use yamllint, changelog, ansible-lint or all" ;;
esac
