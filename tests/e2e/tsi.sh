#!/bin/bash
# End-to-end TSI (guest networking through the host proxy) on the host's loopback: servers
# started here on free ports, guest halves from a busybox-static root plus a static C client
# (tests/e2e/tsi_client.c). Prints "PASS|FAIL|SKIP e2e/<runner>/tsi/<scenario>". burst-*: a
# program writes 8 MiB to a host peer and ends at once; every byte must still arrive.
# Environment: E2E_RUNNERS ("chroot_vm tcg_vm"), E2E_TIMEOUT (seconds per VM, 180),
# KRUN_VMLINUX (tcg_vm kernel), TSI_ONLY (a regex: only the scenarios it matches).
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
TIMEOUT=${E2E_TIMEOUT:-180}
RUNNERS=${E2E_RUNNERS:-chroot_vm tcg_vm}
BUILD_ABS=$(cd "$BUILD" 2>/dev/null && pwd)
export KRUN_VMLINUX=${KRUN_VMLINUX:-$BUILD_ABS/vmlinux}
SCENARIOS="http-ipv4 http-ipv6 refused client-ipv4 client-ipv6 udp-ipv4 udp-ipv6 udpto-ipv4 udpto-ipv6 udpto-sendmsg slow-connect guest-listener unix-share dns inbound
	burst-close burst-open burst-stall burst-udp burst-portmap"
ONLY=${TSI_ONLY:-.}

work=$(mktemp -d "${TMPDIR:-/tmp}/krun-tsi.XXXXXX") || exit 2
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
	wait 2> /dev/null
	rm -rf "$work"
}
trap cleanup EXIT

skip_all() {
	for s in $SCENARIOS; do echo "SKIP e2e/$1/tsi/$s: $2"; done
}

# Why a runner cannot run here, or nothing.
runner_unavailable() {
	case $1 in
	chroot_vm)
		[ -x "$BUILD/chroot_vm" ] || { echo "$BUILD/chroot_vm not built"; return; }
		[ -e /dev/kvm ] || { echo "no /dev/kvm"; return; }
		[ -d /sys/module/kvm_pvm ] && { echo "/dev/kvm is PVM (kvm_pvm): no Linux guest runs on it (PLATFORM.md); tcg_vm covers TSI"; return; }
		grep -qwE 'vmx|svm' /proc/cpuinfo || echo "no vmx/svm in /proc/cpuinfo"
		;;
	tcg_vm)
		[ -x "$BUILD/tcg_vm" ] || { echo "$BUILD/tcg_vm not built"; return; }
		command -v "${KRUN_QEMU:-qemu-system-x86_64}" > /dev/null || { echo "qemu-system-x86_64 not installed"; return; }
		[ -r "$KRUN_VMLINUX" ] || { echo "no guest kernel $KRUN_VMLINUX"; return; }
		"${KRUN_QEMU:-qemu-system-x86_64}" -device help 2>/dev/null | grep -q vhost-user-vsock-device ||
			echo "QEMU lacks vhost-user-vsock-device"
		;;
	esac
}

free_port() {
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET6 if sys.argv[1]==":" else socket.AF_INET); s.bind((sys.argv[2],0)); print(s.getsockname()[1])' "${1:-.}" "${2:-127.0.0.1}"
}

# wait_port HOST PORT: until something accepts there (10 s).
wait_port() {
	python3 - "$1" "$2" << 'PY'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

start_servers() {
	mkdir -p "$work/www" "$work/share"
	head -c 300000 /dev/urandom > "$work/www/file"
	P4=$(free_port) P6=$(free_port : ::1) E4=$(free_port) E6=$(free_port : ::1) CLOSED=$(free_port)
	U4=$(free_port) U6=$(free_port : ::1) V4=$(free_port) V6=$(free_port : ::1)
	(cd "$work/www" && exec python3 -m http.server "$P4" --bind 127.0.0.1) > "$work/http4.log" 2>&1 &
	pids+=($!)
	(cd "$work/www" && exec python3 -m http.server "$P6" --bind ::1) > "$work/http6.log" 2>&1 &
	pids+=($!)
	cat > "$work/echo.py" << 'PY'
import os, socket, socketserver, sys
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d:
                break
            self.request.sendall(d)
class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
addr = sys.argv[1]
if addr.startswith('/'):
    UnixServer(addr, Echo).serve_forever()
Server.address_family = socket.AF_INET6 if ':' in addr else socket.AF_INET
Server((addr, int(sys.argv[2])), Echo).serve_forever()
PY
	python3 "$work/echo.py" 127.0.0.1 "$E4" > "$work/echo4.log" 2>&1 &
	pids+=($!)
	python3 "$work/echo.py" ::1 "$E6" > "$work/echo6.log" 2>&1 &
	pids+=($!)
	python3 "$work/echo.py" "$work/share/echo.sock" > "$work/echou.log" 2>&1 &
	pids+=($!)
	# UDP echo: every datagram back to its sender, as is.
	for a in "127.0.0.1 $U4" "::1 $U6" "127.0.0.1 $V4" "::1 $V6"; do
		set -- $a
		python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))
