#!/usr/bin/env bash
# The destination's door: only a source with a certificate from our CA and
# the one-time token of a prepared migration gets in. A certificate from
# another CA, no client certificate, plaintext, a wrong token and a reused
# token are each refused; the daemon keeps serving and then completes a real
# migration.
BUILD=$1
source "$(dirname "$0")/../lib.sh"
PROBE=$BUILD/tests/peer_probe

mig_require_kvm
mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B
P=$WORK/pki

mig_vmm_start B t-auth vmm-auth --mem 16M --incoming
auth_pid=$VMM_PID
for _ in $(seq 50); do
  ctl B --json list 2>/dev/null | jq -e '.vms[] | select(.name == "t-auth")' >/dev/null && break
  sleep 0.1
done
token=$(ctl B prepare t-auth -q) || mig_die "prepare failed"
ram=$((16 << 20))
probe() { mig_spawn_fg A "$PROBE" -a "$ADDR_B" "$@"; }
mig_spawn_fg() { local h=$1; shift; if ((MIG_USE_NETNS)); then ip netns exec "mig$h-$$" "$@"; else "$@"; fi; }

out=$(probe -A "$P/ca.pem" -c "$P/other.pem" -k "$P/other.key" -t "$token" -v t-auth -r $ram)
echo "other CA: $out"
mig_assert_eq "certificate from another CA refused at TLS (unknown ca)" \
  "$([[ $out == tls-error:*"unknown ca"* ]] && echo yes)" yes

out=$(probe -A "$P/ca.pem" -t "$token" -v t-auth -r $ram)
echo "no client cert: $out"
mig_assert_eq "no client certificate refused at TLS (certificate required)" \
  "$([[ $out == tls-error:*"certificate required"* ]] && echo yes)" yes

out=$(probe -p -t "$token" -v t-auth -r $ram)
echo "plaintext: $out"
mig_assert_eq "plaintext client gets no answer" "$out" closed

out=$(probe -A "$P/ca.pem" -c "$P/hosta.pem" -k "$P/hosta.key" -t "0000$token" -v t-auth -r $ram)
echo "wrong token: $out"
mig_assert_eq "wrong token refused" "$out" "refused: unknown or already used token"

mig_assert_eq "token still unused after the failed attempts" \
  "$(ctl B --json status t-auth | jq -r .state)" PREPARED

out=$(probe -A "$P/ca.pem" -c "$P/hosta.pem" -k "$P/hosta.key" -t "$token" -v t-auth -r $ram)
echo "right token: $out"
mig_assert_eq "right token with our CA's certificate accepted" "${out%% *}" accepted

out=$(probe -A "$P/ca.pem" -c "$P/hosta.pem" -k "$P/hosta.key" -t "$token" -v t-auth -r $ram)
echo "reused token: $out"
mig_assert_eq "reused token refused" "$out" "refused: unknown or already used token"

# The prober hung up before sending any VM state: that attempt failed cleanly.
for _ in $(seq 30); do
  [[ $(ctl B --json status t-auth | jq -r .state) == FAILED ]] && break; sleep 0.1
done
mig_assert_eq "abandoned attempt is FAILED, nothing ran" \
  "$(ctl B --json status t-auth | jq -r .state)" FAILED

# A token for one VM does not open another.
token2=$(ctl B prepare t-auth -q) || mig_die "second prepare failed"
out=$(probe -A "$P/ca.pem" -c "$P/hosta.pem" -k "$P/hosta.key" -t "$token2" -v other-vm -r $ram)
echo "token for another VM: $out"
mig_assert_eq "token presented for the wrong VM refused" "${out%%:*}" refused

kill -0 "$PID_DB" 2>/dev/null; mig_assert_eq "destination daemon still running" $? 0

# And it still serves a real migration.
mig_migrate t-after 16M quiet
mig_assert_eq "migration after the refusals completes" "$(jq -r .state "$WORK/dst.json")" COMPLETED
mig_assert_eq "guest verdict after the refusals" "$(jq -r .verdict "$WORK/report.json")" intact
mig_assert_verified "$WORK/vmm-B.log" 16M
mig_finish
