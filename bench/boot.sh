#!/bin/bash
# Boot cost, each figure next to a peer measured in the same invocation:
#  (a) hardware KVM only: `chroot_vm ROOT /bin/true` versus QEMU microvm (-accel kvm) booting the
#      same vmlinux with an initramfs whose /init runs /bin/true: median wall time, peak RSS.
#  (b) /dev/kvm (also PVM): the VMM's own share with the freestanding test guest (tests/guest):
#      process start, VM creation, first guest instruction, whole run; next to /bin/true.
#  (c) QEMU TCG: `tcg_vm ROOT /bin/true` versus QEMU microvm TCG with the same kernel and an
#      initramfs running /bin/true: median wall time and peak memory of the whole process tree.
# Usage: bench/boot.sh [--quick]   (after `make` and `make tests`; BUILD=dir for another build)
# Environment: RUNS_KVM (20), RUNS_GUEST (20), RUNS_TCG (10); --quick sets 3/5/2.
set -eu
cd "$(dirname "$0")/.."
BENCH_TMP=$(mktemp -d /tmp/krun-bench-boot.XXXXXX)
trap 'rm -rf "$BENCH_TMP"' EXIT
. bench/lib.sh

RUNS_KVM=${RUNS_KVM:-20} RUNS_GUEST=${RUNS_GUEST:-20} RUNS_TCG=${RUNS_TCG:-10}
if [ "${1:-}" = --quick ]; then RUNS_KVM=3 RUNS_GUEST=5 RUNS_TCG=2; fi
CPUS=1 MIB=512                 # chroot_vm/tcg_vm defaults; the QEMU peers get the same
VMLINUX=${KRUN_VMLINUX:-$PWD/$BUILD/vmlinux}
HOST=$BUILD/tests/guest/host
GUEST=$BUILD/tests/guest/guest.elf

