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
#
# Then the daemons' scheduling (the "scheduling" array): E2E_ROUNDS (3)
# rounds of E2E_SCHED_MEM (64M) writer migrations, alternating the settings
# of E2E_SCHED ("default unit"; also nice-10, nice-15, rr1, fifo1, pinned),
# both daemons restarted under each: "default" as started here, "unit" what
# systemd/migrationd.service sets (Nice=, CPUSchedulingPolicy=,
# CPUSchedulingPriority=, read from the rendered unit), nice-N, rr1/fifo1
# (SCHED_RR / SCHED_FIFO priority 1), "pinned" (daemons on the last CPU,
# VMMs on the others). Per migration: demand faults, total time, and what it
# costs the guest: "guest_cpus", the CPU time its VMM's threads got over
# the destination's migration (start to completed) per second, sampled from
# /proc/PID/task/*/schedstat every ~5 ms. The writer guest is CPU-bound
# (its vCPUs run under the instruction emulator), so this is its progress
# rate: CPU it lost to the daemons, or time its vCPUs slept on faults, shows
# as a lower figure (at most the vCPU count).
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

# sched_wrap SETTING: $WORK/sched-daemon (and $WORK/sched-vmm) exec their
# arguments under SETTING.
sched_wrap() {
  local pre= vpre= nice pol prio last=$(($(nproc) - 1))
  case $1 in
    default) ;;
    unit)
      nice=$(sed -n 's/^Nice=//p' "$BUILD/systemd/test/migrationd.service")
      pol=$(sed -n 's/^CPUSchedulingPolicy=//p' "$BUILD/systemd/test/migrationd.service")
      prio=$(sed -n 's/^CPUSchedulingPriority=//p' "$BUILD/systemd/test/migrationd.service")
      [[ -n $nice ]] && pre="nice -n $nice"
      [[ -n $pol && $pol != other ]] && pre="$pre chrt --$pol ${prio:-1}";;
    nice-*) pre="nice -n -${1#nice-}";;
    rr1) pre="chrt --rr 1";;
    fifo1) pre="chrt --fifo 1";;
    pinned) ((last > 0)) || return 1
      pre="taskset -c $last"; vpre="taskset -c 0-$((last - 1))";;
    *) return 1;;
  esac
  printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$pre" "$REAL_D" >"$WORK/sched-daemon"
  cat >"$WORK/sched-vmm" <<WRAP
#!/usr/bin/env bash
# The source VMM as is; the incoming one with its CPU time sampled.
[[ " \$* " == *" --incoming "* ]] || exec $vpre "$REAL_V" "\$@"
$vpre "$REAL_V" "\$@" &
v=\$!
trap 'kill -TERM \$v 2>/dev/null' TERM INT
exec 9<>"$WORK/never"
for _ in \$(seq 30000); do
  kill -0 \$v 2>/dev/null || break
  ns=0
  for f in /proc/\$v/task/*/schedstat; do read -r r _ <"\$f" 2>/dev/null && ns=\$((ns + r)); done
  echo "\$EPOCHREALTIME \$ns" >>"$WORK/cpu-samples"
  read -r -t 0.005 -u 9
done
wait \$v
WRAP
  chmod 755 "$WORK/sched-daemon" "$WORK/sched-vmm"
  SCHED_DESC="daemons: ${pre:-as started}; VMMs: ${vpre:-as started}"
}
REAL_D=$MIGRATIOND REAL_V=$MINIVMM
mkfifo "$WORK/never"
SMEM=${E2E_SCHED_MEM:-64M}
: >"$WORK/sched"
for round in $(seq "${E2E_ROUNDS:-3}"); do
  for set in ${E2E_SCHED:-default unit}; do
    sched_wrap "$set" || mig_die "e2e: unknown scheduling setting $set"
    for h in A B; do
      pid=PID_D$h
      kill -TERM "${!pid}"; mig_wait_exit "${!pid}" 20; mig_forget "${!pid}"
      MIGRATIOND=$WORK/sched-daemon mig_daemon_start "$h"
    done
    : >"$WORK/vmm-B.log"; : >"$WORK/cpu-samples"
    MINIVMM=$WORK/sched-vmm mig_migrate "e2e-$set-$round" "$SMEM" writer
    [[ $MIG_RC == 0 && $DST_RC == 0 ]] || mig_die "e2e $set: migration failed"
    jq -e '.guest_ok == true' "$WORK/dst.json" >/dev/null || mig_die "e2e $set: guest did not verify"
    # The guest's CPU time (all its VMM's threads; the vCPUs under the
    # emulator) over the destination's migration, from the samples nearest
    # to its start and end.
    read -r from to < <(jq -r '"\(.started_unix_ms / 1000) \(.ended_unix_ms / 1000)"' "$WORK/dst.json")
    share=$(awk -v a="$from" -v b="$to" '
      { t = $1; n = $2 } t <= a { ta = t; na = n } t <= b { tb = t; nb = n }
      END { if (tb > ta) printf "%.3f", (nb - na) / 1e9 / (tb - ta); else print "null" }' \
      "$WORK/cpu-samples")
    jq -n -c --slurpfile s "$WORK/src.json" --slurpfile d "$WORK/dst.json" --arg set "$set" \
      --arg desc "$SCHED_DESC" --argjson round "$round" --argjson share "${share:-null}" '
      ($s[0]) as $s | ($d[0]) as $d | {setting: $set, how: $desc, round: $round,
        demand_faults: $d.demand_faults, total_s: $s.total_s, blackout_ms: $s.blackout_ms,
        postcopy_s: $d.total_s, guest_cpus: $share}' \
      >>"$WORK/sched" || mig_die "e2e $set: cannot read the records"
    log "e2e scheduling: $(tail -n1 "$WORK/sched")"
  done
done
jq -s '[group_by(.setting)[] | {setting: .[0].setting, how: .[0].how, runs: length,
    demand_faults: map(.demand_faults), total_s: map(.total_s),
    guest_cpus: map(.guest_cpus),
    mean_demand_faults: (map(.demand_faults) | add / length),
    mean_total_s: (map(.total_s) | add / length),
    mean_guest_cpus: (map(.guest_cpus // empty) | if length > 0 then add / length else null end)}]' "$WORK/sched" >"$WORK/sched.json"
jq -c '.[]' "$WORK/sched.json" >&2

jq -s --arg hosts "$( ((MIG_USE_NETNS)) && echo "network namespaces + veth" || echo "loopback ports")" \
  --argjson cores "$(nproc)" --slurpfile sched "$WORK/sched.json" --slurpfile runs <(jq -s . "$WORK/sched") \
  '{conditions: {cores: $cores, hosts: $hosts, placement: "unpinned",
    guest: "minivmm writer (KVM, keeps writing during the migration)"}, e2e: .,
    scheduling: $sched[0], scheduling_runs: $runs[0]}' \
  "$WORK/results" >"$OUT" || mig_die "cannot write $OUT"
exit 0
