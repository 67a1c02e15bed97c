#!/usr/bin/env bash
# Guest RAM on 2 MiB hugetlbfs pages: the migration moves whole 2 MiB pages
# (one per frame), zero pages by copying zeros (hugetlbfs has no
# UFFDIO_ZEROPAGE), through both fault paths; threads touching missing
# memory are served, every value checks out. Reserves the huge pages it
# needs and gives them back; skips (with the reason) if the kernel refuses.
# With INSTALL minor, pages are written through the daemon's own mapping of
# the hugetlbfs memfd and mapped with UFFDIO_CONTINUE.
# usage: hugepages.sh BUILD_DIR uffd|ring [copy|minor]
BUILD=$1
MODE=$2
INSTALL=${3:-copy}
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
MEM=64
need=$((2 * MEM / 2 + 8))
[[ -w /proc/sys/vm/nr_hugepages ]] || mig_skip "cannot reserve huge pages (no /proc/sys/vm/nr_hugepages write access)"
old=$(cat /proc/sys/vm/nr_hugepages)
restore_hp() { echo "$old" >/proc/sys/vm/nr_hugepages; }
echo $((old + need)) >/proc/sys/vm/nr_hugepages
free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
if ((free < need)); then
  restore_hp
  mig_skip "the kernel gave only $free free 2 MiB pages of the $need needed"
fi
mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B
VM=huge-$MODE-$INSTALL
mig_spawn A "$WORK/src.log" "$SHIMVM" source -H -s "$WORK/A/vmm.sock" -n "$VM" -m $MEM
src=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || { restore_hp; mig_die "source not ready"; }
mig_spawn B "$WORK/dst.log" "$SHIMVM" dest -H -s "$WORK/B/vmm.sock" -n "$VM" -m $MEM -M "$MODE" -I "$INSTALL" -t 4 -k 16
dst=$SPAWN_PID
sleep 0.5
grep -q "attached (incoming" "$WORK/migrationd-B.log"
mig_assert_eq "hugetlbfs VM attached" "$?" 0
grep -q "minor-mode installs" "$WORK/migrationd-B.log"
mig_assert_eq "daemon sees the VM's install mode" "$?" "$([[ $INSTALL == minor ]] && echo 0 || echo 1)"
token=$(ctl B prepare "$VM" -q) || { restore_hp; mig_die "prepare failed"; }
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" --wait --timeout 300 >/dev/null
mig_assert_eq "migration of 2 MiB pages completed" "$?" 0
mig_wait_exit "$dst" 60; mig_assert_eq "every value checked out" "$?" 0
mig_assert_verified "$WORK/dst.log" ${MEM}M
mig_wait_exit "$src" 30
j=$(ctl B --json status "$VM")
echo "$j" | jq -c '{pages_total, pages_installed, pages_demand, pages_background, pages_zero, demand_faults, install_eexist}'
mig_assert_eq "migrated in 2 MiB pages" "$(jq -r .pages_total <<<"$j")" $((MEM / 2))
mig_assert_eq "every page installed once" "$(jq -c '[.pages_installed == .pages_total, .install_eexist]' <<<"$j")" "[true,0]"
mig_assert_eq "served on demand too" "$(jq -r '.demand_faults > 0' <<<"$j")" true
mig_assert_eq "status names the install mode" "$(jq -r .install_mode <<<"$j")" "$INSTALL"
grep '^{' "$WORK/dst.log"
mig_cleanup
restore_hp
mig_finish
