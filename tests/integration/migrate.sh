#!/usr/bin/env bash
# End-to-end post-copy migration of a real KVM guest between two migrationd
# hosts, asserted from every side: both daemons, the guest's own verdict, the
# page accounting (every page installed once), the source VM gone, and the
# hosts cleaned up afterwards.
# With INSTALL minor the destination installs through the page cache and
# UFFDIO_CONTINUE instead of UFFDIO_COPY.
# With PRECOPY (a --precopy policy) the guest keeps running on the source
# while its RAM streams in rounds; the pages it wrote since they were sent
# are made missing again on the destination at the switch-over.
# usage: migrate.sh BUILD_DIR quiet|writer [MEM] [copy|minor] [PRECOPY]
BUILD=$1
WORKLOAD=$2
MEM=${3:-32M}
export MIG_INSTALL=${4:-copy}
export MIG_PRECOPY=${5:-}
VM=t-$WORKLOAD-$MIG_INSTALL${MIG_PRECOPY:+-pre}
source "$(dirname "$0")/../lib.sh"

mig_require_kvm
mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B
mig_migrate "$VM" "$MEM" "$WORKLOAD"

j() { jq -r "$2" "$WORK/$1"; }
mig_assert_eq "mig-ctl migrate --wait exit code" "$MIG_RC" 0
mig_assert_eq "source state" "$(j src.json .state)" COMPLETED
mig_assert_eq "destination state" "$(j dst.json .state)" COMPLETED
mig_assert_eq "guest verdict" "$(j report.json .verdict)" intact
mig_assert_eq "guest errors" "$(j report.json .errors)" 0
mig_assert_eq "guest checksum equals host checksum" "$(j report.json .checksum)" \
  "$(j report.json .host_checksum)"
total=$(j dst.json .pages_total)
mig_assert_eq "pages installed == pages of guest RAM" "$(j dst.json .pages_installed)" "$total"
mig_assert_eq "install EEXIST" "$(j dst.json .install_eexist)" 0
mig_assert_eq "install errors" "$(j dst.json .install_errors)" 0
mig_assert_eq "destination installed in the mode the VMM asked for" \
  "$(j dst.json .install_mode)" "$MIG_INSTALL"
if [[ -z $MIG_PRECOPY ]]; then
  mig_assert_eq "demand + background + zero == total" \
    "$(j dst.json '.pages_demand + .pages_background + .pages_zero')" "$total"
else
  mig_assert_eq "pre-copy ran on the source (rounds, tracking)" \
    "$(j src.json '.precopy_rounds >= 1 and (.dirty_tracking | test("PAGEMAP_SCAN"))')" true
  mig_assert_eq "pre-copy sent every page before the switch-over" \
    "$(j dst.json '.pages_precopy >= .pages_total')" true
  mig_assert_eq "pages the guest wrote since were made missing at the switch-over" \
    "$(j dst.json '.pages_invalidated > 0 and .pages_invalidated == '"$(j src.json .pages_invalidated)")" true
  j src.json '{precopy, precopy_rounds, pages_precopy, pages_invalidated, dirty_pages_per_s, blackout_ms}' | jq -c .
  j dst.json '{pages_precopy, pages_invalidated, demand_faults, pages_demand, pages_background}' | jq -c .
fi
mig_assert_eq "source sent every page" \
  "$(j src.json '[.pages_demand + .pages_background + .pages_zero + .pages_precopy >= .pages_total] | .[0]')" true
mig_assert_eq "guest verdict reached the destination daemon" "$(j dst.json .guest_ok)" true
mig_assert_eq "blackout measured" "$(j src.json '.blackout_ms > 0')" true
# The post-copy interval: inside the whole migration, after the blackout.
for side in src dst; do
  mig_assert_eq "$side: post-copy seconds measured, within total_s less the blackout" \
    "$(j $side.json '.postcopy_s > 0 and .postcopy_s <= .total_s - .blackout_ms / 1000')" true
done
mig_assert_eq "destination VMM exit code" "$DST_RC" 0
mig_assert_verified "$WORK/vmm-B.log" "$MEM"
mig_assert_eq "source VMM exited after the VM left" "$SRC_RC" 0
mig_assert_eq "source VM gone from host A" \
  "$(jq --arg vm "$VM" '[.vms[] | select(.name == $vm)] | length' "$WORK/list-a.json")" 0
if [[ $WORKLOAD == writer && -z $MIG_PRECOPY ]]; then
  # A quiet guest halts until told the migration is over; a writer touches
  # every page at once and must be served on demand.
  mig_assert_eq "destination guest faulted pages in on demand" \
    "$(j dst.json '.demand_faults > 0 and .pages_demand > 0')" true
  mig_assert_eq "guest kept writing after the migration (generations > 1)" \
    "$(j report.json '.passes > 1')" true
fi

# Cleanup leaves nothing behind: no daemon, no namespace.
pids=("${MIG_PIDS[@]}"); nss=("${MIG_NETNS[@]}")
keep=$WORK; MIG_KEEP=1 mig_cleanup; trap - EXIT
((MIG_CLEANUP_FAIL)) && mig_fail "a daemon did not stop cleanly"
for p in "${pids[@]}"; do
  kill -0 "$p" 2>/dev/null && mig_fail "process $p still running after cleanup"
done
for ns in "${nss[@]}"; do
  ip netns list | grep -qw "$ns" && mig_fail "namespace $ns still exists after cleanup"
done
WORK=$keep
((MIG_FAILS)) && { mig_dump_logs; rm -rf "$keep"; echo "$MIG_FAILS assertion(s) failed" >&2; exit 1; }
rm -rf "$keep"
echo "all assertions passed"
