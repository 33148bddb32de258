#!/bin/bash
# File system throughput, each figure next to peers measured in the same invocation, with one
# workload (a small static C program plus busybox tar) run the same way everywhere:
#  (a) host, /dev/fuse: our FUSE server (tests/fuse/fuse_mount) vs the host file system
#      directly vs bindfs (a FUSE passthrough from Debian).
#  (b) QEMU TCG, scaled down: the guest's /work on our virtio-fs (tcg_vm -v), with the defaults
#      and with KRUN_FS_DIRECT_IO=1 (file data bypasses the guest's page cache, as on 9p), vs
#      QEMU's own virtiofsd (vhost-user-fs, cache=auto like our default) vs virtio-9p (its
#      default cache=none; when the guest kernel has 9P), same TCG CPU.
#  (c) hardware KVM only, the sizes of (a): the same guests with chroot_vm (the in-process VMM,
#      the product kernel) in place of tcg_vm and QEMU with -accel kvm, next to the same work
#      on the host directly: the issue's "% of native" figures for the product.
# Workload: sequential write (1 MiB blocks, fsync) and read (caches dropped), random 4 KiB reads
# (caches dropped) and writes (fsync at the end), create / stat / unlink of many empty files,
# extracting a tar of headers. Output: MB/s or ops/s and ratios.
# Usage: bench/fs.sh [--quick] [host|tcg|kvm]...   (root; after `make` and `make tests`)
# Environment: HOST_MIB (1024), HOST_OPS (20000), HOST_FILES (10000); TCG_MIB (256), TCG_OPS
# (2000), TCG_FILES (2000), TCG_REPEAT (3 guest runs per peer, medians; also (c)'s); --quick
# divides the sizes by 8 and runs each guest once. KRUN_FS_* settings reach our server in both parts
# (e.g. KRUN_FS_WRITEBACK=1 or KRUN_FS_CACHE=always; defaults: 1 s caches, no writeback cache,
# page cache), and the ours-dio column adds KRUN_FS_DIRECT_IO=1.
set -eu
cd "$(dirname "$0")/.."
BENCH_TMP=$(mktemp -d /tmp/krun-bench-fs.XXXXXX)
MOUNTS=() PIDS=()
cleanup() {
	local m p
	for m in "${MOUNTS[@]}"; do mountpoint -q "$m" && { umount "$m" 2> /dev/null || umount -l "$m"; }; done
	for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
	rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
. bench/lib.sh

HOST_MIB=${HOST_MIB:-1024} HOST_OPS=${HOST_OPS:-20000} HOST_FILES=${HOST_FILES:-10000}
TCG_MIB=${TCG_MIB:-256} TCG_OPS=${TCG_OPS:-2000} TCG_FILES=${TCG_FILES:-2000} TCG_REPEAT=${TCG_REPEAT:-3}
PARTS=()
for a in "$@"; do
	case $a in
	--quick)
		HOST_MIB=$((HOST_MIB / 8)) HOST_OPS=$((HOST_OPS / 8)) HOST_FILES=$((HOST_FILES / 8))
		TCG_MIB=$((TCG_MIB / 8)) TCG_OPS=$((TCG_OPS / 8)) TCG_FILES=$((TCG_FILES / 8)) TCG_REPEAT=1 ;;
	host | tcg | kvm) PARTS+=("$a") ;;
	*) echo "usage: $0 [--quick] [host|tcg|kvm]..." >&2; exit 2 ;;
	esac
done
[ ${#PARTS[@]} -gt 0 ] || PARTS=(host tcg kvm)
VMLINUX=${KRUN_VMLINUX:-$PWD/$BUILD/vmlinux}
FUSE_BIN=$BUILD/tests/fuse/fuse_mount
[ "$(id -u)" = 0 ] || { echo "FAILED: needs root (mounts, drop_caches)" >&2; exit 1; }

# ---- the workload: fsb (static C) and wl.sh (POSIX sh, runs under bash and busybox sh)
cat > "$BENCH_TMP/fsb.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "fsb: %s %s: ", what, path);
	perror(NULL);
	exit(1);
}

static char buf[1 << 20] __attribute__((aligned(4096)));

/* Deterministic 4 KiB-aligned offsets below size (xorshift). */
static off_t next_off(unsigned long long *s, off_t size)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return (off_t)(*s % (unsigned long long)(size / 4096)) * 4096;
}

