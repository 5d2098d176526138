#!/usr/bin/env bash
# Build the bundle that tests/gpu-host/run.sh carries to a GPU host that has no network.
# Runs on the development machine (Debian 12 amd64, PyPI and Debian's archive reachable)
# and writes everything into tests/gpu-host/bundle/ (ignored by git):
#   wheels/       ansible-core 2.19 and its dependencies, for CPython 3.12 on x86_64
#   debs/podman/  Debian 12's podman, conmon, crun, containers-common and the libraries
#                 a minimal Ubuntu 24.04 lacks (unpacked into a private prefix there)
#   debs/rootfs/  busybox-static (Debian 12) and libc6 (Debian 13, glibc 2.41, newer than
#                 the host's 2.39 that the test program is linked against): the container's
#                 whole root filesystem
#   collections.tar.gz  dependency collections (ansible.posix, community.general) from
#                 .collections (make bootstrap), in case roles use their modules
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
# podman and what it runs; the libraries are those a minimal Ubuntu 24.04 image lacks.
PODMAN_DEBS=(
  podman conmon crun golang-github-containers-common
  libglib2.0-0 libdevmapper1.02.1 libassuan0 libgpgme11 libyajl2 libsubid4 libsemanage2
  libsepol2 libudev1 libaudit1 libcap-ng0
)
# Used on the host only for a library that ldd reports missing there (run.sh decides).
FALLBACK_DEBS=(libseccomp2 libsystemd0 libcap2 libselinux1 libpcre2-8-0 libffi8 libgpg-error0)
ROOTFS_DEBS=(busybox-static)
# glibc for the container, from Debian 13: a program built on Ubuntu 24.04 (glibc 2.39)
# may need symbols newer than Debian 12's 2.36.
ROOTFS_TRIXIE_DEBS=(libc6)
COLLECTIONS=(ansible_collections/ansible/posix ansible_collections/community/general)

[ "${1:-}" = "--clean" ] && rm -rf "${BUNDLE}"
mkdir -p "${BUNDLE}"/{wheels,debs/podman,debs/fallback,debs/rootfs}

command -v apt-get >/dev/null || die "apt-get not found: build the bundle on a Debian 12 amd64 machine"
grep -q '^12' /etc/debian_version 2>/dev/null \
  || die "this is not Debian 12 ($(cat /etc/debian_version 2>/dev/null || echo unknown)): the .debs must come from bookworm"

if ! ls "${BUNDLE}"/wheels/ansible_core-*.whl >/dev/null 2>&1; then
  log "downloading wheels for CPython 3.12 x86_64"
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d "${BUNDLE}/wheels" "${WHEELS[@]}" \
    || die "pip download failed: check that PyPI is reachable"
fi

# apt-get download writes into the current folder; _apt cannot write there, so it warns.
fetch_debs() {
  local dest="$1"
  shift
  if [ -z "$(ls "$dest"/*.deb 2>/dev/null)" ]; then
    log "downloading $* into ${dest#"${REPO_ROOT}"/}"
    (cd "$dest" && apt-get -q -o APT::Architecture=amd64 download "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) \
      || die "apt-get download failed: run 'apt-get update' and retry"
  fi
}
fetch_debs "${BUNDLE}/debs/podman" "${PODMAN_DEBS[@]}"
fetch_debs "${BUNDLE}/debs/fallback" "${FALLBACK_DEBS[@]}"
fetch_debs "${BUNDLE}/debs/rootfs" "${ROOTFS_DEBS[@]}"

# Debian 13 packages through a private apt state (the machine's sources stay untouched).
if [ -z "$(ls "${BUNDLE}"/debs/rootfs/libc6_*.deb 2>/dev/null)" ]; then
  apt_dir="${CACHE_DIR}/gpu-host-trixie-apt"
  mkdir -p "${apt_dir}/lists/partial" "${apt_dir}/cache/archives/partial"
  echo "deb http://deb.debian.org/debian trixie main" >"${apt_dir}/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=${apt_dir}/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=${apt_dir}/lists" -o "Dir::Cache=${apt_dir}/cache" -o APT::Architecture=amd64)
  log "downloading ${ROOTFS_TRIXIE_DEBS[*]} from Debian 13 (trixie)"
  apt-get -qq "${apt_opts[@]}" update || die "apt-get update for trixie failed: check that deb.debian.org is reachable"
  (cd "${BUNDLE}/debs/rootfs" && apt-get -q "${apt_opts[@]}" download "${ROOTFS_TRIXIE_DEBS[@]}" 2>&1 |
    grep -v '^W: Download is performed unsandboxed' >&2) || die "apt-get download ${ROOTFS_TRIXIE_DEBS[*]} (trixie) failed"
fi

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
[ "$size_kib" -lt $((48 * 1024)) ] || die "the bundle is $((size_kib / 1024)) MiB: the device carries at most 64 MiB with the working tree; drop something"
log "bundle ready: ${BUNDLE#"${REPO_ROOT}"/} ($((size_kib / 1024)) MiB)"
