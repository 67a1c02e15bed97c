#!/usr/bin/env bash
# The service unit is valid for systemd (systemd-analyze verify) and the
# sample configuration is accepted by the daemon's own checker, while a bad
# key is refused with file, line and key named.
BUILD=$1
source "$(dirname "$0")/../lib.sh"
command -v systemd-analyze >/dev/null || mig_skip "systemd-analyze is not installed"

# Documentation=man:... pages are looked up: point man at ours.
out=$(MANPATH=$SRC/doc: systemd-analyze verify "$BUILD/systemd/test/migrationd.service" 2>&1)
rc=$?
echo "$out"
mig_assert_eq "systemd-analyze verify exit code" "$rc" 0
mig_assert_eq "systemd-analyze verify prints no warning about the unit" \
  "$(grep -c 'migrationd.service' <<<"$out")" 0

"$MIGRATIOND" -n -c "$SRC/systemd/migrationd.conf.sample" >/dev/null 2>"$WORK/ok.err"
mig_assert_eq "sample configuration accepted" "$?" 0
printf '[daemon]\nstate_dir = /tmp\n[peer]\nlisten = 127.0.0.1:1\nbogus_key = 1\n' >"$WORK/bad.conf"
"$MIGRATIOND" -n -c "$WORK/bad.conf" 2>"$WORK/bad.err"
mig_assert_eq "bad key refused" "$?" 1
mig_assert_eq "error names file, line and key" \
  "$(grep -c "bad.conf:5: unknown key \[peer\] bogus_key" "$WORK/bad.err")" 1
printf '[peer]\ntoken_ttl = soon\n' >"$WORK/bad2.conf"
"$MIGRATIOND" -n -c "$WORK/bad2.conf" 2>"$WORK/bad2.err"
mig_assert_eq "bad value named" \
  "$(grep -c 'bad2.conf:2: bad value for \[peer\] token_ttl: "soon"' "$WORK/bad2.err")" 1
mig_finish
