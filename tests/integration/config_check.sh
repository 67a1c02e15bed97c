#!/usr/bin/env bash
# `migrationd -n` checks everything it can without starting, and a start
# runs the same checks. A table of bad configurations: each is refused by
# -n (exit 1) with an error that names its exact FILE:LINE and [section]
# key (or the flag) and says why: listener addresses, a missing,
# unreadable, mismatched, foreign or expired certificate or key, a CA file
# without a CA, bad durations, booleans and identities, unknown keys and
# sections, a TCP control listener without [control] ca, peer TLS off on a
# non-loopback listener without [tls] insecure = yes (from the file and from
# -l), a state directory that cannot be used or written, a missing [control]
# group, a socket path too long. A file with many errors gets all of them
# in one run. Good files pass: the base, TLS off on loopback, TLS off off
# loopback with insecure = yes (with its warning). A real start of a
# refused file exits non-zero with the same lines; the insecure one starts
# (in a network namespace of its own), warns, and stops cleanly. -n leaves
# nothing behind in the directories it probes.
#
# As root the checks run with an empty capability set (setpriv), as the
# shipped unit runs the daemon: root then reads and writes only what its
# file modes allow, so "unreadable" and "not writable" mean something.
# usage: config_check.sh BUILD_DIR
BUILD=$1
source "$(dirname "$0")/../lib.sh"

mig_hosts_up
mig_certs
PKI=$WORK/pki
C=$WORK/c
mkdir -p "$C" "$WORK/run"
RUNAS=()
if [[ $(id -u) == 0 ]]; then
  command -v setpriv >/dev/null || mig_skip "setpriv (util-linux) is not installed"
  RUNAS=(setpriv --bounding-set=-all --inh-caps=-all)
fi

# The base: good, 10 lines; a case's text is appended from line 11 (inih
# keeps the last value of a key, so a case overrides what it names).
base() {
  cat <<CONF
[daemon]
control_socket = $WORK/run/control.sock
vmm_socket = $WORK/run/vmm.sock
state_dir = $WORK/state
[peer]
listen = 127.0.0.1:7480
[tls]
ca = $PKI/ca.pem
cert = $PKI/hosta.pem
key = $PKI/hosta.key
CONF
}

# check NAME [FLAGS...]: -n on $C/NAME.conf; sets RC and OUT (stderr)
check() {
  local name=$1; shift
  "${RUNAS[@]}" "$MIGRATIOND" -n -c "$C/$name.conf" "$@" >"$C/$name.out" 2>"$C/$name.err"
  RC=$?
  OUT=$(cat "$C/$name.err")
}

# bad NAME EXPECT TEXT [FLAGS...]: the base plus TEXT is refused, with a
# line that starts with EXPECT ("LINE: [section] key: why", a grep -E
# pattern after "FILE:", or "-l: ..." for a flag).
bad() {
  local name=$1 want=$2 text=$3; shift 3
  { base; printf '%s\n' "$text"; } >"$C/$name.conf"
  check "$name" "$@"
  [[ $want == -* ]] || want="$C/$name.conf:$want"
  if ((RC == 1)) && grep -qE -- "^$want" <<<"$OUT"; then
    echo "ok: $name refused: $(grep -E -- "^$want" <<<"$OUT" | head -n 1)"
  else
    mig_fail "$name: exit $RC, no line matching '^$want' in: $OUT"
  fi
}

# good NAME TEXT: the base plus TEXT passes
good() {
  local name=$1 text=$2
  { base; printf '%s\n' "$text"; } >"$C/$name.conf"
  check "$name"
  mig_assert_eq "$name accepted" "$RC:$(cat "$C/$name.out")" "0:configuration OK"
  [[ -n $OUT ]] && echo "  $name says: $OUT"
}

cp "$PKI/hosta.key" "$PKI/unreadable.key"
chmod 000 "$PKI/unreadable.key"
openssl pkey -in "$PKI/hosta.key" -aes256 -passout pass:secret -out "$PKI/encrypted.key" ||
  mig_die "openssl pkey failed"
