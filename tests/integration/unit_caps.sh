#!/usr/bin/env bash
# eBPF fault latency under the shipped unit's privileges. The destination
# daemon runs as a user that is not root (nobody stands in for the unit's
# system user) with exactly the capabilities the rendered unit names
# (AmbientCapabilities= and CapabilityBoundingSet=, read from it), through
# setpriv: it loads its BPF programs, drops CAP_SYS_ADMIN once the USDT probe
# is attached, serves a real migration (userfaultfd from a root VMM works
# for it), health names the eBPF source and GetFaultLatency returns eBPF
# histograms counting every demand fault. Then the same with each of those
# capabilities taken away in turn and with none: the daemon says once, at
# start, which it lacks, runs on user-space timestamps, and still migrates.
BUILD=$1
source "$(dirname "$0")/../lib.sh"
mig_require_kvm
[[ $(id -u) == 0 ]] || mig_skip "needs root to hand capabilities to another user"
command -v setpriv >/dev/null || mig_skip "setpriv (util-linux) is not installed"
[[ -f $BUILD/systemd/test/migrationd.service ]] || mig_die "unit not rendered"
[[ -f $BUILD/daemon/bpf/faultlat.skel.h ]] || mig_skip "daemon built without eBPF (clang, bpftool, libbpf)"

unit=$BUILD/systemd/test/migrationd.service
amb=$(sed -n 's/^AmbientCapabilities=//p' "$unit")
bnd=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
echo "unit: User=$(sed -n 's/^User=//p' "$unit") AmbientCapabilities=$amb CapabilityBoundingSet=$bnd"
mig_assert_eq "the unit runs as a user that is not root" \
  "$(sed -n 's/^User=//p' "$unit" | grep -cvx 'root\|0')" 1
