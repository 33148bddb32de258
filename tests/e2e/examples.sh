#!/bin/bash
# The example clients (examples/chroot_vm.c, jailer.c, isolate.c) end to end. Builds nothing:
# `make` builds them. Everywhere: argument and request errors give clear messages and the
# documented statuses. On hardware KVM: each example runs real guests from a busybox root.
# On PVM (/sys/module/kvm_pvm): each invocation reports the library's -ENOTSUP refusal cleanly
# (no hang, no crash, a defined status), and with KRUN_ALLOW_PVM=1 (the guest boots but never
# gets far) the time limits stop the VMs through the shutdown eventfd.
# Prints "PASS|FAIL|SKIP e2e-examples/<name>[: reason]".
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
LIMIT=${E2E_TIMEOUT:-60}
unset KRUN_ALLOW_PVM
work=$(mktemp -d "${TMPDIR:-/tmp}/krun-examples.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
failures=0

pass() { echo "PASS e2e-examples/$1"; }
skip() { echo "SKIP e2e-examples/$1: $2"; }
# fail NAME WHY: also shows what the command printed, indented (tests/run.sh keeps it).
fail() {
	echo "FAIL e2e-examples/$1: $2"
	sed 's/^/    out: /' "$work/out" | head -n 20
	sed 's/^/    err: /' "$work/err" | head -n 20
	failures=$((failures + 1))
}

# run INPUT CMD...: runs CMD under a time limit; sets $rc and $secs, output in $work/out|err.
run() {
	local input=$1 start=$SECONDS
	shift
	printf '%b' "$input" | timeout -k 5 "$LIMIT" "$@" > "$work/out" 2> "$work/err"
	rc=$?
	secs=$((SECONDS - start))
}

# expect NAME STATUS [out|err REGEX]...: the last run exited with STATUS and each stream
# has a line matching each REGEX (extended).
expect() {
	local name=$1 status=$2
	shift 2
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail "$name" "did not finish within $LIMIT s (status $rc)"
		return
	fi
	if [ "$rc" -ne "$status" ]; then
		fail "$name" "exit status $rc, expected $status"
		return
	fi
	while [ $# -ge 2 ]; do
		if ! grep -qE -- "$2" "$work/$1"; then
			fail "$name" "no line in std$1 matches: $2"
			return
		fi
		shift 2
	done
	pass "$name"
}

# count FILE REGEX: how many lines of the last run's stream match.
count() { grep -cE -- "$2" "$work/$1"; }

# make_busybox_root: a root with nothing but busybox-static.
. tests/e2e/lib.sh

# What kind of KVM this host has: hardware, pvm or none.
kvm_kind() {
	if [ ! -e /dev/kvm ]; then echo none
	elif [ -d /sys/module/kvm_pvm ]; then echo pvm
	else echo hardware
	fi
}

check_arguments() {
	run '' "$BUILD/jailer" -j 0
	expect jailer/bad-option 2 err "^jailer: -j: invalid value '0'" err '^Usage: jailer'
	run '' "$BUILD/jailer" extra
	expect jailer/extra-argument 2 err "unexpected argument 'extra' \(requests come on stdin\)"
	# Refused before any VM: configuration is checked in the parent.
	run '/nonexistent-function-dir /bin/sh\nonlyoneword\n# a comment\n\n' "$BUILD/jailer"
	expect jailer/bad-requests 1 \
		out '^request 1: bad request: krun_set_root: No such file or directory$' \
		out '^request 2: bad request: expected FUNCTION_DIR PROGRAM \[ARG\.\.\.\]$' \
		out '^jailer: 2 requests, 2 failed$'
	run '' "$BUILD/isolate" /
	expect isolate/missing-command 2 err '^isolate: ROOT and COMMAND are required$'
	run '' "$BUILD/isolate" -t x / /bin/sh
	expect isolate/bad-option 2 err "^isolate: -t: invalid value 'x'"
	run '' "$BUILD/isolate" /nonexistent-root /bin/sh
	expect isolate/bad-root 1 err '^isolate: /nonexistent-root: No such file or directory$'
	run '' "$BUILD/chroot_vm"
	expect chroot_vm/missing-arguments 2 err '^Usage: chroot_vm '
}

# PVM: the library refuses every start with -ENOTSUP; each example must say so and end.
check_refusal() {
	local root=$1 refused='Operation not supported \(-95\)'
	run "$root /bin/echo 1\n$root /bin/echo 2\n$root /bin/echo 3\n" "$BUILD/jailer" -j 2
	expect jailer/enotsup 1 out '^jailer: 3 requests, 3 failed$'
	if [ "$rc" -eq 1 ] && [ "$(count out "^request [123]: cannot start the VM: $refused$")" -ne 3 ]; then
		fail jailer/enotsup-each "expected 3 lines 'request N: cannot start the VM: ...'"
	elif [ "$rc" -eq 1 ]; then
		pass jailer/enotsup-each
	fi
	run '3\n' "$BUILD/isolate" "$root" /bin/sh -c 'while read x; do echo $((x*x)); done'
	expect isolate/enotsup 1 err "^isolate: the helper VM could not start: $refused$"
	run '' "$BUILD/chroot_vm" "$root" /bin/echo hi
	expect chroot_vm/enotsup 1 err '^chroot_vm: cannot start the VM: Operation not supported$'
}

# PVM with KRUN_ALLOW_PVM=1: the guest starts but never answers, so the time limits fire and
# the examples stop their VMs through the shutdown eventfd (SIGKILL only as a last resort).
check_stop_paths() {
	local root=$1
	run "$root /bin/echo 1\n$root /bin/echo 2\n" env KRUN_ALLOW_PVM=1 "$BUILD/jailer" -t 2
	expect jailer/time-limit-stops-vm 1 \
		out '^request 1: (status [0-9]+|killed by signal 9), timed out after 2 s, output ""$' \
		out '^request 2: (status [0-9]+|killed by signal 9), timed out after 2 s, output ""$'
	run '3\n' env KRUN_ALLOW_PVM=1 "$BUILD/isolate" -t 2 "$root" /bin/sh -c 'read x'
	expect isolate/time-limit-stops-vm 1 err '^isolate: work 1: no reply in time$' \
		out '^helper: 0 items, (exit status [0-9]+|killed by signal 9)$'
}

# Hardware KVM: real guests.
check_guests() {
	local root=$1
	run "$root /bin/echo hello\n$root /bin/false\n$root /bin/env\n" \
		"$BUILD/jailer" -j 2
	expect jailer/run 1 out '^request 1: status 0, output "hello\\n"$' \
		out '^request 2: status 1, output ""$' out '^request 3: status 0, output ".*REQUEST_ID=3\\n' \
		out '^jailer: 3 requests, 1 failed$'
	run "$root /bin/sleep 100\n" "$BUILD/jailer" -t 2
	expect jailer/time-limit 1 \
		out '^request 1: (status [0-9]+|killed by signal 9), timed out after 2 s, output ""$'
	run '3\n4\n' "$BUILD/isolate" "$root" /bin/sh -c 'while read x; do echo $((x*x)); done'
	expect isolate/serve 0 out '^work 1: 3 -> 9$' out '^work 2: 4 -> 16$' \
		out '^helper: 2 items, (exit status [0-9]+|killed by signal 9)$'
	run '3\n' "$BUILD/isolate" -t 2 "$root" /bin/sh -c 'read x; sleep 100'
	expect isolate/time-limit 1 err '^isolate: work 1: no reply in time$'
	run '' "$BUILD/chroot_vm" "$root" /bin/sh -c 'echo hi; exit 7'
	expect chroot_vm/run 7 out '^hi$'
}

main() {
	local prog kind root=$work/root
	for prog in jailer isolate chroot_vm; do
		if [ ! -x "$BUILD/$prog" ]; then
			skip all "$BUILD/$prog not built (make $BUILD/jailer $BUILD/isolate $BUILD/chroot_vm)"
			return 0
		fi
	done
	check_arguments
	if ! make_busybox_root "$root"; then
		skip guests "no statically linked busybox (apt-get install busybox-static)"
		return
	fi
	kind=$(kvm_kind)
	case $kind in
	hardware) check_guests "$root" ;;
	pvm)
		skip guests "/dev/kvm is PVM (kvm_pvm): no Linux guest can run; checking the -ENOTSUP refusal instead"
		check_refusal "$root"
		check_stop_paths "$root"
		;;
	none) skip guests "no /dev/kvm" ;;
	esac
}

main
[ "$failures" -eq 0 ]
