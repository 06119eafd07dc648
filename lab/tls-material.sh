#!/usr/bin/env bash
# Make the lab's TLS material (sdn_ha_tls) and write it into the lab
# inventory: a CA, and a certificate and key for each LB and switch host,
# EC P-256, valid ten years. The keys are encrypted with the lab's public
# vault password, as a real inventory keeps its keys in Ansible Vault.
# The material is committed; run this again only to replace it.
#   lab/tls-material.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
inventory=$root/inventories/lab
vault_password=$root/lab/vault-password
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

curve=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${curve[@]}" -keyout "$work/ca-key.pem" -out "$work/ca.pem" -days 3650 \
  -subj "/CN=sdn_ha lab CA" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' >"$work/ext"

indent() { sed 's/^/  /'; }

{
  echo "---"
  echo "# The CA that signs the lab's TLS certificates (lab/tls-material.sh);"
  echo "# sdn_ha_tls turns TLS on (the failover scenario does)."
  echo "sdn_ha_tls_ca: |"
  indent <"$work/ca.pem"
} >"$inventory/group_vars/all/tls.yml"

mkdir -p "$inventory/host_vars"
for host in lb1 lb2 sw1 sw2; do
  openssl req "${curve[@]}" -keyout "$work/$host-key.pem" -out "$work/$host.csr" -subj "/CN=$host" 2>/dev/null
  openssl x509 -req -in "$work/$host.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" -CAcreateserial \
    -days 3650 -extfile "$work/ext" -out "$work/$host.pem" 2>/dev/null
  {
    echo "---"
    echo "# $host's TLS certificate and key (lab/tls-material.sh)."
    echo "sdn_ha_tls_cert: |"
    indent <"$work/$host.pem"
    ansible-vault encrypt_string --vault-password-file "$vault_password" --stdin-name sdn_ha_tls_key \
      <"$work/$host-key.pem" 2>/dev/null
  } >"$work/$host.yml"
  mkdir -p "$inventory/host_vars/$host"
  mv "$work/$host.yml" "$inventory/host_vars/$host/tls.yml"
done
echo "wrote $inventory/group_vars/all/tls.yml and host_vars/{lb1,lb2,sw1,sw2}/tls.yml"
