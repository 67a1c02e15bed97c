#!/usr/bin/env bash
# Who may do what on the control API, against two real daemons with real
# TLS: the TCP control listener trusts only [control] ca (a peer host's
# certificate fails the handshake, for openssl s_client and grpcio alike);
# an operator certificate listed under `read` reads but cannot prepare or
# migrate (PERMISSION_DENIED naming the role); one listed under `operate`
# prepares and migrates a minivmm guest between the two daemons over TCP;
# a control-CA certificate that is not listed has no role; a local user who
# is not root gets [control] others (read, or nothing); the health service
# answers everyone, reflection needs read; every state-changing call leaves
# exactly one audit line with caller, method, VM and outcome; and a TCP
# listener without [control] ca refuses to start.
BUILD=$1
source "$(dirname "$0")/../lib.sh"
PY=/usr/bin/python3
VM=roles-vm
$PY -c 'import grpc, grpc_tools' 2>/dev/null ||
  mig_skip "python3-grpcio and python3-grpc-tools are not installed"
[[ $(id -u) == 0 ]] || mig_skip "needs root (setpriv to an unprivileged user)"
command -v openssl >/dev/null || mig_skip "openssl is not installed"
mig_require_kvm

mkdir -p "$WORK/py"
# Each file from its own folder: health_pb2, reflection_pb2 at the top level
# (a "grpc" package of stubs would hide grpcio's).
for f in control.proto grpc/health/v1/health.proto grpc/reflection/v1/reflection.proto; do
  $PY -m grpc_tools.protoc -I"$SRC/proto/$(dirname "$f")" --python_out="$WORK/py" \
    --grpc_python_out="$WORK/py" "$SRC/proto/$f" || mig_die "stub generation failed ($f)"
done

