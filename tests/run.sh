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
for layer in kernel guest fuse e2e; do
	if [ -x "tests/$layer/run.sh" ]; then
		run_layer "$layer" "tests/$layer/run.sh"
	fi
done
# File operations and the escape suite inside the guest, on the root and a mapped volume.
[ -x tests/e2e/fs.sh ] && run_layer e2e-fs tests/e2e/fs.sh
# crun's call sequence (dlopen, namespaces, closed fds) and the krun command.
[ -x tests/e2e/crun.sh ] && run_layer crun tests/e2e/crun.sh
# The Debian root (examples/rootfs_debian): checked when built; KRUN_TEST_ROOTFS=1 builds it.
[ -x tests/e2e/rootfs.sh ] && run_layer e2e-rootfs tests/e2e/rootfs.sh

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
