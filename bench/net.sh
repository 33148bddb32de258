#!/bin/bash
# Guest networking, each figure next to peers measured in the same invocation, with one tool
# (tests/e2e/net_tool.c, static) on both ends: one TCP stream each way (MiB/s, checksummed)
# and sequential connections (connect, one-byte echo, close: connections/s),
#  - guest -> host: a guest program connects to a server on the host's 127.0.0.1;
#  - host -> guest: a host client connects to a forwarded host port, the server in the guest.
# Peers:
#  (a) QEMU TCG: tcg_vm (TSI: the guest's connect() proxied over virtio-vsock; `-p` for the
#      port map) vs QEMU's user networking (slirp: virtio-net-device on the same microvm, kernel
#      and CPU; guest -> host to 10.0.2.2, host -> guest through hostfwd) vs the host's loopback.
#  (b) hardware KVM: chroot_vm vs slirp under -accel kvm vs the loopback (only with hardware KVM).
# The QEMU peers boot the bench kernel (kernel/config.bench.fragment: the product's options plus
# virtio-net, built and cached on first use; KRUN_VMLINUX overrides it), since the product kernel
# has no virtio-net. Under TCG tcg_vm boots it too, so one kernel serves every column and only the
# networking machinery differs; chroot_vm (KVM) always boots the product kernel of libkrunfw.
# Usage: bench/net.sh [--quick] [tcg|kvm]...   (after `make`)
# Environment: NET_MIB (100: stream size in a guest), NET_HOST_MIB (1024: on the loopback),
# NET_RATE_S (3: seconds of connections), NET_REPEAT (3: medians of that many runs); --quick:
# 16 MiB, 1 s, 1 run.
set -eu
cd "$(dirname "$0")/.."
BENCH_TMP=$(mktemp -d /tmp/krun-bench-net.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
	wait 2> /dev/null || true
	rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
. bench/lib.sh

MIB=${NET_MIB:-100} HOST_MIB=${NET_HOST_MIB:-1024} RATE_S=${NET_RATE_S:-3} REPEAT=${NET_REPEAT:-3}
PARTS=()
for a in "$@"; do
	case $a in
	--quick) MIB=16 HOST_MIB=128 RATE_S=1 REPEAT=1 ;;
	tcg | kvm) PARTS+=("$a") ;;
	*) echo "usage: $0 [--quick] [tcg|kvm]..." >&2; exit 2 ;;
	esac