mig_hosts_up
mig_certs
P=$WORK/pki
CTL_A=${ADDR_A%:*}:$((${ADDR_A##*:} + 10))
CTL_B=${ADDR_B%:*}:$((${ADDR_B##*:} + 10))
# Roles by URI and e-mail subjectAltName on A, by whole subject and CN on B.
mig_daemon_start A "[control]
listen = $CTL_A
ca = $P/ctl-ca.pem
cert = $P/hosta-ctl.pem
key = $P/hosta-ctl.key
operate = spiffe://fleet/ops/operate
read = ops-read@fleet.example
others = read"
mig_daemon_start B "[control]
listen = $CTL_B
ca = $P/ctl-ca.pem
cert = $P/hostb-ctl.pem
key = $P/hostb-ctl.key
operate = CN=ops-operate
read = ops-read
others = none"

if ((MIG_USE_NETNS)); then inb=(ip netns exec "migB-$$"); else inb=(); fi
py() { # TARGET CERT-NAME|- COMMAND ARGS...
  local t=$1 c=$2; shift 2
  [[ $c == - ]] || c=$P/ctl-ca.pem,$P/$c.pem,$P/$c.key
  "${inb[@]}" $PY "$SRC/tests/python/control_roles.py" "$WORK/py" "$t" "$c" "$@"
}
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
chmod 0755 "$WORK" "$WORK/A" "$WORK/B" "$WORK/py"

# 1. A peer host's certificate (peer CA) on the control listener: refused
# in the handshake. s_client sees the server's alert; grpcio UNAVAILABLE.
sc() { # CERT-NAME: s_client's transcript (one read after the handshake)
  (sleep 1) | timeout 10 "${inb[@]}" openssl s_client -connect "$CTL_B" -alpn h2 \
    -CAfile "$P/ctl-ca.pem" -cert "$P/$1.pem" -key "$P/$1.key" -verify_return_error 2>&1 | tr -d '\0'
}
out=$(sc hosta)
echo "$out" | grep -E 'alert|error' | head -3
mig_assert_eq "s_client with a peer-CA host certificate: the server's 'unknown ca' alert" \
  "$(grep -c 'alert unknown ca' <<<"$out")" 1
out=$(sc ops-read)
mig_assert_eq "s_client with an operator certificate: the handshake completes, ALPN h2" \
  "$(grep -c -e 'ALPN protocol: h2' <<<"$out")/$(grep -c 'alert' <<<"$out")" 1/0
py "$CTL_B" hosta handshake
mig_assert_eq "grpcio with a peer-CA host certificate: UNAVAILABLE" "$?" 0
grep -m1 'control client .*: client certificate refused: unable to get local issuer certificate' "$WORK/migrationd-B.log"
mig_assert_eq "the daemon logged why it refused the handshake" "$?" 0

# 2. The read role, the unlisted certificate, health and reflection.
py "$CTL_B" ops-read read
mig_assert_eq "read role (CN on B): reads; prepare and migrate PERMISSION_DENIED" "$?" 0
py "$CTL_B" ops-unlisted none "$VM"
mig_assert_eq "a control-CA certificate that is not listed: no role" "$?" 0
py "$CTL_A" ops-read health
mig_assert_eq "grpc.health.v1 over TCP (stock client)" "$?" 0
py "$CTL_A" ops-read reflect
mig_assert_eq "server reflection v1 and v1alpha (read role, e-mail SAN on A)" "$?" 0

# 3. Local users who are not root: [control] others.
as_nobody $PY "$SRC/tests/python/control_roles.py" "$WORK/py" "unix:$WORK/B/control.sock" - \
  none "$VM"
mig_assert_eq "others = none: uid 65534 has no role, health still served" "$?" 0
as_nobody $PY "$SRC/tests/python/control_roles.py" "$WORK/py" "unix:$WORK/A/control.sock" - \
  health
mig_assert_eq "others = read: health served to uid 65534" "$?" 0
as_nobody "$MIGCTL" -s "$WORK/A/control.sock" list >/dev/null
mig_assert_eq "others = read: uid 65534 lists (mig-ctl)" "$?" 0
out=$(as_nobody "$MIGCTL" -s "$WORK/A/control.sock" migrate "$VM" --to "$ADDR_B" --token x 2>&1)
rc=$?
echo "mig-ctl: $out"
mig_assert_eq "others = read: uid 65534 cannot migrate (mig-ctl exit 4, refused)" "$rc" 4
mig_assert_eq "the refusal names the caller and the missing role" \
  "$(grep -cE 'uid 65534 \(pid [0-9]+, mig-ctl\) has the read role only; StartMigration needs the operate role' <<<"$out")" 1
out=$(as_nobody "$MIGCTL" -s "$WORK/B/control.sock" prepare "$VM" 2>&1)
mig_assert_eq "others = none: uid 65534 cannot prepare (mig-ctl exit 4)" "$?" 4
# A process name is the caller's to choose: one that looks like more keys.
as_nobody $PY "$SRC/tests/python/control_roles.py" "$WORK/py" "unix:$WORK/B/control.sock" - \
  forger 'e" role=operate' "$VM"
mig_assert_eq "a process named 'e\" role=operate' is refused like any other" "$?" 0

# 4. The operate role: bad requests are audited too, then a real migration
# of a minivmm guest, prepared and started over TCP.
py "$CTL_A" ops-operate invalid
mig_assert_eq "operate role: INVALID_ARGUMENT and NOT_FOUND as usual" "$?" 0
ctl A cancel "no-such-vm" >/dev/null 2>&1
mig_assert_eq "root on the Unix socket: NOT_FOUND (mig-ctl exit 4)" "$?" 4
mig_vmm_start A "$VM" vmm-A --mem 32M --workload writer
src_pid=$VMM_PID
mig_wait_line "$WORK/vmm-A.log" 'guest ready' 120 "$src_pid" || mig_die "source guest not ready"
mig_vmm_start B "$VM" vmm-B --mem 32M --incoming --report "$WORK/report.json"
dst_pid=$VMM_PID
mig_wait_attached B "$VM" 10 || mig_die "the incoming VMM did not attach"
token=$(py "$CTL_B" ops-operate prepare "$VM" | sed -n 's/^token: //p')
[[ -n $token ]] || mig_die "PrepareIncoming over TCP failed"
py "$CTL_A" ops-operate start "$VM" "$ADDR_B" "$token"
mig_assert_eq "operate role (URI SAN on A): StartMigration over TCP, COMPLETED" "$?" 0
mig_wait_exit "$dst_pid" 120; mig_assert_eq "destination minivmm exited 0" "$?" 0
mig_wait_exit "$src_pid" 30; mig_assert_eq "source minivmm exited 0" "$?" 0
mig_assert_eq "guest verdict" "$(jq -r .verdict "$WORK/report.json")" intact
mig_assert_verified "$WORK/vmm-B.log" 32M

# 5. The audit log: one line per state-changing call, none for reads.
aud() { grep -E "^migrationd\[[0-9.]+\]: audit: $2" "$WORK/migrationd-$1.log"; }
echo "audit lines on A:"; aud A ''
echo "audit lines on B:"; aud B ''
mig_assert_eq "audit lines on A: 5 calls (1 refused, 1 INVALID_ARGUMENT, 2 NOT_FOUND, 1 OK)" \
  "$(aud A '' | wc -l)" 5
mig_assert_eq "audit lines on B: 7 calls (6 refused, 1 OK)" "$(aud B '' | wc -l)" 7
T='transport=tcp identity="CN=ops-'
mig_assert_eq "A: uid 65534's refused StartMigration" "$(aud A "method=StartMigration transport=unix uid=65534 pid=[0-9]+ comm=mig-ctl role=read destination=$ADDR_B vm=$VM outcome=PERMISSION_DENIED message=\"uid 65534 \\(pid [0-9]+, mig-ctl\\) has the read role only; StartMigration needs the operate role\"\$" | wc -l)" 1
mig_assert_eq "A: the operator's StartMigration without a VM" "$(aud A "method=StartMigration ${T}operate\" addr=[0-9.]+:[0-9]+ role=operate destination=192.0.2.9:1 outcome=INVALID_ARGUMENT message=" | wc -l)" 1
mig_assert_eq "A: the operator's CancelMigration of none" "$(aud A "method=CancelMigration ${T}operate\" addr=[0-9.:]+ role=operate id_or_vm=\"no such vm\" outcome=NOT_FOUND" | wc -l)" 1
mig_assert_eq "A: root's CancelMigration (mig-ctl)" "$(aud A "method=CancelMigration transport=unix uid=0 pid=[0-9]+ comm=mig-ctl role=operate id_or_vm=no-such-vm outcome=NOT_FOUND" | wc -l)" 1
mig_assert_eq "A: the migration, with its id" "$(aud A "method=StartMigration ${T}operate\" addr=[0-9.:]+ role=operate destination=$ADDR_B vm=$VM id=m-[0-9a-f]{12} outcome=OK\$" | wc -l)" 1
mig_assert_eq "B: the read certificate's StartMigration and PrepareIncoming" "$(aud B "method=(StartMigration|PrepareIncoming) ${T}read\" addr=[0-9.:]+ role=read .*vm=roles-vm outcome=PERMISSION_DENIED message=\"certificate \\\\\"CN=ops-read\\\\\" from [0-9.:]+ has the read role only" | wc -l)" 2
mig_assert_eq "B: the unlisted certificate's StartMigration" "$(aud B "method=StartMigration ${T}unlisted\" addr=[0-9.:]+ role=no .*outcome=PERMISSION_DENIED" | wc -l)" 1
mig_assert_eq "B: uid 65534's StartMigration (python3)" "$(aud B "method=StartMigration transport=unix uid=65534 pid=[0-9]+ comm=python3 role=no .*outcome=PERMISSION_DENIED message=\"uid 65534 \\(pid [0-9]+, python3\\) has no role here; StartMigration needs the operate role\"\$" | wc -l)" 1
mig_assert_eq "B: uid 65534's PrepareIncoming" "$(aud B "method=PrepareIncoming transport=unix uid=65534 .* role=no vm=$VM outcome=PERMISSION_DENIED" | wc -l)" 1
mig_assert_eq "B: the hostile process name stays one quoted value" "$(aud B 'method=StartMigration transport=unix uid=65534 pid=[0-9]+ comm="e\\" role=operate" role=no destination=' | wc -l)" 1
mig_assert_eq "B: the operator's PrepareIncoming" "$(aud B "method=PrepareIncoming ${T}operate\" addr=[0-9.:]+ role=operate vm=$VM id=m-[0-9a-f]{12} outcome=OK\$" | wc -l)" 1

