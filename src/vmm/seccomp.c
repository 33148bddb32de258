/* seccomp-BPF allow-list applied to every VMM thread once the VM is built (seccomp(2), x86-64). */
#define LOG_MODULE "seccomp"
#include "vmm/seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/fs.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

/*
 * Calls allowed whatever their arguments. Gathered by running the test-guest scenarios, tcg_vm's
 * e2e scenarios (the same device backends) and the FUSE server's POSIX checks with the filter in
 * log mode, then completed by reading the code paths a Linux guest can reach (docs/security.md).
 */
static const int allowed[] = {
	/* memory: malloc, thread stacks, guest RAM hints, balloon (MADV_REMOVE) */
	SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_mprotect, SYS_madvise,
	/* threads: vCPUs, FUSE workers; kicks (tgkill), joins (futex), glibc's thread setup */
	SYS_futex, SYS_set_robust_list, SYS_rseq, SYS_gettid, SYS_getpid, SYS_sched_yield,
	SYS_sched_getaffinity, SYS_exit, SYS_exit_group, SYS_restart_syscall, SYS_tgkill, SYS_tkill,
	/* signals: kick handler, SIGINT/SIGTERM/SIGWINCH handlers restored at the end */
	SYS_rt_sigreturn, SYS_rt_sigprocmask, SYS_rt_sigaction, SYS_rt_sigtimedwait, SYS_sigaltstack,
	/* time */
	SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday, SYS_nanosleep, SYS_clock_nanosleep,
	SYS_timerfd_create, SYS_timerfd_settime, SYS_timerfd_gettime,
	/* the I/O thread; virtio-fs workers waiting on their queue's kick fd (virtio_fs.c) */
	SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2,
	SYS_eventfd2, SYS_poll, SYS_ppoll,
	/* descriptors */
	SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_pwrite64, SYS_preadv,
	SYS_pwritev, SYS_preadv2, SYS_pwritev2, SYS_lseek, SYS_close, SYS_dup, SYS_dup3, SYS_fcntl,
	SYS_pipe2,
	/* the FUSE server: O_PATH handles used through *at() calls, xattrs through /proc/self/fd */
	SYS_openat, SYS_openat2, SYS_newfstatat, SYS_fstat, SYS_statx, SYS_fstatfs, SYS_statfs,
	SYS_mkdirat, SYS_mknodat, SYS_unlinkat, SYS_renameat, SYS_renameat2, SYS_linkat,
	SYS_symlinkat, SYS_readlinkat, SYS_fchmodat, SYS_fchmod, SYS_fchownat, SYS_fchown,
	SYS_utimensat, SYS_faccessat, SYS_faccessat2, SYS_getdents64, SYS_ftruncate, SYS_fallocate,
	SYS_fsync, SYS_fdatasync, SYS_syncfs, SYS_copy_file_range, SYS_flock, SYS_umask,
	SYS_getxattr, SYS_lgetxattr, SYS_fgetxattr, SYS_setxattr, SYS_lsetxattr, SYS_fsetxattr,
	SYS_listxattr, SYS_llistxattr, SYS_flistxattr, SYS_removexattr, SYS_lremovexattr,
	SYS_fremovexattr, SYS_getrlimit, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid,
	/* path calls with an *at() twin above (no new power): glibc's unlink/open/stat, e.g. the
	 * vsock device removing its bound socket files at teardown */
	SYS_open, SYS_stat, SYS_lstat, SYS_access, SYS_unlink, SYS_rmdir, SYS_mkdir, SYS_rename,
	SYS_readlink,
	/* vsock host side and the TSI proxy (socket() itself is checked below) */
	SYS_connect, SYS_bind, SYS_listen, SYS_accept, SYS_accept4, SYS_shutdown, SYS_getsockopt,
	SYS_setsockopt, SYS_getsockname, SYS_getpeername, SYS_sendto, SYS_recvfrom, SYS_sendmsg,
	SYS_recvmsg,
	/* malloc (arena randomisation in newer glibc) */
	SYS_getrandom,
};

