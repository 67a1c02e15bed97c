#!/usr/bin/env bash
# Records expire, and so does a prepared migration nobody used, with small
# limits: [daemon] keep_records = 3 on both hosts and prepare_timeout = 2s on
# the destination.
#  1. By count: after each of 5 migrations each daemon lists and keeps on
#     disk at most 3 finished records; the two oldest are gone, by id too.
#  2. A prepared migration unused for 2 s ends FAILED ("prepared migration
#     expired unused after 2 s"); the source that presents its token is
#     refused with that reason; the next prepare of the VM succeeds and its
#     migration completes.
#  3. A second prepare of a VM whose prepared migration was not used yet
#     replaces it: the old one is CANCELLED, its token refused with that
#     reason, the new token works.
#  4. Across a restart of the destination: started again with
#     keep_records = 1 it keeps one record, in memory and on disk; with
#     record_max_age = 3s a record goes 3 s after it finished (the timer),
#     and a record that aged while the daemon was down is gone at start-up;
#     a migration prepared when it stopped comes back FAILED and, when its
#     record expires, its installed set goes from the state directory too.
# Also: a bad duration in the configuration is refused, naming the key.
# usage: records.sh BUILD_DIR
BUILD=$1
source "$(dirname "$0")/../lib.sh"
mig_hosts_up
mig_certs
LIMITS='[daemon]
keep_records = 3
record_max_age = 0'
mig_daemon_start A "$LIMITS"
mig_daemon_start B "$LIMITS
prepare_timeout = 2s"
export MIG_SHIM_MEM=1
printf '[daemon]\nkeep_records = 3\nrecord_max_age = 7w\n' >"$WORK/bad.conf"
mig_assert_eq "a bad duration is refused, naming the key" "$("$MIGRATIOND" -n -c "$WORK/bad.conf" 2>&1 |
  grep -c 'bad.conf:3: \[daemon\] record_max_age: "7w": not a duration')" 1

finished() { # HOST: finished records the daemon lists
  ctl "$1" --json list | jq '[.migrations[] | select(.state == "COMPLETED" or
    .state == "FAILED" or .state == "CANCELLED")] | length'
}
files() { # HOST: record files in its state directory
  find "$WORK/$1/state" -name '*.rec' | wc -l
}
has_id() { # HOST ID: "yes" if the daemon lists it and its file exists
  local mem=no disk=no
  ctl "$1" --json status "$2" >/dev/null 2>&1 && mem=yes
  [[ -f $WORK/$1/state/$2.rec ]] && disk=yes
  echo "$mem/$disk"
}
# start_shims VM: a source and an (unprepared) destination shimvm; SRC, DST
start_shims() {
  mig_spawn A "$WORK/src-$1.log" "$BUILD/tests/shimvm" source -s "$WORK/A/vmm.sock" -n "$1" -m 1
  SRC=$SPAWN_PID
  mig_wait_line "$WORK/src-$1.log" 'source ready' 30 "$SRC" || mig_die "$1: source VMM not ready"
  mig_spawn B "$WORK/dst-$1.log" "$BUILD/tests/shimvm" dest -s "$WORK/B/vmm.sock" -n "$1" \
    -m 1 -t 2 -k 8
  DST=$SPAWN_PID
  for _ in $(seq 100); do
    ctl B --json list | jq -e --arg vm "$1" '.vms[] | select(.name == $vm)' >/dev/null && return
    sleep 0.05
  done
  mig_die "$1: destination VMM did not attach"
}
# refused VM TOKEN: the source's migrate with TOKEN fails; its reason
refused() {
  local id
  id=$(ctl A --json migrate "$1" --to "$ADDR_B" --token "$2" | jq -r .id)
  for _ in $(seq 100); do
    [[ $(ctl A --json status "$id" | jq -r .state) == FAILED ]] && break
    sleep 0.05
  done
  ctl A --json status "$id" | jq -r '.state + ": " + .reason'
}

log "1. expiry by count"
ids=()
for i in 1 2 3 4 5; do
  mig_shim_migrate "c$i" || mig_die "migration c$i failed"
  ids+=("$(ctl B --json status "c$i" | jq -r .id)")
  echo "after c$i: A lists $(finished A), keeps $(files A); B lists $(finished B), keeps $(files B)"
  want=$((i < 3 ? i : 3))
  mig_assert_eq "after c$i: A lists $want" "$(finished A)" "$want"
  mig_assert_eq "after c$i: A keeps $want files" "$(files A)" "$want"
  mig_assert_eq "after c$i: B lists $want" "$(finished B)" "$want"
  mig_assert_eq "after c$i: B keeps $want files" "$(files B)" "$want"
done
mig_assert_eq "oldest record (c1) gone from memory and disk" "$(has_id B "${ids[0]}")" no/no
mig_assert_eq "second oldest (c2) gone" "$(has_id B "${ids[1]}")" no/no
mig_assert_eq "newest three kept (c3)" "$(has_id B "${ids[2]}")" yes/yes
mig_assert_eq "newest three kept (c5)" "$(has_id B "${ids[4]}")" yes/yes
mig_assert_eq "source side: c1 gone" "$(ctl A --json list | jq '[.migrations[] |
  select(.vm == "c1")] | length')" 0

