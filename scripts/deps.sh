#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, once.
# Skips apt entirely when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libevent-dev libssl-dev openssl
      libprotobuf-c-dev protobuf-c-compiler libinih-dev libbpf-dev libzstd-dev
      iproute2 jq systemd procps man-db bc clang libclang-rt-14-dev
      bpftool systemtap-sdt-dev bpftrace curl
      libnghttp2-dev libsystemd-dev python3-grpcio python3-grpc-tools python3-protobuf bash-completion
      libxxhash-dev
      debhelper dpkg-dev lintian fakeroot)
# promtool (tests/integration/metrics_prom.sh) comes with Debian's prometheus
# server package (~96 MB installed): without its recommends, and with its
# server neither started nor enabled (scripts/quiet-install.sh).
quiet=(prometheus)
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=() qmissing=()
for p in "${pkgs[@]}"; do have "$p" || missing+=("$p"); done
for p in "${quiet[@]}"; do have "$p" || qmissing+=("$p"); done
((${#missing[@]} + ${#qmissing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing packages: ${missing[*]} ${qmissing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]} ${qmissing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
((${#missing[@]} == 0)) || apt-get install -y -qq "${missing[@]}" >/dev/null
((${#qmissing[@]} == 0)) || "$(dirname "$0")/quiet-install.sh" "${qmissing[@]}"
