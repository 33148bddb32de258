#!/bin/bash
# Guest scenarios on /dev/kvm: the freestanding test guest driven by tests/guest/host (vmm_run).
# Prints PASS/FAIL/SKIP per scenario with its run time. --repeat N runs each scenario N times.
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.." || exit 2
HOST=$BUILD/tests/guest/host
GUEST=$BUILD/tests/guest/guest.elf
REPEAT=1
[ "$1" = "--repeat" ] && REPEAT=${2:-50}
RAM=64
mkdir -p "$BUILD/tests/guest"
tmp=$(mktemp -d "$BUILD/tests/guest/run.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$HOST" ] || [ ! -f "$GUEST" ]; then
	echo "SKIP guest: $HOST or $GUEST not built (make tests)"
	exit 0
fi
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "SKIP guest: no usable /dev/kvm"
	exit 0
fi

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# run NAME CPUS CMDLINE [host args...]: sets rc, out, err, ms
run() {
	mkdir -p "$tmp"
	local cpus=$1 cmd=$2; shift 2
	local t0; t0=$(now_ms)
	timeout 10 "$HOST" --kernel "$GUEST" --ram $RAM --cpus "$cpus" \
		--cmdline "t.ram=$RAM t.cpus=$cpus $cmd" "$@" > "$tmp/out" 2> "$tmp/err"
	rc=$?
	ms=$(( $(now_ms) - t0 ))
	out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
}

why_output() {
	echo "rc=$rc; guest: $(grep -E 'FAIL|done' <<< "$out" | tail -n 2 | tr '\n' ' ')host: $(tail -n 3 <<< "$err" | tr '\n' ' ')"
}

# Each scenario function returns 0 (pass), 1 (fail, reason in $why) or 2 (skip, reason in $why).
expect_guest_ok() {
	local status=$1
	[ "$rc" -eq "$status" ] && grep -q "^guest: done, status $status$" <<< "$out" &&
		! grep -q "^guest: FAIL" <<< "$out" && return 0
	why=$(why_output); return 1
}

