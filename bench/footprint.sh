#!/bin/bash
# Host footprint of an idle VM: our VMM's RSS/PSS with the test guest halted (before and after it
# reports touched memory free through virtio-balloon), its CPU time while idle, and QEMU microvm
# (TCG) with the same RAM size as a peer. Usage: bench/footprint.sh (after `make tests`).
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 2
HOST=$BUILD/tests/guest/host
GUEST=$BUILD/tests/guest/guest.elf
RAM=${RAM:-128}          # MiB of guest RAM, ours and QEMU's
TOUCH=${TOUCH:-64}       # MiB the guest writes (one store per page) before going idle
IDLE_S=${IDLE_S:-10}     # CPU-time window
TICK=$(getconf CLK_TCK)
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2> /dev/null; rm -rf "$tmp"' EXIT

[ -x "$HOST" ] && [ -f "$GUEST" ] || { echo "build the test guest first: make tests" >&2; exit 1; }

# "RSS PSS PSS_SHMEM" in KiB for a process.
mem_of() {
	awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Pss_Shmem:/ { s = $2 } END { print r + 0, p + 0, s + 0 }' \
		"/proc/$1/smaps_rollup"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# ours NAME CMDLINE WINDOW: run the test guest to its idle halt, then sample; sets rss pss shm cpu_ms.
ours() {
	local name=$1 cmd=$2 window=$3 c0 c1
	"$HOST" --kernel "$GUEST" --ram "$RAM" --balloon --shutdown-after $(( (window + 30) * 1000 )) \
		--cmdline "t.ram=$RAM t.cpus=1 t.scenario=idle $cmd" > "$tmp/out" 2> "$tmp/err" &
	pid=$!
	for _ in $(seq 500); do grep -q "guest: idle" "$tmp/out" && break; sleep 0.01; done
	if ! grep -q "guest: idle" "$tmp/out" || grep -q "guest: FAIL" "$tmp/out"; then
		echo "FAIL $name: guest did not reach its idle halt: $(tail -n 2 "$tmp/err" | tr '\n' ' ')"
		kill "$pid"; wait "$pid" 2> /dev/null; pid=""; return 1
	fi
	sleep 1
	read -r rss pss shm < <(mem_of "$pid")
	c0=$(cpu_ticks "$pid"); sleep "$window"; c1=$(cpu_ticks "$pid")
	cpu_ms=$(( (c1 - c0) * 1000 / TICK ))
	kill -TERM "$pid"; wait "$pid" 2> /dev/null; pid=""
}

row() { printf '%-44s %8s %8s %10s %s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "== idle VM footprint, $RAM MiB guest RAM, /dev/kvm$([ -d /sys/module/kvm_pvm ] && echo " (PVM)")"
if [ ! -w /dev/kvm ]; then
	echo "SKIP footprint/ours: no usable /dev/kvm"
else
	row "" "RSS KiB" "PSS KiB" "RAM KiB" "(RAM = guest RAM memfd pages resident)"
	ours idle "" "$IDLE_S" || exit 1
	base_rss=$rss base_pss=$pss base_cpu=$cpu_ms
	row "ours: test guest idle" "$rss" "$pss" "$shm"
	ours touched "t.touch=$TOUCH" 0 || exit 1
	touch_rss=$rss
	row "ours: guest touched $TOUCH MiB" "$rss" "$pss" "$shm"
	ours reported "t.touch=$TOUCH t.report=1" 0 || exit 1
	rep_rss=$rss
	row "ours: touched $TOUCH MiB, reported free" "$rss" "$pss" "$shm"
	echo "balloon: reporting gave back $(( (touch_rss - rep_rss) / 1024 )) MiB; RSS $(ratio "$touch_rss" "$rep_rss")x" \
		"smaller, $(ratio "$rep_rss" "$base_rss")x of the untouched idle VM"
	echo "ours: CPU time while idle for $IDLE_S s: $base_cpu ms"
fi

if ! command -v qemu-system-x86_64 > /dev/null; then
	echo "SKIP footprint/qemu: qemu-system-x86_64 not installed"
else
	# QEMU's own cost for the same RAM size: microvm firmware only (no kernel), TCG as in PLATFORM.md.
	qemu-system-x86_64 -accel tcg -M microvm,x-option-roms=off,rtc=off,isa-serial=off,acpi=off \
		-m "$RAM" -nodefaults -no-user-config -display none -serial none -monitor none 2> "$tmp/qerr" &
	pid=$!
	sleep 2
	if kill -0 "$pid" 2> /dev/null; then
		read -r qrss qpss qshm < <(mem_of "$pid")
		c0=$(cpu_ticks "$pid"); sleep "$IDLE_S"; c1=$(cpu_ticks "$pid")
		kill -TERM "$pid"; wait "$pid" 2> /dev/null; pid=""
		row "qemu microvm (TCG, firmware idle)" "$qrss" "$qpss" "$qshm"
		echo "qemu: CPU time while idle for $IDLE_S s: $(( (c1 - c0) * 1000 / TICK )) ms"
		[ -n "${base_rss:-}" ] && echo "ratio qemu/ours idle: RSS $(ratio "$qrss" "$base_rss")x, PSS $(ratio "$qpss" "$base_pss")x"
	else
		echo "SKIP footprint/qemu: QEMU exited: $(tail -n 1 "$tmp/qerr")"; pid=""
	fi
fi

echo "SKIP footprint/linux-guest: a Linux guest (and so free page reporting by its balloon driver) needs" \
	"hardware KVM (PVM cannot run one), and tcg_vm's QEMU 7.2 has no vhost-user balloon"
echo "note: ours = tests/guest/host (the VMM core linked statically, console + balloon devices); the"
echo "      RSS includes the guest RAM the test guest touched (image, page tables, rings)."