: >"$WORK/afile"
mkfifo "$WORK/fifo"
mkdir -p "$WORK/readonly"
chmod 555 "$WORK/readonly"
long=$WORK/run/$(printf 's%.0s' {1..120}).sock

good base ""
good tls_off_loopback "[tls]
enabled = no"
good tls_off_v6_loopback "[peer]
listen = [::1]:7480
[tls]
enabled = no"
good tls_off_no_listener "[peer]
listen =
[tls]
enabled = no"
good tls_off_insecure "[peer]
listen = 0.0.0.0:7480
[tls]
enabled = no
insecure = yes"
mig_assert_eq "-n warns about the insecure configuration" \
  "$(grep -c 'INSECURE: peer TLS is OFF on 0.0.0.0:7480' "$C/tls_off_insecure.err")" 1
good control_listener "[control]
listen = 127.0.0.1:7490
ca = $PKI/ca.pem
operate = CN=ops"

bad listen_not_address '12: \[peer\] listen: "not-an-address": not a numeric IP:PORT' "[peer]
listen = not-an-address"
bad listen_port_range '12: \[peer\] listen: "1.2.3.4:99999": port 99999 is out of range' "[peer]
listen = 1.2.3.4:99999"
bad listen_host_name '12: \[control\] listen: "hosta:7490": not a numeric IP:PORT.*not a host name' "[control]
listen = hosta:7490"
bad metrics_listen '12: \[metrics\] listen: "127.0.0.1": not a numeric IP:PORT' "[metrics]
listen = 127.0.0.1"
bad cert_missing "12: \[tls\] cert: cannot read $PKI/missing.pem: No such file or directory" "[tls]
cert = $PKI/missing.pem"
bad key_unreadable "12: \[tls\] key: cannot read $PKI/unreadable.key: Permission denied" "[tls]
key = $PKI/unreadable.key"
bad key_encrypted "12: \[tls\] key: $PKI/encrypted.key is encrypted: the daemon needs a key without a passphrase" "[tls]
key = $PKI/encrypted.key"
bad key_mismatch "12: \[tls\] key: $PKI/hostb.key is not the key of the certificate in $PKI/hosta.pem" "[tls]
key = $PKI/hostb.key"
bad cert_other_ca "12: \[tls\] cert: the certificate CN=other does not verify against $PKI/ca.pem as a TLS (server|client): unable to get local issuer certificate" "[tls]
cert = $PKI/other.pem
key = $PKI/other.key"
bad cert_expired '12: \[tls\] cert: the certificate CN=expired is valid from .* 2020 GMT to .* 2020 GMT, not now' "[tls]
cert = $PKI/expired.pem
key = $PKI/expired.key"
bad ca_not_ca "12: \[tls\] ca: $PKI/hosta.pem holds 1 certificate but no CA certificate" "[tls]
ca = $PKI/hosta.pem"
bad ca_fifo "12: \[tls\] ca: $WORK/fifo is not a regular file" "[tls]
ca = $WORK/fifo"
bad ca_empty "12: \[tls\] ca: $WORK/afile holds no PEM certificate" "[tls]
ca = $WORK/afile"
bad bad_duration '12: \[daemon\] record_max_age: "7w": not a duration' "[daemon]
record_max_age = 7w"
bad bad_boolean '12: \[bpf\] enabled: "maybe": not a boolean' "[bpf]
enabled = maybe"
bad bad_integer '12: \[daemon\] keep_records: "-1": not an integer from 0 to 1000000' "[daemon]
keep_records = -1"
bad bad_enum '12: \[control\] others: "all": neither none nor read' "[control]
others = all"
bad empty_identity '13: \[control\] operate: "": empty' "[control]
operate = CN=ops
operate ="
bad unknown_key '12: \[peer\] bogus: unknown key' "[peer]
bogus = 1"
bad unknown_section '11: \[bogus\]: unknown section' "[bogus]
x = 1"
bad syntax '12: syntax error: neither \[section\] nor key = value' "[peer]
this is not a key"
bad control_without_ca '12: \[control\] listen: a TCP control listener needs \[control\] ca' "[control]
listen = 127.0.0.1:7490"
bad control_cert_other_ca "14: \[control\] cert: the certificate CN=other does not verify against $PKI/ca.pem or the system's CAs as a TLS server" "[control]
listen = 127.0.0.1:7490
ca = $PKI/ca.pem
cert = $PKI/other.pem
key = $PKI/other.key"
bad tls_off_public '14: \[tls\] enabled: peer TLS is off but the peer listener 0.0.0.0:7480 \(.*:12: \[peer\] listen\) is not on loopback.*set \[tls\] insecure = yes' "[peer]
listen = 0.0.0.0:7480
[tls]
enabled = no"
bad tls_off_flag '12: \[tls\] enabled: peer TLS is off but the peer listener 192.0.2.7:7480 \(-l\) is not on loopback' "[tls]
enabled = no" -l 192.0.2.7:7480
bad flag_not_address '-l: "nowhere": not a numeric IP:PORT' "" -l nowhere
bad state_dir_under_file "12: \[daemon\] state_dir: the state directory $WORK/afile/state cannot be used: Not a directory" "[daemon]
state_dir = $WORK/afile/state"
bad state_dir_is_file "12: \[daemon\] state_dir: the state directory $WORK/afile is not a directory" "[daemon]
state_dir = $WORK/afile"
bad state_dir_readonly "12: \[daemon\] state_dir: the state directory $WORK/readonly/state does not exist and cannot be made: Permission denied" "[daemon]
state_dir = $WORK/readonly/state"
bad state_dir_not_writable "12: \[daemon\] state_dir: the state directory $WORK/readonly is not writable: Permission denied" "[daemon]
state_dir = $WORK/readonly"
bad socket_too_long "12: \[daemon\] vmm_socket: $long is longer than 107 characters" "[daemon]
vmm_socket = $long"
bad socket_not_socket "12: \[daemon\] control_socket: $WORK/afile exists and is not a socket" "[daemon]
control_socket = $WORK/afile"
bad socket_flag "-s: the socket's directory $WORK/afile is not a directory" "" -s "$WORK/afile/control.sock"
bad group_missing "12: \[control\] group: no group mig-no-such-group-$$ on this host" "[control]
group = mig-no-such-group-$$"

