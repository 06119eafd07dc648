#!/usr/bin/env bash
# Build the lab's container images, one per Debian release the lab inventory
# uses (lab_release): systemd and every OS package the roles need, so that
# converging the lab needs no network. Each tag carries a hash of the
# package list, the release and this script, so an image is rebuilt only
# when one of them changes.
#   lab-image.sh bookworm trixie
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${SDN_HA_CACHE:-$HOME/.cache/sdn_ha}
packages_file=$here/lab/image-packages.txt
export CONTAINERS_CONF=$here/lab/containers.conf CONTAINERS_STORAGE_CONF=$here/lab/storage.conf
# shellcheck source=progress.sh
. "$here/scripts/progress.sh"
[ $# -gt 0 ] || { echo "usage: lab-image.sh RELEASE..." >&2; exit 2; }

build() {
  local release=$1 key image rootfs packages mirror
  key=$(cat "$packages_file" "$0" <(echo "$release") | sha256sum | cut -c1-12)
  image=localhost/sdn-ha-lab-$release:$key
  if podman image exists "$image"; then
    step "lab image $image up to date"
    return
  fi
  mirror=${SDN_HA_DEBIAN_MIRROR:-$(mirror_from_apt)}
  [ -n "$mirror" ] || { echo "lab image: no Debian mirror found; set SDN_HA_DEBIAN_MIRROR" >&2; exit 1; }

  rootfs=$cache/rootfs-$release-$key
  rm -rf "$rootfs" "$rootfs.partial"
  mkdir -p "$cache"
  packages=$(grep -v '^#' "$packages_file" | grep . | paste -sd, -)
  long_step "lab image: debootstrap $release with $(echo "$packages" | tr ',' '\n' | wc -l) packages" \
    debootstrap --variant=minbase --include="$packages" "$release" "$rootfs.partial" "$mirror"

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
  long_step "lab image: importing the $release image into the lab's podman storage" import_rootfs
  rm -rf "$rootfs"
  # Older builds of this release's image (and of the single image the lab
  # had before it ran two releases) are dead weight once a new one exists;
  # one that a container still runs stays until the lab is rebuilt.
  podman images --format '{{.Repository}}:{{.Tag}}' \
    | grep -E "^localhost/sdn-ha-lab(-$release)?:" | grep -v "^$image\$" \
    | xargs -r podman rmi >/dev/null 2>&1 || true
  step "lab image $image built"
}

for release in "$@"; do
  build "$release"
done
