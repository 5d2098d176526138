#!/usr/bin/env bash
# Build the lab base images k3s-gpu-lab/debian:12 and k3s-gpu-lab/debian:13 from Debian's
# archive with debootstrap + `docker import`: a minimal Debian with systemd as PID 1,
# python3 (+ python3-apt) for Ansible, sudo, ca-certificates, iproute2, gnupg and curl.
# An image is built only when its tag is missing (cached by tag).
#
#   scripts/lab/images.sh                 both releases for the host's architecture
#   scripts/lab/images.sh 13              one release (12|13, debian12, bookworm, trixie, ...)
#   scripts/lab/images.sh --arch arm64 12 foreign architecture through qemu-user-static/binfmt,
#                                         tagged k3s-gpu-lab/debian:12-arm64 (not used by make)
#   scripts/lab/images.sh --rebuild 12    build even when the tag exists
#
# Environment:
#   LAB_DEBIAN_MIRROR           Debian archive URL (default: read from the host's apt sources)
#   LAB_DEBIAN_SECURITY_MIRROR  debian-security URL (default: read from the host's apt sources;
#                               left out of the image when the host has none)
#   LAB_IMAGE_REPO              image repository (default k3s-gpu-lab/debian)
set -euo pipefail
# shellcheck source=scripts/lab/docker.sh
. "$(dirname "$0")/docker.sh"

IMAGE_REPO="${LAB_IMAGE_REPO:-k3s-gpu-lab/debian}"
# python3-apt: ansible's apt module; dbus: systemd-logind/hostnamectl; procps: ps/pgrep for
# testinfra and roles; the rest is what the issue asks for.
PACKAGES="python3,python3-apt,systemd,systemd-sysv,dbus,sudo,ca-certificates,iproute2,gnupg,curl,procps"
# Units masked in the image: login prompts (no ttys in a container), udev (no device
# management in a container, should a role pull it in) and apt's timers (they would hold
# the dpkg lock while a test installs packages). systemd itself skips the kernel mounts
# and services that make no sense in a container.
MASK_UNITS="getty.target console-getty.service \
systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
systemd-udev-trigger.service systemd-udev-settle.service \
apt-daily.timer apt-daily-upgrade.timer"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

# suite_of RELEASE -> codename:version
suite_of() {
  case "$1" in
    12 | debian12 | debian:12 | bookworm) echo "bookworm:12" ;;
    13 | debian13 | debian:13 | trixie) echo "trixie:13" ;;
    *) die "unknown Debian release '$1': use 12 (bookworm) or 13 (trixie)" ;;
  esac
}

security_mirror() {
  local m="${LAB_DEBIAN_SECURITY_MIRROR-}"
  [ -n "$m" ] || m="$(_mirror_from_sources security)"
  echo "${m%/}"
}

host_arch() { dpkg --print-architecture 2>/dev/null || echo amd64; }

# ensure_foreign_arch ARCH: make sure binfmt_misc runs ARCH binaries (qemu-user-static).
ensure_foreign_arch() {
  local arch="$1" qemu
  case "$arch" in
    arm64) qemu=aarch64 ;;
    armhf) qemu=arm ;;
    *) die "unsupported --arch ${arch}: use arm64 or the host's $(host_arch)" ;;
  esac
  apt_install qemu-user-static binfmt-support
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  [ -e "/proc/sys/fs/binfmt_misc/qemu-${qemu}" ] || update-binfmts --enable "qemu-${qemu}" >/dev/null 2>&1 || true
  [ -e "/proc/sys/fs/binfmt_misc/qemu-${qemu}" ] \
    || die "binfmt_misc has no qemu-${qemu} handler: mount binfmt_misc (mount -t binfmt_misc none /proc/sys/fs/binfmt_misc) and run 'update-binfmts --enable qemu-${qemu}', then retry"
}

# write_sources ROOTFS SUITE MIRROR SECURITY: deb822 sources, component main only (roles
# enable contrib/non-free/non-free-firmware when they need them).
write_sources() {
  local root="$1" suite="$2" mirror="$3" security="$4"
  rm -f "${root}/etc/apt/sources.list"
  mkdir -p "${root}/etc/apt/sources.list.d"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" "$suite" "$suite"
    if [ -n "$security" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$security" "$suite"
    fi
  } >"${root}/etc/apt/sources.list.d/debian.sources"
}