log "2. an unused prepared migration expires"
start_shims p1
tok1=$(ctl B prepare p1 -q) || mig_die "prepare p1 failed"
pid1=$(ctl B --json status p1 | jq -r .id)
mig_assert_eq "prepared" "$(ctl B --json status "$pid1" | jq -r .state)" PREPARED
sleep 2.5
mig_assert_eq "expired after prepare_timeout" \
  "$(ctl B --json status "$pid1" | jq -r '.state + ": " + .reason')" \
  "FAILED: prepared migration expired unused after 2 s"
out=$(refused p1 "$tok1")
echo "source with the expired token: $out"
mig_assert_eq "expired token refused, saying why" \
  "$([[ $out == "FAILED: destination refused: token of migration $pid1, which is FAILED: prepared migration expired unused after 2 s" ]] && echo yes)" yes
tok2=$(ctl B prepare p1 -q) || mig_fail "the next prepare of p1 was refused"
ctl A migrate p1 --to "$ADDR_B" --token "$tok2" --wait --timeout 60 >/dev/null 2>&1
mig_assert_eq "the next prepare's migration completes" "$(ctl B --json status p1 | jq -r .state)" COMPLETED
mig_wait_exit "$DST" 30; mig_assert_eq "destination VMM verified every page" "$?" 0
mig_wait_exit "$SRC" 30; mig_assert_eq "source VMM left" "$?" 0
mig_assert_eq "B still keeps 3 records" "$(finished B)/$(files B)" 3/3

log "3. a second prepare replaces an unused one"
start_shims q1
tok1=$(ctl B prepare q1 -q) || mig_die "prepare q1 failed"
qid1=$(ctl B --json status q1 | jq -r .id)
tok2=$(ctl B prepare q1 -q) || mig_fail "second prepare of q1 refused"
mig_assert_eq "the first is replaced" \
  "$(ctl B --json status "$qid1" | jq -r '.state + ": " + .reason')" \
  "CANCELLED: replaced by a new prepare of VM q1"
out=$(refused q1 "$tok1")
echo "source with the replaced token: $out"
mig_assert_eq "replaced token refused, saying why" \
  "$([[ $out == *"token of migration $qid1, which is CANCELLED: replaced by a new prepare"* ]] && echo yes)" yes
ctl A migrate q1 --to "$ADDR_B" --token "$tok2" --wait --timeout 60 >/dev/null 2>&1
mig_assert_eq "the new token's migration completes" "$(ctl B --json status q1 | jq -r .state)" COMPLETED
mig_wait_exit "$DST" 30; mig_assert_eq "destination VMM verified every page" "$?" 0
mig_wait_exit "$SRC" 30; mig_assert_eq "source VMM left" "$?" 0

log "4. across a restart of the destination daemon"
stop_b() {
  kill -TERM "$PID_DB"
  mig_wait_exit "$PID_DB" 10; mig_assert_eq "destination daemon stopped cleanly" "$?" 0
  mig_forget "$PID_DB"
}
# start_b CONFIG: host B again; STARTED holds its log from this start on
start_b() {
  local off
  off=$(wc -l <"$WORK/migrationd-B.log")
  mig_daemon_start B "$1"
  STARTED=$(tail -n +$((off + 1)) "$WORK/migrationd-B.log")
}
stop_b
mig_assert_eq "3 record files left by the stopped daemon" "$(files B)" 3
start_b '[daemon]
keep_records = 1'
mig_assert_eq "restarted with keep_records = 1: one listed" "$(finished B)" 1
mig_assert_eq "... and one file" "$(files B)" 1
mig_assert_eq "... the newest (q1)" "$(ctl B --json list | jq -r '.migrations[0].vm')" q1
mig_assert_eq "start-up says so" \
  "$(grep -c 'mig_expiry_start: 2 finished migration records expired' <<<"$STARTED")" 1
stop_b
start_b '[daemon]
keep_records = 3
record_max_age = 3s'
mig_shim_migrate a1 || mig_die "migration a1 failed"
aid=$(ctl B --json status a1 | jq -r .id)
mig_assert_eq "a fresh record is kept" "$(has_id B "$aid")" yes/yes
sleep 4.5
mig_assert_eq "3 s after it finished the record is gone (timer)" "$(has_id B "$aid")" no/no
mig_assert_eq "... and nothing else is left" "$(finished B)/$(files B)" 0/0
mig_shim_migrate a2 || mig_die "migration a2 failed"
aid=$(ctl B --json status a2 | jq -r .id)
stop_b
mig_assert_eq "the stopped daemon left a2's record" "$(files B)" 1
sleep 3.5
start_b '[daemon]
keep_records = 3
record_max_age = 3s'
mig_assert_eq "a record that aged while the daemon was down is gone at start-up" \
  "$(has_id B "$aid")" no/no
mig_assert_eq "start-up says so" \
  "$(grep -c 'mig_expiry_start: 1 finished migration records expired' <<<"$STARTED")" 1
# A migration prepared when the daemon stops keeps its installed set on disk
# and comes back FAILED; when its record expires, that file goes with it.
start_shims x1
ctl B prepare x1 -q >/dev/null || mig_die "prepare x1 failed"
xid=$(ctl B --json status x1 | jq -r .id)
stop_b
mig_assert_eq "the stopped daemon left x1's record and installed set" \
  "$(ls "$WORK/B/state" | sort | tr '\n' ' ')" "$xid.pages $xid.rec "
start_b '[daemon]
keep_records = 3
record_max_age = 3s'
mig_assert_eq "x1 came back failed" "$(ctl B --json status "$xid" | jq -r .state)" FAILED
sleep 4.5
mig_assert_eq "its record expired with everything it kept" "$(ls "$WORK/B/state" | wc -l)" 0
mig_finish
