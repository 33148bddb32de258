#!/bin/bash
# Static analysis as a test layer: clang-tidy (`make tidy`: the analyzer and bugprone checks,
# warnings as errors, one stamp per file so repeated runs are incremental) and cppcheck over our
# C sources. Prints "PASS|FAIL|SKIP lint/<tool>"; a FAIL carries the first findings.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0

if ! command -v "${TIDY:-clang-tidy}" > /dev/null; then
	echo "SKIP lint/clang-tidy: clang-tidy not installed (scripts/deps.sh test)"
elif make -s -j2 BUILD="$BUILD" tidy > "$out" 2>&1; then
	echo "PASS lint/clang-tidy"
else
	echo "FAIL lint/clang-tidy: $(grep -c 'error:' "$out") findings"
	rc=1
	grep 'error:' "$out" | sort -u | head -n 10 | sed 's/^/    /'
fi

if ! command -v cppcheck > /dev/null; then
	echo "SKIP lint/cppcheck: cppcheck not installed (scripts/deps.sh test)"
elif cppcheck --quiet --enable=warning,portability --std=c11 -D_GNU_SOURCE -Isrc -Iinclude -Iinit \
	--inline-suppr --error-exitcode=1 -j2 src init tools > "$out" 2>&1; then
	echo "PASS lint/cppcheck"
else
	echo "FAIL lint/cppcheck: findings"
	rc=1
	grep -E '(error|warning|portability):' "$out" | head -n 10 | sed 's/^/    /'
fi
exit $rc
