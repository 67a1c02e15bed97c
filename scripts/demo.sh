#!/usr/bin/env bash
# `make demo`: two migrationd hosts, a demo VM booted in minivmm on host A,
# migrated post-copy to host B with mig-ctl while its guest keeps writing,
# then a short report. Usage: scripts/demo.sh [BUILD_DIR] (MEM=64M, WORKLOAD=writer)
BUILD=${1:-build}
MEM=${MEM:-64M}
WORKLOAD=${WORKLOAD:-writer}
source "$(dirname "$0")/../tests/lib.sh"

[[ $(id -u) == 0 ]] || echo "demo: not root: network namespaces need root; loopback will be used" >&2
mig_require_kvm
mig_hosts_up
mig_certs
log "certificates: throw-away CA and host certificates in $WORK/pki"
mig_daemon_start A
mig_daemon_start B
log "migrationd running on host A ($ADDR_A) and host B ($ADDR_B), TLS 1.3 with mutual auth"
mig_migrate demo "$MEM" "$WORKLOAD"

s=$WORK/src.json d=$WORK/dst.json r=$WORK/report.json
[[ -s $s && -s $d ]] || mig_die "no migration records"
verdict=$(jq -r '.verdict // "none"' "$r" 2>/dev/null || echo none)
cat <<REPORT

================ migrationd demo report ================
VM 'demo', $MEM guest RAM, $WORKLOAD guest, host A -> host B
state                source $(jq -r .state "$s"), destination $(jq -r .state "$d")
pages on demand      $(jq -r .pages_demand "$d")
pages in background  $(jq -r .pages_background "$d")
pages as zero marker $(jq -r .pages_zero "$d")
pages installed      $(jq -r .pages_installed "$d") of $(jq -r .pages_total "$d") (EEXIST $(jq -r .install_eexist "$d"), errors $(jq -r .install_errors "$d"))
demand faults        $(jq -r .demand_faults "$d") ($(jq -r .prefetch_pages "$d") pages prefetched around them)
fault path           $(sed -n 's/^minivmm: fault path: //p' "$WORK/vmm-B.log")
fault latency        p50 $(jq -r .fault_p50_us "$d") us, p99 $(jq -r .fault_p99_us "$d") us, max $(jq -r .fault_max_us "$d") us
blackout             $(jq -r '.blackout_ms | . * 10 | round / 10' "$s") ms (source paused -> destination vCPUs running)
total time           $(jq -r '.total_s | . * 1000 | round / 1000' "$s") s
bytes on the wire    $(jq -r .bytes_sent "$s")
guest verdict        $(jq -r '.guest_verdict' "$d")
=========================================================
REPORT
if [[ $MIG_RC == 0 && $verdict == intact && $SRC_RC == 0 && $DST_RC == 0 ]]; then
  echo "demo: migration completed and the guest verified its memory"
  exit 0
fi
echo "demo: FAILED (mig-ctl $MIG_RC, verdict $verdict, source VMM $SRC_RC, destination VMM $DST_RC)" >&2
mig_dump_logs
exit 1
