# Shared by the bench scripts: the bench-only guest kernel, timing and memory of a process
# tree, medians and ratios, busybox roots, initramfs images and the QEMU microvm command line.
# Source it after `cd` to the repository root, with BENCH_TMP set to a scratch directory.

BUILD=${BUILD:-build}
BENCH_QEMU=${BENCH_QEMU:-qemu-system-x86_64}
BENCH_BUSYBOX=${BENCH_BUSYBOX:-/bin/busybox}
BENCH_VIRTIOFSD=${BENCH_VIRTIOFSD:-/usr/lib/qemu/virtiofsd}

# bench_kernel OUTDIR: the bench-only guest kernel in OUTDIR/vmlinux (+ vmlinux.config): the
# product options plus kernel/config.bench.fragment (9P and virtio-net, for the QEMU peers of
# fs.sh and net.sh). kernel/build.sh builds and caches it, run from a scratch tree whose
# kernel/config.fragment is the two fragments joined: its cache key hashes the fragment, so the
# variant gets a key of its own while the product's (which also hashes build.sh) stays as it is.
bench_kernel() {
	local tree=$BENCH_TMP/bench-kernel-tree
	mkdir -p "$tree/kernel"
	ln -sfn "$PWD/scripts" "$tree/scripts"
	ln -sf "$PWD/kernel/build.sh" "$tree/kernel/build.sh"
	cat kernel/config.fragment kernel/config.bench.fragment > "$tree/kernel/config.fragment"
	[ -f "$("$tree/kernel/build.sh" --entry)/vmlinux" ] ||
		echo "building the bench kernel (product + kernel/config.bench.fragment): first run only," \
			"6-11 min on 2 idle cores, longer on a loaded machine"
	"$tree/kernel/build.sh" "$1" > /dev/null
}

# use_bench_kernel: VMLINUX = the bench kernel (built on first use) unless KRUN_VMLINUX names a
# kernel; when the build fails VMLINUX stays as it was (the peers that need 9P or virtio-net skip).
use_bench_kernel() {
	[ -z "${KRUN_VMLINUX:-}" ] || return 0
	if bench_kernel "$PWD/$BUILD/bench-kernel"; then
		VMLINUX=$PWD/$BUILD/bench-kernel/vmlinux
	else
		echo "the bench kernel did not build: $VMLINUX runs every peer"
	fi
}

# Why this machine has no hardware KVM (chroot_vm cannot boot Linux), or nothing.
hw_kvm_missing() {
	[ -e /dev/kvm ] || { echo "no /dev/kvm"; return; }
	[ -w /dev/kvm ] || { echo "/dev/kvm not writable"; return; }
	if [ -d /sys/module/kvm_pvm ]; then
		echo "/dev/kvm is PVM (kvm_pvm), which cannot run a Linux guest (see PLATFORM.md)"
		return
	fi
	grep -qwE 'vmx|svm' /proc/cpuinfo || echo "no vmx/svm in /proc/cpuinfo"
}

# Why a QEMU TCG peer cannot run here, or nothing.
qemu_missing() {
	command -v "$BENCH_QEMU" > /dev/null || { echo "$BENCH_QEMU not installed (apt-get install qemu-system-x86)"; return; }
	[ -x "$BENCH_BUSYBOX" ] || { echo "$BENCH_BUSYBOX missing (apt-get install busybox-static)"; return; }
	if ldd "$BENCH_BUSYBOX" > /dev/null 2>&1; then echo "$BENCH_BUSYBOX is not static (busybox-static)"; return; fi
	command -v cpio > /dev/null || echo "cpio not installed"
}