mig_assert_eq "the ambient set is the bounding set" "$amb" "$bnd"
# setpriv's form: CAP_BPF CAP_PERFMON -> +bpf,+perfmon
caps_of() { local c out=; for c in $1; do c=${c#CAP_}; out+=",+${c,,}"; done; echo "${out#,}"; }
UNIT_CAPS=$(caps_of "$amb")

# The daemon as nobody: its directories, its TLS key and the work tree.
NOBODY=65534
chmod 711 "$WORK"
mig_hosts_up
mig_certs
mkdir -p "$WORK/B"
chown "$NOBODY:$NOBODY" "$WORK/B" "$WORK/pki/hostb.key"
chmod o+x "$WORK/pki"; chmod o+r "$WORK/pki"/*.pem
# mig_daemon_start runs $MIGRATIOND: a wrapper that execs it under setpriv
# with CAPS (the same PID, so cleanup signals the daemon).
wrap() { # CAPS
  local c=$1
  cat >"$WORK/migrationd-caps" <<WRAP
#!/bin/sh
exec setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups \\
  --securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked \\
  --inh-caps=-all${c:+,$c} --ambient-caps=-all${c:+,$c} --bounding-set=-all${c:+,$c} \\
  "$BUILD/daemon/migrationd" "\$@"
WRAP
  chmod 755 "$WORK/migrationd-caps"
}
REAL=$MIGRATIOND
mig_daemon_start A
# b_start CAPS: (re)starts daemon B with CAPS, a fresh log and state.
b_start() {
  if [[ -n ${PID_DB:-} ]] && kill -0 "$PID_DB" 2>/dev/null; then
    kill -TERM "$PID_DB"; mig_wait_exit "$PID_DB" 20
    mig_assert_eq "daemon B (caps '$CAPS_NOW') stopped cleanly" "$?" 0
    mig_forget "$PID_DB"
  fi
  CAPS_NOW=$1
  rm -rf "$WORK/B/state"; rm -f "$WORK/migrationd-B.log"
  wrap "$1"
  MIGRATIOND=$WORK/migrationd-caps mig_daemon_start B
  MIGRATIOND=$REAL
}

b_start "$UNIT_CAPS"
cat "$WORK/migrationd-B.log" | grep -E 'fault latency|ready:'
mig_assert_eq "daemon B runs as nobody" "$(stat -c %u "/proc/$PID_DB")" "$NOBODY"
grep -q 'fault latency: eBPF: USDT probes' "$WORK/migrationd-B.log"
mig_assert_eq "with the unit's capabilities the BPF programs load" "$?" 0
mig_assert_eq "every capability is gone once the probes are attached (CapEff, CapPrm)" \
  "$(awk '/^Cap(Eff|Prm)/ {printf "%s ", $2}' "/proc/$PID_DB/status")" "0000000000000000 0000000000000000 "
mig_assert_eq "health: eBPF loaded" "$(ctl B --json health | jq -r .ebpf)" loaded
mig_assert_eq "health: latency source is eBPF" \
  "$(ctl B --json health | jq -r '.latency_source | startswith("eBPF:")')" true

mig_migrate t-caps 32M writer
mig_assert_eq "migration completed" "$(jq -r .state "$WORK/dst.json")" COMPLETED
mig_assert_verified "$WORK/vmm-B.log" 32M
faults=$(jq -r .demand_faults "$WORK/dst.json")
ctl B --json latency t-caps >"$WORK/lat.json" || mig_die "mig-ctl latency failed"
echo "demand faults $faults; eBPF phases: $(jq -c '[.phases[] | {(.phase): .count}] | add' "$WORK/lat.json")"
mig_assert_eq "there were demand faults" "$((faults > 0))" 1
mig_assert_eq "GetFaultLatency: the eBPF total phase counts every demand fault" \
  "$(jq -r '.phases[] | select(.phase == "total") | .count' "$WORK/lat.json")" "$faults"
mig_assert_eq "GetFaultLatency: all five eBPF phases" \
  "$(jq -r '[.phases[].phase] | sort | join(",")' "$WORK/lat.json")" "install,net,queue,total,wake"
# sched_switch is attached per migration, after CAP_SYS_ADMIN was dropped.
mig_assert_eq "the wake phase (sched_switch attached with no capability left) has samples" \
  "$(jq -r '.phases[] | select(.phase == "wake") | .count > 0' "$WORK/lat.json")" true
grep -q 'cannot attach sched_switch' "$WORK/migrationd-B.log"
mig_assert_eq "no sched_switch attach failure logged" "$?" 1

# Without each of the unit's capabilities, with CAP_BPF and CAP_PERFMON
# only (not enough for the uprobe on this kernel), and with none: told once,
# naming CAP_SYS_ADMIN, user-space timestamps, and the migration still works.
cases=()
for drop in $amb; do
  cases+=("$(caps_of "$(tr ' ' '\n' <<<"$amb" | grep -vx "$drop" | tr '\n' ' ')")")
done
cases+=("+bpf,+perfmon" "")
n=0
declare -A seen
for caps in "${cases[@]}"; do
  [[ -n ${seen["x$caps"]:-} ]] && continue
  seen["x$caps"]=1
  b_start "$caps"
  n=$((n + 1))
  what="with caps '${caps:-none}'"
  echo "--- $what:"
  grep 'fault latency' "$WORK/migrationd-B.log"
  mig_assert_eq "$what: the daemon says once why not eBPF" \
    "$(grep -c 'fault latency: user-space timestamps' "$WORK/migrationd-B.log")" 1
  mig_assert_eq "$what: it names CAP_SYS_ADMIN" \
    "$(grep 'fault latency: user-space timestamps' "$WORK/migrationd-B.log" | grep -c CAP_SYS_ADMIN)" 1
  mig_assert_eq "$what: health says user-space timestamps" \
    "$(ctl B --json health | jq -r '.latency_source | startswith("user-space timestamps")')" true
  mig_migrate "t-nocap$n" 16M writer
  mig_assert_eq "$what: migration completed" "$(jq -r .state "$WORK/dst.json")" COMPLETED
  mig_assert_verified "$WORK/vmm-B.log" 16M
  ctl B --json latency "t-nocap$n" >"$WORK/lat-n.json" || mig_die "mig-ctl latency failed"
  mig_assert_eq "$what: GetFaultLatency has user-space figures, no eBPF phases" \
    "$(jq -r '"\(.source | startswith("user-space")) \(.phases // [] | length) \(.count > 0)"' "$WORK/lat-n.json")" "true 0 true"
  mig_assert_eq "$what: still said once after a migration" \
    "$(grep -c 'fault latency:' "$WORK/migrationd-B.log")" 1
done
mig_finish
