#!/usr/bin/env bash
# Build the version matrix's control node: the Debian 13 lab image with the
# current Ansible release in a venv (lab/control-node/). The tag carries a
# hash of the base image, the Containerfile, the requirements and this
# script, so the image is rebuilt only when one of them changes.
#   control-image.sh           build it if needed
#   control-image.sh --name    print the image's name (it must exist)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
release=trixie
context=$here/lab/control-node
export CONTAINERS_CONF=$here/lab/containers.conf CONTAINERS_STORAGE_CONF=$here/lab/storage.conf
# shellcheck source=progress.sh
. "$here/scripts/progress.sh"

images=$(podman images --format '{{.Repository}}:{{.Tag}}')
base=$(grep -m1 "^localhost/sdn-ha-lab-$release:" <<<"$images") || {
  echo "control image: no lab image for $release; run scripts/lab-image.sh $release first" >&2
  exit 1
}
key=$(cat "$context/Containerfile" "$context/requirements.txt" "$0" <(echo "$base") | sha256sum | cut -c1-12)
image=localhost/sdn-ha-control-$release:$key

if [ "${1:-}" = --name ]; then
  podman image exists "$image" || { echo "control image: $image is missing; run make setup" >&2; exit 1; }
  echo "$image"
  exit 0
fi
if podman image exists "$image"; then
  step "control image $image up to date"
  exit 0
fi
# The build reaches the package index with this machine's CA bundle.
ca=/etc/ssl/certs/ca-certificates.crt
mounts=()
[ -f "$ca" ] && mounts=(--volume "$ca:$ca:ro")
long_step "control image: $image, $(grep -v '^#' "$context/requirements.txt" | paste -sd' ') on $release" \
  podman build --network host "${mounts[@]}" --build-arg "BASE=$base" -t "$image" "$context"
# Older control images go; rmi without --force leaves one a container uses.
grep "^localhost/sdn-ha-control-$release:" <<<"$images" | grep -vx "$image" | xargs -r podman rmi >/dev/null 2>&1 || true
step "control image $image built"