int main(int argc, char **argv)
{
	const char *op = argc > 1 ? argv[1] : "", *path = argc > 2 ? argv[2] : "";
	unsigned long long seed = 88172645463325252ull;
	double t0;
	int fd;

	memset(buf, 0x5a, sizeof(buf));
	if (!strcmp(op, "seqwrite") && argc == 4) {
		long mib = atol(argv[3]);
		t0 = now();
		if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
			die("open", path);
		for (long i = 0; i < mib; i++)
			if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
				die("write", path);
		if (fsync(fd) || close(fd))
			die("fsync", path);
		printf("seq_write_MBps %.1f\n", mib * 1.048576 / (now() - t0));
	} else if (!strcmp(op, "seqread") && argc == 3) {
		ssize_t n;
		long long total = 0;
		t0 = now();
		if ((fd = open(path, O_RDONLY)) < 0)
			die("open", path);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			total += n;
		if (n < 0)
			die("read", path);
		close(fd);
		printf("seq_read_MBps %.1f\n", total / 1e6 / (now() - t0));
	} else if ((!strcmp(op, "randread") || !strcmp(op, "randwrite")) && argc == 4) {
		long ops = atol(argv[3]);
		int wr = op[4] == 'w';
		struct stat st;
		if ((fd = open(path, wr ? O_RDWR : O_RDONLY)) < 0 || fstat(fd, &st))
			die("open", path);
		if (wr)
			seed ^= 0x9e3779b97f4a7c15ull;
		t0 = now();
		for (long i = 0; i < ops; i++) {
			off_t off = next_off(&seed, st.st_size);
			if ((wr ? pwrite(fd, buf, 4096, off) : pread(fd, buf, 4096, off)) != 4096)
				die(wr ? "pwrite" : "pread", path);
		}
		if (wr && fsync(fd))
			die("fsync", path);
		close(fd);
		printf("rand_%s_4k_iops %.0f\n", wr ? "write" : "read", ops / (now() - t0));
	} else if (!strcmp(op, "meta") && argc == 4) {
		long n = atol(argv[3]);
		char name[4096];
		struct stat st;
		double t[4];
		long passes = 0;
		if (mkdir(path, 0755))
			die("mkdir", path);
		t[0] = now();
		for (long i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s/f%ld", path, i);
			if ((fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0 || close(fd))
				die("create", name);
		}
		t[1] = now();
		/* Passes until 0.5 s have gone by: guest clocks may tick in jiffies. */
		do {
			for (long i = 0; i < n; i++) {
				snprintf(name, sizeof(name), "%s/f%ld", path, i);
				if (stat(name, &st))
					die("stat", name);
			}
			passes++;
		} while (now() - t[1] < 0.5);
		t[2] = now();
		for (long i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s/f%ld", path, i);
			if (unlink(name))
				die("unlink", name);
		}
		t[3] = now();
		printf("create_ops %.0f\nstat_ops %.0f\nunlink_ops %.0f\n", n / (t[1] - t[0]),
		       n * passes / (t[2] - t[1]), n / (t[3] - t[2]));
	} else if (!strcmp(op, "time") && argc > 3) {
		int status;
		pid_t pid;
		t0 = now();
		if ((pid = fork()) == 0) {
			execvp(argv[3], argv + 3);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
			die("command failed:", argv[3]);
		printf("%s_ms %.1f\n", path, (now() - t0) * 1e3);
	} else if (!strcmp(op, "tsckhz")) {
		/* The host's TSC rate, as tcg_vm passes it to its guest (tsc_early_khz=). */
		unsigned long long c0 = __rdtsc();
		t0 = now();
		usleep(50000);
		printf("%.0f\n", (double)(__rdtsc() - c0) / (now() - t0) / 1e3);
	} else {
		fprintf(stderr, "usage: fsb seqwrite FILE MIB | seqread FILE | randread|randwrite FILE OPS |"
			" meta DIR N | time NAME CMD... | tsckhz\n");
		return 2;
	}
	return 0;
}
EOF
cc -O2 -static -o "$BENCH_TMP/fsb" "$BENCH_TMP/fsb.c" || { echo "FAILED: cannot build the workload (cc, libc6-dev)" >&2; exit 1; }

# wl.sh FSB DIR MIB OPS FILES: every step prints "key value"; the tar is DIR/tree.tar.
cat > "$BENCH_TMP/wl.sh" <<'EOF'
set -e
FSB=$1 D=$2/bench.run MIB=$3 OPS=$4 FILES=$5
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
cs=/sys/devices/system/clocksource/clocksource0/current_clocksource
[ -r $cs ] && echo "clocksource $(cat $cs)"
rm -rf "$D"; mkdir -p "$D"
drop
"$FSB" seqwrite "$D/big" "$MIB"
drop
"$FSB" seqread "$D/big"
drop
"$FSB" randread "$D/big" "$OPS"
"$FSB" randwrite "$D/big" "$OPS"
rm -f "$D/big"
"$FSB" meta "$D/meta" "$FILES"
mkdir "$D/tree"
drop
"$FSB" time untar busybox tar xf "$2/tree.tar" -C "$D/tree"
rm -rf "$D"
echo "workload done"
EOF

KEYS="seq_write_MBps seq_read_MBps rand_read_4k_iops rand_write_4k_iops create_ops stat_ops unlink_ops untar_files_per_s"
label() {
	case $1 in
	seq_write_MBps) echo "seq write, MB/s (1 MiB, fsync)" ;;
	seq_read_MBps) echo "seq read, MB/s (cold)" ;;
	rand_read_4k_iops) echo "random 4 KiB read, ops/s (cold)" ;;
	rand_write_4k_iops) echo "random 4 KiB write+fsync, ops/s" ;;
	create_ops) echo "create, files/s" ;;
	stat_ops) echo "stat, files/s" ;;
	unlink_ops) echo "unlink, files/s" ;;
	untar_files_per_s) echo "untar, entries/s" ;;
	esac
}
# results FILE ENTRIES: the workload's output as "key value" lines, untar turned into entries/s.
results() {
	tr -d '\r' < "$1" | awk -v n="$2" '$1 == "untar_ms" { printf "untar_files_per_s %.0f\n", n * 1000 / $2; next } NF == 2 && $2 ~ /^[0-9.]+$/'
}
val() { awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print "-" }' "$1"; }

