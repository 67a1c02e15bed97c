# Sourced by package.sh inside its private mount namespace: the throw-away
# root and what happens in it. Arguments: BUILD --inner ROOT PKI DEB...
# ROOT (an empty directory) gets a tmpfs, and on it the overlay of / whose
# writes all land in that tmpfs; nothing here is visible outside the
# namespace, and it all goes away with it.
R=$3 PKI=$4
shift 4
DEBS=("$@")
source "$(dirname "$0")/../lib.sh"
# Unmount before lib.sh's cleanup removes $WORK (the root is not under it,
# but never let a recursive removal meet a mount).
pkg_root_exit() {
  local rc=$?
  mig_cleanup
  umount -R "$R" 2>/dev/null || umount -R -l "$R"
  ((MIG_CLEANUP_FAIL)) && rc=1
  exit $rc
}
trap pkg_root_exit EXIT
mount -t tmpfs -o mode=0755 migpkg "$R" || mig_die "tmpfs on $R"
mkdir -p "$R/upper" "$R/work" "$R/root"
mount -t overlay migpkg -o "lowerdir=/,upperdir=$R/upper,workdir=$R/work" "$R/root" ||
  mig_die "overlay of / on $R/root"
C=$R/root
mount -t proc proc "$C/proc" || mig_die "proc in the throw-away root"
mount -t tmpfs -o mode=0755 dev "$C/dev"
for d in null zero random urandom; do
  touch "$C/dev/$d" && mount --bind "/dev/$d" "$C/dev/$d"
done
# The host's /run (a separate mount) is not in the overlay: no systemd runs
# "in" the root, so the maintainer scripts install units without starting.
mount -t tmpfs -o mode=0755 run "$C/run"
in_root() { chroot "$C" "$@"; }
mkdir -p "$C/debs"
cp "${DEBS[@]}" "$C/debs/"

in_root sh -c 'dpkg -i /debs/*.deb' >"$WORK/dpkg-i.log" 2>&1
mig_assert_eq "dpkg -i of all the packages" "$?" 0
cat "$WORK/dpkg-i.log"
for f in "${DEBS[@]}"; do
  p=$(dpkg-deb -f "$f" Package)
  mig_assert_eq "$p installed" "$(in_root dpkg-query -W -f '${Status}' "$p" 2>&1)" \
    "install ok installed"
done
mig_assert_eq "system user migrationd made (nologin, home the state directory)" \
  "$(in_root getent passwd migrationd | cut -d: -f1,6,7)" "migrationd:/var/lib/migrationd:/usr/sbin/nologin"
mig_assert_eq "system user's uid is a system uid" \
  "$(( $(in_root getent passwd migrationd | cut -d: -f3) < 1000 ))" 1
mig_assert_eq "state directory made: owner, group, mode" \
  "$(in_root stat -c '%U:%G %a' /var/lib/migrationd)" "migrationd:migrationd 750"
mig_assert_eq "units installed, not enabled (the host needs its certificates first)" \
  "$(ls "$C/etc/systemd/system/multi-user.target.wants/migrationd.service" 2>/dev/null)" ""
mig_assert_eq "sample configuration is a conffile" \
  "$(in_root dpkg-query -W -f '${Conffiles}' migrationd | awk '{print $1}' | xargs)" \
  "/etc/migrationd/migrationd.conf.sample"

# The packaged daemon runs and the packaged mig-ctl talks to it.
t=/tmp/mig-pkgtest
mkdir -p "$C$t"
cp "$PKI/ca.pem" "$PKI/hosta.pem" "$PKI/hosta.key" "$C$t/"
port=$((30000 + $$ % 20000))
cat >"$C$t/migrationd.conf" <<CONF
[daemon]
control_socket = $t/control.sock
vmm_socket = $t/vmm.sock
state_dir = /var/lib/migrationd

[peer]
listen = 127.0.0.1:$port

[tls]
ca = $t/ca.pem
cert = $t/hosta.pem
key = $t/hosta.key
CONF
in_root /usr/sbin/migrationd -n -c "$t/migrationd.conf" >"$WORK/n.log" 2>&1
mig_assert_eq "the packaged migrationd checks a configuration" "$?" 0
mig_spawn A "$WORK/migrationd-pkg.log" chroot "$C" /usr/sbin/migrationd -f -v -c "$t/migrationd.conf"
dpid=$SPAWN_PID
MIG_DAEMON_PIDS+=("$dpid")
for _ in $(seq 100); do
  [[ -S $C$t/control.sock ]] && grep -q 'ready:' "$WORK/migrationd-pkg.log" && break
  sleep 0.1
done
out=$(in_root /usr/sbin/mig-ctl -s "$t/control.sock" --json health 2>&1)
mig_assert_eq "packaged mig-ctl health from the packaged daemon" \
  "$(jq -r .version <<<"$out" 2>/dev/null)" "$(dpkg-deb -f "${DEBS[0]}" Version)"
# A client of each -dev package, from its pkg-config file and header alone.
cat >"$C$t/client.c" <<'C'
#include <migrationd/libmigctl.h>
#include <migrationd/libmigshim.h>
#include <stdio.h>

int
main(int argc, char **argv)
{
	struct migctl *c = migctl_open(argv[1]);
	Migrationd__V1__GetHealthResponse *h;

	if (c == NULL || migctl_health(c, &h) != MIGCTL_OK)
		return 1;
	printf("latency source: %s\n", h->latency_source);
	migshim_destroy(NULL);	/* links libmigshim.so.0 */
	migctl_free(h);
	migctl_close(c);
	return 0;
}
C
in_root sh -c "cc -Wall -Werror -o $t/client $t/client.c \$(pkg-config --cflags --libs migctl migshim)" \
  >"$WORK/cc.log" 2>&1
mig_assert_eq "a client builds from libmigshim-dev and libmigctl-dev" "$?" 0
cat "$WORK/cc.log"
mig_assert_eq "it runs against the packaged libraries and daemon" \
  "$(in_root "$t/client" "$t/control.sock" >/dev/null 2>&1; echo $?)" 0
kill -TERM "$dpid"
mig_wait_exit_fast "$dpid" 10
mig_assert_eq "the packaged daemon stops cleanly on SIGTERM" "$?" 0
MIG_DAEMON_PIDS=()

# Purge: every file of every package gone, the state directory too.
pkgs=()
for f in "${DEBS[@]}"; do pkgs+=("$(dpkg-deb -f "$f" Package)"); done
in_root dpkg --purge "${pkgs[@]}" >"$WORK/dpkg-purge.log" 2>&1
mig_assert_eq "dpkg --purge of all the packages" "$?" 0
cat "$WORK/dpkg-purge.log"
left=0
for f in "${DEBS[@]}"; do
  while read -r path; do
    [[ -e $C$path || -L $C$path ]] && { echo "left behind: $path"; left=$((left + 1)); }
  done < <(dpkg-deb -c "$f" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|')
done
mig_assert_eq "no file of any package left after purge" "$left" 0
for p in "${pkgs[@]}"; do
  mig_assert_eq "$p gone from dpkg" "$(in_root dpkg-query -W -f '${Status}' "$p" 2>/dev/null)" ""
done
mig_assert_eq "state directory removed on purge" "$(in_root ls -d /var/lib/migrationd 2>&1 | grep -c '^/var')" 0
mig_assert_eq "configuration directory removed on purge" "$(ls -d "$C/etc/migrationd" 2>/dev/null)" ""
mig_assert_eq "no unit state left for migrationd" \
  "$(ls "$C/var/lib/systemd/deb-systemd-helper-enabled" 2>/dev/null | grep -c migrationd)" 0
mig_finish
