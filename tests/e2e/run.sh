#!/bin/bash
# End-to-end scenarios: one list (tests/e2e/scenarios.sh), two runners. chroot_vm boots the
# guest in-process on /dev/kvm (hardware KVM only); tcg_vm boots the same kernel and init in
# QEMU's software CPU with our device backends over vhost-user (everywhere). Each case prints
# "PASS|FAIL|SKIP e2e/<runner>/<root>/<scenario>". See docs/testing.md.
#
# Environment: E2E_RUNNERS ("chroot_vm tcg_vm"), E2E_ONLY (regex on the case name),
# E2E_JOBS (VMs at a time, 2), E2E_TIMEOUT (seconds per VM, 180), KRUN_VMLINUX (tcg_vm kernel).
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
JOBS=${E2E_JOBS:-2}
TIMEOUT=${E2E_TIMEOUT:-180}
RUNNERS=${E2E_RUNNERS:-chroot_vm tcg_vm}
ONLY=${E2E_ONLY:-}
BUILD_ABS=$(cd "$BUILD" 2>/dev/null && pwd)
# tcg_vm boots the kernel this build made unless told otherwise; the check below uses the same.
export KRUN_VMLINUX=${KRUN_VMLINUX:-$BUILD_ABS/vmlinux}
. tests/e2e/lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/krun-e2e.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
CASES=$work/cases
mkdir -p "$CASES"
names=()

# sc NAME STATUS EXPECT [IN=FILE] [TTY] [runner options...] -- ROOT COMMAND [ARG...]
#   STATUS  expected exit status of the runner (the guest program's status)
#   EXPECT  stdout, exactly; or @same:FILE (stdout equals FILE), @sha256:FILE (stdout is
#           "<sha256 of FILE>  -"), @stderr:TEXT (stderr contains TEXT), @contains:TEXT
#           (stdout contains TEXT), @any
#   TTY     run the runner on a pseudo-terminal (script(1)): stdio is a terminal
#   ROOT    @bb (a busybox-static root made here) or a host path such as /
sc() {
	local name=$1 status=$2 expect=$3 in=/dev/null tty=0 d
	shift 3
	if [[ $1 == IN=* ]]; then in=${1#IN=}; shift; fi
	if [ "$1" = TTY ]; then tty=1; shift; fi
	[ -n "$ONLY" ] && ! [[ $name =~ $ONLY ]] && return
	d=$CASES/${name//\//_}
	mkdir -p "$d"
	printf '%s' "$name" > "$d/name"
	printf '%s' "$status" > "$d/status"
	printf '%s' "$expect" > "$d/expect"
	printf '%s' "$in" > "$d/in"
	printf '%s' "$tty" > "$d/tty"
	printf '%s\0' "$@" > "$d/argv"
	names+=("${name//\//_}")
}



# Compare one case's outcome with its expectation; prints the reason on mismatch.
judge() {
	local d=$1 out=$2 err=$3 status=$4 want expect
	want=$(cat "$d/status")
	expect=$(cat "$d/expect")
	if [ "$status" = 124 ] || [ "$status" = 137 ] && [ "$want" != 137 ]; then
		echo "timed out after ${TIMEOUT}s"; return
	fi
	[ "$status" = "$want" ] || { echo "exit status $status, expected $want"; return; }
	case $expect in
	@any) ;;
	@stderr:*) grep -qF -- "${expect#@stderr:}" "$err" || echo "stderr lacks '${expect#@stderr:}'" ;;
	@contains:*) grep -qF -- "${expect#@contains:}" "$out" || echo "stdout lacks '${expect#@contains:}': '$(head -c 200 "$out" | tr '\r\n' '||')'" ;;
	@same:*) cmp -s "$out" "${expect#@same:}" || echo "stdout differs from ${expect#@same:} ($(wc -c < "$out") bytes)" ;;
	@sha256:*)
		local sum
		sum=$(sha256sum < "${expect#@sha256:}" | cut -d' ' -f1)
		[ "$(cat "$out")" = "$sum  -" ] || echo "checksum '$(head -c 80 "$out")', expected '$sum  -'" ;;
	*) [ "$(cat "$out")" = "$expect" ] || echo "stdout '$(head -c 200 "$out" | tr '\n' '|')', expected '$(printf '%s' "$expect" | tr '\n' '|')'" ;;
	esac
}

