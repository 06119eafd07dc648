#!/usr/bin/env bash
# Build the Faucet wheelhouse of each Debian release the lab uses, for that
# release's Python (3.11 on Debian 12, 3.13 on Debian 13), inside that
# release's lab image: pytricia is compiled there, against the headers of the
# Python that will run it, whatever Python this machine has. One tar per
# release, rebuilt when the Faucet version or this script changes.
#   faucet-wheelhouse.sh VERSION RELEASE...
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${SDN_HA_CACHE:-$HOME/.cache/sdn_ha}
export CONTAINERS_CONF=$here/lab/containers.conf CONTAINERS_STORAGE_CONF=$here/lab/storage.conf
# shellcheck source=progress.sh
. "$here/scripts/progress.sh"
[ $# -gt 1 ] || { echo "usage: faucet-wheelhouse.sh VERSION RELEASE..." >&2; exit 2; }
version=$1
shift
stamp="faucet $version, $(sha256sum "$0" | cut -c1-12)"

# The throwaway builder: the lab image, with the compiler and headers added
# in the container only. It uses this machine's network and its CA bundle
# (a proxy that inspects TLS signs with a CA only this machine trusts).
# --use-pep517: pytricia has only a setup.py, which the pip of Debian 12
# builds without the wheel package only this way.
build_in_image() {
  local image=$1 out=$2 ca=/etc/ssl/certs/ca-certificates.crt mounts=()
  [ -f "$ca" ] && mounts=(-v "$ca:/etc/ssl/certs/host-ca.crt:ro" -e PIP_CERT=/etc/ssl/certs/host-ca.crt)
  podman run --rm --network host --entrypoint /bin/sh -v "$out:/out" "${mounts[@]}" "$image" -euc "
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q update
    apt-get -q install -y --no-install-recommends gcc libc6-dev python3-dev
    python3 -m venv /tmp/build
    /tmp/build/bin/pip wheel --disable-pip-version-check --use-pep517 -q -w /out/wheels 'faucet==$version'
    python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' > /out/python"
}

for release in "$@"; do
  archive=$cache/faucet-wheelhouse-$release.tar
  if [ -f "$archive" ] && [ "$(cat "$archive.stamp" 2>/dev/null)" = "$stamp" ]; then
    step "Faucet $version wheelhouse for $release present"
    continue
  fi
  image=$(podman images --format '{{.Repository}}:{{.Tag}}' | grep -m1 "^localhost/sdn-ha-lab-$release:") || {
    echo "faucet wheelhouse: no lab image for $release; run scripts/lab-image.sh $release first" >&2
    exit 1
  }
  work=$(mktemp -d "$cache/wheelhouse-$release.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  long_step "$release: building the Faucet $version wheelhouse in $image (compiles pytricia)" \
    build_in_image "$image" "$work"
  ls "$work"/wheels/faucet-*.whl >/dev/null
  tar -C "$work/wheels" -cf "$archive.partial" .
  mv "$archive.partial" "$archive"
  echo "$stamp" > "$archive.stamp"
  step "Faucet $version wheelhouse for $release (Python $(cat "$work/python")): $archive"
  rm -rf "$work"
done
