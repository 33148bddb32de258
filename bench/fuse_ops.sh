#!/bin/bash
# Where a metadata operation's time goes on a FUSE mount: for each step of fs.sh's metadata
# work (create, stat, unlink of many empty files; untar), the time per operation natively and
# on our server through /dev/fuse (tests/fuse/fuse_mount), the latter twice: scheduled freely
# and with the server and the workload on one CPU. Next to it, how many requests the kernel
# sent per operation, by opcode (fuse_mount -s), and the cost of one wake-up between threads on
# the same CPU and across CPUs. The request counts are the kernel's FUSE client's choice (the
# same for a virtio-fs guest); what a server controls is its time per request.
# Usage: bench/fuse_ops.sh   (root; after `make tests`). Environment: FILES (10000).
set -eu
cd "$(dirname "$0")/.."
BENCH_TMP=$(mktemp -d /tmp/krun-bench-fuse-ops.XXXXXX)
MNT=$BENCH_TMP/mnt SERVER=
cleanup() {
	mountpoint -q "$MNT" && { umount "$MNT" 2> /dev/null || umount -l "$MNT"; }
	[ -z "$SERVER" ] || kill "$SERVER" 2> /dev/null || true
	rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
. bench/lib.sh
FILES=${FILES:-10000}
FUSE_BIN=$BUILD/tests/fuse/fuse_mount
[ "$(id -u)" = 0 ] || { echo "FAILED: needs root (mounts)" >&2; exit 1; }
[ -c /dev/fuse ] || { echo "SKIPPED: no /dev/fuse"; exit 0; }
[ -x "$FUSE_BIN" ] || { echo "FAILED: $FUSE_BIN not built (make tests)" >&2; exit 1; }
command -v "$BENCH_BUSYBOX" > /dev/null || { echo "FAILED: no $BENCH_BUSYBOX (busybox-static)" >&2; exit 1; }

# ops: one metadata step over N files (microseconds per operation), and a thread ping-pong.
cat > "$BENCH_TMP/ops.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int ping[2], pong[2];

static void *echo(void *unused)
{
	char c;
	(void)unused;
	while (read(ping[0], &c, 1) == 1 && write(pong[1], &c, 1) == 1)
		;
	return NULL;
}

int main(int argc, char **argv)
{
	const char *step = argc > 1 ? argv[1] : "";
	long n = argc > 3 ? atol(argv[3]) : 0, done = 0;
	char name[4096], c = 'x';
	struct stat st;
	double t0 = now();

	if (!strcmp(step, "pingpong")) {   /* a wake-up of a blocked thread and back */
		pthread_t t;
		if (pipe(ping) || pipe(pong) || pthread_create(&t, NULL, echo, NULL))
			return 1;
		for (n = 0; n < 20000; n++)
			if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1)
				return 1;
		printf("%.2f\n", (now() - t0) / n * 1e6);
		return 0;
	}
	if (argc != 4 || n <= 0)
		return 2;
	if (!strcmp(step, "create") && mkdir(argv[2], 0755))
		return perror(argv[2]), 1;
	/* stat: passes over all names until 0.5 s have gone by (each is microseconds). */
	do {
		for (long i = 0; i < n; i++, done++) {
			int fd, r = 0;
			snprintf(name, sizeof(name), "%s/f%ld", argv[2], i);
			if (!strcmp(step, "create"))
				r = (fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0 || close(fd);
			else if (!strcmp(step, "stat"))
				r = stat(name, &st);
			else if (!strcmp(step, "unlink"))
				r = unlink(name);
			else
				return 2;
			if (r)
				return perror(name), 1;
		}
	} while (!strcmp(step, "stat") && now() - t0 < 0.5);
	printf("%.2f\n", (now() - t0) / done * 1e6);
	return 0;
}
EOF
gcc -O2 -o "$BENCH_TMP/ops" "$BENCH_TMP/ops.c" -lpthread
tar -C /usr -cf "$BENCH_TMP/tree.tar" include
ENTRIES=$(tar -tf "$BENCH_TMP/tree.tar" | wc -l)
STEPS="create stat unlink untar"

# step_time DIR STEP [PIN...]: microseconds per operation of STEP in DIR.
step_time() {
	local dir=$1 step=$2 t0
	shift 2
	if [ "$step" = untar ]; then
		mkdir "$dir/tree"
		t0=$(date +%s%N)
		"$@" "$BENCH_BUSYBOX" tar -C "$dir/tree" -xf "$BENCH_TMP/tree.tar"
		echo "$(( ($(date +%s%N) - t0) / ENTRIES ))" | awk '{ printf "%.2f\n", $1 / 1000 }'
	else
		"$@" "$BENCH_TMP/ops" "$step" "$dir/m" "$FILES"
	fi
}

# requests_per_op STATS OPS: "NAME=x.x ..." from fuse_mount's counts for a step of OPS ops.
requests_per_op() {
	awk -v n="$2" '{ printf "%s%s=%.1f", sep, $1, $2 / n; sep = " " }' "$1"
}

# run_peer LABEL [PIN...]: every step on a mount of ours (PIN: the taskset prefix for the
# server and the workload); results in $BENCH_TMP/LABEL.STEP (time) and .req (requests).
run_peer() {
	local label=$1 step stats=$BENCH_TMP/stats ops
	shift
	mkdir -p "$BENCH_TMP/src.$label" "$MNT"
	rm -f "$stats"
	"$@" "$FUSE_BIN" -s "$stats" "$BENCH_TMP/src.$label" "$MNT" 2> "$BENCH_TMP/fuse.log" &
	SERVER=$!
	wait_mount "$MNT" || { echo "FAILED: our FUSE server did not mount: $(tail -n 3 "$BENCH_TMP/fuse.log")" >&2; exit 1; }
	for step in $STEPS; do
		kill -USR1 "$SERVER"; sleep 0.2          # counts start afresh for this step
		step_time "$MNT" "$step" "$@" > "$BENCH_TMP/$label.$step"
		rm -f "$stats"; kill -USR1 "$SERVER"
		for _ in $(seq 50); do [ -f "$stats" ] && break; sleep 0.1; done
		ops=$FILES; [ "$step" != untar ] || ops=$ENTRIES
		requests_per_op "$stats" "$ops" > "$BENCH_TMP/$label.$step.req"
	done
	umount "$MNT"; wait "$SERVER" || true; SERVER=
}

echo "== FUSE metadata cost: $FILES files, untar /usr/include ($ENTRIES entries); microseconds per operation"
mkdir -p "$BENCH_TMP/native"
for step in $STEPS; do step_time "$BENCH_TMP/native" "$step" > "$BENCH_TMP/native.$step"; done
run_peer ours
run_peer ours1 taskset -c 0
printf "%-8s %9s %9s %11s %12s %14s   %s\n" step native ours "ours 1 CPU" "native/ours" \
	"native/ours1" "requests to the server per operation (ours)"
for step in $STEPS; do
	n=$(cat "$BENCH_TMP/native.$step") o=$(cat "$BENCH_TMP/ours.$step") o1=$(cat "$BENCH_TMP/ours1.$step")
	printf "%-8s %9s %9s %11s %12s %14s   %s\n" "$step" "$n" "$o" "$o1" "$(ratio "$n" "$o")" \
		"$(ratio "$n" "$o1")" "$(cat "$BENCH_TMP/ours.$step.req")"
done
echo "wake-up of a blocked thread and back (pipe): same CPU $(taskset -c 0 "$BENCH_TMP/ops" pingpong) us," \
	"free scheduling $("$BENCH_TMP/ops" pingpong) us"
echo "note: native/ours is the fraction of native speed (issue target for metadata: 0.25). Every"
echo "      request but FORGET, BATCH_FORGET and RELEASE makes the caller wait for the answer;"
echo "      stat's requests are per name over all its passes (entries older than the 1 s entry"
echo "      timeout are looked up again). Load average: $(cut -d' ' -f1-3 /proc/loadavg)"
