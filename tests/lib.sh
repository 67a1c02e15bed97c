# tests/lib.sh: the shell test library shared by the integration tests and
# `make demo`: two "hosts" (network namespaces joined by a veth pair, or two
# loopback ports where namespaces cannot be made), a migrationd on each,
# minivmm VMs, and cleanup that runs on every exit. Source it; set BUILD first.
# Only processes this library started are ever signalled, by PID.

set -uo pipefail

MIG_SKIP=77
BUILD=${BUILD:-build}
BUILD=$(cd "$BUILD" && pwd)
MIGRATIOND=$BUILD/daemon/migrationd
MIGCTL=$BUILD/client/mig-ctl
MINIVMM=$BUILD/minivmm/minivmm
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

WORK=$(mktemp -d /tmp/mig-test.XXXXXX)
MIG_PIDS=()
MIG_NETNS=()
MIG_FAILS=0
MIG_USE_NETNS=0

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

MIG_DAEMON_PIDS=()
MIG_CLEANUP_FAIL=0

# A daemon must stop cleanly on SIGTERM: exit 0, and in the sanitizer build
# no ASan/UBSan/LeakSanitizer report (those make it exit non-zero).
mig_cleanup() {
  local pid ns rc
  for pid in "${MIG_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${MIG_PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
    if [[ " ${MIG_DAEMON_PIDS[*]} " == *" $pid "* && $rc != 0 ]]; then
      echo "FAIL: migrationd (pid $pid) exited with status $rc on SIGTERM" >&2
      grep -hE -A30 'ERROR: (Address|Leak)Sanitizer|runtime error' "$WORK"/migrationd-*.log >&2
      MIG_CLEANUP_FAIL=1
    fi
  done
  MIG_PIDS=()
  MIG_DAEMON_PIDS=()
  for ns in "${MIG_NETNS[@]}"; do
    ip netns del "$ns" 2>/dev/null
  done
  MIG_NETNS=()
  if [[ -n ${MIG_KEEP:-} ]]; then
    log "keeping $WORK"
  else
    rm -rf "$WORK"
  fi
}
mig_on_exit() {
  local rc=$?
  mig_cleanup
  ((MIG_CLEANUP_FAIL)) && rc=1
  exit $rc
}
trap mig_on_exit EXIT

# The test killed PID on purpose: do not judge how it ended.
mig_forget() {
  local keep=() p
  for p in "${MIG_DAEMON_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  MIG_DAEMON_PIDS=("${keep[@]}")
  wait "$1" 2>/dev/null
}
trap 'exit 130' INT TERM

# Skip with a reason; with MIG_REQUIRE_ALL=1 a skip is a failure.
mig_skip() {
  if [[ ${MIG_REQUIRE_ALL:-0} == 1 ]]; then
    echo "FAIL (skip not allowed, MIG_REQUIRE_ALL=1): $*" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit $MIG_SKIP
}

mig_fail() { echo "FAIL: $*" >&2; MIG_FAILS=$((MIG_FAILS + 1)); }
mig_die() { echo "FAIL: $*" >&2; mig_dump_logs; exit 1; }

# mig_assert_eq DESCRIPTION ACTUAL EXPECTED
mig_assert_eq() {
  if [[ "$2" == "$3" ]]; then
    echo "ok: $1 ($2)"
  else
    mig_fail "$1: got '$2', expected '$3'"
  fi
}

