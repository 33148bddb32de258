#!/bin/bash
# Runs every test layer and prints one closing "N passed, N failed, N skipped" line.
# A layer is a unit-test binary or a tests/<layer>/run.sh script; each prints lines
# "PASS name", "FAIL name: why" or "SKIP name: why". Anything else is passed through.
BUILD=${BUILD:-build}
export BUILD
cd "$(dirname "$0")/.." || exit 2
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_layer() {
	local name=$1; shift
	echo "== $name"
	local start=$SECONDS out
	out=$(mktemp)
	"$@" > "$out" 2>&1
	local rc=$?
	# Verdict lines, plus the indented diagnostics a layer prints right after a FAIL.
	awk '/^(PASS|SKIP) /{f=0; print; next} /^FAIL /{f=1; print; next} f && /^[ \t]/{print; next} {f=0}' "$out"
	cat "$out" >> "$log"
	if [ "$rc" -ne 0 ] && ! grep -q "^FAIL " "$out"; then
		echo "FAIL $name: exited with status $rc; last lines:" | tee -a "$log"
		tail -n 20 "$out" | sed 's/^/    /'
	fi
	rm -f "$out"
	echo "   ($name: $((SECONDS - start)) s)"
}

for t in "$BUILD"/tests/unit/test_*; do
	[ -x "$t" ] && run_layer "unit/$(basename "$t")" "$t"
done
# Layers in order: each is tests/<path> and prints its own PASS/FAIL/SKIP lines.
#   kernel      the kernel bundle (libkrunfw ABI, boot under TCG)
#   guest       our test guest on /dev/kvm: the in-process VMM's KVM plumbing
#   fuse        the FUSE server mounted through /dev/fuse: POSIX checks at native speed
#   e2e         run-a-program scenarios through every runner (chroot_vm, tcg_vm)
#   e2e-fs      file operations and the escape suite inside the guest
#   e2e-tsi     guest networking through socket impersonation
#   e2e-net_load 100 concurrent connections, 100 MiB each way, port-map load
#   e2e-balloon free page reporting under TCG: RSS drops after a free, guest data intact
#   crun        crun's call sequence (dlopen, namespaces, closed fds) and the krun command
#   e2e-examples the use-case examples (jailer, isolate, chroot_vm)
#   e2e-rootfs  real programs from the Debian root (when built; KRUN_TEST_ROOTFS=1 builds it)
#   faults      hostile guests and host faults
#   fuzz        a short libFuzzer round per target
#   lint        clang-tidy (make tidy) and cppcheck over our C sources
for layer in kernel/run.sh guest/run.sh fuse/run.sh e2e/run.sh e2e/fs.sh e2e/tsi.sh e2e/net_load.sh e2e/balloon.sh \
	     e2e/crun.sh e2e/examples.sh \
	     e2e/rootfs.sh e2e/faults.sh fuzz/run.sh lint/run.sh; do
	name=${layer%/run.sh}
	name=${name%.sh}
	name=${name/\//-}
	[ -x "tests/$layer" ] && run_layer "$name" "tests/$layer"
done

pass=$(grep -c '^PASS ' "$log")
fail=$(grep -c '^FAIL ' "$log")
skip=$(grep -c '^SKIP ' "$log")
if [ "$fail" -gt 0 ]; then
	echo "Failures:"
	grep '^FAIL ' "$log"
fi
if [ "$skip" -gt 0 ]; then
	echo "Skipped:"
	grep '^SKIP ' "$log"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
