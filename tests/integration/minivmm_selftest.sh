#!/bin/bash
# minivmm_selftest.sh: minivmm on its own, no daemon. Runs the state-blob
# round trip (--selftest-snapshot: pause, serialise, fresh VM, restore,
# verify) for both workloads (and once paused during the fill), and a
# standalone writer run, each asserting
# exit 0, an "intact" verdict line and the JSON report. The round trips
# also compare every byte of RAM with the digests in the blob, as a
# migration's destination does, and must say so for all of it; with one
# bit flipped after the restore (--selftest-flip) they must fail and name
# the page, and the offset where a rule knows the page's bytes.
#
# Usage: minivmm_selftest.sh PATH/TO/minivmm   (CTest passes it)
# Skips (77) without a usable /dev/kvm, unless MIG_REQUIRE_ALL=1.
set -u

MINIVMM=${1:?usage: $0 PATH/TO/minivmm}

skip() {
	echo "SKIP: $*"
	if [ "${MIG_REQUIRE_ALL:-0}" = 1 ]; then
		echo "MIG_REQUIRE_ALL=1: a skip is a failure"
		exit 1
	fi
	exit 77
}

if [ ! -e /dev/kvm ]; then
	skip "/dev/kvm does not exist (no KVM on this machine)"
fi
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	skip "/dev/kvm is not readable and writable by $(id -un)"
fi
if [ ! -x "$MINIVMM" ]; then
	echo "FAIL: $MINIVMM is not an executable"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/minivmm-selftest.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

# run NAME BYTES ARGS...: runs minivmm, checks exit 0, the verdict and the
# report, and with BYTES > 0 the line saying that many bytes were verified.
run() {
	local name=$1 bytes=$2 out=$work/$1.out report=$work/$1.json rc
	shift 2
	echo "== $name: minivmm $*"
	"$MINIVMM" --name "selftest-$name-$$" --report "$report" "$@" \
	    >"$out" 2>&1
	rc=$?
	sed 's/^/   /' "$out"
	if [ "$rc" -ne 0 ]; then
		echo "FAIL: $name: exit status $rc"
		failures=$((failures + 1))
		return
	fi
	if ! grep -q '^minivmm: guest ready$' "$out"; then
		echo "FAIL: $name: no 'guest ready' line"
		failures=$((failures + 1))
		return
	fi
	if ! grep -Eq '^minivmm: guest verdict: intact pages=[1-9][0-9]* zero_pages=[1-9][0-9]* checksum=0x[0-9a-f]{16} errors=0$' "$out"; then
		echo "FAIL: $name: no intact verdict line"
		failures=$((failures + 1))
		return
	fi
	if [ "$bytes" -gt 0 ] && ! grep -Eq "^minivmm: verified [0-9]+ pages, $bytes bytes against the source digests \([0-9]+ pages rewritten on the destination, checked by rule\)$" "$out"; then
		echo "FAIL: $name: no line saying $bytes bytes were verified"
		failures=$((failures + 1))
		return
	fi
	if ! grep -q '"verdict":"intact"' "$report" 2>/dev/null ||
	    ! grep -q '"errors":0,' "$report"; then
		echo "FAIL: $name: report $report does not say intact"
		cat "$report" 2>/dev/null
		failures=$((failures + 1))
		return
	fi
	echo "ok: $name"
}

# run_bad NAME WANT ARGS...: a round trip with a flipped bit must exit 1
# (corrupt) and print WANT (an extended regex) among its verify lines.
run_bad() {
	local name=$1 want=$2 out=$work/$1.out rc
	shift 2
	echo "== $name: minivmm $*"
	"$MINIVMM" --name "selftest-$name-$$" "$@" >"$out" 2>&1
	rc=$?
	grep -E 'verif|flipped|host check' "$out" | sed 's/^/   /'
	if [ "$rc" -ne 1 ]; then
		echo "FAIL: $name: exit status $rc, expected 1 (corrupt)"
		failures=$((failures + 1))
	elif ! grep -Eq "$want" "$out"; then
		echo "FAIL: $name: no line matching: $want"
		failures=$((failures + 1))
	else
		echo "ok: $name"
	fi
}

# One quick probe first: a KVM that cannot run our guest at all (e.g., a
# sandbox refusing KVM_CREATE_VM) is an environment problem, not a bug.
if ! "$MINIVMM" --name "selftest-probe-$$" --mem 4M --vcpus 1 \
    --workload quiet >"$work/probe.out" 2>&1; then
	if grep -Eq 'vm_open|KVM_CREATE_VM' "$work/probe.out"; then
		cat "$work/probe.out"
		skip "KVM is present but unusable here"
	fi
fi

run snapshot-quiet $((32 << 20)) --selftest-snapshot --mem 32M --workload quiet
run snapshot-writer $((32 << 20)) --selftest-snapshot --mem 32M --workload writer
run snapshot-4vcpu $((16 << 20)) --selftest-snapshot --mem 16M --vcpus 4 --workload writer
# Paused while the guest fills: most pages, and the accessed and dirty bits
# of the page tables, are written after the restore.
run snapshot-early $((16 << 20)) --selftest-snapshot --selftest-early --mem 16M --workload quiet
# A data page the guest rewrote (rule), one it left alone (digest; the rule
# finds the offset), a code page only the digest describes (the guest does
# not notice this one at all).
run_bad flip-rewritten '^minivmm: verify: page 0x500 offset 0x805 \(rewritten on the destination, by rule\)' \
    --selftest-snapshot --mem 8M --vcpus 1 --workload writer --selftest-flip 0x500805
run_bad flip-kept '^minivmm: verify: page 0x500 offset 0x805 \(as the source had it, by digest\)' \
    --selftest-snapshot --mem 8M --vcpus 1 --workload quiet --selftest-flip 0x500805
run_bad flip-code '^minivmm: verify: page 0x10 differs from the source.s digest' \
    --selftest-snapshot --mem 8M --vcpus 1 --workload quiet --selftest-flip 0x10f00
run standalone-writer 0 --mem 32M --workload writer --passes 3
run standalone-4vcpu 0 --mem 16M --vcpus 4 --workload writer --passes 2

if [ "$failures" -ne 0 ]; then
	echo "minivmm_selftest: $failures failure(s)"
	exit 1
fi
echo "minivmm_selftest: all passed"
exit 0