mig_dump_logs() {
  local f
  for f in "$WORK"/*.log; do
    [[ -f $f ]] || continue
    echo "----- $(basename "$f") (last 40 lines) -----" >&2
    tail -n 40 "$f" >&2
  done
}

mig_finish() {
  if ((MIG_FAILS)); then
    mig_dump_logs
    echo "$MIG_FAILS assertion(s) failed" >&2
    exit 1
  fi
  echo "all assertions passed"
  exit 0
}

mig_require_kvm() {
  [[ -r /dev/kvm && -w /dev/kvm ]] || mig_skip "/dev/kvm is not usable here"
  [[ -x $MINIVMM ]] || mig_die "minivmm not built at $MINIVMM"
}

# Starts CMD in the background inside host A or B (its namespace, or
# directly on loopback), output to LOG. `ip netns exec` execs the command, so
# $! is the command's own PID: cleanup signals exactly what was started.
# Sets SPAWN_PID.
mig_spawn() { # HOST LOG CMD...
  local h=$1 logf=$2; shift 2
  if ((MIG_USE_NETNS)); then
    ip netns exec "mig$h-$$" "$@" >>"$logf" 2>&1 &
  else
    "$@" >>"$logf" 2>&1 &
  fi
  SPAWN_PID=$!
  MIG_PIDS+=("$SPAWN_PID")
}

# Builds hosts A and B. Sets ADDR_A / ADDR_B (IP:PORT of each peer listener).
mig_hosts_up() {
  local a=migA-$$ b=migB-$$
  if [[ $(id -u) == 0 ]] && ip netns add "$a" 2>/dev/null; then
    MIG_NETNS+=("$a")
    if ip netns add "$b" && MIG_NETNS+=("$b") &&
       ip link add "va$$" netns "$a" type veth peer name "vb$$" netns "$b" &&
       ip -n "$a" addr add 192.0.2.1/24 dev "va$$" && ip -n "$b" addr add 192.0.2.2/24 dev "vb$$" &&
       ip -n "$a" link set "va$$" up && ip -n "$b" link set "vb$$" up &&
       ip -n "$a" link set lo up && ip -n "$b" link set lo up; then
      MIG_USE_NETNS=1
      ADDR_A=192.0.2.1:7480
      ADDR_B=192.0.2.2:7480
      log "hosts: network namespaces $a (192.0.2.1) and $b (192.0.2.2) joined by a veth pair"
      return 0
    fi
  fi
  for ns in "${MIG_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  MIG_NETNS=()
  local base=$((20000 + $$ % 20000))
  ADDR_A=127.0.0.1:$base
  ADDR_B=127.0.0.1:$((base + 1))
  log "hosts: network namespaces unavailable; using two loopback ports ($ADDR_A, $ADDR_B)"
}

mig_certs() {
  "$SRC/scripts/gen-certs.sh" "$WORK/pki" hosta="${ADDR_A%:*}" hostb="${ADDR_B%:*}" ||
    mig_die "certificate generation failed"
}

# mig_conf DIR LISTEN [TEXT]: a daemon's configuration, DIR/migrationd.conf:
# its sockets and state under DIR, the peer listener LISTEN, then TEXT (the
# [tls] section and whatever else the test needs); compression of background
# pages as $MIG_COMPRESSION says (default off: the tests written before it
# time a raw stream on a shaped link; compress.sh asks for it per migration)
# and, with $MIG_STREAMS set, that many background streams ([peer] streams)
mig_conf() {
  mkdir -p "$1"
  cat >"$1/migrationd.conf" <<CONF
[daemon]
control_socket = $1/control.sock
vmm_socket = $1/vmm.sock
state_dir = $1/state

[peer]
listen = $2
compression = ${MIG_COMPRESSION:-off}
${MIG_STREAMS:+streams = $MIG_STREAMS}
${MIG_PAR:+parallel_encryption = $MIG_PAR}

${3:-}
CONF
}

# mig_daemon_start HOST(A|B) [extra config text, appended]
mig_daemon_start() {
  local h=$1 extra=${2:-} lc dir addr pid
  lc=$(tr 'AB' 'ab' <<<"$h")
  dir=$WORK/$h
  addr=ADDR_$h
  mig_conf "$dir" "${!addr}" "[tls]
ca = $WORK/pki/ca.pem
cert = $WORK/pki/host$lc.pem
key = $WORK/pki/host$lc.key
$extra"
  local readies
  readies=$(grep -c 'ready:' "$WORK/migrationd-$h.log" 2>/dev/null)
  mig_spawn "$h" "$WORK/migrationd-$h.log" "$MIGRATIOND" -f -v -c "$dir/migrationd.conf"
  pid=$SPAWN_PID
  MIG_DAEMON_PIDS+=("$pid")
  eval "PID_D$h=$pid"
  for _ in $(seq 100); do
    [[ -S $dir/control.sock ]] &&
      (($(grep -c 'ready:' "$WORK/migrationd-$h.log") > ${readies:-0})) && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  mig_die "migrationd on host $h did not start"
}

ctl() { # HOST ARGS...
  local h=$1; shift
  "$MIGCTL" -s "$WORK/$h/control.sock" "$@"
}

# st HOST JQ: a field of $VM's status on HOST ("" if the daemon is away)
st() { ctl "$1" --json status "$VM" 2>/dev/null | jq -r "$2"; }
# wait_for HOST JQ-CONDITION SECS: until $VM's status on HOST satisfies it
wait_for() {
  for _ in $(seq $(($3 * 10))); do
    [[ $(st "$1" "$2") == true ]] && return 0
    sleep 0.1
  done
  return 1
}

# mig_wait_attached HOST VM SECS: until VM's VMM has attached to HOST's
# daemon (0), or 1 after SECS
mig_wait_attached() {
  for _ in $(seq $(($3 * 10))); do
    ctl "$1" --json list 2>/dev/null | jq -e --arg vm "$2" '.vms[] | select(.name == $vm)' \
      >/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# mig_vmm_start HOST NAME LOGNAME minivmm-args...: sets VMM_PID
mig_vmm_start() {
  local h=$1 name=$2 logname=$3; shift 3
  mig_spawn "$h" "$WORK/$logname.log" "$MINIVMM" --name "$name" \
    --vmm-socket "$WORK/$h/vmm.sock" "$@"
  VMM_PID=$SPAWN_PID
}

# mig_wait_line FILE PATTERN SECS PID: waits for PATTERN in FILE while PID lives
mig_wait_line() {
  local f=$1 pat=$2 secs=$3 pid=$4
  for _ in $(seq $((secs * 10))); do
    grep -q "$pat" "$f" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { grep -q "$pat" "$f" 2>/dev/null; return; }
    sleep 0.1
  done
  return 1
}

# mig_wait_exit PID SECS: exit status of PID, or 124 on time-out
mig_wait_exit() {
  local pid=$1 secs=$2
  for _ in $(seq $((secs * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      return
    fi
    sleep 0.1
  done
  return 124
}

# mig_bytes SIZE: SIZE (a number with an optional K/M/G suffix, powers of
# two, as minivmm's --mem takes it) in bytes
mig_bytes() { numfmt --from=iec "${1%B}"; }

# mig_assert_verified LOG SIZE [EXCLUDED]: the destination VMM (minivmm,
# shimvm or skeleton-vmm) wrote to LOG that it compared every byte of guest RAM with what the
# source had: its "verified N pages, M bytes" line is there, without a
# mismatch, and M is SIZE (bytes, or with a K/M/G suffix). EXCLUDED
# (shimvm's poisoned pages, "5000,5001,12000") are the pages left out by
# name; SIZE is then the RAM less those pages.
mig_assert_verified() {
  local f=$1 want line got
  want=$(mig_bytes "$2")
  line=$(grep -E '^(minivmm|shimvm|skeleton-vmm): verified [0-9]+ pages, [0-9]+ bytes' "$f" 2>/dev/null | tail -n 1)
  echo "${line:-(no verification line in $(basename "$f"))}"
  got=$(sed -nE 's/^[a-z-]+: verified [0-9]+ pages, ([0-9]+) bytes.*/\1/p' <<<"$line")
  mig_assert_eq "destination compared every byte of guest RAM with the source" "$got" "$want"
  mig_assert_eq "no page differed from the source" "$(grep -c 'MISMATCH' <<<"$line")" 0
  if [[ $line == shimvm:* ]]; then
    mig_assert_eq "pages excluded by name (poisoned on purpose)" \
      "$(sed -nE 's/.*excluded by name: ([^)]*)\).*/\1/p' <<<"$line")" "${3:-none}"
  fi
}

