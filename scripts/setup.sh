#!/usr/bin/env bash
# One setup step for both README commands. Every part is idempotent and
# cached; a second run does no work and says so.
#   - Debian packages (podman, runc, debootstrap, ...)
#   - a venv with the pinned Python dependencies (and the collections, which
#     the `ansible` package bundles because Galaxy cannot be reached here)
#   - the lab's SSH key
#   - the lab image (scripts/lab-image.sh)
#   - the Faucet wheelhouse
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${SDN_HA_CACHE:-$HOME/.cache/sdn_ha}
venv=$cache/venv
wheelhouse=$cache/wheelhouse
faucet_version=$(awk -F': *' '/^controller_faucet_version:/ {gsub(/"/, "", $2); print $2}' \
  "$here/roles/controller/defaults/main.yml")
export CONTAINERS_CONF=$here/lab/containers.conf
mkdir -p "$cache"

step() { printf '== setup: %s\n' "$*"; }

# 1. Debian packages
debs=(podman runc debootstrap openssh-client make gcc python3-venv)
missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  step "Debian packages present"
fi

# 2. venv with pinned Python dependencies
req_hash=$(sha256sum "$here/requirements.txt" | cut -c1-16)
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$req_hash" ]; then
  step "creating venv $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "$req_hash" > "$venv/.requirements"
else
  step "venv up to date"
fi

# 3. lab SSH key
if [ ! -f "$cache/lab_key" ]; then
  step "creating lab SSH key"
  ssh-keygen -q -t ed25519 -N '' -C sdn-ha-lab -f "$cache/lab_key"
else
  step "lab SSH key present"
fi

# 4. lab image
bash "$here/scripts/lab-image.sh"

# 5. Faucet wheelhouse, for controllers that cannot reach a package index
if [ "$(cat "$wheelhouse/.version" 2>/dev/null)" != "$faucet_version" ] || [ ! -f "$cache/faucet-wheelhouse.tar" ]; then
  step "building Faucet $faucet_version wheelhouse (compiles pytricia)"
  rm -rf "$wheelhouse"
  "$venv/bin/pip" wheel -q --disable-pip-version-check -w "$wheelhouse" "faucet==$faucet_version" 2>&1 \
    | grep -v '^WARNING: Location' || true
  ls "$wheelhouse"/faucet-*.whl >/dev/null
  echo "$faucet_version" > "$wheelhouse/.version"
  tar -C "$wheelhouse" --exclude=.version -cf "$cache/faucet-wheelhouse.tar" .
else
  step "Faucet $faucet_version wheelhouse present"
fi
step "done"