#if defined(__SANITIZE_ADDRESS__)
/*
 * Sanitizer builds only (tests): LeakSanitizer's exit-time check stops the world from a
 * tracer task (prctl, a clone without CLONE_THREAD, ptrace, wait4, getdents of /proc/self/task).
 */
#define SANITIZER_BUILD 1
static const int sanitizer_allowed[] = {
	SYS_prctl, SYS_ptrace, SYS_wait4, SYS_getppid, SYS_getdents, SYS_clone,
};
#else
#define SANITIZER_BUILD 0
#endif

/* ioctl requests beyond KVM's own ('AE' type byte): the console's terminal handling, and the
 * file attribute ioctls the FUSE server passes on for the guest (devices/fs/fs_ioctl.c). */
static const unsigned int extra_ioctls[] = {
	0x5401 /* TCGETS */, 0x5402 /* TCSETS */, 0x5403 /* TCSETSW */, 0x5404 /* TCSETSF */,
	0x5413 /* TIOCGWINSZ */, 0x541B /* FIONREAD */, 0x5421 /* FIONBIO */,
	FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR,
};

static const unsigned int socket_families[] = { AF_UNIX, AF_INET, AF_INET6 };

#define ARG_LO(n) (offsetof(struct seccomp_data, args) + (n) * sizeof(__u64))

struct bpf {
	struct sock_filter *prog;
	size_t cap, len;
	unsigned int deny;          /* SECCOMP_RET_* for a call outside the list */
};

static void emit(struct bpf *b, __u16 code, __u32 k, __u8 jt, __u8 jf)
{
	if (b->len < b->cap)
		b->prog[b->len] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
	b->len++;
}

static void ret(struct bpf *b, __u32 action)
{
	emit(b, BPF_RET | BPF_K, action, 0, 0);
}

static void load(struct bpf *b, __u32 off)
{
	emit(b, BPF_LD | BPF_W | BPF_ABS, off, 0, 0);
}

/* if (A == k) return ALLOW; */
static void allow_if(struct bpf *b, __u32 k)
{
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1);
	ret(b, SECCOMP_RET_ALLOW);
}

/* if (nr == syscall) { A = arg; allow any of vals (or A & mask == masked); deny } */
static void arg_in(struct bpf *b, int nr, unsigned int arg, const unsigned int *vals, size_t n,
		   __u32 mask, __u32 masked)
{
	/* Skip the block: load, 2 per value, the mask check (and, compare, allow), deny. */
	size_t body = 1 + 2 * n + (mask ? 3 : 0) + 1;

	emit(b, BPF_JMP | BPF_JEQ | BPF_K, (__u32)nr, 0, (__u8)body);
	load(b, (__u32)ARG_LO(arg));
	for (size_t i = 0; i < n; i++)
		allow_if(b, vals[i]);
	if (mask) {
		emit(b, BPF_ALU | BPF_AND | BPF_K, mask, 0, 0);
		allow_if(b, masked);
	}
	ret(b, b->deny);
}

/* clone only for threads (CLONE_THREAD), clone3 answered ENOSYS so glibc falls back to clone. */
static void thread_rules(struct bpf *b)
{
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1);
	ret(b, SECCOMP_RET_ERRNO | ENOSYS);
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4);
	load(b, (__u32)ARG_LO(0));
	emit(b, BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1);
	ret(b, SECCOMP_RET_ALLOW);
	ret(b, b->deny);
}

/* prlimit64 only to read (new_limit == NULL): the FUSE server's descriptor guard, getrlimit(3). */
static void rlimit_rules(struct bpf *b)
{
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, SYS_prlimit64, 0, 6);
	load(b, (__u32)ARG_LO(2));
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3);
	load(b, (__u32)ARG_LO(2) + 4);
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
	ret(b, SECCOMP_RET_ALLOW);
	ret(b, b->deny);
}