# mig_migrate VM MEM WORKLOAD: one whole migration A -> B (the destination
# installs as $MIG_INSTALL says: copy, the default, or minor; with
# $MIG_PRECOPY set, after a pre-copy of that policy). Leaves
# $WORK/src.json, $WORK/dst.json, $WORK/report.json, $WORK/list-a.json and
# sets MIG_RC (mig-ctl's exit code), SRC_RC / DST_RC (the VMMs').
mig_migrate() {
  local vm=$1 mem=$2 workload=$3 token src_pid dst_pid ready
  # A test that migrates twice appends to the same log: wait for a new line.
  ready=$(grep -c 'guest ready' "$WORK/vmm-A.log" 2>/dev/null)
  # shellcheck disable=SC2086 # MIG_VMM_ARGS: extra minivmm flags (bench), split
  mig_vmm_start A "$vm" vmm-A --mem "$mem" --workload "$workload" ${MIG_VMM_ARGS:-}
  src_pid=$VMM_PID
  for _ in $(seq 1200); do
    (($(grep -c 'guest ready' "$WORK/vmm-A.log") > ${ready:-0})) && break
    kill -0 "$src_pid" 2>/dev/null || break
    sleep 0.1
  done
  (($(grep -c 'guest ready' "$WORK/vmm-A.log") > ${ready:-0})) ||
    mig_die "source guest did not become ready"
  # shellcheck disable=SC2086
  mig_vmm_start B "$vm" vmm-B --mem "$mem" --incoming --install "${MIG_INSTALL:-copy}" \
    --report "$WORK/report.json" ${MIG_VMM_ARGS:-}
  dst_pid=$VMM_PID
  mig_wait_attached B "$vm" 5
  token=$(ctl B prepare "$vm" -q) || mig_die "prepare on host B failed"
  log "migrating $vm ($mem, $workload guest) from host A to host B ($ADDR_B)"
  ctl A migrate "$vm" --to "$ADDR_B" --token "$token" ${MIG_PRECOPY:+--precopy "$MIG_PRECOPY"} \
    --wait --timeout 300
  MIG_RC=$?
  mig_wait_exit "$dst_pid" 120; DST_RC=$?
  mig_wait_exit "$src_pid" 30; SRC_RC=$?
  ctl A --json status "$vm" >"$WORK/src.json"
  ctl B --json status "$vm" >"$WORK/dst.json"
  ctl A --json list >"$WORK/list-a.json"
}

