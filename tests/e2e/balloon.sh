#!/bin/bash
# Free page reporting end to end, through tcg_vm (QEMU's virtio-balloon-device with
# free-page-reporting=on, the guest kernel's virtio_balloon driver): a static guest program
# (tests/e2e/balloon_alloc.c) allocates and fills E2E_BALLOON_MIB, frees it, waits, then
# allocates and verifies again while a canary region stays in use throughout. Checks:
#   guest_data     every guest-side pattern and canary check held (no corruption across reporting)
#   rss_grew       QEMU's RSS grew by at least half the allocation (else the next check means nothing)
#   rss_dropped    within 10 s of the free, QEMU's RSS is back below idle + 50% of the allocation
#   control_kept   the same run without the balloon keeps that memory (the drop is the balloon's)
# chroot_vm (our own balloon on hardware KVM) is covered by tests/guest (balloon_report) on
# /dev/kvm; a Linux guest cannot run on PVM. Prints "PASS|FAIL|SKIP e2e/tcg_vm/balloon/<check>".
# Environment: E2E_BALLOON_MIB (512), E2E_TIMEOUT (seconds per VM, 300), KRUN_VMLINUX, BUILD.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
TIMEOUT=${E2E_TIMEOUT:-300}
MIB=${E2E_BALLOON_MIB:-512}
RAM=$((MIB + 256))
HOLD_S=12          # guest waits this long after the free: the 10 s window plus slack
DROP_WINDOW_S=10
BUILD_ABS=$(cd "$BUILD" 2>/dev/null && pwd)
export KRUN_VMLINUX=${KRUN_VMLINUX:-$BUILD_ABS/vmlinux}
. tests/e2e/lib.sh
CHECKS="guest_data rss_grew rss_dropped control_kept"

skip_all() {
	for c in $CHECKS; do echo "SKIP e2e/tcg_vm/balloon/$c: $1"; done
	exit 0
}
fail_all() {
	for c in $CHECKS; do echo "FAIL e2e/tcg_vm/balloon/$c: $1"; done
	exit 1
}

why=$(runner_unavailable tcg_vm)
[ -n "$why" ] && skip_all "$why"
"${KRUN_QEMU:-qemu-system-x86_64}" -device virtio-balloon-device,help 2> /dev/null | grep -q free-page-reporting ||
	skip_all "QEMU's virtio-balloon-device has no free-page-reporting (QEMU >= 5.1 needed)"
command -v musl-gcc > /dev/null || skip_all "musl-gcc not installed (apt-get install musl-tools)"

work=$(mktemp -d "${TMPDIR:-/tmp}/krun-balloon.XXXXXX") || exit 2
vm=""
trap '[ -n "$vm" ] && kill "$vm" 2> /dev/null; wait 2> /dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/root"/{proc,sys,dev,tmp,run,etc,mnt}
musl-gcc -static -O2 -Wall -Wextra -Werror -o "$work/root/balloon_alloc" tests/e2e/balloon_alloc.c \
	2> "$work/cc.log" || fail_all "balloon_alloc did not build: $(tail -n 2 "$work/cc.log" | tr '\n' ' ')"

rss_kib() { awk '/^Rss:/ { print $2 }' "/proc/$1/smaps_rollup" 2> /dev/null; }

# wait_line FILE TEXT SECONDS: until the guest printed "alloc: TEXT".
wait_line() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q "^alloc: $2" "$1" && return 0
		grep -qE "^alloc: (error|FAIL)" "$1" && return 1
		kill -0 "$vm" 2> /dev/null || return 1
		sleep 0.1
	done
	return 1
}

mib() { echo $(( $1 / 1024 )); }

