#!/usr/bin/env bash
# Build the collection, look inside the tarball, install it into an empty
# collections path, and use it from there: ansible-doc for every module and
# filter, role docs from argument_specs, and the playbooks by FQCN.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ansible-galaxy collection build --force --output-path "$work" "$here" >/dev/null
tarball=$(ls "$work"/sdn_ha-control_plane-*.tar.gz)
echo "build: $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"

listing=$(tar tzf "$tarball")
for forbidden in collections/ inventories/ molecule/ lab/ scripts/ sidecar/ .ci/ .hypothesis/ ansible.cfg site.yml Makefile; do
  if grep -q "^${forbidden}" <<<"$listing"; then
    echo "build: FAIL: the tarball contains ${forbidden}" >&2
    exit 1
  fi
done
if grep -q 'lab-traffic' <<<"$listing"; then
  echo "build: FAIL: the tarball contains the lab's traffic generator" >&2
  exit 1
fi
if grep -q '^l' <<<"$(tar tvzf "$tarball")"; then
  echo "build: FAIL: the tarball contains a symlink" >&2
  exit 1
fi
echo "build: no lab files and no symlinks in the tarball"
grep -q '^roles/mirror/files/sdn_ha_mirror-.*-py3-none-any.whl$' <<<"$listing" \
  || { echo "build: FAIL: the tarball lacks the sidecar's wheel" >&2; exit 1; }
echo "build: the sidecar ships as its wheel, in the mirror role"

export ANSIBLE_COLLECTIONS_PATH=$work/installed
unset ANSIBLE_CONFIG
cd "$work"
ansible-galaxy collection install --no-deps -p "$ANSIBLE_COLLECTIONS_PATH" "$tarball" >/dev/null

# ansible-doc shows a page with examples for every plugin of each type.
for kind in module:modules filter:filter lookup:lookup; do
  type=${kind%%:*}
  count=0
  for plugin in "$here"/plugins/"${kind#*:}"/*.py; do
    name=sdn_ha.control_plane.$(basename "$plugin" .py)
    [[ $(ansible-doc -t "$type" "$name") == *EXAMPLES* ]] || { echo "build: FAIL: ansible-doc -t $type $name" >&2; exit 1; }
    count=$((count + 1))
  done
  echo "build: ansible-doc works for $count ${type}s"
done

for role in "$here"/roles/*/; do
  name=sdn_ha.control_plane.$(basename "$role")
  [[ $(ansible-doc -t role "$name") == *"ENTRY POINT:"*main* ]] || { echo "build: FAIL: ansible-doc -t role $name" >&2; exit 1; }
done
echo "build: argument_specs documented for every role"
python3 "$here/scripts/role_readmes.py" --check
echo "build: every role's README is what its argument specs say"

printf 'all:\n  hosts:\n    localhost:\n      ansible_connection: local\n' > inventory.yml
for playbook in site validate status failover rolling_restart; do
  ansible-playbook -i inventory.yml "sdn_ha.control_plane.$playbook" --syntax-check >syntax.log 2>&1 \
    || { cat syntax.log >&2; exit 1; }
done
echo "build: playbooks site, validate, status, failover and rolling_restart run by FQCN from the installed collection"
