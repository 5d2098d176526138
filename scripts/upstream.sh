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
# UPSTREAM_MODULE is the module whose pinned version the line reports (`-` for a program of
# ours that wraps no upstream module, e.g. a pause program). FLAGS is a comma list:
# `cgo` builds with CGO_ENABLED=1 (default 0, static); `static` is cgo linked statically
# (-extldflags -static); `tags=a+b` adds build tags a and b; `modfile=F` builds with the
# group's F (and F's .sum) instead of go.mod: the same programs at other pinned versions;
# `version=IMPORTPATH.VAR` sets that string variable to the module's version without the
# leading v (-ldflags -X), for programs whose --version is stamped at build time.
#
# Optional files of a group:
#   ldflags   lines `NAME|* -X pkg.var=value ...`: linker flags for program NAME (or every
#             program of the group); `${v:MODULE}` is replaced by MODULE's pinned version.
#             Upstream programs print the version they were stamped with this way.
#   apt       Debian packages a cgo build needs (headers, static libraries), installed as root.
#   opt-in    present: the group is heavy and built only when named (`scripts/upstream.sh cluster`),
#             never by a bare `scripts/upstream.sh`.
#
# Binaries land in ${UPSTREAM_BIN} (default .cache/upstream/bin, outside git). A binary is
# rebuilt only when its stamp (Go version, go.mod, go.sum, the group's own .go files, the
# line, its linker flags) changed, so a second call builds nothing. Prints, per program, the
# module version it came from and how long it took.
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
    [ -f "$f" ] && [ ! -e "$(dirname "$f")/opt-in" ] && groups+=("$(basename "$(dirname "$f")")")
  done
fi
[ "${#groups[@]}" -gt 0 ] || die "no program groups under tests/upstream/*/programs"

ensure_go "${UPSTREAM_DIR}/${groups[0]}/go.mod"
for g in "${groups[@]}"; do
  if [ "$(id -u)" -eq 0 ] && grep -qsE '^[^#].*[[:space:]]([^[:space:]]*,)?(cgo|static)(,[^[:space:]]*)?[[:space:]]*$' "${UPSTREAM_DIR}/${g}/programs"; then
    # shellcheck disable=SC2046 # one package name per word
    apt_install gcc libc6-dev $(grep -v '^#' "${UPSTREAM_DIR}/${g}/apt" 2>/dev/null)
  fi
done
mkdir -p "${UPSTREAM_BIN}"

# program_ldflags DIR NAME [MODFILE]: the linker flags of program NAME from DIR/ldflags, with
# the versions pinned in MODFILE (default go.mod) filled in.
program_ldflags() {
  local dir="$1" name="$2" modfile="${3:-go.mod}" who rest out="" m v
  [ -f "${dir}/ldflags" ] || return 0
  while read -r who rest; do
    case "${who}" in '' | '#'*) continue ;; esac
    [ "${who}" = "${name}" ] || [ "${who}" = '*' ] || continue
    while [[ "${rest}" =~ \$\{v:([^}]+)\} ]]; do
      m="${BASH_REMATCH[1]}"
      v="$(cd "${dir}" && go list -modfile="${modfile}" -mod=readonly -m -f '{{.Version}}' "${m}" 2>/dev/null)" \
        || { echo "\${v:${m}}: ${m} is not required by ${dir}/${modfile}"; return 1; }
      rest="${rest//"\${v:${m}}"/${v}}"
    done
    out+="${out:+ }${rest}"
  done <"${dir}/ldflags"
  printf '%s' "${out}"
}

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
    modfile=go.mod
    case ",${flags:-}," in *,modfile=*) modfile="${flags#*modfile=}" modfile="${modfile%%,*}" ;; esac
    [ -f "${dir}/${modfile}" ] || die "${dir}/programs: '${name}' names ${modfile}, which does not exist"
    if [ "${module}" = - ]; then
      version=ours # a program of ours with no upstream module behind it
    else
      version="$(cd "${dir}" && go list -modfile="${modfile}" -mod=readonly -m -f '{{.Version}}' "${module}" 2>/dev/null)" \
        || die "${dir}/${modfile} does not require ${module} (programs line '${name}'): add it with 'go get ${module}@<version>' in ${dir}"
    fi
    ldflags="$(program_ldflags "${dir}" "${name}" "${modfile}")" || die "${dir}/ldflags: ${ldflags}"
    stamp="$(printf '%s\n%s\n%s %s %s %s\n%s\n' "${base}" "$(cat "${dir}/${modfile}" "${dir}/${modfile%.mod}.sum" 2>/dev/null | sha256sum)" \
      "${name}" "${pkg}" "${module}" "${flags:-}" "${ldflags}" | sha256sum | cut -d' ' -f1)"
    if [ -x "${out}" ] && [ "$(cat "${out}.stamp" 2>/dev/null)" = "${stamp}" ]; then
      rows+=("$(printf '%-34s %-58s %-7s %5ss' "${name}" "${module}@${version}" cached 0)")
      continue
    fi
    log "building ${name} from ${module}@${version} (${pkg})"
    t0=$(date +%s)
    cgo=0 tags="" extld=""
    for f in ${flags//,/ }; do
      case "$f" in
        cgo) cgo=1 ;;
        static) cgo=1 extld=" -extldflags -static" ;;
        tags=*) tags="${f#tags=}" tags="${tags//+/,}" ;;
        modfile=*) ;;
        version=*) ldflags+="${ldflags:+ }-X ${f#version=}=${version#v}" ;;
        *) die "${dir}/programs: unknown flag '$f' for '${name}' (cgo, static, tags=a+b, modfile=F, version=IMPORTPATH.VAR)" ;;
      esac
    done
    (cd "${dir}" && CGO_ENABLED="${cgo}" go build -modfile="${modfile}" -mod=readonly -trimpath -tags "${tags}" \
      -ldflags="-s -w${extld}${ldflags:+ ${ldflags}}" -o "${out}.tmp" "${pkg}") \
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
