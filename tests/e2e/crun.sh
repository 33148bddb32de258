#!/bin/bash
# crun compatibility and the krun command. crun_harness repeats crun's libkrun sequence (dlopen,
# krun_create_ctx, then pivot_root + closed fds + krun_start_enter with no exec: the workload is
# /.krun_config.json). On hardware KVM the OCI process must run; on PVM krun_start_enter must fail
# fast with a reason; under TCG (tcg_vm with an empty COMMAND) the init's OCI handling is proven
# end to end. Prints "PASS|FAIL|SKIP crun/<check>" lines.
#
# Environment: CRUN_TCG_VM (tcg_vm binary, default $BUILD/tcg_vm), E2E_TIMEOUT (180 s per VM),
# CRUN_NO_SYS=1 also runs the sequence without /sys in the container (hangs on PVM today).
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
BUILD_ABS=$(cd "$BUILD" 2>/dev/null && pwd)
TIMEOUT=${E2E_TIMEOUT:-180}
HARNESS=$BUILD_ABS/tests/e2e/crun_harness
TCG_VM=${CRUN_TCG_VM:-$BUILD_ABS/tcg_vm}
KRUN=$BUILD_ABS/krun
export KRUN_VMLINUX=${KRUN_VMLINUX:-$BUILD_ABS/vmlinux}

work=$(mktemp -d "${TMPDIR:-/tmp}/krun-crun.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
ROOT=$work/root
failed=0

pass() { echo "PASS crun/$1"; }
skip() { echo "SKIP crun/$1: $2"; }
fail() {
	echo "FAIL crun/$1: $2"
	shift 2
	for f in "$@"; do [ -s "$f" ] && tail -n 10 "$f" | sed 's/^/    /'; done
	failed=1
}

# busybox-static plus an OCI config.json exactly as crun leaves it: /.krun_config.json, 0444.
make_root() {
	local bb
	bb=$(command -v busybox) || return 1
	file -L "$bb" | grep -q 'statically linked' || return 1
	mkdir -p "$ROOT"/{bin,proc,sys,dev,tmp,etc,work} || return 1
	cp "$bb" "$ROOT/bin/busybox" || return 1
	for applet in $("$bb" --list); do
		[ "$applet" = busybox ] || ln -sf busybox "$ROOT/bin/$applet"
	done
	cat > "$ROOT/.krun_config.json" <<'EOF'
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 1234, "gid": 5678, "additionalGids": [ 42 ] },
    "args": [ "/bin/sh", "-c", "echo \"args=$0,$1\"; echo \"env=$CRUN_E2E\"; echo \"cwd=$(pwd)\"; echo \"uid=$(id -u) gid=$(id -g) groups=$(id -G)\"; echo \"nofile=$(ulimit -n):$(ulimit -Hn)\"; echo \"host=$(hostname)\"; exit 42", "zero", "one two" ],
    "env": [ "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CRUN_E2E=from-oci" ],
    "cwd": "/work",
    "capabilities": { "bounding": [ "CAP_CHOWN" ] },
    "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 456, "soft": 123 } ]
  },
  "root": { "path": "rootfs", "readonly": false },
  "hostname": "crun-e2e",
  "mounts": [ { "destination": "/proc", "type": "proc", "source": "proc" } ],
  "linux": { "namespaces": [ { "type": "pid" }, { "type": "mount" } ] }
}
EOF
	chmod 0444 "$ROOT/.krun_config.json"
	printf '%s\n' 'args=zero,one two' 'env=from-oci' 'cwd=/work' \
		'uid=1234 gid=5678 groups=5678 42' 'nofile=123:456' 'host=crun-e2e' > "$work/expected"
}

# NAME STATUS OUT ERR: the OCI process ran as configured and its status came back.
judge_oci() {
	local name=$1 status=$2 out=$3 err=$4
	if [ "$status" != 42 ]; then
		fail "$name" "exit status $status, expected 42 (the OCI process's)" "$out" "$err"
	elif ! cmp -s "$out" "$work/expected"; then
		fail "$name" "stdout '$(tr '\n' '|' < "$out")', expected '$(tr '\n' '|' < "$work/expected")'"
	else
		pass "$name"
	fi
}

kvm_kind() {
	[ -e /dev/kvm ] || { echo none; return; }
	[ -d /sys/module/kvm_pvm ] && { echo pvm; return; }
	echo hardware
}

# An ASan build of the library needs the ASan runtime loaded first in a program that dlopens it;
# its exit-time leak check cannot work after pivot_root into a root without /proc.
ASAN_RT=$(ldd "$BUILD_ABS/libkrun.so.1" 2> /dev/null | awk '/libasan/ { print $3 }')

