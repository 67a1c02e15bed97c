#!/usr/bin/env bash
# The VMM skeleton of doc/vmm-integration.md (vmm-shim/example/skeleton-vmm.c)
# built as a VMM vendor builds it: against the installed libmigshim (cmake
# --install into a DESTDIR), with pkg-config's flags alone, linked to
# libmigshim.so.0 there (rpath). Then migrated between two real daemons
# while its vCPU writes guest RAM; the destination resumes from the handed-
# over vCPU state with pages missing and checks every byte.
# usage: vmm_skeleton.sh BUILD_DIR [uffd|ring] [copy|minor]
BUILD=$1
MODE=${2:-uffd}
INSTALL=${3:-copy}
source "$(dirname "$0")/../lib.sh"
command -v pkg-config >/dev/null || mig_skip "pkg-config is not installed"
VM=skel-$MODE-$INSTALL
MEM=16M
mig_install_root
L=$INST_LIB
# shellcheck disable=SC2046,SC2086
cc -std=gnu11 -O2 -Wall -Wextra -Werror $INST_CFLAGS -o "$WORK/skeleton-vmm" \
  "$SRC/vmm-shim/example/skeleton-vmm.c" $(pkg-config --cflags --libs migshim) -pthread \
  -Wl,-rpath,"$L" 2>"$WORK/cc.log"
mig_assert_eq "the skeleton builds against the installed libmigshim" "$?" 0
cat "$WORK/cc.log"
mig_assert_eq "and runs with the installed libmigshim.so.0" \
  "$(ldd "$WORK/skeleton-vmm" | awk '/libmigshim/ {print $3}')" "$L/libmigshim.so.0"
mig_assert_eq "not with the in-tree static archive" \
  "$(nm "$WORK/skeleton-vmm" | grep -c ' T migshim_')" 0
((MIG_FAILS)) && mig_finish

mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B
mig_spawn A "$WORK/src.log" "$WORK/skeleton-vmm" source "$WORK/A/vmm.sock" "$VM" "${MEM%M}"
src=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || mig_die "source skeleton not ready"
mig_spawn B "$WORK/dst.log" "$WORK/skeleton-vmm" incoming "$WORK/B/vmm.sock" "$VM" "${MEM%M}" \
  "$MODE" "$INSTALL"
dst=$SPAWN_PID
for _ in $(seq 50); do
  token=$(ctl B prepare "$VM" -q 2>/dev/null) && break
  sleep 0.1
done
[[ -n ${token:-} ]] || mig_die "prepare on host B failed"
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" --wait --timeout 120 >/dev/null
mig_assert_eq "migrate exit code" "$?" 0
mig_wait_exit "$dst" 60; mig_assert_eq "destination skeleton checked every page" "$?" 0
mig_wait_exit "$src" 30; mig_assert_eq "source skeleton left" "$?" 0
cat "$WORK/src.log" "$WORK/dst.log"
mig_assert_verified "$WORK/dst.log" "$MEM"
ctl B --json status "$VM" >"$WORK/d.json"
mig_assert_eq "destination completed" "$(jq -r .state "$WORK/d.json")" COMPLETED
mig_assert_eq "the daemon saw the skeleton's fault path and install mode" \
  "$(jq -r '.fault_path + "/" + .install_mode' "$WORK/d.json")" "$MODE/$INSTALL"
mig_assert_eq "the resumed vCPU's first touches were served on demand" \
  "$(jq -r '.demand_faults > 0' "$WORK/d.json")" true
pages=$(($(mig_bytes "$MEM") / 4096))
mig_assert_eq "the guest's verdict reached the daemon" \
  "$(jq -r '.guest_verdict' "$WORK/d.json")" "skeleton-vmm: $pages of $pages pages as on the source"
mig_finish
