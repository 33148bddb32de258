#!/bin/bash
# Test layer "fuzz": builds every libFuzzer target and runs each briefly over its seed corpus.
# Prints "PASS fuzz/<target>", "FAIL fuzz/<target>: why" (crash lines indented) or SKIP.
# FUZZ_SMOKE_SECONDS (default 10) bounds each run; new inputs go to a temp dir, never the repo.
BUILD=${BUILD:-build}
SECS=${FUZZ_SMOKE_SECONDS:-10}
cd "$(dirname "$0")/../.." || exit 2
CC=${FUZZ_CC:-clang}

if ! command -v "$CC" > /dev/null 2>&1; then
	echo "SKIP fuzz: $CC not installed (apt-get install clang libclang-rt-dev)"
	exit 0
fi
# tmpfs when there is one: fuzz_fuse resets a scratch tree every run (4x faster than on disk).
base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
tmp=$(mktemp -d "$base/krun-fuzz-smoke.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\n%s\n' \
	'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
	> "$tmp/probe.c"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" > "$tmp/probe.log" 2>&1; then
	echo "SKIP fuzz: $CC cannot build libFuzzer targets ($(head -n 1 "$tmp/probe.log"))"
	exit 0
fi

status=0
for src in tests/fuzz/fuzz_*.c; do
	t=$(basename "$src" .c)
	t=${t#fuzz_}
	bin=$BUILD/fuzz/fuzz_$t
	if ! make --no-print-directory BUILD="$BUILD" FUZZ_CC="$CC" "$bin" > "$tmp/build-$t.log" 2>&1; then
		echo "FAIL fuzz/$t: build failed"
		grep -m 8 -E 'error|Error' "$tmp/build-$t.log" | sed 's/^/    /'
		status=1
		continue
	fi
	mkdir -p "$tmp/corpus-$t" "$tmp/art-$t"
	seeds=tests/fuzz/corpus/$t
	[ -d "$seeds" ] || seeds=
	# The first corpus dir receives new inputs: the temp one. Scratch files go to $tmp too.
	if TMPDIR=$tmp "$bin" -max_total_time="$SECS" -runs=2000000 -timeout=20 -rss_limit_mb=2048 \
		-artifact_prefix="$tmp/art-$t/" "$tmp/corpus-$t" $seeds > "$tmp/run-$t.log" 2>&1; then
		echo "PASS fuzz/$t ($(grep -o 'cov: [0-9]*' "$tmp/run-$t.log" | tail -n 1), $(grep -o 'exec/s: [0-9]*' "$tmp/run-$t.log" | tail -n 1))"
	else
		echo "FAIL fuzz/$t: $(grep -m 1 -E 'ERROR: |SUMMARY: ' "$tmp/run-$t.log")"
		first=$(grep -n -m 1 -E '^fuzz_|runtime error|ERROR: ' "$tmp/run-$t.log" | cut -d: -f1)
		sed -n "${first:-1},+14p" "$tmp/run-$t.log" | sed 's/^/    /'
		for a in "$tmp/art-$t"/*; do
			[ -f "$a" ] && mkdir -p "$BUILD/fuzz/crashes" && cp "$a" "$BUILD/fuzz/crashes/$t-$(basename "$a")" &&
				echo "    reproducer: $BUILD/fuzz/crashes/$t-$(basename "$a") (run: $bin <file>)"
		done
		status=1
	fi
done
exit $status
