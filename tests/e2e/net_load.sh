#!/bin/bash
# TSI under load, on the host's loopback, with tests/e2e/net_tool.c on both sides (static in a
# busybox-static root for the guest; a host build for the servers and clients here):
#  - guest -> host: NET_LOAD_CONNS (100) connections open at once to a host server, each
#    echoing a message; one connection streaming NET_LOAD_MIB (100) MiB to the host and one
#    streaming as much from it, with the checksums of both ends compared;
#  - host -> guest through a port map (-p HOST:8000) to a server in the guest:
#    NET_LOAD_PM_CONNS (20) concurrent echo connections and NET_LOAD_PM_MIB (16) MiB each way.
# Under QEMU TCG on this machine 100 MiB takes 1-2 s each way, so the full size is used; the
# whole script takes well under a minute (one boot per guest -> host scenario, one for the map).
# Prints "PASS|FAIL|SKIP e2e/<runner>/net_load/<scenario>" (PASS lines carry the figures).
# Environment: E2E_RUNNERS ("chroot_vm tcg_vm"), E2E_TIMEOUT (seconds per VM, 180),
# KRUN_VMLINUX (tcg_vm kernel), the sizes above.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TIMEOUT=${E2E_TIMEOUT:-180}
RUNNERS=${E2E_RUNNERS:-chroot_vm tcg_vm}
CONNS=${NET_LOAD_CONNS:-100} MIB=${NET_LOAD_MIB:-100}
PM_CONNS=${NET_LOAD_PM_CONNS:-20} PM_MIB=${NET_LOAD_PM_MIB:-16}
BUILD_ABS=$(cd "$BUILD" 2> /dev/null && pwd) || { echo "FAIL e2e/net_load: no build directory $BUILD (run make)"; exit 1; }
export KRUN_VMLINUX=${KRUN_VMLINUX:-$BUILD_ABS/vmlinux}
. tests/e2e/lib.sh

SCENARIOS="guest-echo-$CONNS guest-to-host-${MIB}MiB host-to-guest-${MIB}MiB
	portmap-echo-$PM_CONNS portmap-to-guest-${PM_MIB}MiB portmap-from-guest-${PM_MIB}MiB"
GUEST_PORT=8000

work=$(mktemp -d "${TMPDIR:-/tmp}/krun-net-load.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
	wait 2> /dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

skip_all() {
	local s
	for s in $SCENARIOS; do echo "SKIP e2e/$1/net_load/$s: $2"; done
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The root and both builds of net_tool; prints why not, or nothing.
prepare() {
	local cc
	make_busybox_root "$work/root" || { echo "cannot make the guest root (needs busybox-static)"; return; }
	cc=$(command -v musl-gcc || echo gcc)
	"$cc" -std=c11 -O2 -static -Wall -Wextra -Werror tests/e2e/net_tool.c -o "$work/root/bin/net_tool" -lpthread \
		> "$work/cc.log" 2>&1 || { echo "cannot build net_tool for the guest: $(tail -n 3 "$work/cc.log")"; return; }
	cc -std=c11 -O2 -Wall -Wextra -Werror tests/e2e/net_tool.c -o "$work/net_tool" -lpthread \
		> "$work/cc.log" 2>&1 || echo "cannot build net_tool for the host: $(tail -n 3 "$work/cc.log")"
}

# verdict RUNNER SCENARIO STATUS OUTFILE [ERRFILE...]: PASS when STATUS is 0 and OUTFILE's last
# line starts with OK (its figures follow the PASS), else FAIL with the tails of the files.
verdict() {
	local r=$1 s=$2 status=$3 out=$4 line f
	shift 4
	line=$(tail -n 1 "$out" 2> /dev/null || true)
	if [ "$status" = 0 ] && [[ $line == OK* ]]; then
		echo "PASS e2e/$r/net_load/$s: ${line#OK }"
		return
	fi
	case $status in
	124 | 137) echo "FAIL e2e/$r/net_load/$s: timed out after ${TIMEOUT}s" ;;
	*) echo "FAIL e2e/$r/net_load/$s: exit status $status, last output '${line:-none}'" ;;
	esac
	for f in "$out" "$@"; do
		[ -s "$f" ] && tail -n 8 "$f" | sed "s|^|      $(basename "$f"): |"
	done
	return 0
}

