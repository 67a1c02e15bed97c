#!/usr/bin/env bash
# The service and socket units are valid for systemd (systemd-analyze
# verify), the service's hardening scores 4.0 or lower in
# `systemd-analyze security` (the score is printed), the daemon reports
# readiness with sd_notify and takes its control socket from systemd socket
# activation (systemd-socket-activate stands in for PID 1), command-line
# flags override the file, the sample configuration (with this test's
# certificates and directories) is accepted by the daemon's own checker,
# and a bad key is refused with file, line and key named (the whole table
# of bad configurations is config_check.sh's).
BUILD=$1
source "$(dirname "$0")/../lib.sh"
command -v systemd-analyze >/dev/null || mig_skip "systemd-analyze is not installed"

# Documentation=man:... pages are looked up: point man at ours.
out=$(cd "$BUILD/systemd/test" && MANPATH=$SRC/doc: systemd-analyze verify \
  migrationd.service migrationd.socket 2>&1)
rc=$?
echo "$out"
mig_assert_eq "systemd-analyze verify exit code" "$rc" 0
mig_assert_eq "systemd-analyze verify prints no warning about the units" \
  "$(grep -c 'migrationd\.s' <<<"$out")" 0

out=$(cd "$BUILD/systemd/test" && systemd-analyze security --offline=true migrationd.service 2>&1)
score=$(sed -n 's/.*Overall exposure level for migrationd.service: \([0-9.]*\).*/\1/p' <<<"$out")
echo "systemd-analyze security migrationd.service: ${score:-?} (lower is better; 4.0 or lower required)"
grep '✗' <<<"$out" | sed 's/  */ /g'
mig_assert_eq "security exposure score is 4.0 or lower" \
  "$([[ -n $score ]] && echo "$score <= 4.0" | bc)" 1

# The unit checks the configuration (-n) before it starts the daemon on it.
unit=$BUILD/systemd/test/migrationd.service
conf=$(sed -n 's/^ExecStart=.* -c \([^ ]*\)$/\1/p' "$unit")
mig_assert_eq "ExecStartPre runs migrationd -n on the file ExecStart uses" \
  "$(grep -c "^ExecStartPre=$MIGRATIOND -n -c $conf\$" "$unit")" 1

# The eBPF programs' system calls (bpf, perf_event_open; capset for the
# daemon's drop of its capabilities) are in an allow line after the last
# deny line (systemd applies the lines in order), so the seccomp filter
# lets them through; the capability they need is the one granted.
last_deny=$(grep -n '^SystemCallFilter=~' "$unit" | tail -n1 | cut -d: -f1)
allowed=$(awk -v d="$last_deny" -F= 'NR > d && $1 == "SystemCallFilter" && $2 !~ /^~/ {print $2}' "$unit" | tr ' ' '\n')
for sc in bpf perf_event_open capset; do
  mig_assert_eq "system call $sc allowed after the deny list" "$(grep -cx "$sc" <<<"$allowed")" 1
done
mig_assert_eq "the unit grants CAP_SYS_ADMIN alone, bounding and ambient" \
  "$(sed -n 's/^CapabilityBoundingSet=//p; s/^AmbientCapabilities=//p' "$unit" | sort -u)" CAP_SYS_ADMIN

# sd_notify: READY=1 reaches NOTIFY_SOCKET once the listeners are up.
PY=/usr/bin/python3
mkdir -p "$WORK/n"
cat >"$WORK/n/migrationd.conf" <<CONF
[daemon]
control_socket = $WORK/n/unused.sock
vmm_socket = $WORK/n/vmm.sock
state_dir = $WORK/n/state
[peer]
listen =
[tls]
enabled = no
CONF
$PY - "$WORK/n/notify.sock" >"$WORK/n/notify.out" 2>&1 <<'PYEOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
print(s.recv(4096).decode(), flush=True)
PYEOF
listener=$!
MIG_PIDS+=("$listener")
for _ in $(seq 50); do [[ -S $WORK/n/notify.sock ]] && break; sleep 0.1; done
# -s overrides [daemon] control_socket.
NOTIFY_SOCKET=$WORK/n/notify.sock mig_spawn A "$WORK/migrationd-notify.log" \
  "$MIGRATIOND" -f -c "$WORK/n/migrationd.conf" -s "$WORK/n/control.sock"
