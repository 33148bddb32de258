/* The VMM's seccomp filter: it builds, allowed calls pass, others kill (on) or only log (log). */
#include "harness.h"

#include "vmm/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Child exit codes: 0 = every step behaved; 10+n = step n went wrong. */
typedef int (*child_fn)(void);

/* Run fn in a forked child under `level`; its wait status. */
static int in_child(int level, child_fn fn)
{
	struct rlimit no_core = { 0, 0 };
	int status = -1;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		setrlimit(RLIMIT_CORE, &no_core);    /* SIGSYS would dump core */
		if (seccomp_apply(level))
			_exit(99);
		_exit(fn());
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

static void *thread_main(void *arg)
{
	return arg;
}

/* What the VMM's threads do: files, eventfds, epoll, threads, memory, sockets, KVM ioctls. */
static int allowed_calls(void)
{
	char buf[16];
	int fd = openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC), efd = eventfd(0, EFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC), sk = socket(AF_UNIX, SOCK_STREAM, 0);
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t one = 1;
	struct fsxattr fsx;
	struct rlimit rl;
	pthread_t t;
	void *p;

	if (fd < 0 || read(fd, buf, sizeof(buf)) != 0 || efd < 0 || ep < 0 || sk < 0)
		return 10;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) || write(efd, &one, 8) != 8 || epoll_wait(ep, &ev, 1, 0) != 1)
		return 11;
	if (pthread_create(&t, NULL, thread_main, NULL) || pthread_join(t, NULL))
		return 12;
	p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || madvise(p, 4096, MADV_DONTNEED) || munmap(p, 1 << 20))
		return 13;
	free(malloc(4 << 20));
	/* Allowed ioctl requests reach the kernel (and fail here on what is not a terminal/KVM fd). */
	if (ioctl(fd, TCGETS, buf) == 0 || errno != ENOTTY || ioctl(fd, 0xAE00 /* KVM_GET_API_VERSION */) == 0)
		return 14;
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		return 15;
	if (getrlimit(RLIMIT_NOFILE, &rl))      /* the FUSE server's descriptor guard */
		return 16;
	/* The FUSE server's file attribute ioctls reach the kernel (an eventfd: ENOTTY). */
	if (ioctl(efd, FS_IOC_GETFLAGS, &one) == 0 || ioctl(efd, FS_IOC_FSGETXATTR, &fsx) == 0)
		return 17;
	close(fd);
	close(efd);
	close(ep);
	close(sk);
	return 0;
}

static int do_execve(void)
{
	char *argv[] = { "true", NULL };

	execve("/bin/true", argv, NULL);
	return 20;
}

static int do_ptrace(void)
{
	ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	return 21;
}

static int do_netlink(void)
{
	socket(AF_NETLINK, SOCK_RAW, 0);
	return 22;
}

static int do_tiocsti(void)
{
	char c = 'x';

	ioctl(0, TIOCSTI, &c);      /* terminal input injection: not on the list */
	return 23;
}

static int do_fork(void)
{
	pid_t pid = fork();        /* clone without CLONE_THREAD */

	if (pid == 0)
		_exit(0);
	return 24;
}

static int do_setrlimit(void)
{
	struct rlimit rl = { 64, 64 };

	setrlimit(RLIMIT_NOFILE, &rl);          /* prlimit64 with a new limit */
	return 26;
}

static void *thread_execve(void *arg)
{
	(void)arg;
	do_execve();
	return NULL;
}

/* A call from another thread kills the whole process, not just that thread. */
static int thread_kills_process(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, thread_execve, NULL) == 0)
		pthread_join(t, NULL);
	return 25;
}

static void *thread_filtered_netlink(void *arg)
{
	(void)arg;
	if (seccomp_apply_thread(SECCOMP_LEVEL_ON))
		return (void *)1;
	socket(AF_NETLINK, SOCK_RAW, 0);
	return NULL;
}

static void *thread_filtered_allowed(void *arg)
{
	(void)arg;
	if (seccomp_apply_thread(SECCOMP_LEVEL_ON) || allowed_calls())
		return (void *)1;
	return NULL;
}

/* tcg_vm's layout: a backend thread under the filter, the main thread free to do more. */
static int thread_filter_spares_main(void)
{
	pthread_t t;
	void *res = (void *)1;
	int fd;

	if (pthread_create(&t, NULL, thread_filtered_allowed, NULL) || pthread_join(t, &res) || res)
		return 30;
	fd = socket(AF_NETLINK, SOCK_RAW, 0);   /* off the list, but this thread is unfiltered */
	if (fd < 0)
		return 31;
	close(fd);
	return 0;
}

