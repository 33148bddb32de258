/*
 * tcg_vm NEWROOT COMMAND [ARG...]: chroot_vm's twin for hosts without hardware KVM. The VM is
 * configured through the public API exactly as chroot_vm does, then booted by QEMU's software
 * CPU (TCG) with the same kernel and init; our own virtio-fs backends serve the shares over
 * vhost-user, so the guest sees the devices libkrun's in-process VMM would give it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libkrun.h"
#include "api/launch.h"
#include "common/krun_init.h"
#include "tcg_vm.h"

#ifndef KRUN_DEFAULT_VMLINUX
#define KRUN_DEFAULT_VMLINUX "vmlinux"
#endif

#define MAX_LIST 64

struct opts {
	unsigned int cpus;
	unsigned int ram_mib;
	const char *volumes[MAX_LIST + 1];
	const char *ports[MAX_LIST + 1];
	const char *rlimits[MAX_LIST + 1];
	unsigned int nr_volumes, nr_ports, nr_rlimits;
	bool have_ports;
	const char *workdir;
	const char *root;
	const char *command;
	char *const *args;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tcg_vm [options] NEWROOT COMMAND [ARG...]\n"
		"Run COMMAND from the host directory NEWROOT in a microVM booted by QEMU's software\n"
		"CPU (TCG), with libkrun's kernel, init and virtio-fs server. stdin, stdout, stderr\n"
		"and the exit status are the program's.\n\n"
		"  -c CPUS         vCPUs (default 1)\n"
		"  -m MIB          guest RAM in MiB (default 512)\n"
		"  -v HOST:GUEST   share host directory HOST at GUEST (repeatable)\n"
		"  -p HOST:GUEST   port map (stored; no network device under TCG yet)\n"
		"  -r RES=CUR:MAX  resource limit, e.g. NOFILE=1024:4096 or 7=1024:4096 (repeatable)\n"
		"  -e K=V          add K=V to the environment the program inherits (repeatable)\n"
		"  -w DIR          working directory in the guest (default /)\n"
		"  -h, --help      this text\n\n"
		"Environment: KRUN_CPUS, KRUN_MEM (defaults for -c, -m, as chroot_vm reads them),\n"
		"KRUN_VMLINUX (kernel, default %s), KRUN_QEMU (QEMU binary),\n"
		"KRUN_SERIAL_LOG=FILE (kernel messages on ttyS0 to FILE), KRUN_DEBUG=1 (print the\n"
		"QEMU command, kernel log to /tmp/tcg_vm.PID.serial.log; 2: also trace vhost-user).\n",
		KRUN_DEFAULT_VMLINUX);
}

static int add_to(const char **list, unsigned int *n, const char *s)
{
	if (*n >= MAX_LIST) {
		fprintf(stderr, "tcg_vm: too many options of one kind (max %d)\n", MAX_LIST);
		return -1;
	}
	list[(*n)++] = s;
	list[*n] = NULL;
	return 0;
}

static int parse_uint(const char *s, unsigned int max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

/* -e K=V: the program inherits our environment (krun_set_exec with envp NULL). */
static int add_env(const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[256];

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
		fprintf(stderr, "tcg_vm: -e wants K=V, got '%s'\n", kv);
		return -1;
	}
	memcpy(key, kv, eq - kv);
	key[eq - kv] = '\0';
	return setenv(key, eq + 1, 1);
}

static int parse_opt(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case 'c':
		return parse_uint(arg, 255, &o->cpus);
	case 'm':
		return parse_uint(arg, 1u << 20, &o->ram_mib);
	case 'v':
		return add_to(o->volumes, &o->nr_volumes, arg);
	case 'p':
		o->have_ports = true;
		return add_to(o->ports, &o->nr_ports, arg);
	case 'r':
		return add_to(o->rlimits, &o->nr_rlimits, arg);
	case 'e':
		return add_env(arg);
	case 'w':
		o->workdir = arg;
		return 0;
	}
	return -1;
}

/* Returns 0 to run, 1 after --help, -1 on a usage error. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	int c;

	/* chroot_vm's environment knobs are the defaults; options override them. */
	*o = (struct opts){ .cpus = 1, .ram_mib = 512, .workdir = "/" };
	if (getenv("KRUN_CPUS") && parse_opt(o, 'c', getenv("KRUN_CPUS")))
		fprintf(stderr, "tcg_vm: ignoring KRUN_CPUS=%s\n", getenv("KRUN_CPUS"));
	if (getenv("KRUN_MEM") && parse_opt(o, 'm', getenv("KRUN_MEM")))
		fprintf(stderr, "tcg_vm: ignoring KRUN_MEM=%s\n", getenv("KRUN_MEM"));
	/* '+': options end at NEWROOT, so COMMAND's own options stay COMMAND's. */
	while ((c = getopt_long(argc, argv, "+c:m:v:p:r:e:w:h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == '?' || parse_opt(o, c, optarg)) {
			if (c != '?')
				fprintf(stderr, "tcg_vm: bad value for -%c: '%s'\n", c, optarg);
			usage(stderr);
			return -1;
		}
	}
	if (argc - optind < 2) {
		usage(stderr);
		return -1;
	}
	o->root = argv[optind];
	o->command = argv[optind + 1];
	o->args = &argv[optind + 2];
	return 0;
}

