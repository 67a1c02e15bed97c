#!/usr/bin/env bash
# The Debian packages: `scripts/build-deb.sh` (what `make deb` runs) builds
# them offline from a copy of the tree, without leaving anything in the
# checkout; lintian finds no error; each package holds exactly its files.
# Then a real `dpkg -i` of all five and `dpkg --purge` in a throw-away root:
# a copy-on-write overlay of this host's / (tmpfs upper layer) in a private
# mount namespace, entered with chroot. The packages' maintainer scripts run
# for real there (the system user, the state directory, the units), the
# packaged daemon starts and answers `mig-ctl health`, a client builds from
# the -dev packages, and after the purge nothing of them is left. The host
# itself is never touched: the overlay and its mounts die with the
# namespace, and the test checks the host's dpkg database and users after.
# usage: package.sh BUILD_DIR
BUILD=$1
if [[ ${2:-} == --inner ]]; then
  source "$(dirname "$0")/package_root.sh"
  exit
fi
source "$(dirname "$0")/../lib.sh"
for t in dpkg-buildpackage dh lintian dpkg-deb unshare chroot; do
  command -v "$t" >/dev/null || mig_skip "$t is not installed (scripts/deps.sh installs it)"
done
[[ $(id -u) == 0 ]] || mig_skip "needs root (a mount namespace and an overlay of /)"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
grep -qw overlay /proc/filesystems || mig_skip "no overlayfs in this kernel"
ver=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
mig_assert_eq "debian/changelog's version is the project's (CMakeLists.txt)" "${ver%%-*}" \
  "$(sed -nE 's/^project\(migrationd VERSION ([0-9.]+).*/\1/p' "$SRC/CMakeLists.txt")"

# The checkout before (the build must not litter it).
git_state() { git -C "$SRC" status --porcelain --untracked-files=all --ignored 2>/dev/null | sort; }
before=$(git_state)
start=$(date +%s.%N)
"$SRC/scripts/build-deb.sh" "$WORK/deb" >"$WORK/build-deb.out" 2>&1
rc=$?
secs=$(bc <<<"$(date +%s.%N) - $start")
cat "$WORK/build-deb.out"
echo "package build + lintian took $(printf '%.1f' "$secs") s"
mig_assert_eq "packages built and lintian reports no error" "$rc" 0
((rc == 0)) || mig_die "no packages to check"
mig_assert_eq "lintian errors" "$(grep -c '^E:' "$WORK/deb/lintian.txt")" 0
mig_assert_eq "the checkout is as it was (no build litter)" "$(git_state)" "$before"

contents() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' |
  grep -v '^/usr/share/doc/' | sort; }
declare -A want
want[migrationd]="/etc/migrationd/migrationd.conf.sample
/lib/systemd/system/migrationd.service
/lib/systemd/system/migrationd.socket
/usr/lib/sysusers.d/migrationd.conf
/usr/lib/tmpfiles.d/migrationd.conf
/usr/sbin/mig-ctl
/usr/sbin/migrationd
/usr/share/bash-completion/completions/mig-ctl
/usr/share/man/man5/migrationd.conf.5.gz
/usr/share/man/man8/mig-ctl.8.gz
/usr/share/man/man8/migrationd.8.gz"
want[libmigshim0]="/usr/lib/$ma/libmigshim.so.0
/usr/lib/$ma/libmigshim.so.$ver"
want[libmigshim-dev]="/usr/include/migrationd/libmigshim.h
/usr/lib/$ma/libmigshim.so
/usr/lib/$ma/pkgconfig/migshim.pc
/usr/share/man/man3/libmigshim.3.gz"
want[libmigctl0]="/usr/lib/$ma/libmigctl.so.0
/usr/lib/$ma/libmigctl.so.$ver"
want[libmigctl-dev]="/usr/include/migrationd/control.pb-c.h
/usr/include/migrationd/libmigctl.h
/usr/lib/$ma/libmigctl.so
/usr/lib/$ma/pkgconfig/migctl.pc
/usr/share/man/man3/libmigctl.3.gz"
debs=()
for p in migrationd libmigshim0 libmigshim-dev libmigctl0 libmigctl-dev; do
  f=$WORK/deb/${p}_${ver}_$(dpkg --print-architecture).deb
  [[ -f $f ]] || { mig_fail "package $p not built"; continue; }
  debs+=("$f")
  mig_assert_eq "$p holds exactly its files (diff: < missing, > unexpected)" \
    "$(diff <(sort <<<"${want[$p]}") <(contents "$f"))" ""
  contents "$f" >"$WORK/files-$p"
  mig_assert_eq "$p has its copyright file" \
    "$(dpkg-deb -c "$f" | grep -c "/usr/share/doc/$p/copyright$")" 1
done
mig_assert_eq "libmigshim-dev depends on its library, this version" \
  "$(dpkg-deb -f "$WORK/deb/libmigshim-dev_${ver}_amd64.deb" Depends | grep -c "libmigshim0 (= $ver)")" 1
mig_assert_eq "libmigctl-dev depends on its library, this version" \
  "$(dpkg-deb -f "$WORK/deb/libmigctl-dev_${ver}_amd64.deb" Depends | grep -c "libmigctl0 (= $ver)")" 1
mig_assert_eq "libmigshim0 has a symbols file" \
  "$(dpkg-deb -I "$WORK/deb/libmigshim0_${ver}_amd64.deb" symbols | grep -c '^ migshim_attach@MIGSHIM_0 ')" 1
mig_assert_eq "libmigctl0 has a symbols file" \
  "$(dpkg-deb -I "$WORK/deb/libmigctl0_${ver}_amd64.deb" symbols | grep -c '^ migctl_open@MIGCTL_0 ')" 1
mig_assert_eq "migrationd's postinst makes the system user" \
  "$(dpkg-deb -I "$WORK/deb/migrationd_${ver}_amd64.deb" postinst | grep -c 'systemd-sysusers')" 1
((MIG_FAILS)) && mig_finish

# Install, use, purge in the throw-away root (package_root.sh).
host_pkgs=$(dpkg-query -W -f '${Package}\n' 2>/dev/null | sort | md5sum)
host_user=$(getent passwd migrationd)
root=$(mktemp -d /tmp/mig-pkgroot.XXXXXX)
mig_certs_dir=$WORK/pki
"$SRC/scripts/gen-certs.sh" "$mig_certs_dir" hosta=127.0.0.1 >/dev/null 2>&1 ||
  mig_die "certificate generation failed"
start=$(date +%s.%N)
unshare -m --propagation private "$0" "$BUILD" --inner "$root" "$mig_certs_dir" "${debs[@]}"
rc=$?
echo "install, use and purge in the throw-away root took $(printf '%.1f' "$(bc <<<"$(date +%s.%N) - $start")") s"
mig_assert_eq "install, use and purge in the throw-away root" "$rc" 0
mig_assert_eq "nothing is mounted on the throw-away root out here" \
  "$(grep -c " $root" /proc/self/mounts)" 0
rmdir "$root" || mig_fail "throw-away root $root not empty out here"
mig_assert_eq "the host's package set is untouched" \
  "$(dpkg-query -W -f '${Package}\n' 2>/dev/null | sort | md5sum)" "$host_pkgs"
mig_assert_eq "the host's users are untouched" "$(getent passwd migrationd)" "$host_user"
mig_finish
