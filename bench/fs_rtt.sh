#!/bin/bash
# virtio-fs request round trips with the in-process VMM on /dev/kvm: the test guest
# (tests/guest, t.scenario=fs_rtt) sends N GETATTR (then N LOOKUP of one name) requests back to
# back, each posted, kicked and polled for before the next, and times them with its TSC; the
# host's TSC rate (tools/tcg_vm_clock.c) turns cycles into microseconds. Peers in the same
# invocation: the same request handled by fs_handle in-process (the server's own cost: no
# transport, no thread hop) and fstatat on the host (tests/guest/fs_rtt_peer). Also the host
# process's CPU time per request (user + system, all threads: vCPU, event loop, workers).
# On PVM (no hardware virtualization) every kick is a VM exit after which KVM emulates guest
# instructions, so the guest's share of a round trip is far larger than on hardware KVM; the
# difference between two builds is what this script is for.
# Usage: bench/fs_rtt.sh [--quick]   (after `make tests`). Environment: N (20000), RUNS (5);
# BASE_HOST=path: another build's tests/guest/host (e.g. saved before a change), run
# alternately with ours in every run so both see the same load; its column and ours/base.
set -eu
cd "$(dirname "$0")/.."
BENCH_TMP=$(mktemp -d /tmp/krun-bench-fs-rtt.XXXXXX)
trap 'rm -rf "$BENCH_TMP"' EXIT
. bench/lib.sh
N=${N:-20000} RUNS=${RUNS:-5}
[ "${1:-}" = "--quick" ] && { N=$((N / 10)); RUNS=3; }
HOST=$BUILD/tests/guest/host GUEST=$BUILD/tests/guest/guest.elf PEER=$BUILD/tests/guest/fs_rtt_peer
for f in "$HOST" "$GUEST" "$PEER"; do
	[ -e "$f" ] || { echo "FAILED: $f not built (make tests)" >&2; exit 1; }
done
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIPPED: no usable /dev/kvm"; exit 0; }
mkdir -p "$BENCH_TMP/root"
echo data > "$BENCH_TMP/root/file"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
eval "$("$PEER" "$BENCH_TMP/root" file "$N")"
[ "$tsc_khz" -gt 0 ] || { echo "FAILED: host TSC rate unknown (not invariant?)" >&2; exit 1; }

# guest_rtt OP [HOST]: one guest run; "us_per_request cpu_us_per_request" in $BENCH_TMP/rtt.
guest_rtt() {
	local cycles
	measure "$BENCH_TMP/out" "$BENCH_TMP/err" "${2:-$HOST}" --kernel "$GUEST" --ram 64 --cpus 1 \
		--fs "$BENCH_TMP/root" --cmdline "t.ram=64 t.cpus=1 t.scenario=fs_rtt t.op=$1 t.file=file t.n=$N"
	cycles=$(sed -n "s/^guest: rtt op=$1 n=$N cycles=\([0-9]*\) bad=0$/\1/p" "$BENCH_TMP/out")
	if [ "$M_RC" != 0 ] || [ -z "$cycles" ]; then
		echo "FAILED: guest run ($1): rc=$M_RC $(grep -E 'rtt|FAIL' "$BENCH_TMP/out" | head -n 2 | tr '\n' ' ')$(tail -n 2 "$BENCH_TMP/err" | tr '\n' ' ')" >&2
		return 1
	fi
	awk -v c="$cycles" -v k="$tsc_khz" -v n="$N" -v cpu="$M_CPU" \
		'BEGIN { printf "%.2f %.2f\n", c / n / k * 1000, cpu * 1000 / n }' > "$BENCH_TMP/rtt"
}
bench_build_bx

minimum() { printf '%s\n' "$@" | sort -g | head -n 1; }
[ -z "${BASE_HOST:-}" ] || [ -x "$BASE_HOST" ] || { echo "FAILED: BASE_HOST=$BASE_HOST is not executable" >&2; exit 1; }
printf '%-8s %9s %9s %9s %10s %10s %9s %9s' op "guest us" "min us" "cpu us" "server us" "native us" \
	guest/srv guest/nat
[ -z "${BASE_HOST:-}" ] && echo || printf ' %9s %9s %9s %9s\n' "base us" "base min" "base cpu" ours/base
for op in getattr lookup; do
	rtts=() cpus=() base_rtts=() base_cpus=()
	for _ in $(seq "$RUNS"); do
		guest_rtt $op || exit 1
		read -r rtt cpu < "$BENCH_TMP/rtt"
		rtts+=("$rtt") cpus+=("$cpu")
		[ -n "${BASE_HOST:-}" ] || continue
		guest_rtt $op "$BASE_HOST" || exit 1
		read -r rtt cpu < "$BENCH_TMP/rtt"
		base_rtts+=("$rtt") base_cpus+=("$cpu")
	done
	rtt=$(median "${rtts[@]}")
	server=$(awk -v ns="$([ $op = getattr ] && echo "$server_getattr_ns" || echo "$server_lookup_ns")" 'BEGIN { print ns / 1000 }')
	native=$(awk -v ns="$native_fstatat_ns" 'BEGIN { print ns / 1000 }')
	printf '%-8s %9s %9s %9s %10s %10s %9s %9s' $op "$(fmt "$rtt" 2)" "$(fmt "$(minimum "${rtts[@]}")" 2)" \
		"$(fmt "$(median "${cpus[@]}")" 2)" "$(fmt "$server" 3)" "$(fmt "$native" 3)" \
		"$(ratio "$rtt" "$server")" "$(ratio "$rtt" "$native")"
	if [ -n "${BASE_HOST:-}" ]; then
		base=$(median "${base_rtts[@]}")
		printf ' %9s %9s %9s %9s\n' "$(fmt "$base" 2)" "$(fmt "$(minimum "${base_rtts[@]}")" 2)" \
			"$(fmt "$(median "${base_cpus[@]}")" 2)" "$(ratio "$rtt" "$base")"
		echo "  runs (us/request): ours ${rtts[*]}; base ${base_rtts[*]}"
	else
		echo
		echo "  runs (us/request): ${rtts[*]}"
	fi
done
echo "N=$N requests per run, $RUNS runs (medians), TSC ${tsc_khz} kHz; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
