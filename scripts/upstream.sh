#!/usr/bin/env bash
# Build the upstream programs the tests use as peers, from their Go modules, at the versions
# pinned in our own go.mod/go.sum files (never from copied source).
#
#   scripts/upstream.sh            every group under tests/upstream/*/programs
#   scripts/upstream.sh peers      only these groups
#
# A group is a folder tests/upstream/<group>/ holding a go.mod and go.sum of ours, our own
# small Go programs (which import upstream packages as libraries), and a file `programs`, one
# line per binary:
#
#   NAME  PACKAGE  UPSTREAM_MODULE  [FLAGS]
#
# PACKAGE is built in the group's module (an upstream package path, or ./cmd/<ours>);
# UPSTREAM_MODULE is the module whose pinned version the line reports. FLAGS, comma-separated:
# `cgo` builds with CGO_ENABLED=1 (default 0, static); `version=IMPORTPATH.VAR` sets that
# string variable to the module's version without the leading v (-ldflags -X), for programs
# whose --version is stamped at build time. Binaries land in ${UPSTREAM_BIN} (default
# .cache/upstream/bin, outside git). A binary is rebuilt only when its stamp (Go version,
# go.mod, go.sum, the group's own .go files, the line) changed, so a second call builds
# nothing. Prints, per program, the module version it came from and how long it took.
#
# Environment: UPSTREAM_BIN, GOMODCACHE/GOCACHE (Go's defaults, shared between checkouts),
# GOPROXY (Go's default).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

UPSTREAM_DIR="${REPO_ROOT}/tests/upstream"
UPSTREAM_BIN="${UPSTREAM_BIN:-${CACHE_DIR}/upstream/bin}"
export UPSTREAM_BIN

groups=("$@")
if [ "${#groups[@]}" -eq 0 ]; then
  for f in "${UPSTREAM_DIR}"/*/programs; do
    [ -f "$f" ] && groups+=("$(basename "$(dirname "$f")")")
  done
fi
[ "${#groups[@]}" -gt 0 ] || die "no program groups under tests/upstream/*/programs"

ensure_go "${UPSTREAM_DIR}/${groups[0]}/go.mod"
for g in "${groups[@]}"; do
  if [ "$(id -u)" -eq 0 ] && awk '$1 !~ /^#/ && $4 ~ /(^|,)cgo(,|$)/ {f = 1} END {exit !f}' "${UPSTREAM_DIR}/${g}/programs" 2>/dev/null; then
    apt_install gcc libc6-dev
  fi
done
mkdir -p "${UPSTREAM_BIN}"

start_all=$(date +%s)
rows=()
built=0
for g in "${groups[@]}"; do
  dir="${UPSTREAM_DIR}/${g}"
  [ -f "${dir}/programs" ] || die "no group '${g}': ${dir}/programs does not exist"
  if [ ! -f "${dir}/go.mod" ] || [ ! -f "${dir}/go.sum" ]; then
    die "group '${g}' has no go.mod/go.sum: run 'go mod tidy' in ${dir}"
  fi
  ours="$(cd "${dir}" && find . -name '*.go' -type f -print0 | sort -z | xargs -0r sha256sum | sha256sum | cut -d' ' -f1)"
  base="$(printf '%s\n' "$(go version)" "$(sha256sum "${dir}/go.mod" "${dir}/go.sum" | cut -d' ' -f1)" "${ours}")"
  while read -r name pkg module flags; do
    case "${name}" in '' | '#'*) continue ;; esac
    [ -n "${module:-}" ] || die "${dir}/programs: line for '${name}' needs NAME PACKAGE UPSTREAM_MODULE [FLAGS]"
    out="${UPSTREAM_BIN}/${name}"
    stamp="$(printf '%s\n%s %s %s %s\n' "${base}" "${name}" "${pkg}" "${module}" "${flags:-}" | sha256sum | cut -d' ' -f1)"
    version="$(cd "${dir}" && go list -mod=readonly -m -f '{{.Version}}' "${module}" 2>/dev/null)" \
      || die "${dir}/go.mod does not require ${module} (programs line '${name}'): add it with 'go get ${module}@<version>' in ${dir}"
    if [ -x "${out}" ] && [ "$(cat "${out}.stamp" 2>/dev/null)" = "${stamp}" ]; then
      rows+=("$(printf '%-34s %-58s %-7s %5ss' "${name}" "${module}@${version}" cached 0)")
      continue
    fi
    log "building ${name} from ${module}@${version} (${pkg})"
    t0=$(date +%s)
    cgo=0
    ldflags='-s -w'
    IFS=, read -ra flag_list <<<"${flags:-}"
    for flag in "${flag_list[@]}"; do
      case "${flag}" in
        cgo) cgo=1 ;;
        version=*) ldflags+=" -X ${flag#version=}=${version#v}" ;;
        *) die "${dir}/programs: unknown flag '${flag}' for '${name}' (known: cgo, version=IMPORTPATH.VAR)" ;;
      esac
    done
    (cd "${dir}" && CGO_ENABLED="${cgo}" go build -mod=readonly -trimpath -ldflags="${ldflags}" -o "${out}.tmp" "${pkg}") \
      || die "building ${name} (${pkg}) from ${module}@${version} failed: see the go output above"
    mv -f "${out}.tmp" "${out}"
    echo "${stamp}" >"${out}.stamp"
    built=$((built + 1))
    rows+=("$(printf '%-34s %-58s %-7s %5ss' "${name}" "${module}@${version}" built "$(($(date +%s) - t0))")")
  done <"${dir}/programs"
done

printf '%-34s %-58s %-7s %6s\n' PROGRAM FROM STATE TIME
printf '%s\n' "${rows[@]}"
printf 'upstream: %s built, %s up to date, %ss in all; binaries in %s\n' \
  "${built}" "$((${#rows[@]} - built))" "$(($(date +%s) - start_all))" "${UPSTREAM_BIN}"
