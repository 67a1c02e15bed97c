#!/usr/bin/env bash
# Peers by name and by identity, with real daemons in two network
# namespaces, real TLS and real minivmm guests. Host A's names come from
# /etc/netns/NS/hosts (which `ip netns exec` binds over /etc/hosts for the
# daemon it starts): hostb maps first to an address where nothing listens,
# then to host B, so the daemon must try the next address; alias-b maps to
# host B but is not in B's certificate. Proves:
#   - bad destinations get INVALID_ARGUMENT (no port, port out of range,
#     empty host), a refused connection and a name that does not resolve
#     fail with a clean message (no OpenSSL codes);
#   - a name server written into resolv.conf while the daemon runs is
#     asked at the next dial (the file is read again when it changes);
#   - alias-b is refused because the certificate does not carry it, and the
#     VM runs on at the source;
#   - a migration to hostb:7480 prepared --from hosta completes, every byte
#     verified, status shows the name, the address used and both identities
#     on both sides;
#   - with prepare --from hosta, a source with another certificate (hostc)
#     is refused with a clear reason and does not spend the token; the right
#     source then migrates with it, to an IPv6 literal [2001:db8::2]:7480;
#   - a link lost during a migration to hostb:7480: the source redials the
#     name (the refused first address again, then host B, the certificate
#     checked against hostb) and the migration completes, every byte
#     verified;
#   - --from with peer TLS off is refused at prepare.
# usage: peer_names.sh BUILD_DIR
BUILD=$1
source "$(dirname "$0")/../lib.sh"

mig_require_kvm
mig_hosts_up
((MIG_USE_NETNS)) || mig_skip "needs network namespaces (root): names come from /etc/netns"
NSA=migA-$$ NSB=migB-$$
ETCNS=/etc/netns/$NSA
[[ -e $ETCNS ]] && mig_die "$ETCNS exists already"
mkdir -p "$ETCNS" || mig_skip "cannot create $ETCNS"
# Removed on every exit (keeping the exit status for mig_on_exit).
peer_names_exit() { local rc=$?; rm -rf "$ETCNS"; (exit $rc); mig_on_exit; }
trap peer_names_exit EXIT
cat >"$ETCNS/hosts" <<HOSTS
127.0.0.1 localhost
127.0.0.1 hostb
192.0.2.2 hostb
192.0.2.2 alias-b
HOSTS
# Name servers only inside the namespace: a name not in hosts fails here,
# no query leaves the test's own namespaces.
echo "nameserver 127.0.0.1" >"$ETCNS/resolv.conf"
# IPv6 on the veth pair (no duplicate address detection: usable at once).
if ! { ip -n "$NSA" addr add 2001:db8::1/64 dev "va$$" nodad &&
  ip -n "$NSB" addr add 2001:db8::2/64 dev "vb$$" nodad; }; then
  mig_die "cannot add IPv6 addresses"
fi

"$SRC/scripts/gen-certs.sh" "$WORK/pki" hosta=192.0.2.1 hostb=192.0.2.2,2001:db8::2 \
  hostc=192.0.2.1 || mig_die "certificate generation failed"
mig_daemon_start A
# B listens on every address of its host, IPv4 and IPv6.
ADDR_B='[::]:7480' mig_daemon_start B

# A third daemon on host A with hostc's certificate: a source that is not hosta.
mig_conf "$WORK/C" 192.0.2.1:7481 "[tls]
ca = $WORK/pki/ca.pem
cert = $WORK/pki/hostc.pem
key = $WORK/pki/hostc.key"
mig_spawn A "$WORK/migrationd-C.log" "$MIGRATIOND" -f -v -c "$WORK/C/migrationd.conf"
MIG_DAEMON_PIDS+=("$SPAWN_PID")
mig_wait_line "$WORK/migrationd-C.log" 'ready:' 10 "$SPAWN_PID" || mig_die "daemon C did not start"