harness() {
	LD_LIBRARY_PATH=$BUILD_ABS LD_PRELOAD=$ASAN_RT ASAN_OPTIONS=${ASAN_RT:+detect_leaks=0} \
		timeout -k 5 "$@"
}

# On PVM: krun_start_enter must return -ENOTSUP at once, with the library's reason on stderr.
# It also proves the kernel bundle mapped by krun_create_ctx survived pivot_root and close(fd>=3):
# the control (context created after the switch) gets -ENOENT, "no guest kernel", instead.
pvm_checks() {
	local t0 status secs
	t0=$(date +%s.%N)
	harness 30 "$HARNESS" "$ROOT" < /dev/null > "$work/pvm.out" 2> "$work/pvm.err"
	status=$?
	secs=$(echo "$(date +%s.%N) - $t0" | bc)
	if [ "$status" != 100 ] || ! grep -q '^start_enter=-95 ' "$work/pvm.err"; then
		fail pvm/start-enter-fails-fast "status $status, expected 100 and start_enter=-95 (-ENOTSUP)" "$work/pvm.err"
	elif ! grep -q 'PVM' "$work/pvm.err"; then
		fail pvm/start-enter-fails-fast "no reason on stderr" "$work/pvm.err"
	elif [ "$(echo "$secs > 5" | bc)" = 1 ]; then
		fail pvm/start-enter-fails-fast "took ${secs} s"
	else
		pass "pvm/start-enter-fails-fast ($(printf '%.2f' "$secs") s after pivot_root, fds closed)"
	fi
	harness 30 "$HARNESS" --late-ctx "$ROOT" < /dev/null > /dev/null 2> "$work/late.err"
	status=$?
	if [ "$status" = 100 ] && grep -q '^start_enter=-2 ' "$work/late.err" &&
		grep -q 'libkrunfw' "$work/late.err"; then
		pass pvm/kernel-bundle-loaded-by-create-ctx
	else
		fail pvm/kernel-bundle-loaded-by-create-ctx "control with a late context: status $status, expected 100 and start_enter=-2" "$work/late.err"
	fi
	# Past the PVM refusal, the VM is built from inside the container (/dev/kvm, /proc/self/fd,
	# the root share, eventfds, threads): still running after 5 s, or ended by the guest's
	# crash (status 1), means it got that far. The guest itself cannot work on PVM.
	KRUN_ALLOW_PVM=1 harness 5 "$HARNESS" "$ROOT" < /dev/null > /dev/null 2> "$work/allow.err"
	status=$?
	case $status in
	100) fail pvm/vm-built-inside-container "krun_start_enter returned: $(grep start_enter "$work/allow.err")" "$work/allow.err" ;;
	101) fail pvm/vm-built-inside-container "harness failed" "$work/allow.err" ;;
	*) pass "pvm/vm-built-inside-container (KRUN_ALLOW_PVM=1: status $status, the guest was started)" ;;
	esac
	if [ "${CRUN_NO_SYS:-0}" = 1 ]; then
		harness 20 "$HARNESS" --no-sys "$ROOT" < /dev/null > /dev/null 2> "$work/nosys.err"
		status=$?
		if [ "$status" = 100 ]; then
			pass pvm/no-sysfs-fails-fast
		else
			fail pvm/no-sysfs-fails-fast "status $status: without /sys PVM goes undetected" "$work/nosys.err"
		fi
	fi
}

crun_sequence() {
	local status
	[ -x "$HARNESS" ] || { skip kvm/oci-process "$HARNESS not built (make $BUILD/tests/e2e/crun_harness)"; return; }
	# Like crun, the harness needs CAP_SYS_ADMIN for its namespaces and pivot_root.
	[ "$(id -u)" = 0 ] || { skip kvm/oci-process "needs root (namespaces, pivot_root)"; return; }
	case $(kvm_kind) in
	none) skip kvm/oci-process "no /dev/kvm" ;;
	pvm)
		skip kvm/oci-process "/dev/kvm is PVM (kvm_pvm): no Linux guest runs on it; checked under TCG below"
		pvm_checks
		;;
	hardware)
		harness "$TIMEOUT" "$HARNESS" "$ROOT" < /dev/null > "$work/kvm.out" 2> "$work/kvm.err"
		status=$?
		judge_oci kvm/oci-process "$status" "$work/kvm.out" "$work/kvm.err"
		;;
	esac
}

# Why tcg_vm cannot run the OCI case here, or nothing.
tcg_unavailable() {
	[ -x "$TCG_VM" ] || { echo "$TCG_VM not built"; return; }
	command -v "${KRUN_QEMU:-qemu-system-x86_64}" > /dev/null || { echo "no qemu-system-x86_64"; return; }
	[ -r "$KRUN_VMLINUX" ] || echo "no guest kernel $KRUN_VMLINUX"
}