static void build_all(struct bpf *b)
{
	load(b, offsetof(struct seccomp_data, arch));
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	ret(b, b->deny);
	load(b, offsetof(struct seccomp_data, nr));
	/* x32 numbers alias the 64-bit ones with bit 30 set: refuse them all. */
	emit(b, BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
	ret(b, b->deny);
	/* ioctl first: KVM_RUN is the hot call. The request is 32 bits (ioctl(2)'s unsigned int). */
	arg_in(b, SYS_ioctl, 1, extra_ioctls, sizeof(extra_ioctls) / sizeof(extra_ioctls[0]), 0xff00,
	       0xAE00);
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		allow_if(b, (__u32)allowed[i]);
#if SANITIZER_BUILD
	for (size_t i = 0; i < sizeof(sanitizer_allowed) / sizeof(sanitizer_allowed[0]); i++)
		allow_if(b, (__u32)sanitizer_allowed[i]);
#endif
	arg_in(b, SYS_socket, 0, socket_families, sizeof(socket_families) / sizeof(socket_families[0]), 0, 0);
	arg_in(b, SYS_socketpair, 0, socket_families, 1, 0, 0);
	thread_rules(b);
	rlimit_rules(b);
	ret(b, b->deny);
}

int seccomp_build(int level, struct sock_filter *prog, size_t cap)
{
	struct bpf b = { .prog = prog, .cap = cap };

	if (level == SECCOMP_LEVEL_ON)
		b.deny = SECCOMP_RET_KILL_PROCESS;
	else if (level == SECCOMP_LEVEL_LOG)
		b.deny = SECCOMP_RET_LOG;
	else
		return -EINVAL;
	build_all(&b);
	if (b.len > cap)
		return -ENOSPC;
	return (int)b.len;
}

int seccomp_sanitizer_build(void)
{
	return SANITIZER_BUILD;
}

const char *seccomp_level_name(int level)
{
	switch (level) {
	case SECCOMP_LEVEL_OFF: return "off";
	case SECCOMP_LEVEL_LOG: return "log";
	case SECCOMP_LEVEL_ON: return "on";
	default: return "?";
	}
}

int seccomp_resolve(int level)
{
	const char *env;

	if (level == SECCOMP_LEVEL_OFF || level == SECCOMP_LEVEL_LOG || level == SECCOMP_LEVEL_ON)
		return level;
	if (level != SECCOMP_LEVEL_ENV)
		return -EINVAL;
	env = getenv("KRUN_SECCOMP");
	if (!env || !*env)
		return SECCOMP_LEVEL_DEFAULT;
	for (int l = SECCOMP_LEVEL_OFF; l <= SECCOMP_LEVEL_ON; l++)
		if (!strcmp(env, seccomp_level_name(l)))
			return l;
	log_error("KRUN_SECCOMP=%s: expected off, log or on", env);
	return -EINVAL;
}

static int install(const struct sock_fprog *fprog, unsigned int flags)
{
	long r;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, fprog);
	if (r < 0)
		return -errno;
	if (r > 0) {
		/* Thread r already has a filter this one does not descend from. */
		log_error("seccomp TSYNC failed: thread %ld has a different filter", r);
		return -EBUSY;
	}
	return 0;
}

static int apply(int level, unsigned int flags)
{
	struct sock_filter prog[SECCOMP_MAX_INSNS];
	struct sock_fprog fprog = { .filter = prog };
	int len, ret;

	level = seccomp_resolve(level);
	if (level < 0 || level == SECCOMP_LEVEL_OFF)
		return level < 0 ? level : 0;
	len = seccomp_build(level, prog, SECCOMP_MAX_INSNS);
	if (len < 0)
		return len;
	fprog.len = (unsigned short)len;
	ret = install(&fprog, flags);
	if (ret && level == SECCOMP_LEVEL_LOG) {
		log_warn("cannot install the seccomp filter (log mode, going on): %s", strerror(-ret));
		return 0;
	}
	if (ret)
		log_error("cannot install the seccomp filter: %s", strerror(-ret));
	else
		log_debug("seccomp filter installed: %s, %d instructions", seccomp_level_name(level), len);
	return ret;
}

int seccomp_apply(int level)
{
	return apply(level, SECCOMP_FILTER_FLAG_TSYNC);
}

int seccomp_apply_thread(int level)
{
	return apply(level, 0);
}