# Bad syntax is refused by the API before anything is dialled.
bad() { # DEST WANT-IN-MESSAGE
  local out rc
  out=$(ctl A migrate nosuch-vm --to "$1" --token t 2>&1); rc=$?
  mig_assert_eq "--to '$1' refused as invalid (exit 4)" "$rc" 4
  mig_assert_eq "--to '$1': INVALID_ARGUMENT saying '$2'" \
    "$([[ $out == *INVALID_ARGUMENT*"$2"* ]] && echo yes || echo "$out")" yes
}
bad hostb "no port"
bad hostb:70000 "port must be 1-65535"
bad hostb:0 "port must be 1-65535"
bad :7480 "empty host"
bad "[]:7480" "empty host"
bad "::1:7480" "brackets"
bad "[hostb]:7480" "not an IPv6 address"

# One source VM for the failures and the first migration.
VM=t-names
mig_vmm_start A "$VM" vmm-A --mem 16M --workload quiet
src_pid=$VMM_PID
mig_wait_line "$WORK/vmm-A.log" 'guest ready' 60 "$src_pid" || mig_die "source guest not ready"
mig_vmm_start B "$VM" vmm-B --mem 16M --incoming --report "$WORK/report.json"
dst_pid=$VMM_PID
mig_wait_attached B "$VM" 10 || mig_die "destination VMM did not attach"
token=$(ctl B prepare "$VM" --from hosta -q) || mig_die "prepare --from hosta failed"

reason_after() { # DEST: migrate $VM there with $token, wait, print the reason
  ctl A migrate "$VM" --to "$1" --token "$token" --wait --timeout 30 >/dev/null 2>&1
  st A .reason
}
clean() { # DESCRIPTION REASON WANT
  echo "$1: $2"
  mig_assert_eq "$1" "$([[ $2 == *"$3"* ]] && echo yes || echo no)" yes
  mig_assert_eq "$1: no OpenSSL error codes" "$([[ $2 == *error:0* || $2 == *lib\(* ]] && echo codes || echo none)" none
}
r=$(reason_after 192.0.2.2:7999)
clean "refused connection" "$r" "cannot connect to 192.0.2.2:7999 (192.0.2.2:7999): Connection refused"
r=$(reason_after nosuch.invalid:7480)
clean "unknown name" "$r" "name nosuch.invalid does not resolve"
# A name server named in /etc/resolv.conf while the daemon runs (written in
# place: the bind mount shows it) is asked at the next dial. It knows
# late-b, which then fails later, at the certificate that does not carry it.
mig_spawn A "$WORK/dns.log" python3 "$SRC/tests/python/dns_answer.py" 127.0.0.53 \
  late-b=192.0.2.2
mig_wait_line "$WORK/dns.log" 'dns ready' 20 "$SPAWN_PID" || mig_die "name server did not start"
r=$(reason_after late-b:7480)
clean "a name only a name server not yet configured knows" "$r" "name late-b does not resolve"
echo "nameserver 127.0.0.53" >"$ETCNS/resolv.conf"
r=$(reason_after late-b:7480)
clean "the same name once resolv.conf names that server: read again" "$r" \
  "TLS handshake with late-b:7480 (192.0.2.2:7480) failed: certificate does not match the name late-b"
mig_assert_eq "the new name server was asked" \
  "$(grep -q 'query late-b type 1' "$WORK/dns.log" && echo asked)" asked
r=$(reason_after alias-b:7480)
clean "name not in the certificate" "$r" \
  "TLS handshake with alias-b:7480 (192.0.2.2:7480) failed: certificate does not match the name alias-b"
mig_assert_eq "after the failures the VM still runs on the source" \
  "$(kill -0 "$src_pid" 2>/dev/null && echo running)" running
mig_assert_eq "... attached to host A" \
  "$(ctl A --json list | jq --arg vm "$VM" '[.vms[] | select(.name == $vm)] | length')" 1
mig_assert_eq "destination still waits with the same token" "$(st B .state)" PREPARED