# The init's OCI handling end to end: no program configured, so it reads /.krun_config.json.
tcg_oci() {
	local why status
	why=$(tcg_unavailable)
	if [ -n "$why" ]; then skip tcg/oci-process "$why"; skip krun/tcg-oci "$why"; return; fi
	timeout -k 10 "$TIMEOUT" "$TCG_VM" "$ROOT" "" < /dev/null > "$work/tcg.out" 2> "$work/tcg.err"
	status=$?
	if grep -q 'krun_set_exec' "$work/tcg.err"; then
		why="tcg_vm has no OCI mode yet (an empty COMMAND must configure no program)"
		skip tcg/oci-process "$why"
		skip krun/tcg-oci "$why"
		return
	fi
	judge_oci tcg/oci-process "$status" "$work/tcg.out" "$work/tcg.err"
	[ -x "$KRUN" ] || { skip krun/tcg-oci "$KRUN not built"; return; }
	KRUN_TCG_VM=$TCG_VM timeout -k 10 "$TIMEOUT" "$KRUN" run --tcg "$ROOT" < /dev/null \
		> "$work/krun-oci.out" 2> "$work/krun-oci.err"
	judge_oci krun/tcg-oci "$?" "$work/krun-oci.out" "$work/krun-oci.err"
}

# NAME WANT_STATUS STDERR_TEXT ARGS...: krun's own errors: status and message.
krun_err() {
	local name=$1 want=$2 text=$3 status
	shift 3
	"$KRUN" "$@" < /dev/null > "$work/err.out" 2> "$work/err.err"
	status=$?
	if [ "$status" != "$want" ]; then
		fail "krun/$name" "status $status, expected $want" "$work/err.err"
	elif ! grep -qF -- "$text" "$work/err.err" "$work/err.out"; then
		fail "krun/$name" "output lacks '$text'" "$work/err.err"
	else
		pass "krun/$name"
	fi
}

krun_cli() {
	[ -x "$KRUN" ] || { skip krun/cli "$KRUN not built"; return; }
	krun_err help 0 "Usage: krun run" --help
	krun_err run-help 0 "--volume HOST:GUEST" run --help
	krun_err version 0 "krun " version
	krun_err no-command 125 "Usage: krun run"
	krun_err unknown-command 125 "unknown command 'frob'" frob
	krun_err unknown-option 125 "unknown option '--frob'" run --frob "$ROOT" -- /bin/true
	krun_err missing-value 125 "option '--cpus' needs a value" run --cpus
	krun_err missing-root 125 "missing ROOT" run
	krun_err root-missing 125 "No such file or directory" run "$work/nope" -- /bin/true
	krun_err root-not-dir 125 "not a directory" run "$work/expected" -- /bin/true
	krun_err option-after-root 125 "options go before ROOT" run "$ROOT" --cpus 2 -- /bin/true
	krun_err bad-cpus 125 "--cpus '0'" run --cpus 0 "$ROOT" -- /bin/true
	krun_err bad-mem 125 "--mem 16" run --mem 16 "$ROOT" -- /bin/true
	krun_err bad-mem-text 125 "--mem 'lots'" run --mem lots "$ROOT" -- /bin/true
	krun_err bad-port 125 "--port '1:70000'" run --port 1:70000 "$ROOT" -- /bin/true
	krun_err dup-port 125 "--port: the entries conflict" run -p 80:80 -p 80:81 "$ROOT" -- /bin/true
	krun_err bad-rlimit 125 "--rlimit 'FOO=1:2'" run --rlimit FOO=1:2 "$ROOT" -- /bin/true
	krun_err bad-volume 125 "--volume '$work/nope:/x'" run --volume "$work/nope:/x" "$ROOT" -- /bin/true
	krun_err bad-workdir 125 "--workdir 'rel'" run --workdir rel "$ROOT" -- /bin/true
	krun_err bad-env 125 "--env '=x'" run --env =x "$ROOT" -- /bin/true
	krun_err no-oci-config 125 ".krun_config.json" run "$work"
	case $(kvm_kind) in
	pvm) krun_err pvm-refused 125 "krun run --tcg" run "$ROOT" -- /bin/true ;;
	*) skip krun/pvm-refused "/dev/kvm is not PVM" ;;
	esac
}

if ! make_root; then
	skip all "no static busybox (apt-get install busybox-static)"
	exit 0
fi
crun_sequence
tcg_oci
krun_cli
exit $failed
