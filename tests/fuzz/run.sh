#!/usr/bin/env bash
# Builds one libFuzzer target with clang (ASan+UBSan) against the daemon's
# own decoders and runs it for a bounded time from the seed corpus in
# tests/fuzz/corpus/TARGET. New inputs go to a temporary directory; a crash
# leaves its reproducer in the build directory and fails the test.
# usage: run.sh BUILD_DIR frame|ctlmsg|ring SECONDS
set -uo pipefail
BUILD=$(cd "$1" && pwd); T=$2; SECS=${3:-20}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
skip() {
  if [[ ${MIG_REQUIRE_ALL:-0} == 1 ]]; then echo "FAIL (skip not allowed): $*" >&2; exit 1; fi
  echo "SKIP: $*" >&2; exit 77
}
command -v clang >/dev/null || skip "clang is not installed (apt-get install clang libclang-rt-14-dev)"
out=$BUILD/fuzz; mkdir -p "$out"
# Every generated protobuf-c file of the build, as proto/CMakeLists.txt lists them.
bin=$out/fuzz_$T
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -D_GNU_SOURCE -I"$SRC/lib" -I"$BUILD/proto" \
  "$SRC/tests/fuzz/fuzz_$T.c" "$SRC/lib/frame.c" "$SRC/lib/ctlmsg.c" "$SRC/lib/grpcmsg.c" "$SRC/lib/ring.c" "$SRC/lib/framez.c" \
  $(find "$BUILD/proto" -name '*.pb-c.c' | sort) \
  $(pkg-config --cflags --libs libprotobuf-c libzstd) -o "$bin" 2>"$out/build-$T.log" ||
  { cat "$out/build-$T.log" >&2; skip "clang cannot build libFuzzer targets here (see above)"; }
work=$(mktemp -d /tmp/mig-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$out" || exit 1
# -error_exitcode: libFuzzer's default, 77, is the skip code ctest reads.
"$bin" -max_total_time="$SECS" -timeout=10 -error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=1024 -print_final_stats=1 \
  "$work" "$SRC/tests/fuzz/corpus/$T" 2>&1 | tail -n 15
rc=${PIPESTATUS[0]}
echo "fuzz_$T: $(ls "$work" | wc -l) new inputs in ${SECS}s, exit $rc"
exit "$rc"
