#!/usr/bin/env bash
# Run molecule scenarios: `molecule test -s <name>` for each scenario under molecule/
# (default: all of them), with the sequence from .config/molecule/config.yml
# (create, prepare, check, converge, idempotence, verify, destroy).
#
#   scripts/molecule.sh                 every scenario whose images exist or can be built here
#   scripts/molecule.sh default k3s-lab  only these
#
# Before a scenario runs, the images of its platforms are looked up: missing lab images
# (k3s-gpu-lab/debian:*) are built with scripts/lab/images.sh; any other missing image would
# need a registry, so the scenario is skipped with a line saying so.
# Ends with a table and `molecule: N passed, M failed, K skipped`; exits non-zero when a
# scenario failed or none ran. Logs: .cache/molecule/<scenario>.log
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/lab/docker.sh
. "$(dirname "$0")/lab/docker.sh"

cd "${REPO_ROOT}"
activate_venv
ensure_docker
require_docker_disk 2

# platform_images SCENARIO: one line per platform image of molecule/SCENARIO/molecule.yml.
platform_images() {
  python3 - "molecule/$1/molecule.yml" <<'PY'
import sys
import yaml

with open(sys.argv[1], encoding="utf-8") as fh:
    data = yaml.safe_load(fh) or {}
for platform in data.get("platforms") or []:
    image = platform.get("image")
    if image:
        print(image)
PY
}

scenarios=()
if [ "$#" -gt 0 ]; then
  for s in "$@"; do
    [ -f "molecule/${s}/molecule.yml" ] || die "no scenario '${s}': molecule/${s}/molecule.yml does not exist (scenarios: $(printf '%s\n' molecule/*/molecule.yml | cut -d/ -f2 | paste -sd' '))"
    scenarios+=("$s")
  done
else
  for f in molecule/*/molecule.yml; do
    [ -f "$f" ] && scenarios+=("$(basename "$(dirname "$f")")")
  done
fi
[ "${#scenarios[@]}" -gt 0 ] || die "no molecule scenarios found under molecule/*/molecule.yml"

logdir="${CACHE_DIR}/molecule"
mkdir -p "$logdir"
passed=0 failed=0 skipped=0
rows=()

for s in "${scenarios[@]}"; do
  skip=""
  # Hook: an executable molecule/<scenario>/skip-check.sh that prints a reason and exits 0
  # means the scenario cannot run here (e.g. k3s-cluster without the K3s release download).
  if [ -x "molecule/${s}/skip-check.sh" ] && reason="$("molecule/${s}/skip-check.sh")"; then
    echo "SKIP ${s}: ${reason}"
    rows+=("${s}|SKIP|0|${reason}")
    skipped=$((skipped + 1))
    continue
  fi
  images="$(platform_images "$s")" || { rows+=("${s}|FAIL|0|cannot read molecule/${s}/molecule.yml"); failed=$((failed + 1)); continue; }
  for image in $images; do
    docker image inspect "$image" >/dev/null 2>&1 && continue
    case "$image" in
      k3s-gpu-lab/debian:12 | k3s-gpu-lab/debian:13)
        if ! scripts/lab/images.sh "${image##*:}"; then
          skip="FAIL"
          rows+=("${s}|FAIL|0|building ${image} failed (scripts/lab/images.sh)")
          break
        fi
        ;;
      *)
        echo "SKIP ${s}: image ${image} cannot be pulled here (no registry access); run it where images can be pulled"
        skip="SKIP"
        rows+=("${s}|SKIP|0|image ${image} not here (no registry access)")
        break
        ;;
    esac
  done
  case "$skip" in
    SKIP) skipped=$((skipped + 1)); continue ;;
    FAIL) failed=$((failed + 1)); continue ;;
  esac

  log "molecule test -s ${s} (log: ${logdir#"${REPO_ROOT}"/}/${s}.log)"
  start=$(date +%s)
  if molecule test -s "$s" 2>&1 | tee "${logdir}/${s}.log"; then
    rows+=("${s}|PASS|$(($(date +%s) - start))|")
    passed=$((passed + 1))
  else
    rows+=("${s}|FAIL|$(($(date +%s) - start))|see ${logdir#"${REPO_ROOT}"/}/${s}.log")
    failed=$((failed + 1))
  fi
done

echo
printf '%-32s %-6s %8s  %s\n' SCENARIO RESULT SECONDS NOTE
for r in "${rows[@]}"; do
  IFS='|' read -r name result secs note <<<"$r"
  printf '%-32s %-6s %8s  %s\n' "$name" "$result" "$secs" "$note"
done
echo "molecule: ${passed} passed, ${failed} failed, ${skipped} skipped"

if [ "$failed" -gt 0 ]; then
  exit 1
fi
if [ $((passed + failed)) -eq 0 ]; then
  echo "ERROR: no molecule scenario ran (all skipped): build the lab images (make images) or run where the images can be pulled" >&2
  exit 1
fi