# guest RUNNER SCENARIO NET_TOOL_ARGS...: one VM running net_tool against the host server.
guest() {
	local r=$1 s=$2 status=0
	shift 2
	timeout -k 10 "$TIMEOUT" "$BUILD_ABS/$r" "$work/root" /bin/net_tool "$@" \
		< /dev/null > "$work/$s.out" 2> "$work/$s.vm" || status=$?
	verdict "$r" "$s" "$status" "$work/$s.out" "$work/$s.vm"
}

# The port map: net_tool serves in the guest on GUEST_PORT, clients here reach it on HP.
portmap() {
	local r=$1 hp vm status=0 s
	hp=$(free_port)
	timeout -k 10 "$TIMEOUT" "$BUILD_ABS/$r" -p "$hp:$GUEST_PORT" "$work/root" \
		/bin/net_tool server 127.0.0.1 "$GUEST_PORT" < /dev/null > "$work/pm.vm.out" 2> "$work/pm.vm" &
	vm=$!
	# The host end accepts at once; until the guest listens its connections are just closed.
	if ! "$work/net_tool" wait 127.0.0.1 "$hp" "$TIMEOUT" > "$work/pm.wait" 2>&1; then
		kill "$vm" 2> /dev/null || true
		wait "$vm" || status=$?
		for s in portmap-echo-$PM_CONNS portmap-to-guest-${PM_MIB}MiB portmap-from-guest-${PM_MIB}MiB; do
			echo "FAIL e2e/$r/net_load/$s: the guest server never answered through -p $hp:$GUEST_PORT (VM status $status)"
		done
		tail -n 8 "$work/pm.vm" | sed 's/^/      /'
		return 0
	fi
	s=portmap-echo-$PM_CONNS status=0
	"$work/net_tool" echo 127.0.0.1 "$hp" "$PM_CONNS" > "$work/$s.out" 2> "$work/$s.err" || status=$?
	verdict "$r" "$s" "$status" "$work/$s.out" "$work/$s.err"
	s=portmap-to-guest-${PM_MIB}MiB status=0
	"$work/net_tool" send 127.0.0.1 "$hp" "$PM_MIB" > "$work/$s.out" 2> "$work/$s.err" || status=$?
	verdict "$r" "$s" "$status" "$work/$s.out" "$work/$s.err"
	s=portmap-from-guest-${PM_MIB}MiB status=0
	"$work/net_tool" recv 127.0.0.1 "$hp" "$PM_MIB" > "$work/$s.out" 2> "$work/$s.err" || status=$?
	verdict "$r" "$s" "$status" "$work/$s.out" "$work/$s.err"
	# The guest server exits 0 on QUIT, which ends the VM.
	status=0
	if ! "$work/net_tool" quit 127.0.0.1 "$hp" > "$work/pm.quit" 2>&1; then
		echo "FAIL e2e/$r/net_load/portmap-quit: the guest server did not take QUIT: $(cat "$work/pm.quit")"
		kill "$vm" 2> /dev/null || true
	fi
	wait "$vm" || status=$?
	if [ "$status" != 0 ]; then
		echo "FAIL e2e/$r/net_load/portmap-exit: the VM ended with status $status"
		tail -n 8 "$work/pm.vm" | sed 's/^/      /'
	fi
}

run_runner() {
	local r=$1
	guest "$r" "guest-echo-$CONNS" echo 127.0.0.1 "$HP" "$CONNS"
	guest "$r" "guest-to-host-${MIB}MiB" send 127.0.0.1 "$HP" "$MIB"
	guest "$r" "host-to-guest-${MIB}MiB" recv 127.0.0.1 "$HP" "$MIB"
	portmap "$r"
}

why=$(prepare)
if [ -n "$why" ]; then
	for r in $RUNNERS; do skip_all "$r" "$why"; done
	exit 0
fi
HP=$(free_port)
"$work/net_tool" server 127.0.0.1 "$HP" > "$work/server.log" 2>&1 &
pids+=($!)
if ! "$work/net_tool" wait 127.0.0.1 "$HP" 10 > /dev/null 2>&1; then
	for r in $RUNNERS; do echo "FAIL e2e/$r/net_load/server: the host server did not start: $(cat "$work/server.log")"; done
	exit 1
fi
for r in $RUNNERS; do
	why=$(runner_unavailable "$r")
	if [ -n "$why" ]; then skip_all "$r" "$why"; else run_runner "$r"; fi
done