done
[ ${#PARTS[@]} -gt 0 ] || PARTS=(tcg kvm)
VMLINUX=${KRUN_VMLINUX:-$PWD/$BUILD/vmlinux}
GUEST_PORT=8000
QEMU_APPEND="console=ttyS0 quiet panic=-1 reboot=t no_timer_check tsc=reliable"

fail() { echo "FAILED: $*" >&2; exit 1; }
row() { printf '%-36s %10s %10s %10s %10s %10s\n' "$@"; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- the tool, the roots, the host server
NT=$BENCH_TMP/net_tool
cc -std=c11 -O2 -Wall -Wextra -Werror tests/e2e/net_tool.c -o "$NT" -lpthread || fail "cannot build net_tool (cc)"
GUEST_CC=$(command -v musl-gcc || echo gcc)
prepare_root() {
	[ -x "$BENCH_TMP/root/bin/net_tool" ] && return
	bb_root "$BENCH_TMP/root"
	"$GUEST_CC" -std=c11 -O2 -static -Wall -Wextra -Werror tests/e2e/net_tool.c -o "$BENCH_TMP/root/bin/net_tool" \
		-lpthread || fail "cannot build a static net_tool ($GUEST_CC)"
}
HP=$(free_port)
"$NT" server 127.0.0.1 "$HP" > "$BENCH_TMP/server.log" 2>&1 &
PIDS+=($!)
"$NT" wait 127.0.0.1 "$HP" 10 > /dev/null || fail "the host server did not start: $(cat "$BENCH_TMP/server.log")"

# The figures of net_tool lines in FILE: "send", "recv" (MiB/s) or "rate" (connections/s).
figures() {
	tr -d '\r' < "$2" | awk -v k="$1" '$1 == "OK" && $2 == k { for (i = 3; i < NF; i++) if ($i == "=") print $(i + 1) }'
}
# med KIND FILE: the median of those figures, or "-".
med() {
	local v
	mapfile -t v < <(figures "$1" "$2")
	median "${v[@]}"
}
# check FILE N WHAT: FILE holds N OK lines of each kind, or the run failed.
check() {
	local k n
	for k in send recv rate; do
		n=$(figures "$k" "$1" | wc -l)
		[ "$n" = "$2" ] || fail "$3: $n '$k' results of $2: $(tr -d '\r' < "$1" | grep -v '^OK' | tail -n 5 | tr '\n' ' ')"
	done
}
# The host client's loop (host -> guest, and the loopback peer).
host_clients() {
	local port=$1 mib=$2 _
	for _ in $(seq "$REPEAT"); do
		"$NT" send 127.0.0.1 "$port" "$mib"
		"$NT" recv 127.0.0.1 "$port" "$mib"
		"$NT" rate 127.0.0.1 "$port" "$RATE_S"
	done
}
GUEST_LOOP="for i in \$(seq $REPEAT); do net_tool send \$H \$P $MIB; net_tool recv \$H \$P $MIB; net_tool rate \$H \$P $RATE_S; done"

# ---- loopback: the same client and server on the host, once for both parts
loopback() {
	[ -f "$BENCH_TMP/lo.out" ] && return
	host_clients "$HP" "$HOST_MIB" > "$BENCH_TMP/lo.out" 2> "$BENCH_TMP/lo.err" || true
	check "$BENCH_TMP/lo.out" "$REPEAT" "host loopback"
}

# ---- ours: RUNNER -> $BENCH_TMP/RUNNER.out (guest -> host) and .in (host -> guest)
tsi_runs() {
	local r=$1 vm status=0 gp
	prepare_root
	env KRUN_VMLINUX="$VMLINUX" "$BUILD/$r" -c 1 -m 512 "$BENCH_TMP/root" /bin/sh -c "H=127.0.0.1 P=$HP; $GUEST_LOOP" \
		< /dev/null > "$BENCH_TMP/$r.out" 2> "$BENCH_TMP/$r.err" || status=$?
	[ "$status" = 0 ] || fail "$r guest -> host: exit status $status: $(tail -n 5 "$BENCH_TMP/$r.out" "$BENCH_TMP/$r.err" | tr '\n' ' ')"
	check "$BENCH_TMP/$r.out" "$REPEAT" "$r guest -> host"
	gp=$(free_port)
	env KRUN_VMLINUX="$VMLINUX" "$BUILD/$r" -c 1 -m 512 -p "$gp:$GUEST_PORT" "$BENCH_TMP/root" \
		/bin/net_tool server 127.0.0.1 "$GUEST_PORT" < /dev/null > "$BENCH_TMP/$r.vm" 2>&1 &
	vm=$!
	PIDS+=("$vm")
	"$NT" wait 127.0.0.1 "$gp" 120 > /dev/null || fail "$r host -> guest: the guest server never answered: $(tail -n 5 "$BENCH_TMP/$r.vm" | tr '\n' ' ')"
	host_clients "$gp" "$MIB" > "$BENCH_TMP/$r.in" 2> "$BENCH_TMP/$r.in.err" || true
	"$NT" quit 127.0.0.1 "$gp" > /dev/null || kill "$vm" 2> /dev/null || true
	wait "$vm" || true
	check "$BENCH_TMP/$r.in" "$REPEAT" "$r host -> guest"
}

# ---- slirp: why not, or nothing
slirp_missing() {
	local c=$VMLINUX.config
	[ -r "$c" ] || c=$BUILD/vmlinux.config
	[ -r "$c" ] || { echo "no kernel config next to $VMLINUX"; return; }
	if ! grep -q '^CONFIG_NETDEVICES=y' "$c" || ! grep -q '^CONFIG_VIRTIO_NET=y' "$c"; then
		echo "the guest kernel has no virtio-net ($(basename "$c"): $(grep -E '^(# )?CONFIG_(NETDEVICES|VIRTIO_NET)[= ]' "$c" | tr '\n' ' ' | sed 's/ $//')); it needs CONFIG_NETDEVICES=y and CONFIG_VIRTIO_NET=y for -netdev user,id=n0,hostfwd=tcp:127.0.0.1:HP-:$GUEST_PORT -device virtio-net-device,netdev=n0"
		return
	fi
	"$BENCH_QEMU" -netdev help 2> /dev/null | grep -qx user || { echo "$BENCH_QEMU has no user networking (libslirp)"; return; }
	qemu_missing
}
# An initramfs whose /init brings eth0 up (slirp's 10.0.2.15/24, host at 10.0.2.2), then runs
# the guest loop (netb=out) or the server (netb=in), then powers off.
prepare_slirp_initramfs() {
	[ -f "$BENCH_TMP/slirp.cpio" ] && return
	prepare_root
	bb_root "$BENCH_TMP/initramfs"
	cp "$BENCH_TMP/root/bin/net_tool" "$BENCH_TMP/initramfs/bin/"
	cat > "$BENCH_TMP/initramfs/init" <<-EOF
	#!/bin/sh
	mount -t proc proc /proc
	ip link set lo up && ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
		ip route add default via 10.0.2.2 || echo "BENCH-NET: no eth0"
	H=10.0.2.2
	P=\$(sed -n 's/.*netb_port=\([0-9]*\).*/\1/p' /proc/cmdline)
	case \$(cat /proc/cmdline) in
	*netb=out*) $GUEST_LOOP ;;
	*netb=in*) net_tool server 0.0.0.0 $GUEST_PORT ;;
	esac
	echo BENCH-NET-DONE
	exec /bin/busybox reboot -f
	EOF
	chmod 0755 "$BENCH_TMP/initramfs/init"
	initramfs "$BENCH_TMP/initramfs" "$BENCH_TMP/slirp.cpio"
}
# slirp_runs ACCEL: -> $BENCH_TMP/slirp-ACCEL.out and .in, like tsi_runs.
slirp_runs() {
	local a=$1 vm gp
	prepare_slirp_initramfs
	qemu_microvm "$a" 1 512 "$VMLINUX"
	gp=$(free_port)
	"${QEMU_CMD[@]}" -netdev user,id=n0 -device virtio-net-device,netdev=n0 -initrd "$BENCH_TMP/slirp.cpio" \
		-append "$QEMU_APPEND netb=out netb_port=$HP" < /dev/null > "$BENCH_TMP/slirp-$a.out" 2>&1 ||
		fail "slirp ($a) guest -> host: QEMU failed: $(tail -n 5 "$BENCH_TMP/slirp-$a.out" | tr '\n' ' ')"
	check "$BENCH_TMP/slirp-$a.out" "$REPEAT" "slirp ($a) guest -> host"
	"${QEMU_CMD[@]}" -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$gp-:$GUEST_PORT" -device virtio-net-device,netdev=n0 \
		-initrd "$BENCH_TMP/slirp.cpio" -append "$QEMU_APPEND netb=in" < /dev/null > "$BENCH_TMP/slirp-$a.vm" 2>&1 &
	vm=$!
	PIDS+=("$vm")
	"$NT" wait 127.0.0.1 "$gp" 120 > /dev/null || fail "slirp ($a) host -> guest: the guest server never answered: $(tail -n 5 "$BENCH_TMP/slirp-$a.vm" | tr '\n' ' ')"
	host_clients "$gp" "$MIB" > "$BENCH_TMP/slirp-$a.in" 2> "$BENCH_TMP/slirp-$a.in.err" || true
	"$NT" quit 127.0.0.1 "$gp" > /dev/null || kill "$vm" 2> /dev/null || true
	wait "$vm" || true
	check "$BENCH_TMP/slirp-$a.in" "$REPEAT" "slirp ($a) host -> guest"
}

# table OURS_OUT OURS_IN SLIRP_OUT SLIRP_IN (files, or "-" for a skipped column)
table() {
	local o=$1 oi=$2 s=$3 si=$4 lo=$BENCH_TMP/lo.out k label f fin v vs vl
	row "median of $REPEAT" ours slirp loopback ours/slirp ours/lo
	for k in "send:guest -> host, guest sends, MiB/s" "recv:guest -> host, guest receives, MiB/s" \
		"rate:guest -> host, connections/s" "send:host -> guest (-p), host sends" \
		"recv:host -> guest (-p), host receives" "rate:host -> guest (-p), connections/s"; do
		label=${k#*:} k=${k%%:*}
		case $label in host*) f=$oi fin=$si ;; *) f=$o fin=$s ;; esac
		v=$(med "$k" "$f")
		vs=-; [ "$fin" = - ] || vs=$(med "$k" "$fin")
		vl=$(med "$k" "$lo")
		row "$label" "$v" "$vs" "$vl" "$(ratio "$v" "$vs")" "$(ratio "$v" "$vl")"
	done
}

