#!/usr/bin/env bash
# Build the sidecar's wheel into roles/mirror/files, where the mirror role
# installs it from. Reproducible: the same sources give the same bytes. It
# builds from a copy, so the tree gets no build/ or egg-info.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp -r "$here/sidecar/pyproject.toml" "$here/sidecar/sdn_ha_mirror" "$work/"
find "$work" -name __pycache__ -prune -exec rm -rf {} +
SOURCE_DATE_EPOCH=315532800 python3 -m pip wheel --no-deps --quiet --wheel-dir "$work/dist" "$work"
rm -f "$here"/roles/mirror/files/sdn_ha_mirror-*.whl
cp "$work"/dist/sdn_ha_mirror-*.whl "$here/roles/mirror/files/"
echo "sidecar-wheel: $(cd "$here" && ls roles/mirror/files/sdn_ha_mirror-*.whl)"
