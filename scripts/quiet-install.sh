#!/usr/bin/env bash
# Installs Debian packages that ship a service the project needs only a tool
# of (prometheus for promtool), without their recommends and without running
# the service: invoke-rc.d and deb-systemd-invoke ask policy-rc.d, which
# says no (101) while they install (one is put in place only if the host has
# none, and removed after); the units they enabled are disabled again.
# usage: quiet-install.sh PACKAGE...
set -euo pipefail
policy=/usr/sbin/policy-rc.d
made=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  made=1
fi
trap '((made)) && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
for p in "$@"; do
  for u in $(dpkg -L "$p" | grep -E '^/(usr/)?lib/systemd/system/[^/]+\.service$'); do
    systemctl disable "$(basename "$u")" >/dev/null 2>&1 || true
  done
done