tcg_part() {
	local why slirp=- slirp_in=-
	echo "== (a) QEMU TCG, 1 vCPU, 512 MiB: tcg_vm (TSI) vs QEMU user networking (slirp) vs host loopback"
	echo "   streams: $MIB MiB in a guest, $HOST_MIB MiB on the loopback; connections for ${RATE_S} s; $REPEAT runs"
	why=$(qemu_missing)
	[ -n "$why" ] || [ -x "$BUILD/tcg_vm" ] || why="$BUILD/tcg_vm not built (make)"
	[ -n "$why" ] || use_bench_kernel
	[ -n "$why" ] || [ -r "$VMLINUX" ] || why="no guest kernel $VMLINUX"
	if [ -n "$why" ]; then
		echo "SKIPPED tcg_vm: $why"
		return
	fi
	echo "   guest kernel: $VMLINUX"
	loopback
	tsi_runs tcg_vm
	why=$(slirp_missing)
	if [ -z "$why" ]; then
		slirp_runs tcg
		slirp=$BENCH_TMP/slirp-tcg.out slirp_in=$BENCH_TMP/slirp-tcg.in
	fi
	table "$BENCH_TMP/tcg_vm.out" "$BENCH_TMP/tcg_vm.in" "$slirp" "$slirp_in"
	[ -z "$why" ] || echo "SKIPPED slirp: $why"
	echo "note: ours = net_tool in the guest, its sockets impersonated (TSI: connect() caught by the init,"
	echo "      carried over virtio-vsock to tcg_vm's proxy); -p = krun_set_port_map. Guest figures use"
	echo "      the guest's clock. The guest CPU is emulated: ratios show the machinery, not hardware speed."
}