# run_cycle NAME BALLOON(1|0): boot, sample QEMU's RSS at idle, after the fill and after the free; sets
# idle_kib peak_kib low_kib drop_s (seconds until below the threshold, or "" if never) and rc.
run_cycle() {
	local name=$1 out=$work/$1.out qemu threshold i now
	idle_kib=0 peak_kib=0 low_kib=0 drop_s="" rc=""
	: > "$out"
	KRUN_TCG_BALLOON=$2 timeout "$TIMEOUT" "$BUILD/tcg_vm" -m "$RAM" "$work/root" /balloon_alloc cycle "$MIB" "$HOLD_S" \
		> "$out" 2> "$work/$name.err" &
	vm=$!
	if ! wait_line "$out" ready "$TIMEOUT"; then
		why="$name: the guest program never started: $(tail -n 3 "$work/$name.err" | tr '\n' ' ')"; return 1
	fi
	# timeout -> tcg_vm -> QEMU: guest RAM (a memfd) is resident in QEMU.
	qemu=$(pgrep -P "$(pgrep -P "$vm" | head -n 1)" | head -n 1)
	[ -n "$qemu" ] || { why="$name: QEMU process not found"; return 1; }
	sleep 1
	idle_kib=$(rss_kib "$qemu")
	wait_line "$out" touched "$TIMEOUT" || { why="$name: no 'touched': $(tail -n 2 "$out" | tr '\n' ' ')"; return 1; }
	peak_kib=$(rss_kib "$qemu")
	wait_line "$out" freed 60 || { why="$name: no 'freed': $(tail -n 2 "$out" | tr '\n' ' ')"; return 1; }
	threshold=$((idle_kib + MIB * 1024 / 2))
	for ((i = 0; i <= DROP_WINDOW_S * 4; i++)); do
		now=$(rss_kib "$qemu")
		low_kib=${now:-0}
		if [ "$low_kib" -lt "$threshold" ]; then
			drop_s=$(awk -v i="$i" 'BEGIN { printf "%.2f", i / 4 }'); break
		fi
		sleep 0.25
	done
	wait "$vm"; rc=$?; vm=""
	return 0
}

report() { echo "$1 e2e/tcg_vm/balloon/$2${3:+: $3}"; }

# With the balloon: data integrity and the RSS drop.
why=""
if run_cycle balloon 1; then
	if [ "$rc" -eq 0 ] && grep -q "^alloc: PASS" "$work/balloon.out" && ! grep -q "^alloc: FAIL" "$work/balloon.out"; then
		report PASS guest_data "$(grep -c '^alloc: ok' "$work/balloon.out") checks"
	else
		report FAIL guest_data "rc=$rc: $(grep -E '^alloc: (FAIL|error)' "$work/balloon.out" | tr '\n' ' ')$(tail -n 2 "$work/balloon.err" | tr '\n' ' ')"
	fi
	if [ "$peak_kib" -ge $((idle_kib + MIB * 1024 / 2)) ]; then
		report PASS rss_grew "idle $(mib "$idle_kib") MiB, after the fill $(mib "$peak_kib") MiB"
		if [ -n "$drop_s" ]; then
			report PASS rss_dropped "$(mib "$low_kib") MiB ${drop_s} s after the free (threshold idle + $((MIB / 2)) MiB)"
		else
			report FAIL rss_dropped "still $(mib "$low_kib") MiB ${DROP_WINDOW_S} s after the free (idle $(mib "$idle_kib") MiB)"
		fi
	else
		report FAIL rss_grew "idle $(mib "$idle_kib") MiB, after the fill only $(mib "$peak_kib") MiB"
		report SKIP rss_dropped "the fill did not show in QEMU's RSS"
	fi
else
	report FAIL guest_data "$why"
	report SKIP rss_grew "$why"
	report SKIP rss_dropped "$why"
fi

# Control: no balloon device, so the freed memory must stay resident in QEMU.
why=""
if run_cycle control 0; then
	if [ "$rc" -ne 0 ]; then
		report FAIL control_kept "the guest program failed without a balloon (rc=$rc)"
	elif [ -z "$drop_s" ]; then
		report PASS control_kept "$(( low_kib / 1024 )) MiB ${DROP_WINDOW_S} s after the free"
	else
		report FAIL control_kept "RSS fell to $(( low_kib / 1024 )) MiB without a balloon: the measurement is not the balloon's"
	fi
else
	report FAIL control_kept "$why"
fi