# A file that is not there: that alone (no checks of the defaults).
"${RUNAS[@]}" "$MIGRATIOND" -n -c "$C/absent.conf" 2>"$C/absent.err"
mig_assert_eq "an absent file is refused, alone" "$?:$(cat "$C/absent.err")" \
  "1:$C/absent.conf: cannot read the configuration: No such file or directory
$C/absent.conf: 1 error: the daemon would not start"

# One file, many errors: every one is reported, in one run.
cat >"$C/many.conf" <<CONF
[daemon]
control_socket = $WORK/run/control.sock
vmm_socket = $WORK/run/vmm.sock
state_dir = $WORK/afile/state
keep_records = many
garbage
[bogus]
x = 1
[peer]
listen = not-an-address
token_ttl = 0
[tls]
enabled = maybe
ca = $PKI/ca.pem
cert = $PKI/expired.pem
key = $PKI/hostb.key
nope = 1
[control]
listen = 127.0.0.1:7490
group = mig-no-such-group-$$
[daemon
CONF
check many
echo "----- migrationd -n on many.conf (exit $RC) -----"
echo "$OUT"
echo "-----"
mig_assert_eq "many.conf refused" "$RC" 1
F=$C/many.conf
for want in "$F:4: \[daemon\] state_dir: .*Not a directory" \
    "$F:5: \[daemon\] keep_records: \"many\": not an integer" \
    "$F:6: syntax error" \
    "$F:7: \[bogus\]: unknown section" \
    "$F:10: \[peer\] listen: \"not-an-address\": not a numeric IP:PORT" \
    "$F:11: \[peer\] token_ttl: \"0\": not an integer from 1 to 86400" \
    "$F:13: \[tls\] enabled: \"maybe\": not a boolean" \
    "$F:15: \[tls\] cert: the certificate CN=expired is valid from" \
    "$F:16: \[tls\] key: $PKI/hostb.key is not the key of the certificate in $PKI/expired.pem" \
    "$F:17: \[tls\] nope: unknown key" \
    "$F:19: \[control\] listen: a TCP control listener needs \[control\] ca" \
    "$F:20: \[control\] group: no group" \
    "$F:21: syntax error: no '\]' after the section name"; do
  mig_assert_eq "many.conf: ${want#"$F":}" "$(grep -cE -- "^$want" <<<"$OUT")" 1
done
mig_assert_eq "many.conf: the count" "$(grep -c "^$F: 13 errors: the daemon would not start" <<<"$OUT")" 1
mig_assert_eq "many.conf: nothing else reported" "$(wc -l <<<"$OUT")" 14
lines=$(sed -nE "s|^$F:([0-9]+): .*|\1|p" <<<"$OUT" | tr '\n' ' ')
mig_assert_eq "many.conf: in the file's order" "$lines" "$(tr ' ' '\n' <<<"$lines" | sort -n | tr '\n' ' ' | sed 's/^ //')"

# -n probed the directories and made the missing ones: nothing is left.
mig_assert_eq "-n left nothing in the directories it probed" \
  "$(find "$WORK/run" "$WORK/readonly" -mindepth 1 | wc -l):$([[ -e $WORK/state ]] && echo state)" "0:"

# A real start of a refused file exits 1 with the same lines as -n.
for name in tls_off_public many; do
  mig_spawn A "$C/$name.start.log" "$MIGRATIOND" -f -c "$C/$name.conf"
  mig_wait_exit_fast "$SPAWN_PID" 20
  rc=$?
  missing=0
  while IFS= read -r line; do
    grep -qF -- "$line" "$C/$name.start.log" || { missing=$((missing + 1)); echo "  not in the log: $line"; }
  done < <(grep -v 'the daemon would not start$' "$C/$name.err")
  mig_assert_eq "$name: a start exits 1 and logs every line -n printed" "$rc:$missing" "1:0"
  grep -q 'in the configuration: not starting' "$C/$name.start.log"
  mig_assert_eq "$name: the start says it does not start" "$?" 0
done

# Peer TLS off on a non-loopback listener: refused at a real start, also in
# a namespace; with insecure = yes it starts and warns, every start.
((MIG_USE_NETNS)) || mig_skip "network namespaces are needed to listen on a non-loopback address privately"
mkdir -p "$WORK/A"
{ base | sed "s|^listen = .*|listen = $ADDR_A|"; printf '[tls]\nenabled = no\n'; } >"$C/ns_off.conf"
mig_spawn A "$C/ns_off.log" "$MIGRATIOND" -f -c "$C/ns_off.conf"
mig_wait_exit_fast "$SPAWN_PID" 20
mig_assert_eq "TLS off on $ADDR_A: the start is refused" "$?" 1
mig_assert_eq "... saying why and what to set" \
  "$(grep -c "ns_off.conf:12: \[tls\] enabled: peer TLS is off but the peer listener $ADDR_A .*is not on loopback.*set \[tls\] insecure = yes" "$C/ns_off.log")" 1
mig_daemon_start A "enabled = no
insecure = yes"
grep "INSECURE" "$WORK/migrationd-A.log"
mig_assert_eq "insecure = yes starts, with the warning" \
  "$(grep -c "INSECURE: peer TLS is OFF on $ADDR_A (\[tls\] insecure = yes)" "$WORK/migrationd-A.log")" 1
mig_assert_eq "it serves" "$(ctl A --json health | jq -r .version | grep -c .)" 1
kill -TERM "$PID_DA"
mig_wait_exit_fast "$PID_DA" 20
mig_assert_eq "it stops cleanly on SIGTERM" "$?" 0
mig_daemon_start A "enabled = no
insecure = yes"
mig_assert_eq "the warning comes again at the next start" \
  "$(grep -c "INSECURE: peer TLS is OFF" "$WORK/migrationd-A.log")" 2
mig_finish