# mig_shim_migrate VM: one whole migration A -> B of a `shimvm` VM (no
# guest, $MIG_SHIM_MEM MiB of RAM, default 4), the cheapest real one there
# is: both VMMs are started, the destination is prepared, the source
# migrates and waits, and both VMMs must exit 0 (the destination checked
# every page) and the destination must say it compared every byte. Polls in 10 ms steps, for tests that run hundreds of them.
# Returns non-zero at the first step that failed (logged).
mig_shim_migrate() {
  local vm=$1 mem=${MIG_SHIM_MEM:-4} src dst token
  mig_spawn A "$WORK/src-$vm.log" "$BUILD/tests/shimvm" source -s "$WORK/A/vmm.sock" \
    -n "$vm" -m "$mem"
  src=$SPAWN_PID
  for _ in $(seq 3000); do
    grep -q 'source ready' "$WORK/src-$vm.log" 2>/dev/null && break
    kill -0 "$src" 2>/dev/null || break
    sleep 0.01
  done
  grep -q 'source ready' "$WORK/src-$vm.log" || { log "$vm: source VMM not ready"; return 1; }
  mig_spawn B "$WORK/dst-$vm.log" "$BUILD/tests/shimvm" dest -s "$WORK/B/vmm.sock" \
    -n "$vm" -m "$mem" -t 2 -k 8
  dst=$SPAWN_PID
  # The destination VMM has attached once prepare finds its VM.
  for _ in $(seq 500); do
    token=$(ctl B prepare "$vm" -q 2>/dev/null) && break
    sleep 0.01
  done
  [[ -n $token ]] || { log "$vm: prepare failed"; return 1; }
  ctl A migrate "$vm" --to "$ADDR_B" --token "$token" --wait --timeout 60 >/dev/null 2>&1 ||
    { log "$vm: migrate failed"; return 1; }
  mig_wait_exit_fast "$dst" 30 || { log "$vm: destination VMM failed"; return 1; }
  mig_wait_exit_fast "$src" 30 || { log "$vm: source VMM failed"; return 1; }
  # Every byte compared (the exit code alone does not say how many).
  grep -q "^shimvm: verified [0-9]* pages, $((mem << 20)) bytes .*excluded by name: none)\$" \
    "$WORK/dst-$vm.log" || { log "$vm: the destination did not compare every byte"; return 1; }
  rm -f "$WORK/src-$vm.log" "$WORK/dst-$vm.log"
}

