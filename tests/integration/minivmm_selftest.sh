#!/bin/bash
# minivmm_selftest.sh: minivmm on its own, no daemon. Runs the state-blob
# round trip (--selftest-snapshot: pause, serialise, fresh VM, restore,
# verify) for both workloads, and a standalone writer run, each asserting
# exit 0, an "intact" verdict line and the JSON report.
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

# run NAME ARGS...: runs minivmm, checks exit 0, the verdict and the report.
run() {
	local name=$1 out=$work/$1.out report=$work/$1.json rc
	shift
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
	if ! grep -q '"verdict":"intact"' "$report" 2>/dev/null ||
	    ! grep -q '"errors":0,' "$report"; then
		echo "FAIL: $name: report $report does not say intact"
		cat "$report" 2>/dev/null
		failures=$((failures + 1))
		return
	fi
	echo "ok: $name"
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

run snapshot-quiet --selftest-snapshot --mem 32M --workload quiet
run snapshot-writer --selftest-snapshot --mem 32M --workload writer
run standalone-writer --mem 32M --workload writer --passes 3
run standalone-4vcpu --mem 16M --vcpus 4 --workload writer --passes 2

if [ "$failures" -ne 0 ]; then
	echo "minivmm_selftest: $failures failure(s)"
	exit 1
fi
echo "minivmm_selftest: all passed"
exit 0
