#!/usr/bin/env bash
# One setup step for both README commands. Every part is idempotent and
# cached; a second run does no work and says so.
#   - Debian packages (podman with netavark, runc, debootstrap, ...)
#   - a venv with the pinned Python dependencies (and the collections, which
#     the `ansible` package bundles because Galaxy cannot be reached here),
#     and one with the release checks' tools
#   - the lab's SSH key
#   - the lab images, one per Debian release the lab runs (scripts/lab-image.sh)
#   - the Faucet wheelhouses, one per release (scripts/faucet-wheelhouse.sh)
#   - the version matrix's control node image (scripts/control-image.sh)
#   - the removal of an older lab from podman's default storage (the lab now
#     has storage of its own: lab/storage.conf)
# Long steps report their elapsed time every 10 s.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${SDN_HA_CACHE:-$HOME/.cache/sdn_ha}
venv=$cache/venv
faucet_version=$(awk -F': *' '/^controller_faucet_version:/ {gsub(/"/, "", $2); print $2}' \
  "$here/roles/controller/defaults/main.yml")
export CONTAINERS_CONF=$here/lab/containers.conf CONTAINERS_STORAGE_CONF=$here/lab/storage.conf
export SDN_HA_CACHE=$cache
mkdir -p "$cache"
# shellcheck source=progress.sh
. "$here/scripts/progress.sh"

# 1. Debian packages. netavark is what gives the host an address on the
# lab's internal networks (CNI would not); it needs iptables and recommends
# aardvark-dns, which --no-install-recommends would leave out.
# openssl: the TLS tests make their certificates with it.
debs=(podman runc netavark aardvark-dns iptables debootstrap openssh-client make gcc python3-venv openssl)
missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  long_step "apt-get update" apt-get update
  long_step "installing Debian packages: ${missing[*]}" apt-get install -y --no-install-recommends "${missing[@]}"
else
  step "Debian packages present"
fi

# 2. The venvs, each with its pinned Python packages: the development one
# (requirements-dev.txt) and the release checks' tools (requirements-release.txt).
pinned_venv() {
  local dir=$1 requirements=$2 hash
  hash=$(sha256sum "$requirements" | cut -c1-16)
  if [ "$(cat "$dir/.requirements" 2>/dev/null)" != "$hash" ]; then
    python3 -m venv "$dir"
    long_step "installing the pinned Python packages into $dir" \
      "$dir/bin/pip" install --disable-pip-version-check -r "$requirements"
    echo "$hash" > "$dir/.requirements"
  else
    step "$dir up to date"
  fi
}
pinned_venv "$venv" "$here/requirements-dev.txt"
pinned_venv "$cache/venv-release" "$here/requirements-release.txt"

# 3. lab SSH key
if [ ! -f "$cache/lab_key" ]; then
  step "creating lab SSH key"
  ssh-keygen -q -t ed25519 -N '' -C sdn-ha-lab -f "$cache/lab_key"
else
  step "lab SSH key present"
fi

# 4. lab images: one per Debian release that the lab inventory's hosts run
releases=$(ANSIBLE_CONFIG=$here/ansible.cfg ANSIBLE_VAULT_PASSWORD_FILE=$here/lab/vault-password \
  "$venv/bin/ansible-inventory" -i "$here/inventories/lab" --list \
  | "$venv/bin/python" -c 'import json, sys; print(*sorted({h["lab_release"] for h in json.load(sys.stdin)["_meta"]["hostvars"].values()}))')
step "the lab runs Debian $releases"
# shellcheck disable=SC2086 # one argument per release
bash "$here/scripts/lab-image.sh" $releases

# 5. Faucet wheelhouses, for controllers that cannot reach a package index,
# each built for its release's Python
# shellcheck disable=SC2086
bash "$here/scripts/faucet-wheelhouse.sh" "$faucet_version" $releases
# The single wheelhouse of the Debian 12-only lab, built with this machine's Python.
rm -rf "$cache/wheelhouse" "$cache/faucet-wheelhouse.tar"

# 6. The version matrix's control node: the current ansible-core on Debian
# 13 (lab/control-node/), built on the Debian 13 lab image
bash "$here/scripts/lab-image.sh" trixie >/dev/null
bash "$here/scripts/control-image.sh"

# 7. An older lab in podman's default storage (before the lab had its own)
legacy=$("$venv/bin/python" "$here/lab/labnet.py" legacy)
case $legacy in
  *'"changed": true'*) step "removed an older lab from podman's default storage: $legacy" ;;
  *) step "no older lab in podman's default storage" ;;
esac
step "done"