# The launcher behind measure(): a small static C program, so that neither the fork of a big
# parent (its RSS counts in the child's ru_maxrss until exec) nor interpreter start-up is measured.
# bx PERIOD_MS OUT ERR CMD...: runs CMD (stdin /dev/null) and prints "status wall_ms maxrss_kib
# tree_rss_kib tree_pss_kib cpu_ms": wall from fork to exit (pidfd), the largest peak RSS of one
# process (wait4), the largest sums of RSS and PSS over CMD's process tree seen every PERIOD_MS,
# and user + system CPU time of CMD and the descendants it waited for.
bench_build_bx() {
	[ -x "$BENCH_TMP/bx" ] && return
	cat > "$BENCH_TMP/bx.c" <<-'EOF'
	#define _GNU_SOURCE
	#include <dirent.h>
	#include <fcntl.h>
	#include <poll.h>
	#include <stdio.h>
	#include <stdlib.h>
	#include <string.h>
	#include <sys/resource.h>
	#include <sys/syscall.h>
	#include <sys/wait.h>
	#include <time.h>
	#include <unistd.h>

	static double now_ms(void)
	{
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
	}

	static int parent_of(const char *pid)
	{
		char path[64], buf[512], *p;
		int fd, n, ppid = -1;
		snprintf(path, sizeof(path), "/proc/%s/stat", pid);
		if ((fd = open(path, O_RDONLY)) < 0)
			return -1;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			return -1;
		buf[n] = 0;
		if ((p = strrchr(buf, ')')) && sscanf(p + 1, " %*c %d", &ppid) != 1)
			ppid = -1;
		return ppid;
	}

	/* Sums Rss and Pss (KiB) over root and its descendants. */
	static void tree_mem(int root, long *rss, long *pss)
	{
		static int pids[4096], ppids[4096];
		int n = 0, in[4096] = { 0 }, changed = 1;
		DIR *d = opendir("/proc");
		struct dirent *e;
		*rss = *pss = 0;
		while (d && (e = readdir(d)) && n < 4096)
			if (e->d_name[0] >= '0' && e->d_name[0] <= '9') {
				pids[n] = atoi(e->d_name);
				ppids[n++] = parent_of(e->d_name);
			}
		if (d)
			closedir(d);
		while (changed) {
			changed = 0;
			for (int i = 0; i < n; i++) {
				if (in[i])
					continue;
				int hit = pids[i] == root;
				for (int j = 0; !hit && j < n; j++)
					hit = in[j] && ppids[i] == pids[j];
				if (hit)
					in[i] = changed = 1;
			}
		}
		for (int i = 0; i < n; i++) {
			char path[64], line[128];
			FILE *f;
			long v;
			if (!in[i])
				continue;
			snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pids[i]);
			if (!(f = fopen(path, "r")))
				continue;
			while (fgets(line, sizeof(line), f)) {
				if (sscanf(line, "Rss: %ld", &v) == 1)
					*rss += v;
				else if (sscanf(line, "Pss: %ld", &v) == 1)
					*pss += v;
			}
			fclose(f);
		}
	}

	int main(int argc, char **argv)
	{
		int period, pidfd, status;
		long rss, pss, max_rss = 0, max_pss = 0;
		struct rusage ru;
		double t0, t1;
		pid_t pid;

		if (argc < 5)
			return fprintf(stderr, "usage: bx PERIOD_MS OUT ERR CMD...\n"), 2;
		period = atoi(argv[1]);
		t0 = now_ms();
		pid = fork();
		if (pid == 0) {
			int i = open("/dev/null", O_RDONLY), o = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644),
			    e = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
				_exit(126);
			execvp(argv[4], argv + 4);
			_exit(127);
		}
		if (pid < 0 || (pidfd = syscall(SYS_pidfd_open, pid, 0)) < 0)
			return perror("bx"), 2;
		for (;;) {
			struct pollfd p = { .fd = pidfd, .events = POLLIN };
			if (poll(&p, 1, period > 0 ? period : -1) > 0)
				break;
			tree_mem(pid, &rss, &pss);
			if (rss > max_rss)
				max_rss = rss;
			if (pss > max_pss)
				max_pss = pss;
		}
		if (wait4(pid, &status, 0, &ru) != pid)
			return perror("bx: wait4"), 2;
		t1 = now_ms();
		printf("%d %.3f %ld %ld %ld %.1f\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
		       t1 - t0, ru.ru_maxrss, max_rss, max_pss,
		       (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
		return 0;
	}
	EOF
	cc -O2 -static -o "$BENCH_TMP/bx" "$BENCH_TMP/bx.c" || { echo "cannot build the launcher (cc, libc6-dev)" >&2; return 1; }
}

# measure OUT ERR CMD...: runs CMD through bx; sets M_RC, M_MS (wall, fork to exit), M_RSS (KiB:
# the largest peak RSS of one process, or the largest sampled RSS sum of the tree when higher),
# M_PSS (largest sampled PSS sum of the tree; 0 when the run ended before the first sample),
# M_CPU (ms of user + system CPU time: steadier than wall time on a loaded machine).
# BENCH_SAMPLE_MS (20) is the sampling period; 0 turns sampling off.
measure() {
	local res one tree
	bench_build_bx
	res=$("$BENCH_TMP/bx" "${BENCH_SAMPLE_MS:-20}" "$@") || { echo "measure: launcher failed" >&2; return 1; }
	read -r M_RC M_MS one tree M_PSS M_CPU <<< "$res"
	M_RSS=$(( one > tree ? one : tree ))
}

# median of the arguments (numbers); "-" if none.
median() {
	[ $# -gt 0 ] || { echo -; return; }
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.2f", a / b; else print "-" }'; }
fmt() { awk -v a="$1" -v d="${2:-1}" 'BEGIN { if (a == "-") print "-"; else printf "%.*f", d, a }'; }

# bb_root DIR: a root tree holding only busybox-static, every applet a symlink.
bb_root() {
	local a
	mkdir -p "$1/bin" "$1/dev" "$1/proc" "$1/sys" "$1/tmp" "$1/run" "$1/etc" "$1/mnt" "$1/work"
	cp "$BENCH_BUSYBOX" "$1/bin/busybox"
	for a in $("$BENCH_BUSYBOX" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$1/bin/$a"
	done
}

# initramfs DIR OUT: a newc cpio of DIR, plus /dev/console (so /init has stdio on the serial port).
initramfs() {
	[ -e "$1/dev/console" ] || mknod -m 600 "$1/dev/console" c 5 1
	(cd "$1" && find . | cpio -o -H newc --quiet) > "$2"
}

# qemu_microvm ACCEL SMP MIB KERNEL: QEMU_CMD = the microvm command line of PLATFORM.md (the
# one tcg_vm uses, minus its devices); the caller appends -initrd/-append/devices.
qemu_microvm() {
	local machine=microvm,x-option-roms=off,rtc=off,isa-serial=on,acpi=off cpu=max
	[ "$1" = kvm ] && cpu=host
	[ -n "${QEMU_MEMBACKEND:-}" ] && machine=$machine,memory-backend=$QEMU_MEMBACKEND
	QEMU_CMD=("$BENCH_QEMU" -accel "$1" -cpu "$cpu" -M "$machine" -smp "$2" -m "$3" -nodefaults
		-no-user-config -display none -serial stdio -no-reboot
		-global virtio-mmio.force-legacy=false -kernel "$4")
}

# wait_mount DIR: waits up to 5 s for a mount on DIR.
wait_mount() {
	local i
	for i in $(seq 100); do mountpoint -q "$1" && return 0; sleep 0.05; done
	return 1
}
