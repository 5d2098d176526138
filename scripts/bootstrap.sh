#!/usr/bin/env bash
# Install the controller toolchain: Debian packages, a project-local virtualenv with the
# pinned Python packages (requirements-dev.txt), and the dependency collections taken
# offline from the `ansible` package on PyPI (Galaxy is not needed).
# Idempotent: a second run only checks stamps.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# Version of the `ansible` community package whose bundled collections we use.
ANSIBLE_BUNDLE_VERSION="12.3.0"
# The collections we take from it are those of requirements.yml (run time, the same as
# galaxy.yml's dependencies) and requirements-dev.yml (the lab and the tests only).

cd "${REPO_ROOT}"
require_disk "${REPO_ROOT}" 3

# Debian packages the controller side needs. python3-venv is absent on a minimal Debian.
if [ "$(id -u)" -eq 0 ]; then
  # (the shellcheck package: ansible-test sanity's shellcheck test runs it on the scripts)
  apt_install python3 python3-venv python3-pip git make rsync unzip ca-certificates shellcheck
fi
command -v python3 >/dev/null || die "python3 not found: install it (apt-get install python3 python3-venv) and retry"

stamp="${VENV}/.requirements.sha256"
want="$(sha256sum requirements-dev.txt | cut -d' ' -f1)"
if [ ! -x "${VENV}/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "creating ${VENV} and installing requirements-dev.txt"
  python3 -m venv "${VENV}" || die "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"
  "${VENV}/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null
  "${VENV}/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt \
    || die "pip install -r requirements-dev.txt failed: check that PyPI is reachable"
  echo "$want" >"$stamp"
fi

# Dependency collections, offline from the ansible wheel.
BUNDLED_COLLECTIONS="$("${VENV}/bin/python" -c '
import sys, yaml
print(" ".join(sorted(c["name"].replace(".", "/") for f in sys.argv[1:] for c in yaml.safe_load(open(f))["collections"])))
' requirements.yml requirements-dev.yml)" || die "could not read the collection names from requirements.yml and requirements-dev.yml"
coll_stamp="${COLLECTIONS_DIR}/.bundle-${ANSIBLE_BUNDLE_VERSION}-$(echo "${BUNDLED_COLLECTIONS}" | sha256sum | cut -c1-12)"
if [ ! -f "$coll_stamp" ]; then
  wheel_dir="${CACHE_DIR}/wheels"
  mkdir -p "$wheel_dir"
  wheel="$(ls "$wheel_dir"/ansible-"${ANSIBLE_BUNDLE_VERSION}"-py3-none-any.whl 2>/dev/null || true)"
  if [ -z "$wheel" ]; then
    log "downloading ansible==${ANSIBLE_BUNDLE_VERSION} (for its bundled collections)"
    "${VENV}/bin/pip" download -q --disable-pip-version-check --no-deps \
      "ansible==${ANSIBLE_BUNDLE_VERSION}" -d "$wheel_dir" >/dev/null \
      || die "could not download ansible==${ANSIBLE_BUNDLE_VERSION} from PyPI"
    wheel="$(ls "$wheel_dir"/ansible-"${ANSIBLE_BUNDLE_VERSION}"-py3-none-any.whl)"
  fi
  log "extracting ${BUNDLED_COLLECTIONS} into ${COLLECTIONS_DIR}"
  rm -rf "${COLLECTIONS_DIR}/ansible_collections"
  mkdir -p "${COLLECTIONS_DIR}"
  patterns=()
  for c in ${BUNDLED_COLLECTIONS}; do patterns+=("ansible_collections/${c}/*"); done
  unzip -q -o "$wheel" "${patterns[@]}" -d "${COLLECTIONS_DIR}"
  rm -f "${COLLECTIONS_DIR}"/.bundle-*
  touch "$coll_stamp"
fi

# This checkout is the collection k3s_gpu.cluster: link it where ansible looks for it.
mkdir -p "${COLLECTIONS_DIR}/ansible_collections/k3s_gpu"
ln -sfn ../../.. "${COLLECTIONS_DIR}/ansible_collections/k3s_gpu/cluster"
[ -f "${COLLECTIONS_DIR}/ansible_collections/k3s_gpu/cluster/galaxy.yml" ] \
  || die "the collection link ${COLLECTIONS_DIR}/ansible_collections/k3s_gpu/cluster is broken"
log "toolchain ready: $("${VENV}/bin/ansible" --version | head -1)"