# slim_and_configure ROOTFS: container settings and size trimming, all done from outside
# the chroot except masking (systemctl in the chroot needs no running systemd).
slim_and_configure() {
  local root="$1" unit
  # Keep documentation and translations out of later installs too.
  cat >"${root}/etc/dpkg/dpkg.cfg.d/01-k3s-gpu-lab-nodoc" <<'CFG'
# k3s-gpu-lab image: no manuals, docs or translations (copyright files are kept).
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
CFG
  find "${root}/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
  rm -rf "${root}/usr/share/man" "${root}/usr/share/info"
  find "${root}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true

  for unit in $MASK_UNITS; do
    ln -sfn /dev/null "${root}/etc/systemd/system/${unit}"
  done
  # No default getty instance, no network wait (docker configures the interface).
  rm -f "${root}/etc/systemd/system/getty.target.wants/"* 2>/dev/null || true
  # Each container gets its own machine id at first boot.
  : >"${root}/etc/machine-id"
  rm -f "${root}/var/lib/dbus/machine-id"
  # Let apt clean up after itself, as in Debian's docker images.
  cat >"${root}/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  rm -rf "${root}"/var/lib/apt/lists/* "${root}"/var/cache/apt/*.bin "${root}"/var/cache/apt/archives/*.deb
  rm -rf "${root}"/var/log/*.log "${root}"/var/log/apt/* "${root}"/tmp/* "${root}"/var/tmp/*
  echo "k3s-gpu-lab" >"${root}/etc/hostname"
}

# image_settings CODENAME VERSION: the Dockerfile lines docker import cannot set.
image_settings() {
  printf '%s\n' \
    'ENV container=docker' \
    'STOPSIGNAL SIGRTMIN+3' \
    "LABEL org.opencontainers.image.title=\"k3s-gpu-lab debian ${2}\" io.k3s-gpu.lab.debian=\"${1}\"" \
    'CMD ["/lib/systemd/systemd"]'
}

# import_image ROOTFS TAG CODENAME VERSION ARCH: docker import the root file system under a
# scratch tag, then add the image settings with a small build (no registry involved):
# docker import cannot set STOPSIGNAL.
import_image() {
  local rootfs="$1" tag="$2" codename="$3" version="$4" arch="$5" blog
  blog="${CACHE_DIR}/lab/build-${codename}-${arch}.log"
  log "importing ${tag}"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$rootfs" -c . \
    | docker import \
      --message "k3s_gpu.cluster lab image: debootstrap --variant=minbase ${codename} ${arch}" \
      - "${tag}-rootfs" >/dev/null \
    || die "docker import of ${tag}-rootfs failed: check 'docker info' and the free space under Docker's data root"
  { echo "FROM ${tag}-rootfs"; image_settings "$codename" "$version"; } \
    | DOCKER_BUILDKIT=0 docker build -q --network none -t "$tag" - >"$blog" 2>&1 \
    || { tail -n 15 "$blog" >&2; die "docker build of ${tag} from ${tag}-rootfs failed (log above): fix the cause and retry"; }
  docker rmi "${tag}-rootfs" >/dev/null
}

# build_foreign_image ROOTFS TAG CODENAME VERSION ARCH: docker import records the host's
# architecture whatever --platform says (docker 20.10), so a foreign root file system is
# added to an empty image by a build with --platform instead.
build_foreign_image() {
  local rootfs="$1" tag="$2" codename="$3" version="$4" arch="$5" ctx blog
  ctx="${CACHE_DIR}/lab/context-${codename}-${arch}"
  blog="${CACHE_DIR}/lab/build-${codename}-${arch}.log"
  rm -rf "$ctx" && mkdir -p "$ctx"
  log "building ${tag} (linux/${arch}) from the root file system"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$rootfs" -cf "${ctx}/rootfs.tar" .
  { echo "FROM scratch"; echo "ADD rootfs.tar /"; image_settings "$codename" "$version"; } >"${ctx}/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q --platform "linux/${arch}" --network none -t "$tag" "$ctx" >"$blog" 2>&1 \
    || { tail -n 15 "$blog" >&2; die "docker build of ${tag} failed (log above): fix the cause and retry"; }
  rm -rf "$ctx"
}

# build_one RELEASE ARCH
build_one() {
  local codename version tag arch="$2" mirror security rootfs debs start
  IFS=: read -r codename version <<<"$(suite_of "$1")"
  tag="${IMAGE_REPO}:${version}"
  [ "$arch" = "$(host_arch)" ] || tag="${tag}-${arch}"
  if [ "$REBUILD" -eq 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    log "${tag} exists (cached by tag; --rebuild to build it again)"
    return 0
  fi
  [ "$arch" = "$(host_arch)" ] || ensure_foreign_arch "$arch"
  mirror="$(debian_mirror LAB_DEBIAN_MIRROR)"
  security="$(security_mirror)"
  rootfs="${CACHE_DIR}/lab/rootfs-${codename}-${arch}"
  debs="${CACHE_DIR}/lab/debs-${codename}-${arch}"
  mkdir -p "$debs"
  rm -rf "$rootfs"
  start=$(date +%s)
  log "building ${tag}: debootstrap ${codename} (${arch}) from ${mirror}"
  if ! debootstrap --variant=minbase --arch="$arch" --include="$PACKAGES" \
    --cache-dir="$debs" --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$codename" "$rootfs" "$mirror" >"${CACHE_DIR}/lab/debootstrap-${codename}-${arch}.log" 2>&1; then
    tail -n 15 "${CACHE_DIR}/lab/debootstrap-${codename}-${arch}.log" >&2
    [ -f "${rootfs}/debootstrap/debootstrap.log" ] && tail -n 15 "${rootfs}/debootstrap/debootstrap.log" >&2
    die "debootstrap ${codename} from ${mirror} failed (log above, ${CACHE_DIR}/lab/debootstrap-${codename}-${arch}.log): check that the mirror is reachable or set LAB_DEBIAN_MIRROR"
  fi
  write_sources "$rootfs" "$codename" "$mirror" "$security"
  slim_and_configure "$rootfs"
  if [ "$arch" = "$(host_arch)" ]; then
    import_image "$rootfs" "$tag" "$codename" "$version" "$arch"
  else
    build_foreign_image "$rootfs" "$tag" "$codename" "$version" "$arch"
  fi
  rm -rf "$rootfs"
  log "built ${tag} in $(($(date +%s) - start))s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%d MB", $1/1000/1000}'))"
}

main() {
  local arch releases=() a
  arch="$(host_arch)"
  REBUILD=0
  while [ "$#" -gt 0 ]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --arch) [ "$#" -ge 2 ] || die "--arch needs a value (arm64)"; arch="$2"; shift 2 ;;
      --arch=*) arch="${1#--arch=}"; shift ;;
      --rebuild) REBUILD=1; shift ;;
      -*) die "unknown option $1: see '$0 --help'" ;;
      *) releases+=("$1"); shift ;;
    esac
  done
  [ "${#releases[@]}" -gt 0 ] || releases=(12 13)
  for a in "${releases[@]}"; do suite_of "$a" >/dev/null; done

  ensure_docker
  # Cached: nothing to do, and no root needed, when every tag exists.
  local need=0 v
  for a in "${releases[@]}"; do
    v="$(suite_of "$a")"
    v="${IMAGE_REPO}:${v#*:}"
    [ "$arch" = "$(host_arch)" ] || v="${v}-${arch}"
    docker image inspect "$v" >/dev/null 2>&1 || need=1
  done
  if [ "$need" -eq 1 ] || [ "$REBUILD" -eq 1 ]; then
    require_root images
    require_disk "${CACHE_DIR}" 2
    require_docker_disk 3
    apt_install debootstrap debian-archive-keyring
  fi
  for a in "${releases[@]}"; do build_one "$a" "$arch"; done
}

main "$@"
