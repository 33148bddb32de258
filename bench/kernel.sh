#!/bin/bash
# Guest kernel figures: image sizes, cached build time, QEMU TCG start-to-/init time (median of 5).
# Usage: bench/kernel.sh   (after `make`; BUILD=dir to use another build directory)
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 2
KT_TMP=$(mktemp -d)
. tests/kernel/lib.sh
qpid=""
trap '[ -n "$qpid" ] && kill "$qpid" 2>/dev/null; rm -rf "$KT_TMP"' EXIT
runs=5

vmlinux=$BUILD/vmlinux
[ -f "$vmlinux" ] && [ -f "$BUILD/kernel/vmlinux.bin" ] || { echo "run make first" >&2; exit 1; }
kib() { echo "$(( ($(stat -c %s "$1") + 1023) / 1024 )) KiB"; }

echo "== guest kernel (linux-source-6.1 $(dpkg-query -W -f='${Version}' linux-source-6.1), tinyconfig + kernel/config.fragment)"
printf '%-34s %s\n' "vmlinux (ELF, unstripped)" "$(kib "$vmlinux")"
printf '%-34s %s\n' "flat image (in libkrunfw.so.5)" "$(kib "$BUILD/kernel/vmlinux.bin")"
[ -f "$BUILD/libkrunfw.so.5" ] && printf '%-34s %s\n' "libkrunfw.so.5" "$(kib "$BUILD/libkrunfw.so.5")"
entry=$(kernel/build.sh --entry)
if [ -n "$entry" ] && [ -f "$entry/build-seconds" ]; then
	printf '%-34s %s s on %s cores, wall time incl. machine load (cache entry %s)\n' "cold build time" \
		"$(cat "$entry/build-seconds")" "$(nproc)" "$(basename "$entry")"
else
	printf '%-34s %s\n' "cold build time" "unknown: no cache entry for the current key ($entry)"
fi

missing=$(kt_missing)
if [ -n "$missing" ]; then
	echo "boot timing skipped: $missing"
	exit 0
fi
kt_initramfs "$KT_TMP/initramfs.cpio"
kt_qemu_base "$vmlinux"
# Milliseconds from QEMU's start until the initramfs /init prints its first line.
one_boot() {
	local log=$KT_TMP/boot.log start now
	: > "$log"
	start=$(date +%s%N)
	"${KT_CMD[@]}" -initrd "$KT_TMP/initramfs.cpio" -append "console=ttyS0 quiet panic=-1 reboot=t" \
		> "$log" 2>&1 < /dev/null &
	qpid=$!
	while ! grep -q "KRUN-KERNEL-TEST: start" "$log"; do
		now=$(date +%s%N)
		if [ $(( (now - start) / 1000000 )) -gt 60000 ] || ! kill -0 "$qpid" 2>/dev/null; then
			kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=""
			echo "FAILED"; return
		fi
		sleep 0.005
	done
	now=$(date +%s%N)
	wait "$qpid" 2>/dev/null
	qpid=""
	echo $(( (now - start) / 1000000 ))
}
times=()
for _ in $(seq $runs); do times+=("$(one_boot)"); done
if printf '%s\n' "${times[@]}" | grep -q FAILED; then
	echo "QEMU TCG boot to /init: a run failed (${times[*]})"
	exit 1
fi
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
printf '%-34s %s ms (runs: %s ms)\n' "QEMU TCG start -> /init output" "$median" "${times[*]}"
echo "note: TCG emulates the CPU (-smp 2, -m 128, microvm); hardware-KVM boot figures need a KVM host"
echo "      (this machine's /dev/kvm is PVM, which cannot run a Linux guest: see PLATFORM.md)."