kvm_part() {
	local why slirp=- slirp_in=-
	echo "== (b) hardware KVM, 1 vCPU, 512 MiB: chroot_vm (TSI) vs QEMU user networking (slirp, -accel kvm) vs host loopback"
	why=$(hw_kvm_missing)
	[ -n "$why" ] || [ -x "$BUILD/chroot_vm" ] || why="$BUILD/chroot_vm not built (make)"
	if [ -n "$why" ]; then
		echo "SKIPPED chroot_vm, slirp -accel kvm: $why"
		return
	fi
	use_bench_kernel
	echo "   guest kernel: slirp $VMLINUX, chroot_vm the product kernel (libkrunfw)"
	loopback
	tsi_runs chroot_vm
	why=$(slirp_missing)
	if [ -z "$why" ]; then
		slirp_runs kvm
		slirp=$BENCH_TMP/slirp-kvm.out slirp_in=$BENCH_TMP/slirp-kvm.in
	fi
	table "$BENCH_TMP/chroot_vm.out" "$BENCH_TMP/chroot_vm.in" "$slirp" "$slirp_in"
	[ -z "$why" ] || echo "SKIPPED slirp: $why"
}

first=1
for p in "${PARTS[@]}"; do
	[ $first = 1 ] || echo
	first=0
	"${p}_part"
done