# By name: 127.0.0.1 refuses, 192.0.2.2 is host B; --from hosta holds.
ctl A migrate "$VM" --to hostb:7480 --token "$token" --wait --timeout 120 >/dev/null
mig_assert_eq "migration to hostb:7480 exit code" "$?" 0
mig_wait_exit "$dst_pid" 60; mig_assert_eq "destination VMM exit code" "$?" 0
mig_wait_exit "$src_pid" 30
mig_assert_verified "$WORK/vmm-B.log" 16M
mig_assert_eq "source: state" "$(st A .state)" COMPLETED
mig_assert_eq "source: peer is the name dialled" "$(st A .peer)" hostb:7480
mig_assert_eq "source: the address used" "$(st A .peer_address)" 192.0.2.2:7480
mig_assert_eq "source: its own identity" "$(st A .source_identity)" CN=hosta
mig_assert_eq "source: the destination's identity" "$(st A .destination_identity)" CN=hostb
mig_assert_eq "destination: state" "$(st B .state)" COMPLETED
mig_assert_eq "destination: the source's identity" "$(st B .source_identity)" CN=hosta
mig_assert_eq "destination: its own identity" "$(st B .destination_identity)" CN=hostb
mig_assert_eq "destination: only from" "$(st B .expected_source)" hosta
grep -q 'cannot connect to hostb:7480 (127.0.0.1:7480): Connection refused' "$WORK/migrationd-A.log"
mig_assert_eq "the source noted the refused first address, then tried the next" "$?" 0
ctl A status "$VM" | grep -q '^  peer: *hostb:7480 (at 192.0.2.2:7480)$'
mig_assert_eq "status (human) shows the name and the address" "$?" 0
ctl B status "$VM" | grep -q '^  source: *CN=hosta$'
mig_assert_eq "status (human) shows the source's identity" "$?" 0
grep -q "source 192.0.2.1:[0-9]* \[CN=hosta\]" "$WORK/migrationd-B.log"
mig_assert_eq "destination logged the source's identity" "$?" 0

out=$(ctl A recover "$VM" --to hostb: 2>&1)
mig_assert_eq "recover --to is checked the same way (INVALID_ARGUMENT)" \
  "$([[ $out == *INVALID_ARGUMENT*"port must be 1-65535"* ]] && echo yes || echo "$out")" yes

# A source with another certificate cannot spend a token prepared --from hosta.
VM=t-ident
mig_spawn A "$WORK/vmm-C.log" "$MINIVMM" --name "$VM" --vmm-socket "$WORK/C/vmm.sock" \
  --mem 16M --workload quiet
c_pid=$SPAWN_PID
mig_wait_line "$WORK/vmm-C.log" 'guest ready' 60 "$c_pid" || mig_die "guest on daemon C not ready"
mig_vmm_start B "$VM" vmm-B2 --mem 16M --incoming --report "$WORK/report2.json"
dst_pid=$VMM_PID
mig_wait_attached B "$VM" 10 || mig_die "second destination VMM did not attach"
token=$(ctl B prepare "$VM" --from hosta -q) || mig_die "second prepare failed"
"$MIGCTL" -s "$WORK/C/control.sock" migrate "$VM" --to hostb:7480 --token "$token" \
  --wait --timeout 30 >/dev/null 2>&1
r=$("$MIGCTL" -s "$WORK/C/control.sock" --json status "$VM" | jq -r .reason)
clean "wrong source identity" "$r" \
  "destination refused: this migration may only come from hosta; you are CN=hostc"
mig_assert_eq "the refused source's VM runs on" "$(kill -0 "$c_pid" 2>/dev/null && echo running)" running
mig_assert_eq "the token is not spent: still PREPARED" "$(st B .state)" PREPARED
grep -q "token from 192.0.2.1:[0-9]* refused: source CN=hostc is not hosta" "$WORK/migrationd-B.log"
mig_assert_eq "destination logged the refusal" "$?" 0
# The right source, the same token, an IPv6 literal.
mig_vmm_start A "$VM" vmm-A2 --mem 16M --workload quiet
src_pid=$VMM_PID
mig_wait_line "$WORK/vmm-A2.log" 'guest ready' 60 "$src_pid" || mig_die "source guest 2 not ready"
ctl A migrate "$VM" --to "[2001:db8::2]:7480" --token "$token" --wait --timeout 120 >/dev/null
mig_assert_eq "migration to [2001:db8::2]:7480 with the same token" "$?" 0
mig_wait_exit "$dst_pid" 60; mig_assert_eq "second destination VMM exit code" "$?" 0
mig_assert_verified "$WORK/vmm-B2.log" 16M
mig_assert_eq "IPv6: the address used" "$(st A .peer_address)" "[2001:db8::2]:7480"
mig_assert_eq "IPv6: the source's identity at the destination" "$(st B .source_identity)" CN=hosta
mig_assert_eq "IPv6: the destination saw the source over IPv6" \
  "$(st B .peer | grep -c '^\[2001:db8::1\]:')" 1

