#!/usr/bin/env bash
# The checks that Galaxy, Automation Hub and a certified collection's
# maintainers run, on the collection as it ships (the built tarball, unpacked
# under ansible_collections/sdn_ha/control_plane):
#   1. ansible-test sanity and units (scripts/ansible-test.sh), with the
#      development venv's ansible-core and with the version matrix's control
#      node's (ansible-core 2.21 on Python 3.13, scripts/in-control-node.sh);
#      zero errors, and tests/sanity holds no ignore file
#   2. antsibull-docs lint-collection-docs --plugin-docs
#   3. galaxy-importer       with the required-tags check on
#   4. antsibull-changelog   the fragments lint, and CHANGELOG.rst is current
#   5. ansible-builder       introspect finds the collection's own needs, and
#                            create writes a build context from execution-environment/
# Each step prints one line; a failing step prints its log.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${SDN_HA_CACHE:-$HOME/.cache/sdn_ha}
release=$cache/venv-release/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/step.log

# shellcheck source=progress.sh
. "$here/scripts/progress.sh"
run() { quiet_step collection "$log" "$@"; }

ansible-galaxy collection build --force --output-path "$work" "$here" >/dev/null
tarball=$(ls "$work"/sdn_ha-control_plane-*.tar.gz)
tree=$work/ansible_collections/sdn_ha/control_plane
mkdir -p "$tree"
tar xzf "$tarball" -C "$tree"
cd "$tree"

bash "$here/scripts/ansible-test.sh"
# The same on the version matrix's control node: the current ansible-core,
# on Debian 13's Python.
bash "$here/scripts/in-control-node.sh" -v "$work" bash "$here/scripts/ansible-test.sh"

# The collections this one depends on, for ansible-doc: the `ansible`
# package's, in the development venv.
bundled=$(python3 -c 'import ansible_collections, os; print(os.path.dirname(list(ansible_collections.__path__)[0]))')
run "antsibull-docs lint-collection-docs --plugin-docs" \
  env ANSIBLE_COLLECTIONS_PATH="$work:$bundled" "$release/antsibull-docs" lint-collection-docs --plugin-docs .

# ansible-doc and ansible-lint (which the importer runs) come from the
# development venv, first on PATH.
run "galaxy-importer" env GALAXY_IMPORTER_CHECK_REQUIRED_TAGS=true "$release/python" -m galaxy_importer.main "$tarball"
if grep -E "^(WARNING|ERROR)" "$log"; then
  echo "collection: FAIL: galaxy-importer warned" >&2
  exit 1
fi

cd "$here"
run "antsibull-changelog lint" "$release/antsibull-changelog" lint
mkdir "$work/changelog"
cp -r galaxy.yml changelogs CHANGELOG.rst "$work/changelog/"
run "antsibull-changelog generate (in a copy)" bash -c 'cd "$1" && "$2" generate' _ "$work/changelog" "$release/antsibull-changelog"
if ! cmp -s CHANGELOG.rst "$work/changelog/CHANGELOG.rst"; then
  diff CHANGELOG.rst "$work/changelog/CHANGELOG.rst" | head -20 || true
  echo "collection: FAIL: CHANGELOG.rst is not what antsibull-changelog generates" >&2
  exit 1
fi
echo "collection: CHANGELOG.rst is what antsibull-changelog generates"

# introspect reads meta/execution-environment.yml of each collection it finds.
run "ansible-builder introspect" "$release/ansible-builder" introspect --sanitize "$work"
expect_line() {
  grep -qxF -- "- '$1'" "$log" || { cat "$log"; echo "collection: FAIL: ansible-builder introspect lacks: $1" >&2; exit 1; }
}
expect_line "netaddr>=0.10.0  # from collection sdn_ha.control_plane"
expect_line "openssh-client [platform:dpkg]  # from collection sdn_ha.control_plane"
expect_line "openssh-clients [platform:rpm]  # from collection sdn_ha.control_plane"
if grep -qiE "^- .?(ansible-lint|molecule|pytest|ruff|yamllint)" "$log"; then
  cat "$log"
  echo "collection: FAIL: introspect finds development packages" >&2
  exit 1
fi
echo "collection:   introspect: netaddr and an SSH client, no development package"

version=$(awk '/^version:/ {print $2}' galaxy.yml)
grep -q "sdn_ha-control_plane-$version.tar.gz" execution-environment/requirements.yml \
  || { echo "collection: FAIL: execution-environment/requirements.yml does not name version $version" >&2; exit 1; }
cp -r execution-environment "$work/ee"
cp "$tarball" "$work/ee/"
run "ansible-builder create" "$release/ansible-builder" create -f "$work/ee/execution-environment.yml" -c "$work/ee/context"
for built in Containerfile _build/requirements.yml "_build/collections/$(basename "$tarball")"; do
  [ -f "$work/ee/context/$built" ] || { echo "collection: FAIL: the build context lacks $built" >&2; exit 1; }
done
grep -q "ansible-galaxy collection install" "$work/ee/context/Containerfile" \
  || { echo "collection: FAIL: the Containerfile installs no collection" >&2; exit 1; }
echo "collection:   the build context holds the Containerfile, the collection and its requirements"
