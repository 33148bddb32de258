#!/bin/bash
# Fault injection against a running VM: the host share removed, made read-only or full mid-run,
# the caller's stdout closed, a host peer resetting proxied connections, guest programs killed,
# spinning, fork-bombing or filling RAM, and a leak check. Prints PASS/FAIL/SKIP per check and runner (chroot_vm: hardware KVM only).
# Environment: FAULTS_RUNNERS ("chroot_vm tcg_vm"), FAULTS_ONLY (regex on the check name),
# KRUN_VMLINUX (tcg_vm kernel, default $BUILD/vmlinux), FAULTS_VERBOSE=1 (last output lines).
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
BUILD_ABS=$(cd "$BUILD" 2>/dev/null && pwd)
export KRUN_VMLINUX=${KRUN_VMLINUX:-$BUILD_ABS/vmlinux}
RUNNERS=${FAULTS_RUNNERS:-chroot_vm tcg_vm}
ONLY=${FAULTS_ONLY:-}
T=$(mktemp -d "${TMPDIR:-/tmp}/krun-faults.XXXXXX") || exit 2
export TMPDIR=$T            # tcg_vm's sockets land here: a QEMU left behind is findable
cleanup() {
	pkill -KILL -f "$T/tcg_vm\." 2> /dev/null
	for m in "$T"/mnt.*; do mountpoint -q "$m" 2> /dev/null && umount -l "$m"; done
	rm -rf "$T"
}
trap cleanup EXIT
failed=0

runner_unavailable() {
	case $1 in
	chroot_vm)
		[ -x "$BUILD/chroot_vm" ] || { echo "$BUILD/chroot_vm not built"; return; }
		[ -e /dev/kvm ] || { echo "no /dev/kvm"; return; }
		[ -d /sys/module/kvm_pvm ] && { echo "/dev/kvm is PVM: no Linux guest runs on it (PLATFORM.md)"; return; }
		grep -qwE 'vmx|svm' /proc/cpuinfo || echo "no vmx/svm in /proc/cpuinfo"
		;;
	tcg_vm)
		[ -x "$BUILD/tcg_vm" ] || { echo "$BUILD/tcg_vm not built"; return; }
		command -v "${KRUN_QEMU:-qemu-system-x86_64}" > /dev/null || { echo "no qemu-system-x86_64"; return; }
		[ -r "$KRUN_VMLINUX" ] || echo "no guest kernel $KRUN_VMLINUX"
		;;
	esac
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
verdict() {   # verdict NAME 0|1|2 WHY
	case $2 in
	0) echo "PASS faults/$RUNNER/$1 ($(( $(now_ms) - t0 )) ms)" ;;
	2) echo "SKIP faults/$RUNNER/$1: $3" ;;
	*) echo "FAIL faults/$RUNNER/$1: $3"; failed=1 ;;
	esac
	[ -n "$FAULTS_VERBOSE" ] && [ -f "$T/out" ] && tail -n 4 "$T/out" | sed 's/^/    | /'
}
# vm [runner args...]: run the runner with a 60 s cap; sets rc, out (stdout+stderr in $T/out).
vm() {
	timeout -k 5 60 "$BUILD/$RUNNER" "$@" > "$T/out" 2>&1 < "${VM_IN:-/dev/null}"
	rc=$?; out=$(cat "$T/out")
}
leftover_qemu() { pgrep -f "$T/tcg_vm\." > /dev/null; }
why() { echo "rc=$rc; $(tail -n 3 <<< "$out" | tr '\n' ' ')"; }

# A tmpfs of SIZE at $T/mnt.NAME for shares that must fill up or turn read-only.
small_fs() {
	mkdir -p "$T/mnt.$1" && mount -t tmpfs -o "size=$2" krun-faults "$T/mnt.$1" && echo "$T/mnt.$1"
}

# The guest writes "ready", waits for a line on stdin (sent after the host-side fault), then acts.
with_fault() {   # with_fault DIR FAULT-COMMAND RUNNER-ARGS...
	local dir=$1 fault=$2; shift 2
	rm -f "$T/in"; mkfifo "$T/in"
	( for _ in $(seq 300); do [ -e "$dir/ready" ] && break; sleep 0.1; done
	  eval "$fault"; echo go ) > "$T/in" &
	VM_IN=$T/in vm "$@"
	VM_IN=
	wait
}

