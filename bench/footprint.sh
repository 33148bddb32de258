#!/bin/bash
# Host footprint, each figure next to QEMU microvm measured in the same invocation:
#  (a) /dev/kvm (also PVM): our VMM with the freestanding test guest halted: RSS/PSS before and
#      after it reports touched memory free through our virtio-balloon, CPU time while idle;
#      peer: QEMU microvm (TCG) firmware with the same RAM.
#  (b) a Linux guest under QEMU TCG (PVM cannot run one): tcg_vm (QEMU + our backends over
#      vhost-user; the guest RAM lives in QEMU there, a memfd our backends map too) next to QEMU
#      microvm TCG with the same kernel, RAM, virtio-balloon (free-page-reporting=on) and an
#      initramfs whose /init is the same static program (tests/e2e/balloon_alloc.c): idle PSS
#      after boot (split into guest RAM and the rest), PSS after the guest allocates + frees
#      ALLOC_MIB (1 s and 10 s later), CPU time over IDLE_CPU_S of idleness (median of IDLE_VMS
#      VMs side by side), PAR_N idle 128 MiB VMs started at once.
# Usage: bench/footprint.sh [--quick]   (after `make` and `make tests`; BUILD=dir for another build)
# Environment: RAM (128), TOUCH (64), IDLE_S (10) for (a); LINUX_RAM (128), ALLOC_MIB (1024),
# ALLOC_RAM (1280), IDLE_CPU_S (60; --quick 20), IDLE_VMS (3), PAR_N (8), PAR_TIMEOUT_S (600) for (b).
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 2
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
HOST=$BUILD/tests/guest/host
GUEST=$BUILD/tests/guest/guest.elf
RAM=${RAM:-128}          # MiB of guest RAM, ours and QEMU's
TOUCH=${TOUCH:-64}       # MiB the guest writes (one store per page) before going idle
IDLE_S=${IDLE_S:-10}     # CPU-time window
TICK=$(getconf CLK_TCK)
tmp=$(mktemp -d /tmp/krun-bench-footprint.XXXXXX)
pid=""
vms=()
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2> /dev/null
	for p in "${vms[@]}"; do kill "$p" 2> /dev/null; done
	wait 2> /dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
BENCH_TMP=$tmp
. bench/lib.sh


