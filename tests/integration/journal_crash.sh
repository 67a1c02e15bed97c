#!/usr/bin/env bash
# Minor mode survives a destination daemon that dies between writing a page
# into the page cache and mapping it. `[debug] crash_minor` makes the daemon
# SIGKILL itself at one install: half-way through writing the run's first
# page (writing: the page cache holds a torn page the guest never saw) or
# with the run written and not mapped (written: vCPUs may wait on it). The
# restarted daemon reads its journal, drops the torn run (fetched again) or
# maps the written one, and the migration completes: every page installed
# once, no EEXIST, and the guest, which checks the first and last word of
# every page, finds its memory intact.
# usage: journal_crash.sh BUILD_DIR writing|written
BUILD=$1
AT=$2
source "$(dirname "$0")/../lib.sh"
mig_require_kvm
mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B "[debug]
crash_minor = $AT:40"
VM=t-crash-$AT

mig_vmm_start A "$VM" vmm-A --mem 32M --workload writer
src=$VMM_PID
mig_wait_line "$WORK/vmm-A.log" 'guest ready' 60 "$src" || mig_die "guest not ready"
mig_vmm_start B "$VM" vmm-B --mem 32M --incoming --install minor --report "$WORK/report.json"
dst=$VMM_PID
sleep 0.5
token=$(ctl B prepare "$VM" -q) || mig_die "prepare failed"
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate failed"

mig_wait_exit "$PID_DB" 60
mig_assert_eq "destination daemon died by SIGKILL at the injected install" "$?" 137
mig_forget "$PID_DB"
grep 'crash_minor: killing' "$WORK/migrationd-B.log"
journal=$(ls "$WORK"/B/state/*.journal 2>/dev/null | head -1)
mig_assert_eq "a journal outlived the daemon" "$([[ -s $journal ]] && echo yes)" yes
mig_daemon_start B
case $AT in
  writing) want='were being written when the daemon stopped: dropped' ;;
  written) want='were written but maybe not mapped when the daemon stopped: mapped' ;;
esac
mig_wait_line "$WORK/migrationd-B.log" "$want" 10 "$PID_DB"
mig_assert_eq "restarted daemon settled the journaled run ($AT)" "$?" 0
wait_for B '.state == "COMPLETED"' 180; mig_assert_eq "destination completed" "$?" 0
wait_for A '.state == "COMPLETED"' 30; mig_assert_eq "source completed" "$?" 0
mig_wait_exit "$dst" 60; mig_assert_eq "destination VMM: guest verified" "$?" 0
mig_assert_verified "$WORK/vmm-B.log" 32M
mig_wait_exit "$src" 30; mig_assert_eq "source VMM left" "$?" 0
mig_assert_eq "guest verdict" "$(jq -r .verdict "$WORK/report.json")" intact
mig_assert_eq "guest errors" "$(jq -r .errors "$WORK/report.json")" 0
mig_assert_eq "pages installed == pages" "$(st B .pages_installed)" "$(st B .pages_total)"
mig_assert_eq "no page installed twice (EEXIST)" "$(st B .install_eexist)" 0
mig_assert_eq "no install error" "$(st B .install_errors)" 0
mig_assert_eq "journal removed once the migration ended" \
  "$(ls "$WORK"/B/state/*.journal 2>/dev/null | wc -l)" 0
mig_finish