while True: d, a = s.recvfrom(65536); s.sendto(d, a)' "$1" "$2" > "$work/udp.log" 2>&1 &
		pids+=($!)
	done
	# A resolver speaking DNS over TCP: every A question gets 10.1.2.3.
	cat > "$work/dns.py" << 'PY'
import socket, struct, sys, threading
def answer(q):
    end = 12
    while q[end] != 0:
        end += q[end] + 1
    hdr = struct.pack('>HHHHHH', struct.unpack('>H', q[:2])[0], 0x8180, 1, 1, 0, 0)
    rr = b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + bytes([10, 1, 2, 3])
    return hdr + q[12:end + 5] + rr
def serve(c):
    with c:
        while True:
            n = c.recv(2, socket.MSG_WAITALL)
            if len(n) < 2:
                return
            a = answer(c.recv(struct.unpack('>H', n)[0], socket.MSG_WAITALL))
            c.sendall(struct.pack('>H', len(a)) + a)
s = socket.socket()
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(16)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
PY
	# A listener whose backlog is full: SYNs to it are dropped, a connect there hangs.
	SLOW=$(free_port)
	python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(0)
fill = [socket.socket() for _ in range(3)]
for c in fill: c.setblocking(False); c.connect_ex(("127.0.0.1", int(sys.argv[1])))
time.sleep(100000)' "$SLOW" > "$work/slow.log" 2>&1 &
	pids+=($!)
	DNS=$(free_port)
	python3 "$work/dns.py" "$DNS" > "$work/dns.log" 2>&1 &
	pids+=($!)
	wait_port 127.0.0.1 "$P4" && wait_port ::1 "$P6" && wait_port 127.0.0.1 "$E4" && wait_port ::1 "$E6" &&
		wait_port 127.0.0.1 "$DNS"
}

make_root() {
	local root=$work/root bb cc
	bb=$(command -v busybox) || { echo "busybox not installed"; return; }
	file -L "$bb" | grep -q 'statically linked' || { echo "busybox is not static (apt-get install busybox-static)"; return; }
	cc=$(command -v musl-gcc || echo gcc)
	mkdir -p "$root"/{bin,proc,sys,dev,tmp,run,etc,mnt}
	cp "$bb" "$root/bin/busybox"
	for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
	"$cc" -std=gnu11 -O2 -static -Wall -Wextra -Werror tests/e2e/tsi_client.c -o "$root/bin/tsi_client" -lpthread \
		> "$work/cc.log" 2>&1 || { echo "cannot build tsi_client: $(tail -n 3 "$work/cc.log")"; return; }
}

# check RUNNER NAME WANT_STATUS EXPECT [OPTS runner options --] COMMAND...: EXPECT is stdout
# exactly, @stderr:TEXT (stderr contains TEXT) or @contains:TEXT (stdout contains TEXT).
check() {
	local runner=$1 name=$2 want=$3 expect=$4 status why=
	[[ $name =~ $ONLY ]] || return 0
	shift 4
	local opts=()
	if [ "$1" = OPTS ]; then shift; while [ "$1" != -- ]; do opts+=("$1"); shift; done; shift; fi
	timeout -k 10 "$TIMEOUT" "$BUILD_ABS/$runner" "${opts[@]}" "$work/root" "$@" \
		< /dev/null > "$work/out" 2> "$work/err"
	status=$?
	if [ "$status" != "$want" ]; then
		why="exit status $status, expected $want"
	elif [[ $expect == @stderr:* ]]; then
		grep -qF -- "${expect#@stderr:}" "$work/err" || why="stderr lacks '${expect#@stderr:}'"
	elif [[ $expect == @contains:* ]]; then
		grep -qF -- "${expect#@contains:}" "$work/out" || why="stdout lacks '${expect#@contains:}'"
	elif [ "$(cat "$work/out")" != "$expect" ]; then
		why="stdout '$(head -c 200 "$work/out" | tr '\n' '|')', expected '$expect'"
	fi
	if [ -z "$why" ]; then
		echo "PASS e2e/$runner/tsi/$name"
	else
		echo "FAIL e2e/$runner/tsi/$name: $why"
		tail -n 10 "$work/err" | sed 's/^/      /'
	fi
}