# table COLUMN_FILE... (name=file): values per column, then ratios: of column 1 to the others,
# or the pairs RATIOS names ("a/b ...", column names).
table() {
	local names=() files=() pairs=() c k line
	declare -A file_of
	for c in "$@"; do names+=("${c%%=*}"); files+=("${c#*=}"); file_of[${c%%=*}]=${c#*=}; done
	if [ -n "${RATIOS:-}" ]; then
		for c in $RATIOS; do [ -n "${file_of[${c%/*}]:-}" ] && [ -n "${file_of[${c#*/}]:-}" ] && pairs+=("$c"); done
	else
		for c in "${names[@]:1}"; do pairs+=("${names[0]}/$c"); done
	fi
	line=$(printf '%-34s' "")
	for c in "${names[@]}" "${pairs[@]}"; do line+=$(printf ' %12s' "$c"); done
	echo "$line"
	for k in $KEYS; do
		line=$(printf '%-34s' "$(label "$k")")
		for c in "${files[@]}"; do line+=$(printf ' %12s' "$(val "$c" "$k")"); done
		for c in "${pairs[@]}"; do
			line+=$(printf ' %12s' "$(ratio "$(val "${file_of[${c%/*}]}" "$k")" "$(val "${file_of[${c#*/}]}" "$k")")")
		done
		echo "$line"
	done
}

# ---- (a) host: ours on /dev/fuse vs native vs bindfs
host_part() {
	local src=$BENCH_TMP/host/src mnt=$BENCH_TMP/host/mnt entries cols=() pid
	echo "== (a) host file system access: $HOST_MIB MiB sequential, $HOST_OPS random 4 KiB ops, $HOST_FILES files, untar /usr/include"
	mkdir -p "$src" "$mnt"
	tar -C /usr -cf "$src/tree.tar" include
	entries=$(tar -tf "$src/tree.tar" | wc -l)
	ulimit -n "$(ulimit -Hn)"        # the FUSE server holds one O_PATH fd per cached inode
	if [ ! -c /dev/fuse ]; then
		echo "SKIPPED: no /dev/fuse"; return
	fi
	if [ -x "$FUSE_BIN" ]; then
		"$FUSE_BIN" "$src" "$mnt" 2> "$BENCH_TMP/fuse.log" &
		pid=$!; PIDS+=("$pid"); MOUNTS+=("$mnt")
		wait_mount "$mnt" || { echo "FAILED: our FUSE server did not mount: $(tail -n 3 "$BENCH_TMP/fuse.log")" >&2; exit 1; }
		bash "$BENCH_TMP/wl.sh" "$BENCH_TMP/fsb" "$mnt" "$HOST_MIB" "$HOST_OPS" "$HOST_FILES" > "$BENCH_TMP/ours.raw" ||
			{ echo "FAILED: workload on our FUSE server: $(tail -n 3 "$BENCH_TMP/fuse.log")" >&2; exit 1; }
		umount "$mnt"; wait "$pid" || true
		results "$BENCH_TMP/ours.raw" "$entries" > "$BENCH_TMP/ours"
		cols+=("ours=$BENCH_TMP/ours")
	else
		echo "SKIPPED ours: $FUSE_BIN not built (make tests)"
		: > "$BENCH_TMP/ours"; cols+=("ours=$BENCH_TMP/ours")
	fi
	bash "$BENCH_TMP/wl.sh" "$BENCH_TMP/fsb" "$src" "$HOST_MIB" "$HOST_OPS" "$HOST_FILES" > "$BENCH_TMP/native.raw"
	results "$BENCH_TMP/native.raw" "$entries" > "$BENCH_TMP/native"
	cols+=("native=$BENCH_TMP/native")
	if ! command -v bindfs > /dev/null; then
		echo "SKIPPED bindfs: not installed (apt-get install bindfs)"
	else
		bindfs "$src" "$mnt"
		wait_mount "$mnt" || { echo "FAILED: bindfs did not mount" >&2; exit 1; }
		bash "$BENCH_TMP/wl.sh" "$BENCH_TMP/fsb" "$mnt" "$HOST_MIB" "$HOST_OPS" "$HOST_FILES" > "$BENCH_TMP/bindfs.raw"
		umount "$mnt"
		results "$BENCH_TMP/bindfs.raw" "$entries" > "$BENCH_TMP/bindfs"
		cols+=("bindfs=$BENCH_TMP/bindfs")
	fi
	table "${cols[@]}"
	echo "note: the file system under all three is $(df -T "$src" | awk 'NR == 2 { print $2 " on " $1 }'); caches dropped" \
		"(host) before the cold steps; untar = busybox tar, $entries entries."
	echo "      ours: KRUN_FS_CACHE=${KRUN_FS_CACHE:-auto} KRUN_FS_WRITEBACK=${KRUN_FS_WRITEBACK:-default}" \
		"KRUN_FS_DIRECT_IO=${KRUN_FS_DIRECT_IO:-default}," \
		"mount readahead 1 MiB (fuse_mount); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# guest_ours|guest_dio|guest_vfsd|guest_9p ROUND: one guest run of the workload (variables of
# tcg_part); output in $BENCH_TMP/PEER.ROUND.raw, memory and time appended to mem_PEER / ms_PEER.
# OURS_VM: tcg_vm (TCG; it boots $VMLINUX) or chroot_vm (KVM; the product kernel).
guest_ours() {
	measure "$BENCH_TMP/ours.$1.raw" "$BENCH_TMP/ours.$1.err" env KRUN_VMLINUX="$VMLINUX" "$OURS_VM" -c 1 -m 512 \
		-v "$share:/work" "$root" /bin/sh /wl.sh /fsb $args
	mem_ours+=("$M_PSS") ms_ours+=("$M_MS") cpu_ours+=("$M_CPU")
}
# Ours with file data outside the guest's page cache (direct I/O), like 9p's cache=none.
guest_dio() {
	measure "$BENCH_TMP/dio.$1.raw" "$BENCH_TMP/dio.$1.err" env KRUN_FS_DIRECT_IO=1 KRUN_VMLINUX="$VMLINUX" \
		"$OURS_VM" -c 1 -m 512 -v "$share:/work" "$root" /bin/sh /wl.sh /fsb $args
	mem_dio+=("$M_PSS") ms_dio+=("$M_MS") cpu_dio+=("$M_CPU")
}
# The same work on the host directly, in a directory of its own (KVM part only).
guest_native() {
	mkdir -p "$BENCH_TMP/$ACCEL/native"
	cp "$share/tree.tar" "$BENCH_TMP/$ACCEL/native/"
	bash "$BENCH_TMP/wl.sh" "$BENCH_TMP/fsb" "$BENCH_TMP/$ACCEL/native" $MIB $OPS $FILES > "$BENCH_TMP/native.$1.raw"
}
guest_vfsd() {
	local sock=$BENCH_TMP/vfsd.sock vpid hwm=0 k t
	rm -f "$sock"
	"$BENCH_VIRTIOFSD" --socket-path="$sock" -o source="$share" -o cache=auto > "$BENCH_TMP/vfsd.$1.err" 2>&1 &
	vpid=$!; PIDS+=("$vpid")
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
	# virtiofsd's peak PSS (it and its sandbox child), sampled while the guest runs.
	: > "$BENCH_TMP/vfsd.hwm"
	# Its CPU time too (ticks of it and its children, last seen).
	( local t c tick
	tick=$(getconf CLK_TCK)
	while kill -0 "$vpid" 2> /dev/null; do
		k=0 t=0
		for p in "$vpid" $(pgrep -P "$vpid"); do
			k=$(( k + $(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2> /dev/null || echo 0) ))
			c=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2> /dev/null || echo 0)
			t=$(( t + ${c:-0} ))
		done
		[ "$k" -gt "$hwm" ] && hwm=$k
		echo "$hwm $(( t * 1000 / tick ))" > "$BENCH_TMP/vfsd.hwm"
		sleep 0.2
	done ) &
	local watcher=$!
	QEMU_MEMBACKEND=mem qemu_microvm "$ACCEL" 1 512 "$VMLINUX"
	measure "$BENCH_TMP/vfsd.$1.raw" "$BENCH_TMP/vfsd.$1.qerr" "${QEMU_CMD[@]}" -object memory-backend-memfd,id=mem,size=512M,share=on \
		-chardev socket,id=vfs,path="$sock" -device vhost-user-fs-device,chardev=vfs,tag=work,queue-size=1024 \
		-initrd "$BENCH_TMP/initramfs.cpio" -append "$append bench.fs=virtiofs bench.opts=work "
	kill "$vpid" 2> /dev/null || true
	wait "$vpid" "$watcher" 2> /dev/null || true
	read -r k t < "$BENCH_TMP/vfsd.hwm" || k=0 t=0
	mem_vfsd+=("$(( M_PSS + ${k:-0} ))") ms_vfsd+=("$M_MS")
	cpu_vfsd+=("$(awk -v a="$M_CPU" -v b="${t:-0}" 'BEGIN { print a + b }')")
}
guest_9p() {
	qemu_microvm "$ACCEL" 1 512 "$VMLINUX"
	measure "$BENCH_TMP/9p.$1.raw" "$BENCH_TMP/9p.$1.err" "${QEMU_CMD[@]}" \
		-fsdev local,id=fs0,path="$share",security_model=none -device virtio-9p-device,fsdev=fs0,mount_tag=work \
		-initrd "$BENCH_TMP/initramfs.cpio" -append "$append bench.fs=9p bench.opts=-o:trans=virtio,version=9p2000.L,msize=524288:work "
	mem_9p+=("$M_PSS") ms_9p+=("$M_MS") cpu_9p+=("$M_CPU")
}
# median_results PREFIX N: PREFIX = per key, the median of PREFIX.1 .. PREFIX.N.
median_results() {
	local k vals i
	for k in $KEYS; do
		vals=()
		for i in $(seq "$2"); do vals+=($(val "$1.$i" "$k" | grep -v '^-$' || true)); done
		echo "$k $(median "${vals[@]}")"
	done > "$1"
}

# ---- (b) TCG and (c) KVM: our virtio-fs vs QEMU's virtiofsd vs virtio-9p, the workload in the guest
tcg_part() {
	local why
	ACCEL=tcg OURS_VM=$BUILD/tcg_vm OURS_LABEL="tcg_vm + QEMU" MIB=$TCG_MIB OPS=$TCG_OPS FILES=$TCG_FILES TREE=linux
	echo "== (b) guest file system under QEMU TCG (1 vCPU, 512 MiB): $MIB MiB sequential, $OPS random 4 KiB ops, $FILES files, untar /usr/include/$TREE"
	why=$(qemu_missing)
	[ -n "$why" ] || [ -x "$OURS_VM" ] || why="$OURS_VM not built (make)"
	guest_part
}
kvm_part() {
	local why
	ACCEL=kvm OURS_VM=$BUILD/chroot_vm OURS_LABEL=chroot_vm MIB=$HOST_MIB OPS=$HOST_OPS FILES=$HOST_FILES TREE=.
	echo "== (c) guest file system on hardware KVM (1 vCPU, 512 MiB): $MIB MiB sequential, $OPS random 4 KiB ops, $FILES files, untar /usr/include"
	why=$(hw_kvm_missing)
	[ -n "$why" ] || why=$(qemu_missing)
	[ -n "$why" ] || [ -x "$OURS_VM" ] || why="$OURS_VM not built (make)"
	guest_part
}

# The guest part of ACCEL (tcg or kvm), unless $why says why it cannot run.
guest_part() {
	local entries cols=() qemu_kernel
	share=$BENCH_TMP/$ACCEL/share root=$BENCH_TMP/$ACCEL/root ird=$BENCH_TMP/$ACCEL/initramfs
	args="/work $MIB $OPS $FILES"
	append="console=ttyS0 quiet panic=-1 reboot=t no_timer_check tsc=reliable"
	# The QEMU peers get the TSC rate tcg_vm gives ours (tools/tcg_vm_clock.c): without it the
	# guest falls back to the jiffies clock, which lags under TCG and so inflates its figures.
	if [ "$ACCEL" = tcg ] && grep -qw constant_tsc /proc/cpuinfo && grep -qw nonstop_tsc /proc/cpuinfo; then
		append+=" tsc_early_khz=$("$BENCH_TMP/fsb" tsckhz)"
	fi
	# Every QEMU peer boots the bench kernel (the product's + 9P), and so does tcg_vm: one
	# kernel, so under TCG the columns differ only in the file system machinery. chroot_vm
	# boots the product kernel of libkrunfw. KRUN_VMLINUX overrides it (9p then needs CONFIG_9P_FS).
	[ -n "$why" ] || use_bench_kernel
	[ -n "$why" ] || [ -r "$VMLINUX" ] || why="no guest kernel $VMLINUX"
	if [ -n "$why" ]; then echo "SKIPPED: $why"; return; fi
	qemu_kernel=$VMLINUX
	[ "$ACCEL" = tcg ] && echo "guest kernel: $VMLINUX" ||
		echo "guest kernels: chroot_vm the product kernel (libkrunfw), QEMU $VMLINUX"
	mkdir -p "$share"
	tar -C /usr/include -cf "$share/tree.tar" "$TREE"
	entries=$(tar -tf "$share/tree.tar" | wc -l)
	# The same tools in every guest: busybox + fsb + wl.sh at the root.
	bb_root "$root"; cp "$BENCH_TMP/fsb" "$BENCH_TMP/wl.sh" "$root/"
	bb_root "$ird"; cp "$BENCH_TMP/fsb" "$BENCH_TMP/wl.sh" "$ird/"
	cat > "$ird/init" <<-EOF
	#!/bin/sh
	mount -t proc proc /proc; mount -t sysfs sys /sys
	if mount -t "\$(sed -n 's/.* bench.fs=\([^ ]*\).*/\1/p' /proc/cmdline)" \$(sed -n 's/.* bench.opts=\([^ ]*\).*/\1/p' /proc/cmdline | tr : ' ') /work; then
		sh /wl.sh /fsb $args
	else
		echo "mount failed"
	fi
	exec reboot -f
	EOF
	chmod 0755 "$ird/init"
	initramfs "$ird" "$BENCH_TMP/initramfs.cpio"

	# One guest run per peer and round, peers alternating; per step the median over rounds.
	local r p have9p=0 peers="ours dio" mem_ours=() mem_vfsd=() mem_9p=() ms_ours=() ms_vfsd=() ms_9p=()
	local cpu_ours=() cpu_vfsd=() cpu_9p=() mem_dio=() ms_dio=() cpu_dio=()
	[ "$ACCEL" = kvm ] && peers+=" native"
	[ -x "$BENCH_VIRTIOFSD" ] && peers+=" vfsd" || echo "SKIPPED virtiofsd: $BENCH_VIRTIOFSD not installed"
	if grep -q '^CONFIG_9P_FS=y' "$(dirname "$qemu_kernel")/vmlinux.config" 2> /dev/null; then
		peers+=" 9p" have9p=1
	fi
	for r in $(seq "$TCG_REPEAT"); do
		for p in $peers; do
			"guest_$p" "$r"
			grep -q "workload done" "$BENCH_TMP/$p.$r.raw" ||
				{ echo "FAILED: workload, $p (status $M_RC): $(tail -n 5 "$BENCH_TMP/$p.$r.raw" "$BENCH_TMP/$p.$r.err" | tr '\n' ' ')" >&2; exit 1; }
			results "$BENCH_TMP/$p.$r.raw" "$entries" > "$BENCH_TMP/$p.$r"
		done
	done
	for p in $peers; do median_results "$BENCH_TMP/$p" "$TCG_REPEAT"; done
	cols=("ours=$BENCH_TMP/ours" "ours-dio=$BENCH_TMP/dio")
	[ "$ACCEL" = kvm ] && cols+=("native=$BENCH_TMP/native")
	[[ $peers == *vfsd* ]] && cols+=("virtiofsd=$BENCH_TMP/vfsd")
	[ "$have9p" = 1 ] && cols+=("9p=$BENCH_TMP/9p")
	{
		echo "memory, median of $TCG_REPEAT: PSS = proportional set size (guest RAM shared between QEMU and a vhost-user backend counted once)"
		echo "  ours:      $OURS_LABEL peak PSS $(median "${mem_ours[@]}") KiB; run $(fmt "$(median "${ms_ours[@]}")" 0) ms, CPU $(fmt "$(median "${cpu_ours[@]}")" 0) ms"
		echo "  ours-dio:  $OURS_LABEL peak PSS $(median "${mem_dio[@]}") KiB; run $(fmt "$(median "${ms_dio[@]}")" 0) ms, CPU $(fmt "$(median "${cpu_dio[@]}")" 0) ms"
		[[ $peers == *vfsd* ]] && echo "  virtiofsd: QEMU peak PSS + virtiofsd peak PSS $(median "${mem_vfsd[@]}") KiB; run $(fmt "$(median "${ms_vfsd[@]}")" 0) ms, CPU (QEMU + virtiofsd) $(fmt "$(median "${cpu_vfsd[@]}")" 0) ms"
		[ "$have9p" = 1 ] && echo "  9p:        QEMU peak PSS $(median "${mem_9p[@]}") KiB; run $(fmt "$(median "${ms_9p[@]}")" 0) ms, CPU $(fmt "$(median "${cpu_9p[@]}")" 0) ms"
		[ "$have9p" = 1 ] || echo "SKIPPED 9p: $qemu_kernel has no 9P (it needs CONFIG_NET_9P=y, CONFIG_NET_9P_VIRTIO=y, CONFIG_9P_FS=y; kernel/config.bench.fragment)"
	} > "$BENCH_TMP/$ACCEL.notes"
	if [ "$ACCEL" = kvm ]; then
		RATIOS="ours/native ours/virtiofsd ours/9p ours-dio/native ours-dio/9p" table "${cols[@]}"
	else
		RATIOS="ours/virtiofsd ours/9p ours-dio/9p" table "${cols[@]}"
	fi
	cat "$BENCH_TMP/$ACCEL.notes"
	echo "guest clocksource: ours $(awk '$1 == "clocksource" { print $2 }' "$BENCH_TMP/ours.1.raw" | tr -d '\r')," \
		"virtiofsd $(awk '$1 == "clocksource" { print $2 }' "$BENCH_TMP/vfsd.1.raw" 2> /dev/null | tr -d '\r')," \
		"9p $(awk '$1 == "clocksource" { print $2 }' "$BENCH_TMP/9p.1.raw" 2> /dev/null | tr -d '\r')"
	echo "note: guest caches dropped before the cold steps (host caches stay warm for every guest peer;"
	echo "      native drops them: its cold steps read the disk); ours, ours-dio and virtiofsd cache entries"
	echo "      and attributes for 1 s, 9p does not; ours and virtiofsd keep file data in the guest's page"
	echo "      cache (readahead: ours 1 MiB, set by our init; virtiofsd 128 KiB), ours-dio and 9p move it"
	echo "      straight between the program's buffer and the host file; untar = busybox tar, $entries entries."
	[ "$ACCEL" = kvm ] || echo "      The guest CPU is emulated, so ratios show the machinery."
}

for p in "${PARTS[@]}"; do
	"${p}_part"
	echo
done