# Records keep the identities across a restart of the destination daemon.
kill -TERM "$PID_DB"; mig_wait_exit "$PID_DB" 20; mig_forget "$PID_DB"
ADDR_B='[::]:7480' mig_daemon_start B
mig_assert_eq "after a restart: the source's identity" "$(st B .source_identity)" CN=hosta
mig_assert_eq "after a restart: only from" "$(st B .expected_source)" hosta

# The link goes while a migration to hostb:7480 runs: the source redials
# the name, not the address it had reached.
VM=t-relink
refused() { grep -c 'cannot connect to hostb:7480 (127.0.0.1:7480): Connection refused' \
  "$WORK/migrationd-A.log"; }
tc -n "$NSA" qdisc add dev "va$$" root tbf rate 30mbit burst 64kb latency 500ms ||
  mig_die "cannot shape the link"
mig_vmm_start A "$VM" vmm-A3 --mem 32M --workload writer
src_pid=$VMM_PID
mig_wait_line "$WORK/vmm-A3.log" 'guest ready' 60 "$src_pid" || mig_die "source guest 3 not ready"
mig_vmm_start B "$VM" vmm-B3 --mem 32M --incoming
dst_pid=$VMM_PID
mig_wait_attached B "$VM" 10 || mig_die "third destination VMM did not attach"
token=$(ctl B prepare "$VM" --from hosta -q) || mig_die "third prepare failed"
ctl A migrate "$VM" --to hostb:7480 --token "$token" >/dev/null || mig_die "third migrate failed"
wait_for B '.state == "POSTCOPY" and .pages_installed > 500' 60 ||
  mig_die "post-copy to hostb did not get going"
n0=$(refused)
ip -n "$NSA" link set "va$$" down
wait_for A '.state == "PAUSED"' 15
mig_assert_eq "link down: the source PAUSED" "$?" 0
ip -n "$NSA" link set "va$$" up
wait_for B '.state == "COMPLETED"' 120
mig_assert_eq "after the link came back: the migration by name completed" "$?" 0
mig_wait_exit "$dst_pid" 60; mig_assert_eq "third destination VMM exit code" "$?" 0
mig_assert_verified "$WORK/vmm-B3.log" 32M
mig_wait_exit "$src_pid" 30
mig_assert_eq "the redial went by name: 127.0.0.1 refused again" "$(($(refused) > n0))" 1
mig_assert_eq "redialled: the peer is still the name" "$(st A .peer)" hostb:7480
mig_assert_eq "redialled: the address used" "$(st A .peer_address)" 192.0.2.2:7480
mig_assert_eq "redialled: the destination's identity" "$(st A .destination_identity)" CN=hostb
tc -n "$NSA" qdisc del dev "va$$" root

# --from needs peer TLS.
mig_conf "$WORK/D" 127.0.0.1:7482 "[tls]
enabled = off"
mig_spawn B "$WORK/migrationd-D.log" "$MIGRATIOND" -f -v -c "$WORK/D/migrationd.conf"
MIG_DAEMON_PIDS+=("$SPAWN_PID")
mig_wait_line "$WORK/migrationd-D.log" 'ready:' 10 "$SPAWN_PID" || mig_die "daemon D did not start"
mig_spawn B "$WORK/vmm-D.log" "$MINIVMM" --name t-plain --vmm-socket "$WORK/D/vmm.sock" \
  --mem 16M --incoming
for _ in $(seq 100); do
  "$MIGCTL" -s "$WORK/D/control.sock" --json list 2>/dev/null |
    jq -e '.vms[] | select(.name == "t-plain")' >/dev/null && break
  sleep 0.1
done
out=$("$MIGCTL" -s "$WORK/D/control.sock" prepare t-plain --from hosta 2>&1)
mig_assert_eq "--from with TLS off refused at prepare (exit 4)" "$?" 4
echo "$out"
mig_assert_eq "... saying why" "$([[ $out == *FAILED_PRECONDITION*"needs peer TLS"* ]] && echo yes)" yes
mig_finish