MIG_DAEMON_PIDS+=("$SPAWN_PID")
mig_wait_exit "$listener" 20
mig_assert_eq "READY=1 sent to NOTIFY_SOCKET" "$(grep -c 'READY=1' "$WORK/n/notify.out")" 1
mig_assert_eq "-s overrides the control socket of the file" \
  "$("$MIGCTL" -s "$WORK/n/control.sock" --json health | jq -r .socket_activated)" false
[[ -e $WORK/n/unused.sock ]]
mig_assert_eq "the file's control socket was not bound" "$?" 1
mig_assert_eq "control socket is 0666 (authorisation is per call)" \
  "$(stat -c %a "$WORK/n/control.sock")" 666

# Socket activation: the control socket is made by the activator and passed
# as fd 3 (LISTEN_FDS=1); the first client's connection starts the daemon.
sed -i "s|^vmm_socket = .*|vmm_socket = $WORK/n/vmm2.sock|; s|^state_dir = .*|state_dir = $WORK/n/state2|" \
  "$WORK/n/migrationd.conf"
mig_spawn A "$WORK/migrationd-activated.log" systemd-socket-activate \
  -l "$WORK/n/activated.sock" "$MIGRATIOND" -f -c "$WORK/n/migrationd.conf"
MIG_DAEMON_PIDS+=("$SPAWN_PID")
for _ in $(seq 50); do [[ -S $WORK/n/activated.sock ]] && break; sleep 0.1; done
mig_assert_eq "socket-activated daemon answers on the inherited socket" \
  "$("$MIGCTL" -s "$WORK/n/activated.sock" --json health | jq -r .socket_activated)" true

# The sample names /etc/migrationd's files and the system's directories:
# with this test's certificates and directories put in, -n accepts it.
ADDR_A=127.0.0.1:7480 ADDR_B=127.0.0.2:7480 mig_certs
sed -e "s|/etc/migrationd/|$WORK/pki/|; s|host\.pem|hosta.pem|; s|host\.key|hosta.key|" \
  -e "s|/run/migrationd/|$WORK/n/|; s|/var/lib/migrationd|$WORK/n/state3|" \
  "$SRC/systemd/migrationd.conf.sample" >"$WORK/sample.conf"
"$MIGRATIOND" -n -c "$WORK/sample.conf" >"$WORK/ok.out" 2>"$WORK/ok.err"
mig_assert_eq "sample configuration accepted" "$?:$(cat "$WORK/ok.out")" "0:configuration OK"
cat "$WORK/ok.err"
printf '[daemon]\nstate_dir = /tmp\n[peer]\nlisten = 127.0.0.1:1\nbogus_key = 1\n' >"$WORK/bad.conf"
"$MIGRATIOND" -n -c "$WORK/bad.conf" 2>"$WORK/bad.err"
mig_assert_eq "bad key refused" "$?" 1
mig_assert_eq "error names file, line and key" \
  "$(grep -c "^$WORK/bad.conf:5: \[peer\] bogus_key: unknown key\$" "$WORK/bad.err")" 1
"$MIGRATIOND" -n -c "$WORK/sample.conf" -l nowhere 2>"$WORK/l.err"
mig_assert_eq "-l is checked like [peer] listen" "$?:$(grep -c -- '^-l: "nowhere": not a numeric IP:PORT' "$WORK/l.err")" 1:1
printf '[control]\nlisten = somewhere\n' >"$WORK/bad3.conf"
"$MIGRATIOND" -n -c "$WORK/bad3.conf" 2>"$WORK/bad3.err"
mig_assert_eq "bad [control] listen named" \
  "$(grep -c 'bad3.conf:2: \[control\] listen: "somewhere": not a numeric IP:PORT' "$WORK/bad3.err")" 1
printf '[peer]\ntoken_ttl = soon\n' >"$WORK/bad2.conf"
"$MIGRATIOND" -n -c "$WORK/bad2.conf" 2>"$WORK/bad2.err"
mig_assert_eq "bad value named" \
  "$(grep -c 'bad2.conf:2: \[peer\] token_ttl: "soon": not an integer from 1 to 86400' "$WORK/bad2.err")" 1
mig_finish