/* A call off the list in the filtered thread still kills the whole process. */
static int thread_filter_kills_process(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, thread_filtered_netlink, NULL) == 0)
		pthread_join(t, NULL);
	return 32;
}

static void test_build(void)
{
	struct sock_filter prog[SECCOMP_MAX_INSNS];
	int on = seccomp_build(SECCOMP_LEVEL_ON, prog, SECCOMP_MAX_INSNS);
	int log = seccomp_build(SECCOMP_LEVEL_LOG, prog, SECCOMP_MAX_INSNS);

	CHECK(on > 100 && on <= SECCOMP_MAX_INSNS);
	CHECK_EQ(log, on);
	CHECK_EQ(prog[log - 1].code, BPF_RET | BPF_K);
	CHECK_EQ(prog[log - 1].k, SECCOMP_RET_LOG);
	CHECK_EQ(seccomp_build(SECCOMP_LEVEL_OFF, prog, SECCOMP_MAX_INSNS), -EINVAL);
	CHECK_EQ(seccomp_build(SECCOMP_LEVEL_ON, prog, 10), -ENOSPC);
}

static void test_resolve(void)
{
	unsetenv("KRUN_SECCOMP");
	CHECK_EQ(seccomp_resolve(SECCOMP_LEVEL_ENV), SECCOMP_LEVEL_ON);     /* enforcing by default */
	setenv("KRUN_SECCOMP", "", 1);
	CHECK_EQ(seccomp_resolve(SECCOMP_LEVEL_ENV), SECCOMP_LEVEL_ON);
	setenv("KRUN_SECCOMP", "on", 1);
	CHECK_EQ(seccomp_resolve(SECCOMP_LEVEL_ENV), SECCOMP_LEVEL_ON);
	setenv("KRUN_SECCOMP", "off", 1);
	CHECK_EQ(seccomp_resolve(SECCOMP_LEVEL_ENV), SECCOMP_LEVEL_OFF);
	CHECK_EQ(seccomp_resolve(SECCOMP_LEVEL_LOG), SECCOMP_LEVEL_LOG);    /* explicit beats env */
	setenv("KRUN_SECCOMP", "yes", 1);
	CHECK_EQ(seccomp_resolve(SECCOMP_LEVEL_ENV), -EINVAL);
	CHECK_EQ(seccomp_resolve(42), -EINVAL);
	unsetenv("KRUN_SECCOMP");
	CHECK_EQ(seccomp_apply(SECCOMP_LEVEL_OFF), 0);   /* off installs nothing */
}

static void test_enforce_allows(void)
{
	int st = in_child(SECCOMP_LEVEL_ON, allowed_calls);

	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
}

static void expect_sigsys(child_fn fn)
{
	int st = in_child(SECCOMP_LEVEL_ON, fn);

	CHECK(WIFSIGNALED(st));
	CHECK_EQ(WTERMSIG(st), SIGSYS);
}

static void test_enforce_kills(void)
{
	expect_sigsys(do_execve);
	expect_sigsys(do_netlink);
	expect_sigsys(do_tiocsti);
	if (!seccomp_sanitizer_build()) {      /* LeakSanitizer's tracer needs these two */
		expect_sigsys(do_ptrace);
		expect_sigsys(do_fork);
	}
	expect_sigsys(thread_kills_process);
	expect_sigsys(do_setrlimit);
}

static void test_thread_filter(void)
{
	int st = in_child(SECCOMP_LEVEL_OFF, thread_filter_spares_main);

	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
	st = in_child(SECCOMP_LEVEL_OFF, thread_filter_kills_process);
	CHECK(WIFSIGNALED(st));
	CHECK_EQ(WTERMSIG(st), SIGSYS);
}

static void test_log_only_logs(void)
{
	int st = in_child(SECCOMP_LEVEL_LOG, do_netlink);

	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 22);
	st = in_child(SECCOMP_LEVEL_LOG, allowed_calls);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
}

int main(void)
{
	RUN_TEST(test_build);
	RUN_TEST(test_resolve);
	RUN_TEST(test_enforce_allows);
	RUN_TEST(test_enforce_kills);
	RUN_TEST(test_thread_filter);
	RUN_TEST(test_log_only_logs);
	return HARNESS_EXIT();
}
