#!/usr/bin/env bash
# collection-tree.sh ROOT: copy the collection to ROOT/ansible_collections/k3s_gpu/cluster
# (the layout ansible-test needs) and print that path. ROOT must be outside this git
# checkout: ansible-test lists files with git, and inside the checkout the copy would be
# an ignored folder. Only the files git knows (tracked + untracked-not-ignored) are copied,
# so lab state, caches and virtualenvs never leak in.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
root="${1:?usage: collection-tree.sh ROOT}"
case "$(cd "$root" && pwd)/" in
  "${REPO_ROOT}/"*) die "collection-tree.sh: ${root} is inside the checkout; give a folder outside it (mktemp -d)" ;;
esac
dest="${root}/ansible_collections/k3s_gpu/cluster"
mkdir -p "${dest}"
cd "${REPO_ROOT}"
git ls-files -z --cached --others --exclude-standard \
  | rsync -a --from0 --files-from=- ./ "${dest}/" \
  || die "copying the collection into ${dest} failed (is rsync installed? run make bootstrap)"
# ansible-test wants the dependency collections beside ours.
for ns in "${COLLECTIONS_DIR}"/ansible_collections/*; do
  [ "$(basename "$ns")" = k3s_gpu ] && continue
  ln -sfn "$ns" "${root}/ansible_collections/$(basename "$ns")"
done
echo "${dest}"
