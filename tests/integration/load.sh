#!/usr/bin/env bash
# Load: one daemon pair runs 16 migrations at once, 8 from A to B and 8 from
# B to A, of small writer guests. All must complete and every guest must
# verify its memory. Prints each migration's fault latency p99 and each
# daemon's peak RSS, and checks the peak stays bounded (fixed buffers plus a
# few bytes per page).
BUILD=$1
PER_SIDE=${2:-8}
MEM=${3:-8M}
source "$(dirname "$0")/../lib.sh"
mig_require_kvm
mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B
other() { [[ $1 == A ]] && echo B || echo A; }
declare -A VSRC VDST

for h in A B; do
  for i in $(seq "$PER_SIDE"); do
    vm=${h,,}$i
    mig_vmm_start "$h" "$vm" "vmm-$vm-src" --mem "$MEM" --vcpus 1 --workload writer
    VSRC[$vm]=$VMM_PID
    mig_vmm_start "$(other "$h")" "$vm" "vmm-$vm-dst" --mem "$MEM" --vcpus 1 --incoming \
      --report "$WORK/report-$vm.json"
    VDST[$vm]=$VMM_PID
  done
done
for vm in "${!VSRC[@]}"; do
  mig_wait_line "$WORK/vmm-$vm-src.log" 'guest ready' 120 "${VSRC[$vm]}" ||
    mig_die "guest $vm not ready"
done
sleep 0.5
declare -A TOKEN
for h in A B; do
  for i in $(seq "$PER_SIDE"); do
    vm=${h,,}$i
    TOKEN[$vm]=$(ctl "$(other "$h")" prepare "$vm" -q) || mig_die "prepare $vm failed"
  done
done
log "starting $((2 * PER_SIDE)) migrations at once, both directions"
t0=$(date +%s.%N)
pids=()
for h in A B; do
  addr=ADDR_$(other "$h")
  for i in $(seq "$PER_SIDE"); do
    vm=${h,,}$i
    ctl "$h" migrate "$vm" --to "${!addr}" --token "${TOKEN[$vm]}" --wait --timeout 300 \
      >"$WORK/migrate-$vm.out" 2>&1 &
    pids+=($!)
  done
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
t1=$(date +%s.%N)
mig_assert_eq "every mig-ctl migrate --wait succeeded" "$fails" 0
printf '%-6s %-10s %8s %8s %10s %s\n' VM STATE FAULTS P99_US VERDICT WALL
for h in A B; do
  for i in $(seq "$PER_SIDE"); do
    vm=${h,,}$i
    mig_wait_exit "${VDST[$vm]}" 120; rc=$?
    mig_assert_verified "$WORK/vmm-$vm-dst.log" "$MEM" >/dev/null
    mig_wait_exit "${VSRC[$vm]}" 30
    j=$(ctl "$(other "$h")" --json status "$vm")
    printf '%-6s %-10s %8s %8s %10s %ss\n' "$vm" "$(jq -r .state <<<"$j")" \
      "$(jq -r .demand_faults <<<"$j")" "$(jq -r .fault_p99_us <<<"$j")" \
      "$(jq -r .verdict "$WORK/report-$vm.json" 2>/dev/null)" "$(jq -r .total_s <<<"$j")"
    [[ $rc == 0 && $(jq -r .verdict "$WORK/report-$vm.json" 2>/dev/null) == intact &&
       $(jq -r '.state == "COMPLETED" and .install_eexist == 0 and
         .pages_installed == .pages_total' <<<"$j") == true ]] ||
      mig_fail "$vm did not complete intact"
  done
done
hwm_a=$(awk '/^VmHWM/ {print $2}' /proc/$PID_DA/status)
hwm_b=$(awk '/^VmHWM/ {print $2}' /proc/$PID_DB/status)
echo "wall time $(echo "$t1 - $t0" | bc) s for $((2 * PER_SIDE)) migrations of $MEM"
echo "peak RSS: daemon A ${hwm_a} KiB, daemon B ${hwm_b} KiB"
if [[ ${MIG_SANITIZE:-0} != 1 ]]; then
  # Fixed part (TLS, libevent, up to 2 MiB of queued background per
  # migration) plus a few bytes per page.
  bound=$((32768 + 2 * PER_SIDE * 3072))
  mig_assert_eq "daemon A peak RSS under ${bound} KiB" "$((hwm_a < bound))" 1
  mig_assert_eq "daemon B peak RSS under ${bound} KiB" "$((hwm_b < bound))" 1
fi
mig_finish
