#!/usr/bin/env bash
# Build the bundle that tests/gpu-host/run.sh carries to a GPU host that has no network.
# Runs on the development machine (Debian/Ubuntu amd64 with apt, PyPI and Debian's archive
# reachable) and writes everything into tests/gpu-host/bundle/ (ignored by git):
#   wheels/       ansible-core 2.19 and its dependencies, for CPython 3.12 on x86_64
#   debs/podman/  Debian 13's podman 5.4, conmon, crun, netavark, containers-common and every
#                 library they load except glibc (unpacked into a private prefix on the host;
#                 none of them needs a glibc newer than 2.39, Ubuntu 24.04's)
#   debs/rootfs/  busybox-static and libc6 (glibc 2.41, newer than the host's 2.39 that the
#                 test program is linked against): the container's whole root filesystem
# Debian 13, not 12: Debian 12's podman 4.3.1 reads CDI specs up to version 0.5.0 only (its
# CDI library is 0.5.2) and rejects cdi_spec's 0.6.0 spec ("unresolvable CDI devices").
#   collections.tar.gz  ansible.posix from .collections (make bootstrap): run.sh's
#                 profile_tasks callback and the roles' mount module (kubernetes.core, the
#                 other run-time dependency, only serves gpu_operator_install_method: helm)
#   MANIFEST.txt  name, version and sha256 of every file
# Idempotent: files already there are kept. Usage: tests/gpu-host/build-bundle.sh [--clean]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh"

BUNDLE="${REPO_ROOT}/tests/gpu-host/bundle"

# Same versions as requirements-dev.txt (the controller toolchain), plus the
# dependencies ansible-core pulls in (cryptography -> cffi -> pycparser).
WHEELS=(
  ansible-core==2.19.14 Jinja2==3.1.6 MarkupSafe==3.0.4 PyYAML==6.0.3 packaging==26.3
  resolvelib==1.2.1 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12
)
# podman and what it runs, with the whole library closure except glibc (checked with ldd).
PODMAN_DEBS=(
  podman conmon crun netavark golang-github-containers-common
  libgpgme11t64 libassuan9 libgpg-error0 libseccomp2 libsqlite3-0 libsubid5 libaudit1 libcap-ng0
  libselinux1 libsemanage2 libsepol2 libbz2-1.0 libpcre2-8-0 libglib2.0-0t64 libffi8 libmount1
  libblkid1 zlib1g libsystemd0 libcap2 libyajl2 libgcc-s1 libcrypt1 libacl1 libattr1 libpam0g
  libatomic1
)
ROOTFS_DEBS=(busybox-static libc6)
SUITE=trixie
COLLECTIONS=(ansible_collections/ansible/posix)

[ "${1:-}" = "--clean" ] && rm -rf "${BUNDLE}"
mkdir -p "${BUNDLE}"/{wheels,debs/podman,debs/rootfs}

command -v apt-get >/dev/null || die "apt-get not found: build the bundle on a Debian or Ubuntu machine"
[ -x "${VENV}/bin/python" ] || die "the toolchain is not installed: run 'make bootstrap' first (its pip downloads the wheels)"

if ! ls "${BUNDLE}"/wheels/ansible_core-*.whl >/dev/null 2>&1; then
  log "downloading wheels for CPython 3.12 x86_64"
  "${VENV}/bin/python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d "${BUNDLE}/wheels" "${WHEELS[@]}" \
    || die "pip download failed: check that PyPI is reachable"
fi

# Debian 13 packages through a private apt state: the machine's own sources stay untouched.
apt_dir="${CACHE_DIR}/gpu-host-${SUITE}-apt"
apt_opts=(-o "Dir::Etc::SourceList=${apt_dir}/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=${apt_dir}/lists" -o "Dir::Cache=${apt_dir}/cache" -o Dir::State::Status=/dev/null
  -o APT::Architecture=amd64)
# apt-get download writes into the current folder; _apt cannot write there, so it warns.
fetch_debs() {
  local dest="$1"
  shift
  [ -z "$(ls "$dest"/*.deb 2>/dev/null)" ] || return 0
  if [ ! -d "${apt_dir}/lists" ] || [ -n "$(find "${apt_dir}/lists" -maxdepth 0 -mmin +360)" ]; then
    mkdir -p "${apt_dir}/lists/partial" "${apt_dir}/cache/archives/partial"
    echo "deb http://deb.debian.org/debian ${SUITE} main" >"${apt_dir}/sources.list"
    apt-get -qq "${apt_opts[@]}" update || die "apt-get update for ${SUITE} failed: check that deb.debian.org is reachable"
  fi
  log "downloading $* (${SUITE}) into ${dest#"${REPO_ROOT}"/}"
  (cd "$dest" && apt-get -q "${apt_opts[@]}" download "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) \
    || die "apt-get download failed: a package name may have changed in ${SUITE}"
}
fetch_debs "${BUNDLE}/debs/podman" "${PODMAN_DEBS[@]}"
fetch_debs "${BUNDLE}/debs/rootfs" "${ROOTFS_DEBS[@]}"

if [ ! -f "${BUNDLE}/collections.tar.gz" ]; then
  for c in "${COLLECTIONS[@]}"; do
    [ -d "${COLLECTIONS_DIR}/$c" ] || die "${COLLECTIONS_DIR}/$c is missing: run 'make bootstrap' first"
  done
  log "packing ${COLLECTIONS[*]}"
  tar -C "${COLLECTIONS_DIR}" -czf "${BUNDLE}/collections.tar.gz" \
    --exclude='*/tests' --exclude='*/docs' --exclude='*/changelogs' --exclude='*/.github' "${COLLECTIONS[@]}"
fi

log "writing MANIFEST.txt"
(
  cd "${BUNDLE}"
  echo "# tests/gpu-host bundle, built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME")"
  for f in debs/*/*.deb; do
    printf '%s %s %s\n' "$(dpkg-deb -f "$f" Package)" "$(dpkg-deb -f "$f" Version)" "$(sha256sum "$f" | cut -c1-16)"
  done
  for f in wheels/*.whl collections.tar.gz; do
    printf '%s - %s\n' "$f" "$(sha256sum "$f" | cut -c1-16)"
  done
) >"${BUNDLE}/MANIFEST.txt"

size_kib="$(du -sk "${BUNDLE}" | cut -f1)"
[ "$size_kib" -lt $((56 * 1024)) ] || die "the bundle is $((size_kib / 1024)) MiB: the device carries at most 64 MiB with the working tree; drop something"
log "bundle ready: ${BUNDLE#"${REPO_ROOT}"/} ($((size_kib / 1024)) MiB)"
