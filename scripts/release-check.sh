#!/usr/bin/env bash
# What a Debian 12 machine can prove about the two README commands on another
# Debian release (Debian 13 has podman 5 and Python 3.13): a minimal root of
# that release made with debootstrap, this checkout copied in, and in it, as
# on a fresh machine:
#   1. scripts/setup.sh, whole: the release's packages (podman, netavark,
#      runc, ...), the venv with the pinned Python packages on the release's
#      Python, the SSH key, both lab images and both Faucet wheelhouses;
#   2. the lab's podman pins, as podman reports them (labnet.py check
#      --podman-only);
#   3. make lint unit build examples collection, on the release's Python;
#   4. with LAB=1: make lab, in a network namespace of its own so that its
#      bridges and routes cannot meet this machine's lab, then make lab again,
#      which must change nothing; then make destroy.
# The root is kept under ~/.cache/sdn_ha/release-<release> for a rerun and
# removed with --clean. Not part of make test (it downloads a release's
# packages and PyPI wheels). Prints PROVEN or FAILED for each step.
#   scripts/release-check.sh trixie [--clean]
set -euo pipefail
release=${1:?usage: release-check.sh RELEASE [--clean]}
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${SDN_HA_CACHE:-$HOME/.cache/sdn_ha}
root=$cache/release-$release
# shellcheck source=progress.sh
. "$here/scripts/progress.sh"

if [ "${2:-}" = --clean ]; then
  rm -rf --one-file-system "$root"
  step "removed $root"
  exit 0
fi
# Everything below runs in a mount namespace of its own: the root's mounts,
# and those podman makes inside it, end with this script, whatever happens.
if [ -z "${SDN_HA_RELEASE_CHECK_NS:-}" ]; then
  exec unshare --mount --propagation private env SDN_HA_RELEASE_CHECK_NS=1 bash "$0" "$@"
fi

if [ ! -x "$root/usr/bin/python3" ]; then
  mirror=${SDN_HA_DEBIAN_MIRROR:-$(mirror_from_apt)}
  [ -n "$mirror" ] || { echo "release check: no Debian mirror found; set SDN_HA_DEBIAN_MIRROR" >&2; exit 1; }
  rm -rf --one-file-system "$root"
  long_step "release check: debootstrap a minimal $release" \
    debootstrap --variant=minbase --include=make,ca-certificates,python3,iproute2,procps "$release" "$root" "$mirror"
fi
# The root a mount point of its own, as a real one is: podman remounts "/"
# when it unpacks an image.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# This machine's CA bundle, as the root's own: a proxy that inspects TLS
# signs with a CA only this machine trusts (a fresh machine of the release
# would trust what this one does).
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/host-ca.crt"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root/work"
mkdir -p "$root/work"
tar -C "$here" --exclude=./.git -c . | tar -C "$root/work" -x

inside() {
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/ssl/certs/host-ca.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/host-ca.crt \
    SSL_CERT_FILE=/etc/ssl/certs/host-ca.crt LANG=C.UTF-8 /bin/bash -c "cd /work && $*"
}
verdict() {
  local label=$1
  shift
  if "$@"; then step "PROVEN: $label"; else step "FAILED: $label"; failed=1; fi
}
failed=0
step "release check: $(inside 'grep PRETTY_NAME /etc/os-release; python3 --version')"
verdict "make setup on $release" inside 'make setup'
verdict "podman on $release reports every pin the lab needs: $(inside 'podman --version')" \
  inside 'export CONTAINERS_CONF=/work/lab/containers.conf CONTAINERS_STORAGE_CONF=/work/lab/storage.conf; ~/.cache/sdn_ha/venv/bin/python lab/labnet.py check --podman-only'
verdict "make lint unit build examples collection on $(inside '~/.cache/sdn_ha/venv/bin/python --version')" \
  inside 'make lint unit build examples collection'
# The second `make lab` converges the lab again (create.yml, site.yml): no
# host may change.
lab_check() {
  set -o pipefail
  ip link set lo up
  make lab >/tmp/lab-1.log 2>&1 && make lab 2>&1 | tee /tmp/lab-2.log | grep -A12 "PLAY RECAP" | tail -13 \
    && ! grep -q "changed=[1-9]" /tmp/lab-2.log
  local rc=$?
  make destroy >/dev/null 2>&1
  return "$rc"
}
if [ "${LAB:-0}" = 1 ]; then
  verdict "make lab on $release, in a network namespace of its own, then make lab again with zero changes" \
    inside "unshare --net bash -c '$(declare -f lab_check); lab_check'"
fi
exit "$failed"
