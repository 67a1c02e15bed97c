#!/usr/bin/env bash
# Interop with a stock gRPC client: Python stubs generated from proto/ with
# Debian's python3-grpc-tools (at test time, never committed) drive a whole
# migration between two daemons through python3-grpcio over the Unix
# control sockets (prepare, start, watch, pause, recover, get, list with
# filters, latency, health, cancel), and one error case per status code:
# (also over the TCP listener with TLS, where a client certificate from the
# control CA is required and the server shows its [tls] certificate)
# NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION, UNIMPLEMENTED, and
# PERMISSION_DENIED for a client running as an unprivileged user, while
# members of [control] group are served; hostile clients are closed alone.
BUILD=$1
source "$(dirname "$0")/../lib.sh"
PY=/usr/bin/python3
SHIMVM=$BUILD/tests/shimvm
VM=py-vm SPARE=py-spare
$PY -c 'import grpc, grpc_tools' 2>/dev/null ||
  mig_skip "python3-grpcio and python3-grpc-tools are not installed"
[[ $(id -u) == 0 ]] || mig_skip "needs root (setpriv to an unprivileged user)"

mkdir -p "$WORK/py"
$PY -m grpc_tools.protoc -I"$SRC/proto" --python_out="$WORK/py" --grpc_python_out="$WORK/py" \
  "$SRC/proto/control.proto" || mig_die "stub generation failed"

mig_hosts_up
if ((MIG_USE_NETNS)); then
  # A slower link, so the migration is still in post-copy when paused.
  tc -n "migA-$$" qdisc add dev "va$$" root tbf rate 60mbit burst 64kb latency 500ms ||
    mig_die "cannot shape the link"
fi
mig_certs
mig_daemon_start A "[control]
group = nogroup"
CTL_TCP=${ADDR_B%:*}:$((${ADDR_B##*:} + 10))
mig_daemon_start B "[control]
listen = $CTL_TCP
ca = $WORK/pki/ctl-ca.pem
read = ops-read"
mig_spawn A "$WORK/src.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$VM" -m 32
src=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || mig_die "source shimvm not ready"
mig_spawn B "$WORK/dst.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$VM" -m 32 -t 2 -k 32
dst=$SPAWN_PID
mig_spawn B "$WORK/spare.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$SPARE" -m 4
spare=$SPAWN_PID

$PY "$SRC/tests/python/grpc_interop.py" "$WORK/py" migrate "$WORK/A/control.sock" \
  "$WORK/B/control.sock" "$ADDR_B" "$VM" "$SPARE"
mig_assert_eq "Python client drove the migration (all checks)" "$?" 0
mig_wait_exit "$dst" 60; mig_assert_eq "destination shimvm verified every page" "$?" 0
mig_assert_verified "$WORK/dst.log" 32M
mig_wait_exit "$src" 30; mig_assert_eq "source shimvm left" "$?" 0

# Bad input closes that client only.
$PY "$SRC/tests/python/grpc_interop.py" "$WORK/py" hostile "$WORK/A/control.sock"
mig_assert_eq "hostile control clients closed, daemon still serving" "$?" 0

# The TCP listener: TLS with ALPN h2, client certificates against the
# control CA; without [control] cert it serves with the host's certificate
# (peer CA, which the client trusts for the server).
if ((MIG_USE_NETNS)); then inb=(ip netns exec "migB-$$"); else inb=(); fi
"${inb[@]}" $PY "$SRC/tests/python/grpc_interop.py" "$WORK/py" tls "$CTL_TCP" \
  "$WORK/pki/ca.pem" "$WORK/pki/ops-read.pem" "$WORK/pki/ops-read.key"
mig_assert_eq "Python client over TLS (client certificate required)" "$?" 0

# An unprivileged client reaches the socket (0666) and is refused by status.
chmod 0755 "$WORK" "$WORK/B" "$WORK/py"
setpriv --reuid=65534 --regid=65534 --clear-groups \
  $PY "$SRC/tests/python/grpc_interop.py" "$WORK/py" denied "$WORK/B/control.sock"
mig_assert_eq "unprivileged Python client gets PERMISSION_DENIED" "$?" 0
grep -q 'control: refused: uid 65534' "$WORK/migrationd-B.log"
mig_assert_eq "daemon logged the refusal" "$?" 0
# [control] group = nogroup on A: its members are served, as primary group
# (SO_PEERCRED) or as a supplementary one (SO_PEERGROUPS).
chmod 0755 "$WORK/A"
setpriv --reuid=65534 --regid=65534 --clear-groups \
  $PY "$SRC/tests/python/grpc_interop.py" "$WORK/py" allowed "$WORK/A/control.sock"
mig_assert_eq "[control] group member (primary group) served" "$?" 0
setpriv --reuid=65534 --regid=100 --groups=65534 \
  $PY "$SRC/tests/python/grpc_interop.py" "$WORK/py" allowed "$WORK/A/control.sock"
mig_assert_eq "[control] group member (supplementary group) served" "$?" 0
mig_finish
