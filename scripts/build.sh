#!/usr/bin/env bash
# Build the collection tarball and prove it installs: the tarball excludes lab state,
# virtualenvs, caches and test output (galaxy.yml build_ignore), and after installing it
# into a scratch collections path `ansible-playbook k3s_gpu.cluster.site --syntax-check` works.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
activate_venv
cd "${REPO_ROOT}"
out="${REPO_ROOT}/.build/dist"
rm -rf "$out"; mkdir -p "$out"
ansible-galaxy collection build --force --output-path "$out" . >/dev/null
tarball="$(ls "$out"/k3s_gpu-cluster-*.tar.gz)"
log "built ${tarball}"

# Nothing that is lab state, a virtualenv, a cache or test output may be in it.
leaked="$(tar -tzf "$tarball" | grep -E '(^|/)(\.venv|\.cache|\.collections|\.build|\.lab|\.pytest_cache|__pycache__|tests/output|inventories/lab|tests/gpu-host/bundle|\.gpuhost)(/|$)' || true)"
[ -z "$leaked" ] || die "the tarball contains files that build_ignore should exclude: $(echo "$leaked" | head -5 | tr '\n' ' ')"

# Install it next to the dependency collections and syntax-check the site playbook by FQCN.
scratch="${REPO_ROOT}/.build/install"
rm -rf "$scratch"; mkdir -p "$scratch"
# --force: the checkout itself is on the configured collections path and would count as installed.
ANSIBLE_COLLECTIONS_PATH="${scratch}" ansible-galaxy collection install --offline --no-deps --force -p "$scratch" "$tarball" >/dev/null
# The dependency collections, but not the checkout's own link: only the tarball may answer.
for ns in "${COLLECTIONS_DIR}"/ansible_collections/*; do
  [ "$(basename "$ns")" = k3s_gpu ] || ln -sfn "$ns" "${scratch}/ansible_collections/$(basename "$ns")"
done
cd "$scratch"
# An empty ansible.cfg: nothing from the checkout's ansible.cfg (collections_path) may help.
: >"${scratch}/ansible.cfg"
ANSIBLE_COLLECTIONS_PATH="${scratch}" ANSIBLE_CONFIG="${scratch}/ansible.cfg" \
  ansible-playbook -i localhost, k3s_gpu.cluster.site --syntax-check
log "installed tarball: ansible-playbook k3s_gpu.cluster.site --syntax-check passed"