row() { printf '%-40s %10s %10s %10s  %s\n' "$@"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

# A busybox root for the runners and an initramfs for QEMU whose /init runs /bin/true, then
# reboots (reboot=t + -no-reboot: QEMU exits).
prepare_images() {
	[ -f "$BENCH_TMP/initramfs.cpio" ] && return
	bb_root "$BENCH_TMP/root"
	bb_root "$BENCH_TMP/initramfs"
	cat > "$BENCH_TMP/initramfs/init" <<-'EOF'
	#!/bin/sh
	/bin/true
	echo BENCH-BOOT-DONE
	exec /bin/busybox reboot -f
	EOF
	chmod 0755 "$BENCH_TMP/initramfs/init"
	initramfs "$BENCH_TMP/initramfs" "$BENCH_TMP/initramfs.cpio"
}
QEMU_APPEND="console=ttyS0 quiet panic=-1 reboot=t no_timer_check tsc=reliable"

# bench_pair TITLE RUNS: runs ours_cmd and peer_cmd alternately RUNS times; prints the medians.
bench_pair() {
	local title=$1 runs=$2 i ms_o=() rss_o=() pss_o=() cpu_o=() ms_p=() rss_p=() pss_p=() cpu_p=()
	for i in $(seq "$runs"); do
		measure "$BENCH_TMP/o.out" "$BENCH_TMP/o.err" "${OURS[@]}"
		[ "$M_RC" = 0 ] || fail "$title, ours (${OURS[0]}): exit status $M_RC: $(tail -n 5 "$BENCH_TMP/o.err" | tr '\n' ' ')"
		ms_o+=("$M_MS") rss_o+=("$M_RSS") pss_o+=("$M_PSS") cpu_o+=("$M_CPU")
		measure "$BENCH_TMP/p.out" "$BENCH_TMP/p.err" "${PEER[@]}"
		{ [ "$M_RC" = 0 ] && grep -q BENCH-BOOT-DONE "$BENCH_TMP/p.out"; } ||
			fail "$title, QEMU peer: exit status $M_RC, no /init output: $(tail -n 5 "$BENCH_TMP/p.out" "$BENCH_TMP/p.err" | tr '\n' ' ')"
		ms_p+=("$M_MS") rss_p+=("$M_RSS") pss_p+=("$M_PSS") cpu_p+=("$M_CPU")
	done
	local mo mp ro rp po pp co cp
	co=$(median "${cpu_o[@]}") cp=$(median "${cpu_p[@]}")
	mo=$(median "${ms_o[@]}") mp=$(median "${ms_p[@]}")
	ro=$(median "${rss_o[@]}") rp=$(median "${rss_p[@]}")
	po=$(median "${pss_o[@]}") pp=$(median "${pss_p[@]}")
	row "" "ours" "QEMU" "ours/QEMU"
	row "wall time, ms (median of $runs)" "$(fmt "$mo" 0)" "$(fmt "$mp" 0)" "$(ratio "$mo" "$mp")"
	row "CPU time, ms (user + system, tree)" "$(fmt "$co" 0)" "$(fmt "$cp" 0)" "$(ratio "$co" "$cp")"
	row "peak RSS, KiB (process tree)" "$(fmt "$ro" 0)" "$(fmt "$rp" 0)" "$(ratio "$ro" "$rp")"
	[ "$po" = 0 ] || row "peak PSS, KiB (process tree, sampled)" "$(fmt "$po" 0)" "$(fmt "$pp" 0)" "$(ratio "$po" "$pp")"
	echo "wall times, ms: ours ${ms_o[*]}; QEMU ${ms_p[*]}" | sed 's/\.[0-9]*//g'
}

# ---- (a) hardware KVM: chroot_vm versus QEMU microvm -accel kvm
echo "== (a) boot to /bin/true on hardware KVM: chroot_vm vs QEMU microvm (-accel kvm), $CPUS vCPU, $MIB MiB"
why=$(hw_kvm_missing)
[ -n "$why" ] || [ -x "$BUILD/chroot_vm" ] || why="$BUILD/chroot_vm not built (make)"
[ -n "$why" ] || why=$(qemu_missing)
if [ -n "$why" ]; then
	echo "SKIPPED chroot_vm wall time, peak RSS: $why"
	echo "SKIPPED QEMU microvm -accel kvm wall time, peak RSS: $why"
else
	prepare_images
	OURS=("$BUILD/chroot_vm" -c "$CPUS" -m "$MIB" "$BENCH_TMP/root" /bin/true)
	qemu_microvm kvm "$CPUS" "$MIB" "$VMLINUX"
	PEER=("${QEMU_CMD[@]}" -initrd "$BENCH_TMP/initramfs.cpio" -append "$QEMU_APPEND")
	BENCH_SAMPLE_MS=0 bench_pair "KVM boot" "$RUNS_KVM"
fi
echo

# ---- (b) the VMM's own costs with the test guest on /dev/kvm
echo "== (b) VMM share with the test guest on /dev/kvm$([ -d /sys/module/kvm_pvm ] && echo " (PVM: guest code runs in KVM's emulator)"), 1 vCPU, 64 MiB"
if [ ! -w /dev/kvm ]; then
	echo "SKIPPED: no usable /dev/kvm"
elif [ ! -x "$HOST" ] || [ ! -f "$GUEST" ]; then
	echo "SKIPPED: $HOST or $GUEST not built (make tests)"
else
	wall=() total=() first=() created=() ready=() outside=() start_first=() rss=() tw=() trss=()
	for i in $(seq "$RUNS_GUEST"); do
		BENCH_SAMPLE_MS=0 measure "$BENCH_TMP/g.out" "$BENCH_TMP/g.err" "$HOST" --kernel "$GUEST" \
			--ram 64 --cmdline "t.ram=64 t.cpus=1 t.scenario=boot" --log 4
		grep -q "^guest: done, status 0" "$BENCH_TMP/g.out" && [ "$M_RC" = 0 ] ||
			fail "test guest: exit status $M_RC: $(tail -n 3 "$BENCH_TMP/g.err" | tr '\n' ' ')"
		# host: vmm_run=0 (ok) status=0 first-instruction=5419us total=37.0ms
		read -r c r f t < <(awk '/RAM created in/ { c = $(NF-1) } /vCPUs ready after/ { r = $(NF-1) }
			/first-instruction=/ { for (i = 1; i <= NF; i++) { if ($i ~ /^first-instruction=/) { f = $i; sub(/.*=/, "", f); sub(/us/, "", f) }
				if ($i ~ /^total=/) { t = $i; sub(/.*=/, "", t); sub(/ms/, "", t) } } }
			END { print c, r, f, t * 1000 }' "$BENCH_TMP/g.err")
		wall+=("$M_MS") rss+=("$M_RSS") created+=("$c") ready+=("$r") first+=("$f") total+=("$t")
		outside+=("$(awk -v w="$M_MS" -v t="$t" 'BEGIN { printf "%.3f", w - t / 1000 }')")
		start_first+=("$(awk -v w="$M_MS" -v t="$t" -v f="$f" 'BEGIN { printf "%.3f", w - t / 1000 + f / 1000 }')")
		BENCH_SAMPLE_MS=0 measure "$BENCH_TMP/t.out" "$BENCH_TMP/t.err" /bin/true
		tw+=("$M_MS") trss+=("$M_RSS")
	done
	tmed=$(median "${tw[@]}")
	us() { awk -v a="$1" 'BEGIN { printf "%.0f", a * 1000 }'; }
	row "median of $RUNS_GUEST, microseconds" "test guest" "/bin/true" "ratio"
	row "process wall time (spawn to exit)" "$(us "$(median "${wall[@]}")")" "$(us "$tmed")" "$(ratio "$(median "${wall[@]}")" "$tmed")"
	row "  outside vmm_run (exec, setup, exit)" "$(us "$(median "${outside[@]}")")" "$(us "$tmed")" "$(ratio "$(median "${outside[@]}")" "$tmed")"
	row "  vmm_run: VM + guest RAM created" "$(fmt "$(median "${created[@]}")" 0)" "" ""
	row "  vmm_run: devices, kernel, vCPUs ready" "$(fmt "$(median "${ready[@]}")" 0)" "" ""
	row "  vmm_run: first guest instruction" "$(fmt "$(median "${first[@]}")" 0)" "" "" "(port 0xf5 mark)"
	row "  vmm_run: whole (guest run, teardown)" "$(fmt "$(median "${total[@]}")" 0)" "" ""
	row "process start -> first instruction" "$(us "$(median "${start_first[@]}")")" "" "" "(upper bound: wall - vmm_run + first)"
	row "peak RSS, KiB" "$(fmt "$(median "${rss[@]}")" 0)" "$(fmt "$(median "${trss[@]}")" 0)" "$(ratio "$(median "${rss[@]}")" "$(median "${trss[@]}")")"
fi
echo

# ---- (c) QEMU TCG: tcg_vm versus QEMU microvm with an initramfs
echo "== (c) boot to /bin/true under QEMU TCG: tcg_vm vs QEMU microvm + initramfs, $CPUS vCPU, $MIB MiB"
why=$(qemu_missing)
[ -n "$why" ] || [ -x "$BUILD/tcg_vm" ] || why="$BUILD/tcg_vm not built (make)"
[ -n "$why" ] || [ -r "$VMLINUX" ] || why="no guest kernel $VMLINUX"
if [ -n "$why" ]; then
	echo "SKIPPED: $why"
else
	prepare_images
	OURS=(env KRUN_VMLINUX="$VMLINUX" "$BUILD/tcg_vm" -c "$CPUS" -m "$MIB" "$BENCH_TMP/root" /bin/true)
	qemu_microvm tcg "$CPUS" "$MIB" "$VMLINUX"
	PEER=("${QEMU_CMD[@]}" -initrd "$BENCH_TMP/initramfs.cpio" -append "$QEMU_APPEND")
	bench_pair "TCG boot" "$RUNS_TCG"
	echo "note: ours = tcg_vm (QEMU + our virtio-fs root and console backends over vhost-user, the"
	echo "      guest init); peer = QEMU alone with the root in an initramfs. Same kernel, CPU model, RAM."
fi