# "RSS PSS PSS_SHMEM" in KiB for a process.
mem_of() {
	awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Pss_Shmem:/ { s = $2 } END { print r + 0, p + 0, s + 0 }' \
		"/proc/$1/smaps_rollup"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# CPU time of a process (all its threads) in microseconds, from schedstat (nanoseconds: the
# clock ticks of /proc/PID/stat are too coarse for an idle VM's few milliseconds).
own_cpu_us() { cat /proc/"$1"/task/*/schedstat 2> /dev/null | awk '{ s += $1 } END { printf "%d", s / 1000 }'; }
ms1() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }
mib1() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ours NAME CMDLINE WINDOW: run the test guest to its idle halt, then sample; sets rss pss shm cpu_ms.
ours() {
	local name=$1 cmd=$2 window=$3 c0 c1
	"$HOST" --kernel "$GUEST" --ram "$RAM" --balloon --shutdown-after $(( (window + 30) * 1000 )) \
		--cmdline "t.ram=$RAM t.cpus=1 t.scenario=idle $cmd" > "$tmp/out" 2> "$tmp/err" &
	pid=$!
	# Up to 60 s: touching 64 MiB runs in PVM's emulator and slows with the load.
	for _ in $(seq 6000); do grep -q "guest: idle" "$tmp/out" && break; kill -0 "$pid" 2> /dev/null || break; sleep 0.01; done
	if ! grep -q "guest: idle" "$tmp/out" || grep -q "guest: FAIL" "$tmp/out"; then
		echo "FAIL $name: guest did not reach its idle halt: $(tail -n 2 "$tmp/err" | tr '\n' ' ')"
		kill "$pid"; wait "$pid" 2> /dev/null; pid=""; return 1
	fi
	sleep 1
	read -r rss pss shm < <(mem_of "$pid")
	c0=$(own_cpu_us "$pid"); sleep "$window"; c1=$(own_cpu_us "$pid")
	cpu_ms=$(ms1 $((c1 - c0)))
	kill -TERM "$pid"; wait "$pid" 2> /dev/null; pid=""
}

row() { printf '%-44s %8s %8s %10s %s\n' "$@"; }

echo "== (a) idle VM footprint, test guest, $RAM MiB guest RAM, /dev/kvm$([ -d /sys/module/kvm_pvm ] && echo " (PVM)")"
if [ ! -w /dev/kvm ]; then
	echo "SKIP footprint/ours: no usable /dev/kvm"
elif [ ! -x "$HOST" ] || [ ! -f "$GUEST" ]; then
	echo "SKIP footprint/ours: $HOST or $GUEST not built (make tests)"
else
	row "" "RSS KiB" "PSS KiB" "RAM KiB" "(RAM = guest RAM memfd pages resident)"
	ours idle "" "$IDLE_S" || exit 1
	base_rss=$rss base_pss=$pss base_shm=$shm base_cpu=$cpu_ms
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
	echo "ours: VMM overhead beyond guest RAM (idle RSS - resident guest RAM): $(mib1 $((base_rss - base_shm))) MiB" \
		"(target < 5 MiB); after reporting: $(ratio "$rep_rss" "$base_rss")x the idle RSS (target <= 1.10x)"
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
		c0=$(own_cpu_us "$pid"); sleep "$IDLE_S"; c1=$(own_cpu_us "$pid")
		kill -TERM "$pid"; wait "$pid" 2> /dev/null; pid=""
		row "qemu microvm (TCG, firmware idle)" "$qrss" "$qpss" "$qshm"
		echo "qemu: CPU time while idle for $IDLE_S s: $(ms1 $((c1 - c0))) ms"
		[ -n "${base_rss:-}" ] && echo "ratio ours/qemu idle: RSS $(ratio "$base_rss" "$qrss")x, PSS $(ratio "$base_pss" "$qpss")x" \
			"(qemu/ours: RSS $(ratio "$qrss" "$base_rss")x, PSS $(ratio "$qpss" "$base_pss")x)"
	else
		echo "SKIP footprint/qemu: QEMU exited: $(tail -n 1 "$tmp/qerr")"; pid=""
	fi
fi

echo "note: ours = tests/guest/host (the VMM core linked statically, console + balloon devices); the"
echo "      RSS includes the guest RAM the test guest touched (image, page tables, rings)."
echo
# ---- (b) a Linux guest under QEMU TCG
LINUX_RAM=${LINUX_RAM:-128}
ALLOC_MIB=${ALLOC_MIB:-1024}
ALLOC_RAM=${ALLOC_RAM:-1280}
IDLE_CPU_S=${IDLE_CPU_S:-$([ "$QUICK" = 1 ] && echo 20 || echo 60)}
PAR_N=${PAR_N:-8}
IDLE_VMS=${IDLE_VMS:-3}
PAR_TIMEOUT_S=${PAR_TIMEOUT_S:-600}
HOLD_S=12        # the guest program waits this long after its free: the 10 s sample plus slack
VMLINUX=${KRUN_VMLINUX:-$PWD/$BUILD/vmlinux}
QEMU_APPEND="console=ttyS0 quiet panic=-1 reboot=t no_timer_check tsc=reliable"
BALLOON_DEV=virtio-balloon-device,free-page-reporting=on
GUEST_TSC=""     # " tsc_early_khz=N" as tcg_vm passed it, for the QEMU peer

# Pids of a process and all its descendants.
tree_pids() {
	local p
	echo "$1"
	for p in $(pgrep -P "$1"); do tree_pids "$p"; done
}
# "RSS PSS" in KiB summed over a process tree (PSS counts shared guest RAM once).
tree_mem() {
	local p r s rs=0 ps=0
	for p in $(tree_pids "$1"); do
		read -r r s _ < <(mem_of "$p" 2> /dev/null) || continue
		rs=$((rs + r)) ps=$((ps + s))
	done
	echo "$rs $ps"
}
# CPU time of a process tree in microseconds (own_cpu_us of each).
tree_cpu_us() {
	local p n=0
	for p in $(tree_pids "$1"); do n=$((n + $(own_cpu_us "$p"))); done
	echo "$n"
}
tree_ticks() {
	local p t n=0
	for p in $(tree_pids "$1"); do
		t=$(cpu_ticks "$p" 2> /dev/null) && n=$((n + t))
	done
	echo "$n"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
# guest_ram_pss PID MIB: PSS (KiB) of the guest RAM over a process tree: QEMU's memfd backend
# (ours: QEMU and our backends map it, PSS splits it between them) or its anonymous RAM block
# (the peer: the one mapping exactly MIB long).
guest_ram_pss() {
	local p s n=0
	for p in $(tree_pids "$1"); do
		s=$(awk -v ram=$(($2 * 1024)) '/^[0-9a-f]+-[0-9a-f]+ / { ok = ($6 ~ /memory-backend/); anon = (NF < 6) }
			/^Size:/ { if (anon && $2 == ram) ok = 1 } /^Pss:/ { if (ok) t += $2 } END { print t + 0 }' \
			"/proc/$p/smaps" 2> /dev/null) && n=$((n + s))
	done
	echo "$n"
}
# PSS (KiB) of the top process alone: tcg_vm itself (our vhost-user backends and stdio proxy),
# not its QEMU.
own_pss() { awk '/^Pss:/ { print $2 + 0 }' "/proc/$1/smaps_rollup" 2> /dev/null || echo 0; }

# wait_ready FILE WHAT SECONDS PID: until the guest program printed "alloc: WHAT".
wait_ready() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q "alloc: $2" "$1" 2> /dev/null && return 0
		grep -qE "alloc: (error|FAIL)" "$1" 2> /dev/null && return 1
		kill -0 "$4" 2> /dev/null || return 1
		sleep 0.1
	done
	return 1
}

# start_vm KIND MIB OUT ARGS...: one VM running balloon_alloc ARGS in the background; sets pid.
# ours: tcg_vm with the program in a virtio-fs root. qemu: microvm + initramfs, same devices
# minus ours (console on the serial port), the program as /init (arguments as balloc=A,B,C).
start_vm() {
	local kind=$1 mib=$2 out=$3
	shift 3
	: > "$out"
	if [ "$kind" = ours ]; then
		KRUN_VMLINUX=$VMLINUX "$BUILD/tcg_vm" -c 1 -m "$mib" "$tmp/aroot" /balloon_alloc "$@" \
			< /dev/null > "$out" 2> "$out.err" &
	else
		qemu_microvm tcg 1 "$mib" "$VMLINUX"
		# The guest clock tcg_vm sets up (see its tcg_vm_clock.c): same timer behaviour on both.
		[ -n "$GUEST_TSC" ] && QEMU_CMD=("${QEMU_CMD[@]/rtc=off/rtc=on}")
		# The serial port into a file, as tcg_vm's QEMU writes its log: a stdio chardev on
		# /dev/null costs QEMU's main loop ~1% of a CPU while idle.
		QEMU_CMD=("${QEMU_CMD[@]/#stdio/file:$out}")
		"${QEMU_CMD[@]}" -device "$BALLOON_DEV" -initrd "$tmp/alloc.cpio" \
			-append "$QEMU_APPEND$GUEST_TSC balloc=$(IFS=,; echo "$*")" < /dev/null > "$out.qemu" 2> "$out.err" &
	fi
	pid=$!
}
stop_vm() { kill -TERM "$1" 2> /dev/null; wait "$1" 2> /dev/null; }

# linux_idle KIND: memory of one idle VM alone (idle_rss idle_pss idle_ram idle_own, its tree);
# then IDLE_VMS-1 more of the same kind join it (one after the other), and once all are settled
# the CPU time of each tree over IDLE_CPU_S: idle_cpu_ms is the median, idle_cpu_list all of
# them. Several, because a guest that loses the APIC timer at boot (see bench/README.md) idles
# on the PIT at ~40 wakeups/s.
linux_idle() {
	local kind=$1 i p c0=() c1=() o0=() o1=() cpus=() owns=()
	vms=()
	start_vm "$kind" "$LINUX_RAM" "$tmp/$kind.idle0" idle
	vms+=("$pid")
	wait_ready "$tmp/$kind.idle0" ready 300 "$pid" || { echo "FAIL footprint/linux/$kind: the guest program never started: $(tail -n 3 "$tmp/$kind.idle0" "$tmp/$kind.idle0.err" | tr '\n' ' ')"; return 1; }
	sleep 3
	[ "$kind" = ours ] && GUEST_TSC=$(tree_pids "$pid" | while read -r p; do tr '\0' '\n' < "/proc/$p/cmdline"; done 2> /dev/null |
		grep -o ' tsc_early_khz=[0-9]*' | head -n 1)
	read -r idle_rss idle_pss < <(tree_mem "$pid")
	idle_ram=$(guest_ram_pss "$pid" "$LINUX_RAM")
	idle_own=$(own_pss "$pid")
	# One after the other: boots that compete for the CPU make the APIC timer check fail more.
	for ((i = 1; i < IDLE_VMS; i++)); do
		start_vm "$kind" "$LINUX_RAM" "$tmp/$kind.idle$i" idle
		vms+=("$pid")
		wait_ready "$tmp/$kind.idle$i" ready 300 "$pid" || { echo "FAIL footprint/linux/$kind: idle VM $i never started"; return 1; }
	done
	pid=""
	sleep 6         # boot-time free page reporting and the init's last steps settle in ~6 s
	for i in "${!vms[@]}"; do c0[i]=$(tree_cpu_us "${vms[$i]}"); o0[i]=$(own_cpu_us "${vms[$i]}"); done
	sleep "$IDLE_CPU_S"
	for i in "${!vms[@]}"; do c1[i]=$(tree_cpu_us "${vms[$i]}"); o1[i]=$(own_cpu_us "${vms[$i]}"); done
	for i in "${!vms[@]}"; do
		cpus+=("$(ms1 $((c1[i] - c0[i])))")
		owns+=("$(ms1 $((o1[i] - o0[i])))")
	done
	idle_cpu_ms=$(median "${cpus[@]}") idle_own_cpu_ms=$(median "${owns[@]}") idle_cpu_list=${cpus[*]}
	for p in "${vms[@]}"; do kill -TERM "$p" 2> /dev/null; done
	for p in "${vms[@]}"; do wait "$p" 2> /dev/null; done
	vms=()
}

# linux_alloc KIND: tree "RSS PSS" at idle, after the fill, 1 s and 10 s after the free.
linux_alloc() {
	local out=$tmp/$1.alloc t0
	start_vm "$1" "$ALLOC_RAM" "$out" cycle "$ALLOC_MIB" "$HOLD_S"
	wait_ready "$out" ready 300 "$pid" || { echo "FAIL footprint/linux/$1 alloc: no start: $(tail -n 3 "$out" "$out.err" | tr '\n' ' ')"; stop_vm "$pid"; pid=""; return 1; }
	sleep 1
	read -r _ a_idle_pss < <(tree_mem "$pid")
	wait_ready "$out" touched 600 "$pid" || { echo "FAIL footprint/linux/$1 alloc: no fill: $(tail -n 3 "$out" | tr '\n' ' ')"; stop_vm "$pid"; pid=""; return 1; }
	read -r _ a_peak_pss < <(tree_mem "$pid")
	wait_ready "$out" freed 60 "$pid" || { echo "FAIL footprint/linux/$1 alloc: no free"; stop_vm "$pid"; pid=""; return 1; }
	t0=$(date +%s.%N)
	sleep 1
	read -r _ a_1s_pss < <(tree_mem "$pid")
	sleep "$(awk -v t0="$t0" -v now="$(date +%s.%N)" 'BEGIN { d = 10 - (now - t0); printf "%.2f\n", (d > 0 ? d : 0) }')"
	read -r _ a_10s_pss < <(tree_mem "$pid")
	if wait_ready "$out" PASS 120 "$pid"; then a_verdict="guest data verified"
	else a_verdict="GUEST CHECK FAILED: $(grep -E 'alloc: (FAIL|error)' "$out" | tr '\n' ' ')"; fi
	stop_vm "$pid"; pid=""
}

# linux_parallel KIND: PAR_N idle VMs started at once; sets par_ok par_s (start of the first to
# "ready" of the last) par_rate (VMs/s) par_pss (sum of their trees' PSS, KiB, once all are up).
linux_parallel() {
	local kind=$1 i t0 t1 done_n left p
	vms=()
	t0=$(date +%s.%N)
	for ((i = 0; i < PAR_N; i++)); do
		start_vm "$kind" 128 "$tmp/$kind.par$i" idle
		vms+=("$pid")
	done
	pid=""
	left=$(( PAR_TIMEOUT_S * 10 ))
	while :; do
		done_n=0
		for ((i = 0; i < PAR_N; i++)); do grep -q "alloc: ready" "$tmp/$kind.par$i" && done_n=$((done_n + 1)); done
		[ "$done_n" -eq "$PAR_N" ] && break
		left=$((left - 1)); [ "$left" -gt 0 ] || break
		sleep 0.1
	done
	t1=$(date +%s.%N)
	par_ok=$done_n
	par_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	par_rate=$(awk -v n="$done_n" -v s="$par_s" 'BEGIN { if (s > 0) printf "%.2f", n / s; else print "-" }')
	par_pss=0 par_ticks=0
	for p in "${vms[@]}"; do
		read -r _ s < <(tree_mem "$p"); par_pss=$((par_pss + s))
		par_ticks=$((par_ticks + $(tree_ticks "$p")))
	done
	par_cpu_s=$(awk -v t="$par_ticks" -v hz="$TICK" 'BEGIN { printf "%.1f", t / hz }')
	for p in "${vms[@]}"; do kill -TERM "$p" 2> /dev/null; done
	for p in "${vms[@]}"; do wait "$p" 2> /dev/null; done
	vms=()
}

lrow() { printf '%-52s %10s %10s %10s\n' "$@"; }

echo "== (b) Linux guest under QEMU TCG (PVM runs no Linux guest): tcg_vm vs QEMU microvm, 1 vCPU"
why=$(qemu_missing)
[ -n "$why" ] || [ -x "$BUILD/tcg_vm" ] || why="$BUILD/tcg_vm not built (make)"
[ -n "$why" ] || [ -r "$VMLINUX" ] || why="no guest kernel $VMLINUX"
[ -n "$why" ] || command -v musl-gcc > /dev/null || why="musl-gcc not installed (apt-get install musl-tools)"
[ -n "$why" ] || "$BENCH_QEMU" -device virtio-balloon-device,help 2> /dev/null | grep -q free-page-reporting ||
	why="QEMU's virtio-balloon-device lacks free-page-reporting"
if [ -z "$why" ]; then
	mkdir -p "$tmp/aroot"/{proc,sys,dev,tmp,run,etc,mnt} "$tmp/initramfs/dev"
	musl-gcc -static -O2 -o "$tmp/aroot/balloon_alloc" tests/e2e/balloon_alloc.c 2> "$tmp/cc.log" ||
		why="balloon_alloc did not build: $(tail -n 2 "$tmp/cc.log" | tr '\n' ' ')"
fi
if [ -n "$why" ]; then
	echo "SKIP footprint/linux: $why"
	exit 0
fi
cp "$tmp/aroot/balloon_alloc" "$tmp/initramfs/init"
initramfs "$tmp/initramfs" "$tmp/alloc.cpio"
grep -q '^CONFIG_PAGE_REPORTING=y' "${VMLINUX%/*}/vmlinux.config" 2> /dev/null ||
	echo "warning: ${VMLINUX%/*}/vmlinux.config does not show CONFIG_PAGE_REPORTING=y: no reporting expected"
echo "kernel $VMLINUX; both VMs: virtio-balloon free-page-reporting=on; the program: tests/e2e/balloon_alloc.c"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (TCG timings scale with it)"

linux_idle ours || exit 1
o_idle_rss=$idle_rss o_idle_pss=$idle_pss o_idle_cpu=$idle_cpu_ms o_idle_ram=$idle_ram
o_idle_own=$idle_own o_idle_own_cpu=$idle_own_cpu_ms o_idle_list=$idle_cpu_list
linux_idle qemu || exit 1
q_idle_rss=$idle_rss q_idle_pss=$idle_pss q_idle_cpu=$idle_cpu_ms q_idle_ram=$idle_ram q_idle_list=$idle_cpu_list
lrow "idle after boot, $LINUX_RAM MiB RAM" "ours" "QEMU" "ours/QEMU"
lrow "  PSS, KiB (process tree)" "$o_idle_pss" "$q_idle_pss" "$(ratio "$o_idle_pss" "$q_idle_pss")"
lrow "    guest RAM resident (PSS), KiB" "$o_idle_ram" "$q_idle_ram" "$(ratio "$o_idle_ram" "$q_idle_ram")"
lrow "    the rest: QEMU, TCG code cache, our backends" "$((o_idle_pss - o_idle_ram))" "$((q_idle_pss - q_idle_ram))" \
	"$(ratio $((o_idle_pss - o_idle_ram)) $((q_idle_pss - q_idle_ram)))"
lrow "    of which tcg_vm itself (our backends), KiB" "$o_idle_own" "-" ""
lrow "  RSS, KiB (process tree; shared RAM counted twice)" "$o_idle_rss" "$q_idle_rss" "$(ratio "$o_idle_rss" "$q_idle_rss")"
lrow "  CPU time over $IDLE_CPU_S s idle, ms (tree, median of $IDLE_VMS)" "$o_idle_cpu" "$q_idle_cpu" "$(ratio "$o_idle_cpu" "$q_idle_cpu")"
lrow "    of which tcg_vm itself (our backends), ms" "$o_idle_own_cpu" "-" ""
echo "idle CPU, each of the $IDLE_VMS VMs side by side, ms: ours $o_idle_list; QEMU $q_idle_list"
echo "memory rows: the first VM, sampled before the others started; guest RAM = the PSS of QEMU's RAM block"
echo "      (ours: a memfd QEMU and our backends map; QEMU: anonymous, transparent huge pages where touched)"

linux_alloc ours || exit 1
o=("$a_idle_pss" "$a_peak_pss" "$a_1s_pss" "$a_10s_pss") o_verdict=$a_verdict
linux_alloc qemu || exit 1
q=("$a_idle_pss" "$a_peak_pss" "$a_1s_pss" "$a_10s_pss") q_verdict=$a_verdict
lrow "guest allocates + frees $ALLOC_MIB MiB, $ALLOC_RAM MiB RAM, PSS MiB" "ours" "QEMU" "ours/QEMU"
lrow "  idle, before the allocation" "$(mib "${o[0]}")" "$(mib "${q[0]}")" "$(ratio "${o[0]}" "${q[0]}")"
lrow "  allocated and touched" "$(mib "${o[1]}")" "$(mib "${q[1]}")" "$(ratio "${o[1]}" "${q[1]}")"
lrow "  1 s after the free" "$(mib "${o[2]}")" "$(mib "${q[2]}")" "$(ratio "${o[2]}" "${q[2]}")"
lrow "  10 s after the free" "$(mib "${o[3]}")" "$(mib "${q[3]}")" "$(ratio "${o[3]}" "${q[3]}")"
echo "returned by free page reporting after 10 s: ours $(mib $(( o[1] - o[3] ))) MiB, QEMU $(mib $(( q[1] - q[3] ))) MiB;" \
	"10 s after / idle: ours $(ratio "${o[3]}" "${o[0]}")x, QEMU $(ratio "${q[3]}" "${q[0]}")x (target <= 1.10x)"
echo "guest program: ours: $o_verdict; QEMU: $q_verdict"
echo "note: Linux 6.1 reports free pages 2 s after the free at the earliest (PAGE_REPORTING_DELAY),"
echo "      then about 256 MiB per 2 s pass (1/16 of a free list + 2 batches of 32 blocks): 1 GiB is back"
echo "      after 8-9 s. \"1 s after\" counts from when the host read the guest's line, so a guest whose"
echo "      line came late may show a first pass there."

linux_parallel ours
o_par=("$par_ok" "$par_s" "$par_rate" "$par_pss" "$par_cpu_s")
linux_parallel qemu
q_par=("$par_ok" "$par_s" "$par_rate" "$par_pss" "$par_cpu_s")
lrow "$PAR_N idle 128 MiB VMs started at once" "ours" "QEMU" "ours/QEMU"
lrow "  reached the program (of $PAR_N)" "${o_par[0]}" "${q_par[0]}" ""
lrow "  seconds until the last one did" "${o_par[1]}" "${q_par[1]}" "$(ratio "${o_par[1]}" "${q_par[1]}")"
lrow "  aggregate starts/s" "${o_par[2]}" "${q_par[2]}" "$(ratio "${o_par[2]}" "${q_par[2]}")"
lrow "  CPU time of all of them until then, s" "${o_par[4]}" "${q_par[4]}" "$(ratio "${o_par[4]}" "${q_par[4]}")"
lrow "  PSS of all of them, MiB" "$(mib "${o_par[3]}")" "$(mib "${q_par[3]}")" "$(ratio "${o_par[3]}" "${q_par[3]}")"
if [ -n "$GUEST_TSC" ]; then
	echo "guest clock, both: the TSC at ${GUEST_TSC#*=} kHz (tsc_early_khz=) and an RTC, as tcg_vm sets it up"
else
	echo "guest clock, both: jiffies (tcg_vm passed no TSC rate)"
fi
echo "note: ours = tcg_vm + its QEMU (the guest RAM lives in QEMU, a memfd shared with our vhost-user"
echo "      backends; console, virtio-fs root, vsock and balloon), the krun init, the program from the"
echo "      virtio-fs root. QEMU = microvm alone, RAM anonymous, serial console, the program as /init"
echo "      of an initramfs. Both guests run on the software CPU: the ratios show what our machinery adds,"
echo "      not what the in-process VMM costs on hardware KVM (see (a) for that). Most of ours' extra guest"
echo "      RAM is receive buffers the guest's drivers allocate at probe, 4 MiB per receive queue (console,"
echo "      3 stdio ports, control, vsock): QEMU's virtio-mmio offers 1024-entry queues (bench/README.md)."
