#!/usr/bin/env bash
# Generates throw-away certificates for the demo and the tests:
#   DIR/ca.pem, DIR/ca.key                 the migration CA
#   DIR/NAME.pem, DIR/NAME.key             a host certificate per NAME=IP[,IP...] argument
#                                          (IP in subjectAltName, client+server use)
#   DIR/other-ca.pem, DIR/other.pem/.key   a certificate from an unrelated CA
#   DIR/expired.pem/.key                   signed by our CA, expired in 2020
#   DIR/ctl-ca.pem, DIR/ctl-ca.key         the control CA (operators' client
#                                          certificates, [control] ca)
#   DIR/NAME-ctl.pem/.key                  per host: the control listener's own
#                                          certificate, from the control CA
#   DIR/ops-operate.pem/.key               operator certificates from the control
#   DIR/ops-read.pem/.key                  CA (client use): CN ops-operate with URI
#   DIR/ops-unlisted.pem/.key              SAN spiffe://fleet/ops/operate, CN
#                                          ops-read with e-mail SAN
#                                          ops-read@fleet.example, CN ops-unlisted
# usage: gen-certs.sh DIR NAME=IP [NAME=IP ...]
set -euo pipefail
dir=$1; shift
mkdir -p "$dir"
cd "$dir"
q() { "$@" >/dev/null 2>&1 || { echo "gen-certs: failed: $*" >&2; exit 1; }; }

mkca() { # name subject
  q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
mkleaf() { # name cn ip ca [extensions: default IP and DNS SANs, server+client]
  local name=$1 cn=$2 ip=$3 ca=$4 ext=${5:-}
  q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn"
  # IP may list several addresses: 192.0.2.2,192.0.2.3
  if [[ -n $ext ]]; then
    printf '%s\nbasicConstraints=CA:FALSE\n' "$ext" >"$name.ext"
  else
    printf 'subjectAltName=IP:%s,DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' \
      "${ip//,/,IP:}" "$cn" >"$name.ext"
  fi
  q openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
    -out "$name.pem" -days 2 -extfile "$name.ext"
  rm -f "$name.csr" "$name.ext"
  chmod 600 "$name.key"
}

mkca ca "migrationd test CA"
mkca other-ca "unrelated CA"
for arg in "$@"; do
  mkleaf "${arg%%=*}" "${arg%%=*}" "${arg#*=}" ca
done
mkleaf other other 127.0.0.1 other-ca

# The control plane's own CA: operators are not peers.
mkca ctl-ca "migrationd control CA"
for arg in "$@"; do
  mkleaf "${arg%%=*}-ctl" "${arg%%=*}" "${arg#*=}" ctl-ca
done
mkleaf ops-operate ops-operate - ctl-ca \
  $'subjectAltName=URI:spiffe://fleet/ops/operate\nextendedKeyUsage=clientAuth'
mkleaf ops-read ops-read - ctl-ca \
  $'subjectAltName=email:ops-read@fleet.example\nextendedKeyUsage=clientAuth'
mkleaf ops-unlisted ops-unlisted - ctl-ca $'extendedKeyUsage=clientAuth'

# An expired certificate from our own CA: `openssl ca` is the tool that takes
# explicit validity dates.
mkdir -p ca-db/new
: >ca-db/index.txt
echo 1000 >ca-db/serial
cat >ca-db/ca.cnf <<CNF
[ca]
default_ca = expired_ca
[expired_ca]
dir = ca-db
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db/new
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
[leaf]
subjectAltName = IP:127.0.0.1,DNS:expired
extendedKeyUsage = serverAuth,clientAuth
basicConstraints = CA:FALSE
CNF
q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout expired.key -out expired.csr -subj "/CN=expired"
q openssl ca -batch -config ca-db/ca.cnf -extensions leaf -in expired.csr -out expired.pem \
  -startdate 20200101000000Z -enddate 20200102000000Z -notext
chmod 600 expired.key
rm -rf ca-db expired.csr