static int check(int32_t ret, const char *what)
{
	if (ret < 0)
		fprintf(stderr, "tcg_vm: %s: %s\n", what, strerror(-ret));
	return ret < 0 ? -1 : 0;
}

/* The same calls chroot_vm makes: the guest sees the same configuration in both worlds. */
static int configure(const struct opts *o, uint32_t *ctx_out)
{
	int32_t ctx = krun_create_ctx();

	if (check(ctx, "krun_create_ctx"))
		return -1;
	*ctx_out = (uint32_t)ctx;
	if (check(krun_set_vm_config(ctx, (uint8_t)o->cpus, o->ram_mib), "krun_set_vm_config") ||
	    check(krun_set_root(ctx, o->root), o->root))
		return -1;
	if (o->nr_volumes && check(krun_set_mapped_volumes(ctx, o->volumes), "krun_set_mapped_volumes"))
		return -1;
	if (o->have_ports && check(krun_set_port_map(ctx, o->ports), "krun_set_port_map"))
		return -1;
	if (o->nr_rlimits && check(krun_set_rlimits(ctx, o->rlimits), "krun_set_rlimits"))
		return -1;
	if (check(krun_set_workdir(ctx, o->workdir), "krun_set_workdir"))
		return -1;
	return check(krun_set_exec(ctx, o->command, (const char *const *)o->args, NULL), "krun_set_exec");
}

/* fds 0-2 must exist, or our sockets would take their numbers and receive program output. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
}

static int block_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

/* The guest ended without a status from the init: say what we know. */
static void report_no_status(struct tcg_vm *t)
{
	int st = t->qemu_status;

	if (st != -1 && WIFSIGNALED(st))
		fprintf(stderr, "tcg_vm: QEMU was killed by signal %d\n", WTERMSIG(st));
	else if (st != -1 && WEXITSTATUS(st) != 0)
		fprintf(stderr, "tcg_vm: QEMU failed (exit status %d)\n", WEXITSTATUS(st));
	else
		fprintf(stderr, "tcg_vm: the guest ended without reporting an exit status\n");
	tcg_vm_qemu_print_log(t);
	tcg_vm_io_print_console_tail();
	if (t->serial_log[0])
		fprintf(stderr, "tcg_vm: kernel log: %s\n", t->serial_log);
}

static int run(struct tcg_vm *t, int sigfd)
{
	int ret = tcg_vm_qemu_prepare(t), sig;

	if (!ret)
		ret = tcg_vm_qemu_spawn(t);
	if (!ret)
		ret = tcg_vm_qemu_connect(t);
	if (ret) {
		fprintf(stderr, "tcg_vm: cannot start the VM: %s\n",
			ret == -ECHILD ? "QEMU exited during startup" : strerror(-ret));
		tcg_vm_qemu_kill(t);
		tcg_vm_qemu_print_log(t);
		return KRUN_STATUS_NO_REPORT;
	}
	if (t->tty[0])
		tcg_vm_io_tty_raw();
	sig = tcg_vm_io_run(t, sigfd);
	tcg_vm_io_tty_restore();
	if (t->debug)
		tcg_vm_qemu_print_log(t);
	if (sig) {
		fprintf(stderr, "\ntcg_vm: stopped by signal %d\n", sig);
		tcg_vm_qemu_dump_devices(t);
		tcg_vm_qemu_kill(t);
		if (t->serial_log[0])
			fprintf(stderr, "tcg_vm: kernel log: %s\n", t->serial_log);
		return 128 + sig;
	}
	if (__atomic_load_n(&t->spec->exit_status, __ATOMIC_SEQ_CST) < 0)
		report_no_status(t);
	else if (t->debug && t->serial_log[0])
		fprintf(stderr, "tcg_vm: kernel log: %s\n", t->serial_log);
	return launch_exit_status(t->spec);
}

int main(int argc, char **argv)
{
	struct tcg_vm t = { .qemu = -1, .qemu_status = -1 };
	struct opts o;
	uint32_t ctx;
	int ret = parse_args(argc, argv, &o), sigfd, status;

	if (ret)
		return ret > 0 ? 0 : 2;
	ensure_std_fds();
	t.debug = getenv("KRUN_DEBUG") && strcmp(getenv("KRUN_DEBUG"), "0") != 0;
	t.vmlinux = getenv("KRUN_VMLINUX") ? getenv("KRUN_VMLINUX") : KRUN_DEFAULT_VMLINUX;
	for (int s = 0; s < TVM_NR_STREAMS; s++)
		t.stream_listen[s] = t.stream_fd[s] = -1;
	/* KRUN_DEBUG=2 also traces every vhost-user message. */
	krun_set_log_level(!t.debug ? 2 : strcmp(getenv("KRUN_DEBUG"), "2") ? 4 : 5);
	if (access(t.vmlinux, R_OK) != 0) {
		fprintf(stderr, "tcg_vm: kernel %s: %s (set KRUN_VMLINUX)\n", t.vmlinux, strerror(errno));
		return 1;
	}
	if (configure(&o, &ctx) || check(launch_spec_from_ctx(ctx, &t.spec), "launch spec"))
		return 1;
	sigfd = block_signals();
	if (sigfd < 0) {
		perror("tcg_vm: signalfd");
		return 1;
	}
	tcg_vm_io_choose_streams(&t);
	status = run(&t, sigfd);
	tcg_vm_qemu_cleanup(&t);
	launch_spec_free(t.spec);
	krun_free_ctx(ctx);
	return status;
}
