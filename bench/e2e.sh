#!/usr/bin/env bash
# bench/e2e.sh BUILD_DIR OUT.json: whole migrations of minivmm guests (real
# KVM, the writer workload: the guest keeps writing its memory while it
# moves) from host A to host B with tests/lib.sh mig_migrate, one per size in
# E2E_MEMS ("64M 256M"). Reports per guest: total time (the source's record:
# migrate command to completed), blackout (source paused -> destination vCPUs
# running), demand faults and pages per class (the destination's record),
# the daemon's own fault-latency histogram, the fault path minivmm chose
# (it probes for annotated KVM exits) and the guest's verdict.
# Unpinned: the guest's vCPU runs under the instruction emulator here and
# needs whatever CPU it can get. Exits 77 (skip) without a usable /dev/kvm.
BUILD=${1:?usage: e2e.sh BUILD_DIR OUT.json}
OUT=${2:?usage: e2e.sh BUILD_DIR OUT.json}
MEMS=${E2E_MEMS:-"64M 256M"}
source "$(dirname "$0")/../tests/lib.sh"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")

mig_require_kvm
mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B
: >"$WORK/results"
for mem in $MEMS; do
  mig_migrate "e2e-$mem" "$mem" writer
  [[ $MIG_RC == 0 && $SRC_RC == 0 && $DST_RC == 0 ]] ||
    mig_die "e2e $mem: migration failed (mig-ctl $MIG_RC, source VMM $SRC_RC, destination VMM $DST_RC)"
  jq -e '.guest_ok == true' "$WORK/dst.json" >/dev/null ||
    mig_die "e2e $mem: the guest did not verify its memory: $(jq -r .guest_verdict "$WORK/dst.json")"
  mib=$(( $(jq .ram_bytes "$WORK/dst.json") >> 20 ))
  path=$(sed -n 's/^minivmm: fault path: //p' "$WORK/vmm-B.log" | tail -n 1)
  jq -c -n --slurpfile s "$WORK/src.json" --slurpfile d "$WORK/dst.json" --argjson mib "$mib" \
    --arg path "${path:-unknown}" '
    ($s[0]) as $s | ($d[0]) as $d | {
      guest_mib: $mib, total_s: $s.total_s, blackout_ms: $s.blackout_ms,
      demand_faults: $d.demand_faults,
      pages: {demand: $d.pages_demand, background: $d.pages_background, zero: $d.pages_zero},
      detail: {workload: "writer", fault_path: $path, pages_total: $d.pages_total,
        ring_faults: $d.ring_faults, prefetch_pages: $d.prefetch_pages,
        pages_duplicate_sent: $s.pages_duplicate, install_eexist: $d.install_eexist,
        daemon_fault_p50_us: $d.fault_p50_us, daemon_fault_p99_us: $d.fault_p99_us,
        daemon_fault_max_us: $d.fault_max_us, bytes_sent: $s.bytes_sent,
        wire_gbytes_per_s: (if $s.total_s > 0 then $s.bytes_sent / $s.total_s / 1e9 else null end),
        guest_verdict: $d.guest_verdict}}' >>"$WORK/results" ||
    mig_die "e2e $mem: cannot read the migration records"
  log "e2e $mem: $(tail -n1 "$WORK/results")"
done
jq -s --arg hosts "$( ((MIG_USE_NETNS)) && echo "network namespaces + veth" || echo "loopback ports")" \
  --argjson cores "$(nproc)" '{conditions: {cores: $cores, hosts: $hosts, placement: "unpinned",
    guest: "minivmm writer (KVM, keeps writing during the migration)"}, e2e: .}' \
  "$WORK/results" >"$OUT" || mig_die "cannot write $OUT"
exit 0
