#!/usr/bin/env bash
# ansible-test sanity on a generated ansible_collections/k3s_gpu/cluster tree.
# tests/sanity/ignore-2.19.txt is meant to stay empty.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
# ansible-test installs each sanity test's own pinned requirements (pylint, voluptuous, ...).
# They go into a separate virtualenv so they never disturb the pins in .venv.
# (--venv is not used: it downloads a pip bootstrap script from a host outside PyPI.)
SANITY_VENV="${REPO_ROOT}/.venv-sanity"
core_pin="$(grep -E '^ansible-core==' "${REPO_ROOT}/requirements-dev.txt")"
if [ "$(cat "${SANITY_VENV}/.pin" 2>/dev/null)" != "${core_pin}" ]; then
  log "creating ${SANITY_VENV} with ${core_pin}"
  rm -rf "${SANITY_VENV}"
  python3 -m venv "${SANITY_VENV}"
  "${SANITY_VENV}/bin/pip" install -q --disable-pip-version-check "${core_pin}" \
    || die "pip install ${core_pin} into ${SANITY_VENV} failed: check that PyPI is reachable"
  echo "${core_pin}" >"${SANITY_VENV}/.pin"
fi
# ansible-test bootstraps pip in each test's venv with a script it downloads from outside
# PyPI; give it our local equivalent (ensurepip + pip from PyPI) under the name it looks for.
pip_version="$(grep -oE "pip='[0-9.]+'" "${SANITY_VENV}"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -1 | cut -d"'" -f2)"
[ -n "${pip_version}" ] || die "could not read the pip version ansible-test bootstraps; check ${SANITY_VENV}"
mkdir -p "${HOME}/.ansible/test/cache"
install -m 0644 "${REPO_ROOT}/scripts/ansible-test-get-pip.py" "${HOME}/.ansible/test/cache/get_pip_${pip_version//./_}.py"
activate_venv
# shellcheck disable=SC1091
. "${SANITY_VENV}/bin/activate"
work="$(mktemp -d "${TMPDIR:-/tmp}/k3s_gpu-ansible-test.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
tree="$("${REPO_ROOT}/scripts/collection-tree.sh" "${work}")"
cd "${tree}"
log "ansible-test sanity in ${tree}"
# --requirements installs each test's pinned requirements into ansible-test's own venvs.
ansible-test sanity --requirements --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --color no "$@"