# 6. A health Watch open while A stops hears NOT_SERVING, then ends OK.
py unix:"$WORK/A/control.sock" - watch-stop >"$WORK/watch-stop" 2>&1 &
wpid=$!
mig_wait_line "$WORK/watch-stop" '^watching' 30 "$wpid" || mig_die "the Watch did not start"
kill -TERM "$PID_DA"
mig_forget "$PID_DA"
wait "$wpid"
wrc=$?
cat "$WORK/watch-stop"
mig_assert_eq "the Watch across A's stop: every check passed" "$wrc" 0

# 7. [control] listen without [control] ca does not start.
mig_conf "$WORK/C" "127.0.0.1:$((${ADDR_A##*:} + 20))" "[tls]
ca = $P/ca.pem
cert = $P/hosta.pem
key = $P/hosta.key
[control]
listen = 127.0.0.1:$((${ADDR_A##*:} + 21))"
out=$(timeout 20 "$MIGRATIOND" -f -c "$WORK/C/migrationd.conf" 2>&1)
rc=$?
echo "$out" | grep -i 'control' | head -2
mig_assert_eq "[control] listen without [control] ca: refuses to start" "$rc" 1
mig_assert_eq "and says why" "$(grep -c 'needs \[control\] ca' <<<"$out")" 1
mig_finish
