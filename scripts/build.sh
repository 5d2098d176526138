#!/usr/bin/env bash
# Build the collection tarball and prove it installs: the tarball excludes lab state,
# virtualenvs, caches and test output (galaxy.yml build_ignore), it references no development-only
# collection, and after installing it into an empty collections path next to only the
# dependencies galaxy.yml lists, `ansible-playbook k3s_gpu.cluster.site --syntax-check` works.
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

# galaxy.yml's run-time dependencies (namespace/name per line) and requirements.yml must agree.
deps_text="$(python - <<'PY'
import yaml
deps = yaml.safe_load(open("galaxy.yml")).get("dependencies") or {}
reqs = dict((c["name"], str(c.get("version", "*"))) for c in yaml.safe_load(open("requirements.yml"))["collections"])
if reqs != dict((k, str(v)) for k, v in deps.items()):
    raise SystemExit("requirements.yml %r and galaxy.yml's dependencies %r differ: list the same "
                     "collections and versions in both" % (reqs, deps))
print("\n".join(sorted(name.replace(".", "/") for name in deps)))
PY
)" || die "galaxy.yml and requirements.yml disagree (see above)"
deps=()
[ -z "$deps_text" ] || mapfile -t deps <<<"$deps_text"

# Install it into an empty collections path that holds only copies of the collections galaxy.yml
# lists (taken from .collections, the `ansible` package's bundled versions): ansible-galaxy
# resolves the tarball's dependencies offline against them, so a missing collection or a version
# that does not meet galaxy.yml fails here. Then syntax-check the site playbook by FQCN.
scratch="${REPO_ROOT}/.build/install"
rm -rf "$scratch"; mkdir -p "${scratch}/ansible_collections"
for dep in "${deps[@]}"; do
  [ -f "${COLLECTIONS_DIR}/ansible_collections/${dep}/MANIFEST.json" ] \
    || die "${dep} (a dependency in galaxy.yml) is not in ${COLLECTIONS_DIR}: run scripts/bootstrap.sh"
  mkdir -p "${scratch}/ansible_collections/$(dirname "$dep")"
  cp -a "${COLLECTIONS_DIR}/ansible_collections/${dep}" "${scratch}/ansible_collections/${dep}"
done
cd "$scratch"
# An empty ansible.cfg: nothing from the checkout's ansible.cfg (collections_path) may help.
: >"${scratch}/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="${scratch}" ANSIBLE_CONFIG="${scratch}/ansible.cfg"
ansible-galaxy collection install --offline -p "$scratch" "$tarball" >/dev/null \
  || die "the built collection does not install next to only its galaxy.yml dependencies (${deps[*]}): see the error above"
installed="$(cd "${scratch}/ansible_collections" && find . -mindepth 2 -maxdepth 2 | cut -c3- | sort | tr '\n' ' ')"
[ "$installed" = "$(printf '%s\n' k3s_gpu/cluster "${deps[@]}" | sort | tr '\n' ' ')" ] \
  || die "the scratch collections path holds ${installed}: expected only k3s_gpu/cluster and galaxy.yml's dependencies"
# Every collection that roles, plugins and playbooks name (module, filter, test, lookup, callback)
# is in galaxy.yml, and every one galaxy.yml lists is named there: a syntax check alone would miss
# a filter or a module in a dynamically included task file. Collections are recognised among those
# bootstrap.sh installs (requirements.yml and requirements-dev.yml).
python - "${scratch}/ansible_collections/k3s_gpu/cluster" "${COLLECTIONS_DIR}/ansible_collections" "${deps[@]}" <<'PY'
import os, re, sys
root, known_dir, deps = sys.argv[1], sys.argv[2], set(d.replace("/", ".") for d in sys.argv[3:])
known = set(deps)
for ns in os.listdir(known_dir):
    if ns != "k3s_gpu" and os.path.isdir(os.path.join(known_dir, ns)):
        known.update("%s.%s" % (ns, name) for name in os.listdir(os.path.join(known_dir, ns)))
pattern = re.compile(r"\b(%s)\.[a-z_][a-z0-9_]*" % "|".join(re.escape(c) for c in sorted(known)))
used = {}
for top in ("roles", "plugins", "playbooks", "site.yml"):
    for folder, _dirs, files in ([(root, [], [top])] if top.endswith(".yml") else os.walk(os.path.join(root, top))):
        for name in files:
            if name.endswith(".md"):
                continue
            path = os.path.join(folder, name)
            with open(path, errors="replace") as handle:
                for match in pattern.finditer(handle.read()):
                    used.setdefault(match.group(1), set()).add(os.path.relpath(path, root))
problems = ["%s is used (%s) but not in galaxy.yml's dependencies: use a builtin, or add it to galaxy.yml "
            "and requirements.yml" % (c, ", ".join(sorted(used[c])[:5])) for c in sorted(set(used) - deps)]
problems += ["%s is in galaxy.yml's dependencies but nothing in roles, plugins or playbooks uses it: move it "
             "to requirements-dev.yml or remove it" % c for c in sorted(deps - set(used))]
if problems:
    raise SystemExit("\n".join(problems))
PY
ansible-playbook -i localhost, k3s_gpu.cluster.site --syntax-check
log "installed tarball with only its dependencies (${installed% }): ansible-playbook k3s_gpu.cluster.site --syntax-check passed"