sc_boot_1cpu() { run 1 "t.scenario=boot"; expect_guest_ok 0; }
sc_boot_2cpu() { run 2 "t.scenario=boot"; expect_guest_ok 0; }
sc_console_output() {
	run 1 "t.scenario=boot"
	# Byte-exact: the host reads what the guest wrote through virtio-console on its stdout.
	[ "$(head -n 1 "$tmp/out" | od -An -c | tr -s ' ')" = "$(printf 'guest: hello from the test guest\n' | od -An -c | tr -s ' ')" ] &&
		return 0
	why="first console line differs: $(head -n 1 "$tmp/out")"; return 1
}
sc_ram_4g_split() {
	# 4 GiB: RAM continues above the MMIO hole at 4 GiB; e820 must say so (memfd pages stay untouched).
	local saved=$RAM; RAM=4096
	run 2 "t.scenario=boot"; RAM=$saved
	expect_guest_ok 0
}
sc_irq_idt() {
	run 1 "t.scenario=irq"
	expect_guest_ok 0 && grep -q "ok interrupt delivered through IOAPIC" <<< "$out" && return 0
	why="$(why_output)"; return 1
}
sc_exit_0() { run 1 "t.scenario=exit t.status=0"; expect_guest_ok 0; }
sc_exit_42() { run 1 "t.scenario=exit t.status=42"; expect_guest_ok 42; }
fs_prepare() {
	mkdir -p "$tmp/root"
	printf 'shared-file-content-%s' "$RANDOM" > "$tmp/root/data.txt"
}
sc_fs_read() {
	fs_prepare
	run 1 "t.scenario=fs t.file=data.txt t.content=$(cat "$tmp/root/data.txt")" --fs "$tmp/root"
	if [ "$rc" -eq 71 ] && grep -q "device setup failed" <<< "$err"; then
		why="virtio-fs device not available: $(tail -n 1 <<< "$err")"; return 2
	fi
	expect_guest_ok 0
}
sc_fs_exit_file_42() {
	fs_prepare
	run 1 "t.scenario=fs t.status=42 t.file=data.txt t.content=$(cat "$tmp/root/data.txt")" --fs "$tmp/root"
	if [ "$rc" -eq 71 ] && grep -q "device setup failed" <<< "$err"; then
		why="virtio-fs device not available"; return 2
	fi
	expect_guest_ok 42 && grep -q "exit file status=42" <<< "$err" && return 0
	why="exit file not written: $(why_output)"; return 1
}
sc_fs_round_trips() {
	# 2000 GETATTR then 2000 LOOKUP back to back (bench/fs_rtt.sh's workload): every reply must
	# carry its own unique id, no error and the file's inode; workers under the seccomp filter.
	fs_prepare
	local op
	for op in getattr lookup; do
		run 1 "t.scenario=fs_rtt t.op=$op t.file=data.txt t.n=2000" --fs "$tmp/root" --seccomp=on
		expect_guest_ok 0 && grep -q "^guest: rtt op=$op n=2000 cycles=[0-9]* bad=0$" <<< "$out" ||
			{ why="$op: $(grep 'rtt' <<< "$out") $(why_output)"; return 1; }
	done
}
sc_unmapped_mmio() {
	run 1 "t.scenario=fault_mmio"
	expect_guest_ok 0 && grep -q "unmapped guest address 0xe0000000" <<< "$err" && return 0
	why="$(why_output)"; return 1
}
sc_bad_chain() {
	run 1 "t.scenario=bad_chain"
	expect_guest_ok 0 && grep -q "device needs reset" <<< "$err" && return 0
	why="$(why_output)"; return 1
}
sc_triple_fault() {
	run 1 "t.scenario=triple"
	[ "$rc" -eq 1 ] && grep -q "without reporting a status" <<< "$err" && return 0
	why="$(why_output)"; return 1
}
sc_sigterm_loop() {
	mkdir -p "$tmp"
	local t0 pid
	t0=$(now_ms)
	: > "$tmp/out"      # truncate here: the background child may open it only later
	"$HOST" --kernel "$GUEST" --ram $RAM --cmdline "t.ram=$RAM t.cpus=1 t.scenario=loop" \
		> "$tmp/out" 2> "$tmp/err" &
	pid=$!
	for _ in $(seq 150); do grep -q "spinning forever" "$tmp/out" && break; sleep 0.02; done
	if ! grep -q "spinning forever" "$tmp/out"; then
		kill -KILL $pid; wait $pid 2> /dev/null
		why="guest never reached its endless loop: $(tail -n 2 "$tmp/err" | tr '\n' ' ')"; return 1
	fi
	local t1; t1=$(now_ms)
	kill -TERM $pid
	for _ in $(seq 100); do kill -0 $pid 2> /dev/null || break; sleep 0.01; done
	if kill -0 $pid 2> /dev/null; then
		kill -KILL $pid; wait $pid 2> /dev/null
		why="still running 1 s after SIGTERM"; return 1
	fi
	wait $pid; rc=$?
	ms=$(( $(now_ms) - t0 )); err=$(cat "$tmp/err")
	local stop_ms=$(( $(now_ms) - t1 ))
	[ "$rc" -eq 130 ] && grep -q "received signal 15" <<< "$err" && { ms="$ms, stop $stop_ms"; return 0; }
	why="rc=$rc: $(tail -n 2 <<< "$err" | tr '\n' ' ')"; return 1
}
sc_vcpu_fault() {
	if [ ! -d /sys/module/kvm_pvm ]; then why="needs PVM (its emulator lacks popcnt; hardware runs it)"; return 2; fi
	run 1 "t.scenario=emul_fail"
	[ "$rc" -eq 70 ] && grep -q "emulation failure" <<< "$err" && grep -q "code at RIP: f3 48 0f b8" <<< "$err" &&
		return 0
	why="$(why_output)"; return 1
}
sc_shutdown_eventfd() {
	# The caller's shutdown eventfd (krun_get_shutdown_eventfd) ends a guest that never stops.
	run 1 "t.scenario=loop" --shutdown-after 300
	[ "$rc" -eq 130 ] && grep -q "vmm_run=-4" <<< "$err" && grep -q "spinning forever" <<< "$out" && return 0
	why="$(why_output)"; return 1
}
sc_bad_kernel() {
	head -c 3000 "$GUEST" > "$tmp/truncated.elf"
	timeout 10 "$HOST" --kernel "$tmp/truncated.elf" --cmdline "t.scenario=boot" > /dev/null 2> "$tmp/err"
	rc=$?; err=$(cat "$tmp/err"); ms=0
	[ "$rc" -eq 71 ] && grep -q "cannot load kernel" <<< "$err" && return 0
	why="rc=$rc: $(tail -n 2 <<< "$err" | tr '\n' ' ')"; return 1
}
sc_pvm_refuses_linux() {
	if [ ! -d /sys/module/kvm_pvm ]; then why="not PVM: Linux guests allowed here"; return 2; fi
	timeout 10 "$HOST" --linux --kernel "$GUEST" --cmdline "t.scenario=boot" > /dev/null 2> "$tmp/err"
	rc=$?; err=$(cat "$tmp/err"); ms=0
	[ "$rc" -eq 71 ] && grep -q "PVM" <<< "$err" && grep -q "Operation not supported" <<< "$err" && return 0
	why="rc=$rc: $(tail -n 2 <<< "$err" | tr '\n' ' ')"; return 1
}
sc_balloon_report() {
	# Free page reporting: the reported page is a hole in guest RAM's memfd afterwards; the others keep their data.
	run 1 "t.scenario=balloon t.bal=0x2000000" --balloon=0x2000000,4
	expect_guest_ok 0 || return 1
	grep -q "ram page 0x2001000: hole" <<< "$err" && grep -q "ram page 0x2000000: data 0x62616c6c00000000" <<< "$err" &&
		grep -q "ram page 0x2003000: data 0x62616c6c00030000" <<< "$err" && return 0
	why="host memfd check: $(grep -E 'ram page|memfd' <<< "$err" | tr '\n' ' ')"; return 1
}
sc_console_multiport() {
	# virtio-console multiport: the guest reads the port's name from the control queue and writes to it.
	run 1 "t.scenario=console_mp t.port=krun-test" --port "krun-test=$tmp/port.out"
	expect_guest_ok 0 || return 1
	[ "$(od -An -c "$tmp/port.out" | tr -s ' ')" = "$(printf 'multiport data\n' | od -An -c | tr -s ' ')" ] && return 0
	why="port output differs: $(head -c 100 "$tmp/port.out" | od -An -c | tr -s ' ')"; return 1
}
sc_seccomp_on() {
	# The VMM's threads under the enforcing seccomp filter (2 vCPUs, virtio-fs, balloon): any call off the list is SIGSYS.
	fs_prepare
	run 2 "t.scenario=fs t.file=data.txt t.content=$(cat "$tmp/root/data.txt")" --fs "$tmp/root" --balloon --seccomp=on
	expect_guest_ok 0
}

SCENARIOS=${GUEST_SCENARIOS:-"boot_1cpu boot_2cpu ram_4g_split console_output irq_idt exit_0 exit_42 fs_read fs_exit_file_42 fs_round_trips unmapped_mmio
bad_chain triple_fault vcpu_fault sigterm_loop shutdown_eventfd bad_kernel pvm_refuses_linux
balloon_report console_multiport seccomp_on"}
for sc in $SCENARIOS; do
	fails=0 max=0 last=""
	for i in $(seq "$REPEAT"); do
		why=""
		sc_$sc; r=$?
		[ "$r" -eq 2 ] && break
		[ "$r" -ne 0 ] && { fails=$((fails + 1)); last=$why; }
		m=${ms%%,*}; [ "$m" -gt "$max" ] && max=$m
	done
	name="guest/${sc//_/-}"
	if [ "$r" -eq 2 ]; then
		echo "SKIP $name: $why"
	elif [ "$fails" -gt 0 ]; then
		echo "FAIL $name: $fails of $REPEAT runs failed; last: $last"
	elif [ "$REPEAT" -gt 1 ]; then
		echo "PASS $name ($REPEAT runs, slowest $max ms)"
	else
		echo "PASS $name ($ms ms)"
	fi
done