# mig_shim_verified VM MEM INSTALL [MIGRATE-ARGS...]: one migration A -> B
# of a fresh shimvm VM of MEM MiB (with "${MIG_SHIM_H[@]}", e.g. -H for
# 2 MiB hugetlbfs pages, and "${MIG_SHIM_ARGS[@]}" for both shimvms, e.g.
# -C mixed), the destination installing as INSTALL (copy or minor),
# MIGRATE-ARGS passed to mig-ctl migrate. Asserts that it completed
# and that the destination compared every byte; sets J and JB (the source's
# and the destination's status JSON).
mig_shim_verified() {
  local vm=$1 mem=$2 install=$3 src dst
  shift 3
  mig_spawn A "$WORK/src-$vm.log" "$BUILD/tests/shimvm" source "${MIG_SHIM_H[@]}" \
    -s "$WORK/A/vmm.sock" -n "$vm" -m "$mem" "${MIG_SHIM_ARGS[@]}"
  src=$SPAWN_PID
  mig_wait_line "$WORK/src-$vm.log" 'source ready' 30 "$src" || mig_die "$vm: source not ready"
  mig_spawn B "$WORK/dst-$vm.log" "$BUILD/tests/shimvm" dest "${MIG_SHIM_H[@]}" \
    -s "$WORK/B/vmm.sock" -n "$vm" -m "$mem" -I "$install" -t 2 -k 8 "${MIG_SHIM_ARGS[@]}"
  dst=$SPAWN_PID
  mig_prepare B "$vm"
  ctl A migrate "$vm" --to "$ADDR_B" --token "$TOKEN" "$@" --wait --timeout 120 >/dev/null
  mig_assert_eq "$vm: migration completed" "$?" 0
  mig_wait_exit "$dst" 60; mig_assert_eq "$vm: every value checked out" "$?" 0
  mig_assert_verified "$WORK/dst-$vm.log" "${mem}M"
  mig_wait_exit "$src" 30
  J=$(ctl A --json status "$vm")
  JB=$(ctl B --json status "$vm")
}
MIG_SHIM_H=()
MIG_SHIM_ARGS=()
# mig_assert_streams [CONNECTS]: with $MIG_STREAMS set (the daemons' [peer]
# streams), $VM's source used that many background streams, and the last
# of them connected to B at least CONNECTS times (default 1; after a lost
# link or a restart: every stream redialled)
mig_assert_streams() {
  [[ -n ${MIG_STREAMS:-} ]] || return 0
  local n
  mig_assert_eq "source used $MIG_STREAMS background streams" "$(st A .streams)" "$MIG_STREAMS"
  n=$(grep -c "background channel $((MIG_STREAMS - 1)) from" "$WORK/migrationd-B.log")
  echo "stream $((MIG_STREAMS - 1)) connected $n times"
  mig_assert_eq "stream $((MIG_STREAMS - 1)) connected at least ${1:-1} times" "$((n >= ${1:-1}))" 1
}