# Run one case with one runner; leaves "<verdict line>" and diagnostics in $res/<case>.
run_case() {
	local runner=$1 c=$2 d=$CASES/$2 res=$work/res/$1 argv t0 t1 status why name
	name=$(cat "$d/name")
	mapfile -d '' argv < "$d/argv"
	for i in "${!argv[@]}"; do [ "${argv[$i]}" = @bb ] && argv[$i]=$BBROOT; done
	# argv = runner options, "--", ROOT COMMAND ARGS: the runner takes options first.
	local opts=() rest=() seen=0
	for a in "${argv[@]}"; do
		if [ $seen = 0 ] && [ "$a" = -- ]; then seen=1; continue; fi
		if [ $seen = 0 ]; then opts+=("$a"); else rest+=("$a"); fi
	done
	local cmd=("$BUILD_ABS/$runner" "${opts[@]}" "${rest[@]}")
	if [ "$(cat "$d/tty")" = 1 ]; then
		# script(1) gives the runner a pty for stdin/stdout/stderr and returns its status.
		cmd=(script -qefc "$(printf '%q ' "${cmd[@]}")" /dev/null)
	fi
	t0=$(date +%s.%N)
	KRUN_SERIAL_LOG=$res/$c.serial timeout -k 10 "$TIMEOUT" "${cmd[@]}" < "$(cat "$d/in")" \
		> "$res/$c.out" 2> "$res/$c.err"
	status=$?
	t1=$(date +%s.%N)
	why=$(judge "$d" "$res/$c.out" "$res/$c.err" "$status")
	local secs
	secs=$(printf '%.1f' "$(echo "$t1 - $t0" | bc)")
	if [ -z "$why" ]; then
		echo "PASS e2e/$runner/$name (${secs} s)" > "$res/$c.verdict"
	else
		{
			echo "FAIL e2e/$runner/$name: $why (${secs} s)"
			echo "    command: $runner ${opts[*]} ${rest[*]}"
			echo "    last stderr/console lines:"
			tail -n 15 "$res/$c.err" | sed 's/^/      /'
			if [ -s "$res/$c.serial" ]; then
				echo "    last kernel log lines (ttyS0):"
				tail -n 15 "$res/$c.serial" | sed 's/^/      /'
			fi
		} > "$res/$c.verdict"
	fi
}

# tcg_vm's own contract: SIGINT stops QEMU, exits 130 and leaves no socket dir behind.
tcg_vm_sigint() {
	local dir=$work/sigint status t0
	mkdir -p "$dir/tmp"
	TMPDIR=$dir/tmp "$BUILD_ABS/tcg_vm" "${BBROOT:-/}" /bin/sh -c 'echo started; sleep 100' \
		< /dev/null > "$dir/out" 2> "$dir/err" &
	local pid=$!
	for _ in $(seq 1 "$TIMEOUT"); do
		grep -q started "$dir/out" 2>/dev/null && break
		sleep 1
	done
	t0=$SECONDS
	kill -INT "$pid"
	wait "$pid"
	status=$?
	if [ "$status" != 130 ]; then
		echo "FAIL e2e/tcg_vm/sigint: exit status $status, expected 130 ($(tail -n 1 "$dir/err"))"
	elif [ -n "$(ls -A "$dir/tmp")" ]; then
		echo "FAIL e2e/tcg_vm/sigint: left $(ls "$dir/tmp") in TMPDIR"
	elif pgrep -f "$dir/tmp" > /dev/null; then
		echo "FAIL e2e/tcg_vm/sigint: QEMU still running"
	else
		echo "PASS e2e/tcg_vm/sigint ($((SECONDS - t0)) s to stop)"
	fi
}

run_runner() {
	local runner=$1 why
	why=$(runner_unavailable "$runner")
	if [ -n "$why" ]; then
		# One line per scenario, so the skipped count says how much went untested.
		for c in "${names[@]}"; do echo "SKIP e2e/$runner/$(cat "$CASES/$c/name"): $why"; done
		return
	fi
	mkdir -p "$work/res/$runner"
	# Canary: the first case alone. If even it fails, the runner is broken and the other
	# cases would only fail the same way, one timeout each: report them as not run.
	run_case "$runner" "${names[0]}"
	cat "$work/res/$runner/${names[0]}.verdict"
	if grep -q '^FAIL ' "$work/res/$runner/${names[0]}.verdict"; then
		for c in "${names[@]:1}"; do
			echo "SKIP e2e/$runner/$(cat "$CASES/$c/name"): not run, the first case failed"
		done
		return
	fi
	for c in "${names[@]:1}"; do
		while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
		run_case "$runner" "$c" &
	done
	wait
	for c in "${names[@]:1}"; do cat "$work/res/$runner/$c.verdict"; done
	if [ "$runner" = tcg_vm ] && { [ -z "$ONLY" ] || [[ sigint =~ $ONLY ]]; }; then
		tcg_vm_sigint
	fi
}

BBROOT=$work/bbroot
if ! make_busybox_root "$BBROOT"; then
	echo "SKIP e2e/busybox-root: no static busybox (apt-get install busybox-static)"
	BBROOT=
fi
# shellcheck source=tests/e2e/scenarios.sh
. tests/e2e/scenarios.sh
e2e_scenarios "$work"

for runner in $RUNNERS; do
	run_runner "$runner"
done | tee "$work/verdicts"
! grep -q '^FAIL ' "$work/verdicts"
