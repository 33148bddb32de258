#!/bin/bash
# Slow end-to-end scenario: a real Debian root (examples/rootfs_debian, made by
# `make -C examples rootfs`) booted as the guest root. Each command runs in the microVM and on
# the host with chroot(8) into the same tree; the outputs must match exactly.
# Prints "PASS|FAIL|SKIP e2e/<runner>/debian/<check>" lines (tests/run.sh counts them).
#
# Opt-in, because building the root takes a while (about 35 s with a near mirror, minutes
# otherwise): it runs when the root is already built, or with KRUN_TEST_ROOTFS=1 (build it here
# first; SKIP when the archive is unreachable). Environment: E2E_RUNNERS ("chroot_vm tcg_vm"),
# E2E_TIMEOUT (seconds per VM, 180), KRUN_VMLINUX (tcg_vm kernel), ROOTFS_DIR.
set -e
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TIMEOUT=${E2E_TIMEOUT:-180}
RUNNERS=${E2E_RUNNERS:-chroot_vm tcg_vm}
ROOT=${ROOTFS_DIR:-examples/rootfs_debian}
[[ $ROOT = /* ]] || ROOT=$(pwd)/$ROOT
STAMP=$ROOT/.krun-rootfs.stamp
BUILD_ABS=$(cd "$BUILD" 2>/dev/null && pwd) || BUILD_ABS=$(pwd)/$BUILD
export KRUN_VMLINUX=${KRUN_VMLINUX:-$BUILD_ABS/vmlinux}
. tests/e2e/lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/krun-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- The root: reuse, build (opt-in) or skip -----------------------------------------------
if [ "$(id -u)" != 0 ]; then
	echo "SKIP e2e/rootfs: needs root (mmdebstrap --mode=root and chroot(8) for the host side)"
	exit 0
fi
if [ ! -e "$STAMP" ]; then
	if [ "${KRUN_TEST_ROOTFS:-0}" != 1 ]; then
		echo "SKIP e2e/rootfs: $ROOT not built (make -C examples rootfs; or KRUN_TEST_ROOTFS=1 to build it in the test)"
		exit 0
	fi
	if ! examples/rootfs.sh --probe "$ROOT" > "$work/probe" 2>&1; then
		echo "SKIP e2e/rootfs: $ROOT absent and the Debian archive is unreachable: $(grep -m1 -E '^rootfs:   (E|Err):' "$work/probe" | sed 's/^rootfs: *//')"
		exit 0
	fi
	t0=$SECONDS
	if examples/rootfs.sh "$ROOT" > "$work/build.log" 2>&1; then
		echo "PASS e2e/rootfs/build ($((SECONDS - t0)) s, $(du -sh "$ROOT" | cut -f1))"
	else
		echo "FAIL e2e/rootfs/build: examples/rootfs.sh failed after $((SECONDS - t0)) s; last lines:"
		tail -n 15 "$work/build.log" | sed 's/^/    /'
		exit 1
	fi
else
	if examples/rootfs.sh "$ROOT" > "$work/build.log" 2>&1; then
		echo "PASS e2e/rootfs/reuse ($(sed -n 's/^built: //p' "$STAMP"))"
	else
		echo "FAIL e2e/rootfs/reuse: the stamped root fails its check:"
		tail -n 5 "$work/build.log" | sed 's/^/    /'
		exit 1
	fi
fi
missing=
for d in proc sys dev tmp run; do [ -d "$ROOT/$d" ] || missing="$missing /$d"; done
if [ -z "$missing" ]; then
	echo "PASS e2e/rootfs/mount-points"
else
	echo "FAIL e2e/rootfs/mount-points: $ROOT lacks$missing"
fi

# --- The checks: NAME, then the shell command run in the guest and in the chroot ------------
# The largest file in the root, so the checksum reads megabytes through virtio-fs.
big=$(cd "$ROOT" && find usr -type f -printf '%s %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
names=(dpkg-count ls-usr-bin sha256 pipeline os-release tools)
cmds=(
	'dpkg -l | wc -l'
	'ls -l --time-style=full-iso /usr/bin'
	"cd / && sha256sum usr/bin/bash usr/bin/curl '$big'"
	"seq 1 20000 | sort -rn | head -n 5000 | awk '{ s += \$1 } END { print s }'; ls /usr/bin | wc -l; echo a:b:c | cut -d: -f2 | tr a-z A-Z"
	'cat /etc/os-release'
	'command -v sh bash curl ip ps; ip -o link show lo | cut -d" " -f2; curl --version | head -n 1'
)
# ls prints full dates: its short format depends on the clock, and the tcg_vm guest's starts
# at 1970 (QEMU microvm, rtc=off). ip -V is left out: without /proc (a bare chroot) it warns.
# The same clean environment on both sides: the runners pass the host's on to the guest.
clean_env=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C TZ=UTC)

# Expected outputs. sha256 is hashed by the host's own tools, outside the chroot.
mkdir -p "$work/want"
for i in "${!names[@]}"; do
	n=${names[$i]}
	if [ "$n" = sha256 ]; then
		(cd "$ROOT" && sha256sum usr/bin/bash usr/bin/curl "$big") > "$work/want/$n" 2>&1 || true
	else
		chroot "$ROOT" "${clean_env[@]}" /bin/sh -c "${cmds[$i]}" > "$work/want/$n" 2>&1 || true
	fi
done
# The guest's own: procps reads the guest's /proc (nothing comparable in a bare chroot).
names+=(procps)
cmds+=('ps -o comm= -p $$; ps -e -o pid= | grep -c .  > /dev/null && echo listed')
printf 'sh\nlisted\n' > "$work/want/procps"


failed=0
for runner in $RUNNERS; do
	why=$(runner_unavailable "$runner")
	if [ -n "$why" ]; then
		echo "SKIP e2e/$runner/debian: $why"
		continue
	fi
	res=$work/res/$runner
	mkdir -p "$res"
	for i in "${!names[@]}"; do
		n=${names[$i]}
		t0=$(date +%s.%N)
		status=0
		KRUN_SERIAL_LOG=$res/$n.serial timeout -k 10 "$TIMEOUT" \
			"$BUILD_ABS/$runner" "$ROOT" "${clean_env[@]}" /bin/sh -c "${cmds[$i]}" \
			< /dev/null > "$res/$n.out" 2> "$res/$n.err" || status=$?
		secs=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
		if [ "$status" = 0 ] && cmp -s "$res/$n.out" "$work/want/$n" && [ -s "$res/$n.out" ]; then
			echo "PASS e2e/$runner/debian/$n ($secs s)"
			continue
		fi
		failed=1
		if [ "$status" = 124 ] || [ "$status" = 137 ]; then
			echo "FAIL e2e/$runner/debian/$n: timed out after ${TIMEOUT}s"
		elif [ "$status" != 0 ]; then
			echo "FAIL e2e/$runner/debian/$n: exit status $status ($secs s)"
		else
			echo "FAIL e2e/$runner/debian/$n: guest output differs from the host's chroot ($secs s)"
		fi
		echo "    command: ${cmds[$i]}"
		echo "    diff (host chroot -> guest):"
		diff "$work/want/$n" "$res/$n.out" | head -n 10 | sed 's/^/      /' || true
		echo "    last stderr lines:"
		tail -n 10 "$res/$n.err" | sed 's/^/      /'
		if [ -s "$res/$n.serial" ]; then
			echo "    last kernel log lines (ttyS0):"
			tail -n 10 "$res/$n.serial" | sed 's/^/      /'
		fi
	done
done
exit "$failed"
