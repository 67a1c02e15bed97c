#!/usr/bin/env bash
# Builds migrationd's Debian packages offline, outside the source tree:
# copies the sources (what git tracks plus new files it does not ignore, or
# the whole tree less build directories outside git) to OUTDIR, runs
# dpkg-buildpackage there (binary packages, unsigned, parallel), removes the
# copy, and runs lintian on the result. Leaves in OUTDIR the .deb files, the
# .changes and .buildinfo, and lintian.txt. Exits non-zero if the build fails
# or lintian reports an error.
# usage: scripts/build-deb.sh OUTDIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: build-deb.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
case "$OUT/" in
  "$SRC"/debian/*) echo "build-deb: OUTDIR must not be inside debian/" >&2; exit 2 ;;
esac
for tool in dpkg-buildpackage dh lintian; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool missing (scripts/deps.sh installs it)" >&2; exit 3; }
done
version=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
tree=$OUT/migrationd-$version
rm -rf "$tree"
mkdir -p "$tree"
trap 'rm -rf "$tree"' EXIT
if git -C "$SRC" rev-parse --show-toplevel >/dev/null 2>&1; then
  (cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
     xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' |
     tar --null -T - -cf -) | tar -xf - -C "$tree"
else
  tar -C "$SRC" --exclude='./build' --exclude='./build-*' --exclude='./obj-*' -cf - . |
    tar -xf - -C "$tree"
fi
rm -f "$OUT"/migrationd_*.changes "$OUT"/migrationd_*.buildinfo "$OUT"/*.deb
root=()
[[ $(id -u) == 0 ]] || root=(-rfakeroot)
start=$(date +%s.%N)
(cd "$tree" && dpkg-buildpackage -b -us -uc -j"$(nproc)" "${root[@]}") >"$OUT/build.log" 2>&1 || {
  tail -n 60 "$OUT/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed (log: $OUT/build.log)" >&2
  exit 1
}
echo "build-deb: built in $(printf '%.0f' "$(bc <<<"$(date +%s.%N) - $start")") s:"
ls -1 "$OUT"/*.deb
changes=$(ls "$OUT"/migrationd_*.changes)
# Lintian as root warns that it should not run as root; the packages are
# checked all the same.
rc=0
lintian --fail-on error --display-info "$changes" >"$OUT/lintian.txt" 2>&1 || rc=$?
sed -e '/running with root privileges is not recommended/d' "$OUT/lintian.txt"
echo "build-deb: lintian: $(grep -c '^E:' "$OUT/lintian.txt") errors, $(grep -c '^W:' "$OUT/lintian.txt") warnings (exit $rc)"
exit $rc