run_runner() {
	local r=$1 sum
	sum="$(sha256sum < "$work/www/file" | cut -d' ' -f1)  -"
	check "$r" http-ipv4 0 "$sum" /bin/sh -c "wget -q -O - http://127.0.0.1:$P4/file | sha256sum"
	check "$r" http-ipv6 0 "$sum" /bin/sh -c "wget -q -O - http://[::1]:$P6/file | sha256sum"
	check "$r" refused 1 "@stderr:Connection refused" /bin/wget -O /dev/null "http://127.0.0.1:$CLOSED/"
	check "$r" client-ipv4 0 "OK 10" /bin/tsi_client 127.0.0.1 "$E4" 10
	check "$r" client-ipv6 0 "OK 10" /bin/tsi_client ::1 "$E6" 10
	check "$r" udp-ipv4 0 "OK 4" /bin/tsi_client 127.0.0.1 "$U4" 4 udp
	check "$r" udp-ipv6 0 "OK 4" /bin/tsi_client ::1 "$U6" 4 udp
	# Unconnected: one socket, two servers, sendto out, recvfrom/recvmsg naming each (v4: once
	# more after the init's 5 s sweep); sendmsg too where the program asks for that trap, here
	# from an IPv6 socket to v4-mapped servers.
	check "$r" udpto-ipv4 0 "OK 4" /bin/tsi_client 127.0.0.1 "$U4" 4 udpto "$V4" 7
	check "$r" udpto-ipv6 0 "OK 4" /bin/tsi_client ::1 "$U6" 4 udpto "$V6"
	check "$r" udpto-sendmsg 0 "OK 4" OPTS -e KRUN_TSI_SENDMSG=1 -- /bin/tsi_client ::ffff:127.0.0.1 "$U4" 4 udpto "$V4"
	# A connect that hangs on the host holds up its own thread only, not the others'.
	check "$r" slow-connect 0 "OK 6" /bin/tsi_client 127.0.0.1 "$E4" 6 slow "$SLOW"
	# A guest program listening on the port: the guest's own loopback wins over the host's.
	check "$r" guest-listener 0 "guest-side" /bin/sh -c \
		"mkdir -p /tmp/www && echo guest-side > /tmp/www/g && httpd -p 127.0.0.1:$P4 -h /tmp/www &&
		 wget -q -O - http://127.0.0.1:$P4/g"
	# A UNIX socket on a share: the host's listener in that directory answers.
	check "$r" unix-share 0 "OK 4" OPTS -v "$work/share:/mnt" -- /bin/tsi_client unix /mnt/echo.sock 4
	# DNS: the guest's stub on 127.0.0.1:53 asks the host proxy, which asks our resolver.
	KRUN_TSI_DNS=127.0.0.1:$DNS check "$r" dns 0 "@contains:Address: 10.1.2.3" /bin/nslookup tsi.test
	[[ inbound =~ $ONLY ]] && inbound "$r"
	# stall: the peer stops reading for 3 s while the last STALL bytes are on the way: more
	# than the host kernel holds for it (its socket buffers, tcp_wmem's maximum for the proxy's
	# send buffer), so the rest still waits in the VMM and the guest when the program ends.
	local stall=$(($(awk '{print $3}' /proc/sys/net/ipv4/tcp_wmem 2> /dev/null || echo 4194304) + 320 * 1024))
	for v in "close tcp 1 0" "open tcp 1 0" "stall tcp 0 $stall" "udp udp 0 0" "portmap tcp 1 0"; do
		set -- $v
		[[ burst-$1 =~ $ONLY ]] && burst "$r" "$@"
	done
	return 0
}

