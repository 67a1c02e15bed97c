#!/usr/bin/env bash
# Ring fault path: a thread that faults on a page another thread's fetch is
# already bringing (it was prefetched with that fault) waits for it, once;
# it is not told to try again and re-post in a loop. Four threads touch
# interleaved neighbouring pages, their first faults in page order while
# the source daemon is held (SIGSTOP) for a second: the second fault's
# request prefetches the third's page, so the third thread waits on a page
# that is on its way. The daemon must count one ring fault per touch at
# most (a re-posting thread would post thousands in that second).
# usage: ring_prefetch.sh BUILD_DIR
BUILD=$1
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
VM=ring-prefetch
T=4 K=50

mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B
mig_spawn A "$WORK/src.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$VM" -m 256
src=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || mig_die "source not ready"
mig_spawn B "$WORK/dst.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$VM" -m 256 -M ring \
  -t $T -k $K -i -w "$WORK/go"
dst=$SPAWN_PID
sleep 0.3
token=$(ctl B prepare "$VM" -q) || mig_die "prepare failed"
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate failed"
wait_for B '.state == "POSTCOPY"' 30 || mig_die "post-copy did not start"
kill -STOP "$PID_DA"
touch "$WORK/go"
sleep 1.5
echo "while the source was held: $(ctl B --json status "$VM" | jq -c '{ring_faults, demand_faults, prefetch_pages}')"
kill -CONT "$PID_DA"
wait_for B '.state == "COMPLETED"' 120
mig_assert_eq "migration completed" "$?" 0
mig_wait_exit "$dst" 60; mig_assert_eq "destination shimvm: every page checked out" "$?" 0
mig_assert_verified "$WORK/dst.log" 256M
j=$(ctl B --json status "$VM")
echo "$j" | jq -c '{ring_faults, ring_errors, demand_faults, prefetch_pages, prefetch_hits}'
mig_assert_eq "the threads faulted inside each other's prefetch" "$(jq -r '.prefetch_pages > 0' <<<"$j")" true
mig_assert_eq "one ring fault per touch at most ($((T * K)) touches)" \
  "$(jq -r --argjson n $((T * K)) '.ring_faults <= $n' <<<"$j")" true
mig_finish
