#!/usr/bin/env bash
# `cmake --install` into a DESTDIR puts exactly the installed set in place:
# daemon, CLI, the shared libraries with their SONAMEs and only their public
# API exported, the headers under include/migrationd/, pkg-config files that
# work against the DESTDIR, every man page (rendering without warnings),
# units with this prefix's paths, sysusers/tmpfiles, completion, the sample
# configuration. A program built from the installed header and pkg-config
# file, linked with the installed libmigctl.so.0, talks to a real daemon.
# usage: install.sh BUILD_DIR
BUILD=$1
source "$(dirname "$0")/../lib.sh"
for t in pkg-config nm objdump readelf cc man; do
  command -v "$t" >/dev/null || mig_skip "$t is not installed"
done
cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
prefix=$(cache CMAKE_INSTALL_PREFIX)
libdir=$(cache CMAKE_INSTALL_LIBDIR)
unitdir=$(cache MIG_SYSTEMD_UNIT_DIR)
compdir=$(cache MIG_BASH_COMPLETION_DIR)
[[ $compdir == /* ]] || compdir=$prefix/$compdir
sysconf=$prefix/etc
[[ $prefix == /usr ]] && sysconf=/etc
ver=$(sed -nE 's/^project\(migrationd VERSION ([0-9.]+).*/\1/p' "$SRC/CMakeLists.txt")
major=${ver%%.*}
mig_install_root
D=$INST_ROOT

# The file list, exactly.
expect=$(sort <<LIST
$prefix/sbin/migrationd
$prefix/sbin/mig-ctl
$prefix/$libdir/libmigshim.so
$prefix/$libdir/libmigshim.so.$major
$prefix/$libdir/libmigshim.so.$ver
$prefix/$libdir/libmigctl.so
$prefix/$libdir/libmigctl.so.$major
$prefix/$libdir/libmigctl.so.$ver
$prefix/$libdir/pkgconfig/migshim.pc
$prefix/$libdir/pkgconfig/migctl.pc
$prefix/include/migrationd/libmigshim.h
$prefix/include/migrationd/libmigctl.h
$prefix/include/migrationd/control.pb-c.h
$prefix/share/man/man3/libmigshim.3
$prefix/share/man/man3/libmigctl.3
$prefix/share/man/man5/migrationd.conf.5
$prefix/share/man/man8/migrationd.8
$prefix/share/man/man8/mig-ctl.8
$unitdir/migrationd.service
$unitdir/migrationd.socket
/usr/lib/sysusers.d/migrationd.conf
/usr/lib/tmpfiles.d/migrationd.conf
$compdir/mig-ctl
$sysconf/migrationd/migrationd.conf.sample
LIST
)
got=$(cd "$D" && find . \( -type f -o -type l \) | sed 's/^\.//' | sort)
diff <(echo "$expect") <(echo "$got") >"$WORK/files.diff"
mig_assert_eq "installed file list (diff: < missing, > unexpected)" "$(cat "$WORK/files.diff")" ""
# Every man page of the tree is installed.
for m in "$SRC"/doc/man*/*.[0-9]; do
  s=${m##*.}
  [[ -f $D$prefix/share/man/man$s/$(basename "$m") ]] || mig_fail "man page $(basename "$m") not installed"
done
for m in "$D$prefix"/share/man/man*/*; do
  w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
  mig_assert_eq "$(basename "$m") renders without warnings" "$w" ""
done

# Shared libraries: SONAME, symlinks, no RPATH, only the public API.
L=$D$prefix/$libdir
for lib in migshim migctl; do
  so=$L/lib$lib.so.$ver
  mig_assert_eq "lib$lib SONAME" "$(objdump -p "$so" | awk '/SONAME/ {print $2}')" "lib$lib.so.$major"
  mig_assert_eq "lib$lib.so.$major -> lib$lib.so.$ver" "$(readlink "$L/lib$lib.so.$major")" "lib$lib.so.$ver"
  mig_assert_eq "lib$lib.so -> lib$lib.so.$major" "$(readlink "$L/lib$lib.so")" "lib$lib.so.$major"
  mig_assert_eq "lib$lib has no RPATH/RUNPATH" "$(readelf -d "$so" | grep -cE 'RPATH|RUNPATH')" 0
  nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' | sort -u >"$WORK/$lib.exported"
done
# What the headers declare: every function name of libmigshim.h; for
# libmigctl, its migctl_* functions and control.pb-c.h's migrationd__v1__*.
H=$D$prefix/include/migrationd
# (a function before its "(", a descriptor before its ";", maybe on the
# next line).
decl() { cat "${@:2}" | tr '\n' ' ' | grep -oE "\b$1[a-z0-9_]*[[:space:]]*[(;]" | tr -d ' (;' | sort -u; }
{ decl migshim_ "$H/libmigshim.h"; echo MIGSHIM_$major; } | sort -u >"$WORK/migshim.public"
{ decl migctl_ "$H/libmigctl.h"; decl migrationd__v1__ "$H/control.pb-c.h"; echo MIGCTL_$major; } |
  grep -v '^migctl_watch_fn$' | sort -u >"$WORK/migctl.public"
for lib in migshim migctl; do
  mig_assert_eq "lib$lib exports exactly the functions its headers declare (diff)" \
    "$(diff "$WORK/$lib.public" "$WORK/$lib.exported")" ""
  echo "lib$lib exports $(wc -l <"$WORK/$lib.exported") symbols"
done
mig_assert_eq "libmigctl exports control.proto's descriptors" \
  "$(grep -c '^migrationd__v1__get_health_request__descriptor$' "$WORK/migctl.exported")" 1
mig_assert_eq "no internal symbol leaks (migcommon, peer/shim/state protos)" \
  "$(cat "$WORK"/*.exported | grep -cE '^(frame_|ctlmsg_|grpcmsg_|hist_|ring_|shimwire_|mig_log|migrationd__(peer|shim|state)__)')" 0
# Nothing undefined a program would have to supply.
for lib in migshim migctl; do
  mig_assert_eq "lib$lib resolves every symbol (ldd -r)" \
    "$(LD_LIBRARY_PATH=$L ldd -r "$L/lib$lib.so.$major" 2>&1 | grep -c 'undefined symbol')" 0
done

# Units and completion name this prefix.
mig_assert_eq "service runs the installed daemon" \
  "$(grep -c "^ExecStart=$prefix/sbin/migrationd " "$D$unitdir/migrationd.service")" 1
mig_assert_eq "completion is mig-ctl's" "$(grep -c 'complete .*mig-ctl' "$D$compdir/mig-ctl")" 1

# pkg-config against the DESTDIR (its own .pc files, the host's for
# protobuf-c and nghttp2; mig_install_root set it up).
# (The sysroot applies to the host's .pc files too: their -I/-L point into
# the DESTDIR, where nothing is, and the compiler's defaults find them.)
for lib in migshim migctl; do
  mig_assert_eq "pkg-config $lib version" "$(pkg-config --modversion $lib)" "$ver"
  mig_assert_eq "pkg-config --cflags $lib: the installed headers first" \
    "$(pkg-config --cflags $lib | awk '{print $1}')" "-I$D$prefix/include"
  mig_assert_eq "pkg-config --libs $lib: the installed library first" \
    "$(pkg-config --libs $lib | awk '{print $1, $2}')" "-L$L -l$lib"
done
mig_assert_eq "migctl's header needs protobuf-c: a public dependency" \
  "$(pkg-config --libs migctl | grep -c -- -lprotobuf-c)" 1
mig_assert_eq "migshim's dependencies are private" "$(pkg-config --libs migshim | xargs)" "-L$L -lmigshim"
mig_assert_eq "migshim: protobuf-c for static links only" \
  "$(pkg-config --static --libs migshim | grep -c -- -lprotobuf-c)" 1
mig_assert_eq "migctl: nghttp2 for static links only" \
  "$(pkg-config --static --libs migctl | grep -c -- -lnghttp2)" 1
mig_assert_eq "pkg-config's dependencies resolve" "$(pkg-config --exists --print-errors migshim migctl 2>&1)" ""

# A program of the installed header, built with pkg-config's flags alone,
# linked with the installed library, asks a real daemon for its health.
cat >"$WORK/health.c" <<'C'
#include <migrationd/libmigctl.h>
#include <stdio.h>

int
main(int argc, char **argv)
{
	struct migctl *c = migctl_open(argv[1]);
	Migrationd__V1__GetHealthResponse *h;
	int rc;

	if (c == NULL || (rc = migctl_health(c, &h)) != MIGCTL_OK)
		return 1;
	printf("health: migrationd %s\n", h->version);
	migctl_free(h);
	migctl_close(c);
	return 0;
}
C
# shellcheck disable=SC2046,SC2086
cc -Wall -Werror $INST_CFLAGS -o "$WORK/health" "$WORK/health.c" $(pkg-config --cflags --libs migctl) \
  2>"$WORK/cc.log"
mig_assert_eq "a client builds against the installed libmigctl" "$?" 0
cat "$WORK/cc.log"
mig_assert_eq "it needs libmigctl.so.$major" \
  "$(objdump -p "$WORK/health" | awk '/NEEDED/ {print $2}' | grep -c "^libmigctl.so.$major$")" 1
mig_hosts_up
mig_certs
mig_daemon_start A
out=$(LD_LIBRARY_PATH=$L "$WORK/health" "$WORK/A/control.sock")
mig_assert_eq "it talks to a real daemon" "$out" "health: migrationd $ver"
mig_assert_eq "with the installed library" \
  "$(LD_LIBRARY_PATH=$L ldd "$WORK/health" | awk '/libmigctl/ {print $3}')" "$L/libmigctl.so.$major"
mig_finish
