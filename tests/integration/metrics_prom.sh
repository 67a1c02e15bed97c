#!/usr/bin/env bash
# /metrics fits Prometheus conventions: scraped from real daemons during a
# real post-copy migration (the link slowed so that it lasts) and after it,
# every scrape passes `promtool check metrics` (HELP and TYPE for each
# family, counters end in _total, units in names, histograms with
# _bucket{le}/_sum/_count), each family is one group of lines, histogram
# buckets are cumulative and end in +Inf equal to _count, and the figures
# are the migration's own (state by the control API, demand pages). The
# Grafana dashboard in contrib/ is JSON and every metric its queries name
# exists in a real scrape.
BUILD=$1
source "$(dirname "$0")/../lib.sh"
mig_require_kvm
command -v promtool >/dev/null || mig_skip "promtool (Debian package prometheus) is not installed"
command -v curl >/dev/null || mig_skip "curl is not installed"
mig_hosts_up
((MIG_USE_NETNS)) || mig_skip "needs network namespaces to slow the link down"
tc -n "migA-$$" qdisc add dev "va$$" root tbf rate 40mbit burst 64kb latency 500ms ||
  mig_die "cannot shape the link"
mig_certs
mig_daemon_start A "[metrics]
listen = 127.0.0.1:9480"
mig_daemon_start B "[metrics]
listen = 127.0.0.1:9480"
scrape() { ip netns exec "mig$1-$$" curl -sf http://127.0.0.1:9480/metrics; }

# check FILE WHAT: promtool, one group per family, sane histograms.
check() {
  local f=$1 what=$2 out
  out=$(promtool check metrics <"$f" 2>&1)
  mig_assert_eq "$what: promtool check metrics passes (exit code)" "$?" 0
  mig_assert_eq "$what: promtool has no remark" "$out" ""
  # Each family's lines are one run after its TYPE: none outside, none twice.
  mig_assert_eq "$what: every family is one group of lines" "$(awk '
    /^# TYPE / { if ($3 in types) { print "family " $3 " twice"; exit } types[$3] = 1; fam = $3 }
    !/^#/ { n = $1; sub(/\{.*/, "", n); if (n != fam) sub(/_(bucket|sum|count)$/, "", n)
      if (n != fam) { print "sample " $1 " outside its family " fam; exit } }' "$f")" ""
  mig_assert_eq "$what: every family has HELP and TYPE" \
    "$(grep -c '^# HELP ' "$f")" "$(grep -c '^# TYPE ' "$f")"
  # Histograms: buckets never decrease within a series, +Inf equals _count.
  mig_assert_eq "$what: histogram buckets are cumulative and +Inf is _count" "$(awk '
    /_bucket\{/ { s = $1; sub(/,le="[^"]*"\}$/, "}", s); if ((s in last) && $2 + 0 < last[s]) bad++
      last[s] = $2 + 0; if ($1 ~ /le="\+Inf"/) { k = s; sub(/_bucket\{/, "_count{", k); inf[k] = $2 } }
    /_count\{/ { c[$1] = $2 }
    END { for (k in inf) if (!(k in c) || c[k] != inf[k]) bad++; print bad + 0 }' "$f")" 0
}

VM=t-prom
mig_vmm_start A "$VM" vmm-A --mem 64M --workload writer
src=$VMM_PID
mig_wait_line "$WORK/vmm-A.log" 'guest ready' 60 "$src" || mig_die "guest not ready"
mig_vmm_start B "$VM" vmm-B --mem 64M --incoming --report "$WORK/report.json"
dst=$VMM_PID
for _ in $(seq 50); do
  ctl B --json list 2>/dev/null | jq -e --arg vm "$VM" '.vms[] | select(.name == $vm)' >/dev/null && break
  sleep 0.1
done
token=$(ctl B prepare "$VM" -q) || mig_die "prepare failed"
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate failed"
wait_for B '.state == "POSTCOPY" and .pages_installed > 500' 60 || mig_die "post-copy did not start"
scrape B >"$WORK/during-B.txt" || mig_die "no metrics from B"
scrape A >"$WORK/during-A.txt" || mig_die "no metrics from A"
state_then=$(st B .state)
echo "during: destination $state_then, $(grep -c '' "$WORK/during-B.txt") lines"
mig_assert_eq "during: the scrape shows the destination migration in POSTCOPY" \
  "$(grep -c '^migrationd_migrations{role="destination",state="POSTCOPY"} 1$' "$WORK/during-B.txt")" 1
check "$WORK/during-B.txt" "during, destination"
check "$WORK/during-A.txt" "during, source"

mig_wait_exit "$dst" 120; mig_wait_exit "$src" 30
wait_for B '.state == "COMPLETED"' 30 || mig_die "migration did not complete"
mig_assert_verified "$WORK/vmm-B.log" 64M
scrape B >"$WORK/after-B.txt" || mig_die "no metrics from B"
scrape A >"$WORK/after-A.txt" || mig_die "no metrics from A"
check "$WORK/after-B.txt" "after, destination"
check "$WORK/after-A.txt" "after, source"
promtool check metrics <"$WORK/after-B.txt"; echo "promtool check metrics (after, destination): exit $?"
id=$(st B .id)
mig_assert_eq "after: migrations by state" \
  "$(grep -c '^migrationd_migrations{role="destination",state="COMPLETED"} 1$' "$WORK/after-B.txt")" 1
mig_assert_eq "after: demand pages are the migration's" \
  "$(awk -v id="$id" '$0 ~ "^migrationd_pages_total\\{migration=\"" id "\".*class=\"demand\"\\}" {print $2}' "$WORK/after-B.txt")" \
  "$(st B .pages_demand)"
mig_assert_eq "after: user-space fault latency count is the demand faults" \
  "$(awk -v id="$id" '$0 ~ "^migrationd_fault_latency_seconds_count\\{migration=\"" id "\"" {print $2}' "$WORK/after-B.txt")" \
  "$(st B .demand_faults)"
mig_assert_eq "after: RAM in bytes" \
  "$(awk -v id="$id" '$0 ~ "^migrationd_migration_ram_bytes\\{migration=\"" id "\"" {print $2}' "$WORK/after-B.txt")" \
  "$(mig_bytes 64M)"

# The dashboard: JSON, and every metric its queries name is served.
dash=$SRC/contrib/grafana-migrationd.json
jq -e .panels "$dash" >/dev/null
mig_assert_eq "dashboard is JSON with panels" "$?" 0
cat "$WORK"/after-*.txt | sed -n 's/^# TYPE \([^ ]*\) \([a-z]*\)$/\1 \2/p' | sort -u >"$WORK/families"
used=$(jq -r '.. | objects | (.expr?, .query?) | strings' "$dash" |
  grep -oE 'migrationd_[a-z_]+' | sort -u)
echo "dashboard metrics: $(tr '\n' ' ' <<<"$used")"
mig_assert_eq "dashboard queries name metrics" "$([[ -n $used ]] && echo yes)" yes
for name in $used; do
  base=$name
  grep -q "^$name " "$WORK/families" || base=$(sed -E 's/_(bucket|sum|count)$//' <<<"$name")
  ok=0
  if grep -q "^$name " "$WORK/families"; then ok=1
  elif [[ $base != "$name" ]] && grep -q "^$base histogram$" "$WORK/families"; then ok=1
  fi
  mig_assert_eq "dashboard metric $name exists in the scrape" "$ok" 1
done
mig_finish
