#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, once.
# Skips apt entirely when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libevent-dev libssl-dev openssl
      libprotobuf-c-dev protobuf-c-compiler libinih-dev libbpf-dev
      iproute2 jq systemd procps man-db bc clang libclang-rt-14-dev
      bpftool systemtap-sdt-dev bpftrace curl
      libnghttp2-dev libsystemd-dev python3-grpcio python3-grpc-tools python3-protobuf bash-completion
      libxxhash-dev
      debhelper dpkg-dev lintian fakeroot)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