# mig_shim_pages 4k|huge MEM: mig_shim_verified's VMs in 4 KiB shmem pages,
# or in 2 MiB hugetlbfs pages (reserved for both VMMs of MEM MiB)
mig_shim_pages() {
  [[ $1 == huge ]] || return 0
  MIG_SHIM_H=(-H)
  mig_reserve_hugepages $(($2 + 8))   # source and destination, 2 MiB each
}

# mig_reserve_hugepages NEED: NEED more 2 MiB pages reserved for this test,
# given back on exit (before the usual cleanup); skips if the kernel refuses.
mig_reserve_hugepages() {
  local need=$1 free
  [[ -w /proc/sys/vm/nr_hugepages ]] || mig_skip "cannot reserve huge pages"
  MIG_HP_OLD=$(cat /proc/sys/vm/nr_hugepages)
  # mig_on_exit takes the test's exit status from $?: keep it.
  trap 'mig_hp_rc=$?; echo "$MIG_HP_OLD" >/proc/sys/vm/nr_hugepages; (exit $mig_hp_rc); mig_on_exit' EXIT
  echo $((MIG_HP_OLD + need)) >/proc/sys/vm/nr_hugepages
  free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  ((free >= need)) || mig_skip "the kernel gave only $free free 2 MiB pages of the $need needed"
}

# mig_prepare HOST VM: a token for VM from HOST's prepare, once its VMM has
# attached (10 s at most); dies otherwise. Sets TOKEN.
mig_prepare() {
  TOKEN=
  for _ in $(seq 100); do
    TOKEN=$(ctl "$1" prepare "$2" -q 2>/dev/null) && return 0
    sleep 0.1
  done
  mig_die "prepare of $2 on host $1 failed"
}

# mig_wait_exit_fast PID SECS: mig_wait_exit in 10 ms steps. A PID that
# exited is dropped from cleanup's list: once reaped, it may be reused by a
# process that is not ours.
mig_wait_exit_fast() {
  local pid=$1 secs=$2 rc keep=() p
  for _ in $(seq $((secs * 100))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      rc=$?
      for p in "${MIG_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
      MIG_PIDS=("${keep[@]}")
      return $rc
    fi
    sleep 0.01
  done
  return 124
}

# mig_install_root: `cmake --install` of this build into $WORK/root (the
# DESTDIR), with pkg-config pointed at it, for tests of the installed set.
# Sets INST_ROOT, INST_PREFIX (the build's install prefix), INST_LIB (the
# installed library directory, inside the DESTDIR) and INST_CFLAGS (the
# build's sanitizer flags: a program linked to a sanitized library must be
# sanitized too).
mig_install_root() {
  local libdir
  INST_ROOT=$WORK/root
  DESTDIR=$INST_ROOT cmake --install "$BUILD" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; mig_die "cmake --install failed"; }
  INST_PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
  libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
  INST_LIB=$INST_ROOT$INST_PREFIX/$libdir
  INST_CFLAGS=
  grep -q '^CMAKE_BUILD_TYPE:[A-Z]*=Sanitize$' "$BUILD/CMakeCache.txt" &&
    INST_CFLAGS="-fsanitize=address,undefined"
  export PKG_CONFIG_SYSROOT_DIR=$INST_ROOT
  PKG_CONFIG_LIBDIR=$INST_LIB/pkgconfig:$(pkg-config --variable pc_path pkg-config)
  export PKG_CONFIG_LIBDIR
}
