#!/usr/bin/env bash
# Run a command on the version matrix's control node (scripts/control-image.sh):
# ansible-core 2.21 on Debian 13's Python 3.13, in a throwaway container.
#   in-control-node.sh [-v DIR]... COMMAND...
# The checkout, the cache (the lab's SSH key, the Faucet wheelhouses) and
# each DIR are mounted at their own paths, and the command runs in the
# current directory, so paths mean the same inside. The container shares
# this machine's network: SSH to a lab host leaves from this machine's
# address on the host's lab segment (ansible_ssh_extra_args binds to it),
# and the lab's networks are internal ones (lab/labnet.py checks them before
# any lab address is contacted). ansible-test keeps its venvs in the cache.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${SDN_HA_CACHE:-$HOME/.cache/sdn_ha}
export CONTAINERS_CONF=$here/lab/containers.conf CONTAINERS_STORAGE_CONF=$here/lab/storage.conf
image=$(bash "$here/scripts/control-image.sh" --name)

mounts=(-v "$here:$here" -v "$cache:$cache" -v "$cache/ansible-test-control:/root/.ansible/test")
while [ "${1:-}" = -v ]; do
  mounts+=(-v "$2:$2")
  shift 2
done
mkdir -p "$cache/ansible-test-control"
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] && mounts+=(-v "$ca:$ca:ro")

exec podman run --rm --network host --pids-limit 4096 "${mounts[@]}" -w "$PWD" \
  -e ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$here/ansible.cfg}" \
  -e ANSIBLE_VAULT_PASSWORD_FILE="${ANSIBLE_VAULT_PASSWORD_FILE:-$here/lab/vault-password}" \
  -e SDN_HA_CACHE="$cache" -e HOME=/root -e ANSIBLE_FORCE_COLOR=0 -e ANSIBLE_NOCOLOR=1 \
  "$image" "$@"