# The burst peer on the host: takes one stream (or datagrams) of the burst pattern (byte i is
# i % 251), waits PAUSE s after the first bytes so that they pile up on the way, then reads
# until EOF (UDP: 3 s of silence), stopping for 3 s once only STALL bytes are left (0: never);
# writes "BYTES OK" when all of it arrived in order, else what it got. Serves on PORT, or
# connects to it ("connect": the port map, retried until the guest's server answers). A
# stalling peer keeps a small receive buffer.
burst_peer() {
	python3 - "$@" << 'PY'
import socket, sys, time
mode, port, pause, want, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
stall_left = int(sys.argv[6])
def verdict(got, n):
    ok = n == want and got == (bytes(range(251)) * (want // 251 + 1))[:want]
    open(out, 'w').write('%d %s\n' % (n, 'OK' if ok else 'BAD'))
if mode == 'udp':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(('127.0.0.1', port))
    s.settimeout(600)
    parts = [s.recv(65536)]
    s.settimeout(3)
    try:
        while True:
            parts.append(s.recv(65536))
    except socket.timeout:
        pass
    got = b''.join(parts)
    verdict(got, len(got))
    sys.exit(0)
if mode == 'serve':
    l = socket.socket()
    if stall_left:  # the host kernel holds little for a stalling peer
        l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(('127.0.0.1', port))
    l.listen(4)
    first = b''
    while not first:    # the readiness probe's connection brings nothing
        c = l.accept()[0]
        first = c.recv(65536)
else:
    first = b''
    while not first:
        try:
            c = socket.socket()
            if stall_left:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            c.settimeout(2)
            c.connect(('127.0.0.1', port))
            c.settimeout(None)
            first = c.recv(65536)
        except OSError:
            pass
        if not first:
            time.sleep(0.3)
time.sleep(pause)
parts, n = [first], len(first)
while True:
    if stall_left and n >= want - stall_left:
        time.sleep(3)
        stall_left = 0
    try:
        d = c.recv(min(65536, want - stall_left - n) if stall_left else 65536)
    except OSError:
        break
    if not d:
        break
    parts.append(d)
    n += len(d)
verdict(b''.join(parts), n)
PY
}

# burst RUNNER VARIANT PROTO PAUSE STALL: a guest program writes 8 MiB (UDP: 64 KiB in 1000-byte
# datagrams) to a host peer and ends as soon as its last write returns; every byte must arrive.
# portmap: the guest's server writes them to a host client through the port map, then ends.
burst() {
	local r=$1 variant=$2 proto=$3 pause=$4 stall=$5 port kib=8192 mode=serve verdict ppid
	port=$(free_port)
	[ "$proto" = udp ] && { kib=64; mode=udp; }
	[ "$variant" = portmap ] && mode=connect
	rm -f "$work/burst.res"
	burst_peer "$mode" "$port" "$pause" $((kib * 1024)) "$work/burst.res" "$stall" > "$work/burst.log" 2>&1 &
	ppid=$!
	[ "$mode" = serve ] && wait_port 127.0.0.1 "$port" 2> /dev/null
	case $variant in
	portmap) verdict=$(check "$r" burst-portmap 0 "" OPTS -p "$port:8000" -- /bin/tsi_client serve 8000 "$kib") ;;
	close | stall) verdict=$(check "$r" "burst-$variant" 0 "" /bin/tsi_client 127.0.0.1 "$port" 1 burst "$kib") ;;
	*) verdict=$(check "$r" "burst-$variant" 0 "" /bin/tsi_client 127.0.0.1 "$port" 1 burst "$kib" "$variant") ;;
	esac
	# The peer finishes on its own once the stream ends (EOF, or UDP's silence).
	for _ in $(seq 300); do kill -0 "$ppid" 2> /dev/null || break; sleep 0.1; done
	kill "$ppid" 2> /dev/null
	wait "$ppid" 2> /dev/null
	if [[ $verdict == PASS* ]] && [ "$(cat "$work/burst.res" 2> /dev/null)" != "$((kib * 1024)) OK" ]; then
		verdict="FAIL e2e/$r/tsi/burst-$variant: the host peer got '$(cat "$work/burst.res" 2> /dev/null || echo nothing)' of $((kib * 1024)) bytes $(tail -n 2 "$work/burst.log" | tr '\n' ' ')"
	fi
	echo "$verdict"
}

# Port map: a host client on HOST reaches the guest's listener on 8000, both ways.
inbound() {
	local r=$1 hp verdict
	hp=$(free_port)
	cat > "$work/inbound.py" << 'PY'
import socket, sys, time
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        c = socket.create_connection(('127.0.0.1', int(sys.argv[1])), 2)
        c.sendall(b'ping-from-host\n')
        c.shutdown(socket.SHUT_WR)
        c.settimeout(10)
        data = b''
        while True:
            d = c.recv(4096)
            if not d:
                break
            data += d
        if data:
            print(data.decode().strip())
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(1)
PY
	# The client retries until the guest listens (its connections are closed until then).
	python3 "$work/inbound.py" "$hp" "$TIMEOUT" > "$work/inbound.out" 2>&1 &
	local cpid=$!
	verdict=$(check "$r" inbound 0 "ping-from-host" OPTS -p "$hp:8000" -- /bin/sh -c \
		'echo hello-from-guest | nc -l -p 8000')
	kill "$cpid" 2> /dev/null
	wait "$cpid" 2> /dev/null
	if [[ $verdict == PASS* ]] && [ "$(cat "$work/inbound.out")" != hello-from-guest ]; then
		verdict="FAIL e2e/$r/tsi/inbound: the host client got '$(head -c 100 "$work/inbound.out")'"
	fi
	echo "$verdict"
}

why=$(make_root)
if [ -n "$why" ]; then
	for r in $RUNNERS; do skip_all "$r" "$why"; done
	exit 0
fi
if ! start_servers; then
	for r in $RUNNERS; do echo "FAIL e2e/$r/tsi/servers: host test servers did not start"; done
	exit 1
fi
for r in $RUNNERS; do
	why=$(runner_unavailable "$r")
	if [ -n "$why" ]; then skip_all "$r" "$why"; else run_runner "$r"; fi
done
