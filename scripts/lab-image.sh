#!/usr/bin/env bash
# Build the lab's container image: Debian 12 with systemd and every OS package
# the roles need, so that converging the lab needs no network. The image tag
# carries a hash of the package list and of this script, so the image is
# rebuilt only when either changes.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${SDN_HA_CACHE:-$HOME/.cache/sdn_ha}
packages_file=$here/lab/image-packages.txt
export CONTAINERS_CONF=$here/lab/containers.conf CONTAINERS_STORAGE_CONF=$here/lab/storage.conf
# shellcheck source=progress.sh
. "$here/scripts/progress.sh"

key=$(cat "$packages_file" "$0" | sha256sum | cut -c1-12)
image=localhost/sdn-ha-lab:$key

if podman image exists "$image"; then
  step "lab image $image up to date"
  exit 0
fi

# The Debian mirror this machine already uses; no host is hard-coded here.
mirror_from_apt() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "$uri"
}
mirror=${SDN_HA_DEBIAN_MIRROR:-$(mirror_from_apt)}
[ -n "$mirror" ] || { echo "lab image: no Debian mirror found; set SDN_HA_DEBIAN_MIRROR" >&2; exit 1; }

rootfs=$cache/rootfs-$key
rm -rf "$rootfs" "$rootfs.partial"
mkdir -p "$cache"
packages=$(grep -v '^#' "$packages_file" | grep . | paste -sd, -)
long_step "lab image: debootstrap bookworm with $(echo "$packages" | tr ',' '\n' | wc -l) packages" \
  debootstrap --variant=minbase --include="$packages" bookworm "$rootfs.partial" "$mirror"

# Services start only where a role enables them; sshd is how Ansible gets in.
chroot "$rootfs.partial" systemctl disable --quiet haproxy keepalived conntrackd openvswitch-switch 2>/dev/null || true
chroot "$rootfs.partial" systemctl enable --quiet ssh
chroot "$rootfs.partial" systemctl mask --quiet getty@tty1.service serial-getty@.service console-getty.service \
  systemd-networkd-wait-online.service 2>/dev/null || true
: > "$rootfs.partial/etc/machine-id"
mkdir -p "$rootfs.partial/root/.ssh"
chmod 700 "$rootfs.partial/root/.ssh"
rm -rf "$rootfs.partial"/var/cache/apt/archives/*.deb "$rootfs.partial"/var/lib/apt/lists/*
mv "$rootfs.partial" "$rootfs"

import_rootfs() {
  tar -C "$rootfs" -c . | podman import --quiet \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image"
}
long_step "lab image: importing it into the lab's podman storage" import_rootfs
rm -rf "$rootfs"
# Older builds of the image are dead weight once a new one exists.
podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/sdn-ha-lab:' | grep -v ":$key\$" \
  | xargs -r podman rmi --force >/dev/null 2>&1 || true
step "lab image $image built"
