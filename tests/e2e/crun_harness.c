/* crun_harness: calls libkrun.so.1 the way crun's krun handler does, around a container switch. */
#include <libkrun.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Usage: crun_harness [--late-ctx] [--no-sys] ROOT
 * Like crun 1.21-1.27: dlopen and krun_create_ctx in the host process; then, in a child that
 * is PID 1 of new mount and PID namespaces, pivot_root into ROOT (with /proc, /sys and a /dev
 * holding kvm and null, as crun mounts them), crun's default capabilities only (no
 * CAP_SYS_ADMIN), no_new_privs, every fd >= 3 closed, and only then
 * krun_set_log_level(1), krun_set_root("/"), krun_set_vm_config(1, 512), krun_start_enter.
 * On success the child exits with the guest program's status, which becomes ours. If
 * krun_start_enter returns, the child prints "start_enter=RET seconds=S" on stderr and exits
 * 100. --late-ctx creates the context after the switch (a control: the kernel bundle is then
 * out of reach); --no-sys leaves /sys unmounted. Harness failures exit 101.
 */

#define EXIT_RETURNED 100
#define EXIT_HARNESS 101

struct api {
	__typeof__(krun_create_ctx) *create_ctx;
	__typeof__(krun_set_log_level) *set_log_level;
	__typeof__(krun_set_root) *set_root;
	__typeof__(krun_set_vm_config) *set_vm_config;
	__typeof__(krun_start_enter) *start_enter;
};

static void die(const char *what)
{
	fprintf(stderr, "crun_harness: %s: %s\n", what, strerror(errno));
	exit(EXIT_HARNESS);
}

/* crun dlopens by soname (tries the -sev and -awsnitro flavours too, absent here). */
static void load(struct api *a)
{
	void *h = dlopen("libkrun.so.1", RTLD_NOW);

	if (!h) {
		fprintf(stderr, "crun_harness: dlopen libkrun.so.1: %s\n", dlerror());
		exit(EXIT_HARNESS);
	}
	a->create_ctx = (__typeof__(a->create_ctx))dlsym(h, "krun_create_ctx");
	a->set_log_level = (__typeof__(a->set_log_level))dlsym(h, "krun_set_log_level");
	a->set_root = (__typeof__(a->set_root))dlsym(h, "krun_set_root");
	a->set_vm_config = (__typeof__(a->set_vm_config))dlsym(h, "krun_set_vm_config");
	a->start_enter = (__typeof__(a->start_enter))dlsym(h, "krun_start_enter");
	if (!a->create_ctx || !a->set_log_level || !a->set_root || !a->set_vm_config ||
	    !a->start_enter) {
		fprintf(stderr, "crun_harness: a krun_* symbol is missing\n");
		exit(EXIT_HARNESS);
	}
}

static void mount_or_die(const char *src, const char *dst, const char *type,
			 unsigned long flags, const char *data)
{
	if (mount(src, dst, type, flags, data) < 0)
		die(dst);
}

/* What crun gives the container: proc, sysfs (read-only), a tmpfs /dev with kvm and null. */
static void container_mounts(bool with_sys)
{
	mount_or_die("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	if (with_sys)
		mount_or_die("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			     NULL);
	mount_or_die("tmpfs", "dev", "tmpfs", MS_NOSUID, "mode=755");
	if (mknod("dev/kvm", S_IFCHR | 0666, makedev(10, 232)) < 0 ||
	    mknod("dev/null", S_IFCHR | 0666, makedev(1, 3)) < 0)
		die("mknod");
}

/* The host's tree becomes unreachable: paths remembered from before the switch break. */
static void enter_root(const char *root, bool with_sys)
{
	mount_or_die(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	mount_or_die(root, root, NULL, MS_BIND | MS_REC, NULL);
	if (chdir(root) < 0)
		die(root);
	container_mounts(with_sys);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		die("umount old root");
	if (chdir("/") < 0)
		die("chdir /");
}

/* The capabilities podman/crun give a container by default; the rest are dropped. */
static const int default_caps[] = {
	CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_NET_BIND_SERVICE,
	CAP_SETFCAP, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_CHROOT,
};

static void drop_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	uint64_t keep = 0;

	for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
		keep |= 1ull << default_caps[i];
	/* The bounding set first (needs CAP_SETPCAP, kept), then what the process holds. */
	for (int cap = 0; cap < 64; cap++)
		if (!(keep & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
		    errno != EINVAL)
			die("PR_CAPBSET_DROP");
	for (int i = 0; i < 2; i++)
		data[i].effective = data[i].permitted = data[i].inheritable =
			(uint32_t)(keep >> (32 * i));
	if (syscall(SYS_capset, &hdr, data) < 0)
		die("capset");
}

/* crun hands the container process nothing but stdio. */
static void close_fds(void)
{
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
	for (int fd = 3; fd < 65536; fd++)
		close(fd);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void __attribute__((noreturn)) container(const struct api *a, int32_t ctx,
						const char *root, bool with_sys)
{
	double t0;
	int32_t ret;

	enter_root(root, with_sys);
	drop_caps();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("no_new_privs");
	close_fds();
	if (ctx < 0)
		ctx = a->create_ctx();
	if (ctx < 0 || a->set_log_level(KRUN_LOG_LEVEL_ERROR) || a->set_root((uint32_t)ctx, "/") ||
	    a->set_vm_config((uint32_t)ctx, 1, 512)) {
		fprintf(stderr, "crun_harness: configuration failed (ctx %d)\n", ctx);
		exit(EXIT_HARNESS);
	}
	t0 = now();
	ret = a->start_enter((uint32_t)ctx);
	fprintf(stderr, "start_enter=%d seconds=%.2f\n", ret, now() - t0);
	exit(EXIT_RETURNED);
}

int main(int argc, char **argv)
{
	bool late = false, with_sys = true;
	struct api a;
	int32_t ctx = -1;
	int i, status;
	pid_t pid;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--late-ctx"))
			late = true;
		else if (!strcmp(argv[i], "--no-sys"))
			with_sys = false;
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: crun_harness [--late-ctx] [--no-sys] ROOT\n");
		return EXIT_HARNESS;
	}
	load(&a);
	/* Before any namespace switch, as crun does in the `crun run` process. */
	if (!late && (ctx = a.create_ctx()) < 0) {
		fprintf(stderr, "crun_harness: krun_create_ctx: %s\n", strerror(-ctx));
		return EXIT_HARNESS;
	}
	if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0)
		die("unshare");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		/* The PID namespace's init outlives a killed harness otherwise (timeouts). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		container(&a, ctx, argv[i], with_sys);
	}
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