chk_share_removed() {
	local d=$T/gone; mkdir -p "$d"
	with_fault "$d" 'rm -rf "$d"' -v "$d:/mnt" -- / /bin/sh -c \
		'echo x > /mnt/ready; read l; echo new > /mnt/new; echo "create=$?"; ls /mnt; echo "ls=$?"; exit 7'
	[ "$rc" -eq 7 ] && grep -q "create=[1-9]" <<< "$out" && return 0
	echo "expected status 7 and a failed create: $(why)"; return 1
}
chk_share_readonly() {
	[ "$(id -u)" = 0 ] || { echo "needs root (tmpfs remount)"; return 2; }
	local d; d=$(small_fs ro 4M) || { echo "cannot mount a tmpfs"; return 2; }
	with_fault "$d" 'mount -o remount,ro "$d"' -v "$d:/mnt" -- / /bin/sh -c \
		'echo x > /mnt/ready; read l; echo w > /mnt/w 2>&1; echo "create=$?"; rm /mnt/ready 2>&1; cat /mnt/ready; exit 0'
	[ "$rc" -eq 0 ] && grep -q "create=[1-9]" <<< "$out" && grep -q "Read-only file system" <<< "$out" &&
		grep -q "^x" <<< "$out" && return 0
	echo "expected EROFS on write, reads still working: $(why)"; return 1
}
chk_share_full() {
	[ "$(id -u)" = 0 ] || { echo "needs root (tmpfs mount)"; return 2; }
	local d; d=$(small_fs full 1M) || { echo "cannot mount a tmpfs"; return 2; }
	vm -v "$d:/mnt" -- / /bin/sh -c \
		'dd if=/dev/zero of=/mnt/big bs=64k count=64 2>&1; echo "dd=$?"; rm /mnt/big; echo ok > /mnt/small && cat /mnt/small'
	[ "$rc" -eq 0 ] && grep -q "No space left on device" <<< "$out" && grep -q "dd=[1-9]" <<< "$out" &&
		grep -q "^ok" <<< "$out" && return 0
	echo "expected ENOSPC, then a working share after rm: $(why)"; return 1
}
chk_stdout_closed() {
	# A pipe reader that goes away: the runner must end (no hang) with a defined status.
	timeout -k 5 30 "$BUILD/$RUNNER" / /bin/sh -c 'while :; do echo yyyyyyyyyyyyyyyy; done' \
		2> "$T/err" < /dev/null | head -c1 > /dev/null
	rc=${PIPESTATUS[0]}; out=$(cat "$T/err")
	[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && [ "$rc" -lt 129 -o "$rc" -eq 141 ] && ! leftover_qemu && return 0
	[ "$rc" -eq 124 ] && { echo "still running 30 s after its stdout reader exited (killed by timeout)"; return 1; }
	echo "status $rc: $(why)"; return 1
}
chk_sigkill_program() {
	vm / /bin/sh -c 'echo ran; kill -9 $$'
	[ "$rc" -eq 137 ] && grep -q "^ran" <<< "$out" && return 0
	echo "expected 137: $(why)"; return 1
}
# run_then_signal SECONDS SIGNAL RUNNER-ARGS...: rc of the runner; $T/out; sets stop_ms.
run_then_signal() {
	local secs=$1 sig=$2 pid t1; shift 2
	"$BUILD/$RUNNER" "$@" > "$T/out" 2>&1 < /dev/null &
	pid=$!
	for _ in $(seq $((secs * 10))); do grep -q "^spin" "$T/out" && break; sleep 0.1; done
	sleep 1
	t1=$(now_ms); kill "-$sig" "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2> /dev/null && kill -KILL "$pid"
	wait "$pid"; rc=$?; out=$(cat "$T/out"); stop_ms=$(( $(now_ms) - t1 ))
}
chk_spin_sigterm() {
	run_then_signal 30 TERM / /bin/sh -c 'echo spin; while :; do :; done'
	[ "$rc" -eq 143 ] && [ "$stop_ms" -lt 5000 ] && ! leftover_qemu && return 0
	echo "expected 143 within 5 s: status $rc after $stop_ms ms; $(why)"; return 1
}
chk_spin_terminal() {
	command -v script > /dev/null || { echo "script(1) not installed"; return 2; }
	# On a pseudo-terminal: raw mode while the guest runs, the saved mode back after SIGTERM.
	cat > "$T/tty.sh" <<-EOF
	stty -g > "$T/before"; "$BUILD_ABS/$RUNNER" / /bin/sh -c 'echo spin; while :; do :; done' &
	p=\$!; echo \$p > "$T/pid"; wait \$p; echo "rc=\$?" > "$T/rc"; stty -g > "$T/after"
	EOF
	rm -f "$T/pid" "$T/rc"
	timeout -k 5 60 script -qec "bash $T/tty.sh" /dev/null > "$T/out" 2>&1 < /dev/null &
	local spid=$!
	for _ in $(seq 300); do grep -q spin "$T/out" 2> /dev/null && break; sleep 0.1; done
	sleep 1; kill -TERM "$(cat "$T/pid")"; wait "$spid"
	rc=$(sed 's/rc=//' "$T/rc" 2> /dev/null); out=$(cat "$T/out")
	[ "$rc" = 143 ] && cmp -s "$T/before" "$T/after" && return 0
	echo "status ${rc:-?}, terminal mode before/after: $(cat "$T/before" "$T/after" 2> /dev/null | tr '\n' ' ')"; return 1
}
chk_fork_bomb() {
	# Root ignores RLIMIT_NPROC, so the bomb fills the guest; the VMM must still stop on SIGTERM.
	run_then_signal 30 TERM / /bin/bash -c 'ulimit -u 64; echo spin; b() { b | b & }; b; sleep 1000'
	[ "$rc" -eq 143 ] && [ "$stop_ms" -lt 10000 ] && ! leftover_qemu && return 0
	echo "expected 143 within 10 s of SIGTERM: status $rc after $stop_ms ms; $(why)"; return 1
}
chk_guest_oom() {
	# A program filling guest RAM (tmpfs pages, then a heap that keeps doubling): the guest's
	# OOM killer ends it (SIGKILL: 137) and the VM reports that status.
	vm -m 128 / /bin/sh -c 'dd if=/dev/zero of=/dev/shm/x bs=1M 2> /dev/null; rm -f /dev/shm/x
		x=0123456789abcdef; while :; do x=$x$x; done'
	[ "$rc" -eq 137 ] || [ "$rc" -eq 2 ] && ! grep -qi "panic" <<< "$out" && return 0
	echo "expected the hog killed (137) or refused memory (2): $(why)"; return 1
}
chk_no_leaks() {
	command -v valgrind > /dev/null || { echo "valgrind not installed"; return 2; }
	ldd "$BUILD/$RUNNER" 2> /dev/null | grep -q libasan &&
		{ echo "an ASan build: valgrind cannot run it, LeakSanitizer checks leaks at exit instead"; return 2; }
	# valgrind does not implement seccomp(2): log mode goes on without the filter, on would stop.
	KRUN_SECCOMP=log timeout -k 5 120 valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
		--log-file="$T/vg" "$BUILD/$RUNNER" / /bin/sh -c 'echo leak-check' > "$T/out" 2>&1 < /dev/null
	rc=$?; out=$(cat "$T/out")
	local lost; lost=$(grep -o "definitely lost: [0-9,]* bytes" "$T/vg" | head -n 1)
	[ "$rc" -eq 0 ] && grep -q leak-check <<< "$out" && return 0
	echo "status $rc; ${lost:-no leak summary}; $(grep -A6 'definitely lost in' "$T/vg" | head -n 12 | tr -s ' \n' ' ')"
	return 1
}

chk_peer_reset() {
	# A host server that resets every connection (SO_LINGER 0) once it has read the request: the
	# guest program's request fails, and the same VM's next connection is served all the same.
	# (The guest reads the reset as a premature end of stream: virtio-vsock has no reset errno
	# for a connected socket; docs/networking.md.)
	command -v python3 > /dev/null || { echo "python3 not installed"; return 2; }
	local port=$((20000 + RANDOM % 20000)) srv
	python3 -c 'import socket,struct,sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
n = 0
while True:
    c, _ = s.accept(); c.recv(100); n += 1
    open(sys.argv[2], "w").write(str(n))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()' \
		"$port" "$T/resets" 2> "$T/srv.err" &
	srv=$!
	for _ in $(seq 50); do grep -q ":$(printf %04X "$port") " /proc/net/tcp && break; sleep 0.1; done
	vm / /bin/sh -c "for i in 1 2; do busybox wget -q -O- http://127.0.0.1:$port/ 2>&1; echo req\$i=\$?; done; echo after"
	kill "$srv" 2> /dev/null; wait "$srv" 2> /dev/null
	local served; served=$(cat "$T/resets" 2> /dev/null)
	[ "$rc" -eq 0 ] && grep -q "^after" <<< "$out" && grep -q "^req1=[1-9]" <<< "$out" &&
		grep -q "^req2=[1-9]" <<< "$out" && [ "$served" = 2 ] && ! leftover_qemu && return 0
	echo "expected both requests reset (wget status != 0), 2 served, status 0: served=${served:-0}; $(why)"
	return 1
}

CHECKS="share_removed share_readonly share_full stdout_closed sigkill_program spin_sigterm spin_terminal
peer_reset fork_bomb guest_oom no_leaks"
for RUNNER in $RUNNERS; do
	reason=$(runner_unavailable "$RUNNER")
	if [ -n "$reason" ]; then
		echo "SKIP faults/$RUNNER: $reason"
		continue
	fi
	for c in $CHECKS; do
		name=${c//_/-}
		[ -n "$ONLY" ] && ! [[ $name =~ $ONLY ]] && continue
		t0=$(now_ms)
		why=$(chk_$c); r=$?
		verdict "$name" "$r" "$why"
	done
done
exit $failed
