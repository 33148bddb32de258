/*
 * tcg_vm NEWROOT COMMAND [ARG...]: chroot_vm's twin for hosts without hardware KVM. The VM is
 * configured through the public API exactly as chroot_vm does, then booted by QEMU's software
 * CPU (TCG) with the same kernel and init; our own virtio-fs backends serve the shares over
 * vhost-user, so the guest sees the devices libkrun's in-process VMM would give it.
 */
#include <errno.h>
#include <fcntl.h>
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
#include "vm_options.h"

#ifndef KRUN_DEFAULT_VMLINUX
#define KRUN_DEFAULT_VMLINUX "vmlinux"
#endif

#define TCG_VM_ENV_HELP \
	";\nKRUN_VMLINUX (kernel, default " KRUN_DEFAULT_VMLINUX "), KRUN_QEMU (QEMU binary),\n" \
	"KRUN_SERIAL_LOG=FILE (kernel messages on ttyS0 to FILE), KRUN_DEBUG=1 (print the\n" \
	"QEMU command, kernel log to /tmp/tcg_vm.PID.serial.log; 2: also trace vhost-user),\n" \
	"KRUN_TCG_VSOCK=0 (no vsock device: no guest network), KRUN_TSI_DNS=IP[:PORT] (guest\n" \
	"DNS goes there over TCP; default: the first nameserver of /etc/resolv.conf),\n" \
	"KRUN_TCG_BALLOON=0 (no virtio-balloon; default: one with free page reporting),\n" \
	"KRUN_KERNEL_ARGS=ARGS (appended to the kernel command line, e.g. initcall_debug),\n" \
	"KRUN_TCG_TSC_KHZ=N (the guest's TSC rate; default: the host's, measured; 0: none)."

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
	/* A guest write past RLIMIT_FSIZE fails with EFBIG in the guest instead of killing us. */
	signal(SIGXFSZ, SIG_IGN);
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
		if (sig == SIGPIPE) {
			tcg_vm_qemu_kill(t);
			return 128 + sig;
		}
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
	struct vm_options o;
	uint32_t ctx;
	int ret = vm_options_parse("tcg_vm",
				   "Run COMMAND from the host directory NEWROOT in a microVM booted by QEMU's\n"
				   "software CPU (TCG), with libkrun's kernel, init and device backends (over\n"
				   "vhost-user). stdin, stdout, stderr and the exit status are the program's.",
				   TCG_VM_ENV_HELP, argc, argv, &o), sigfd, status;

	if (ret)
		return ret > 0 ? 0 : 2;
	ensure_std_fds();
	t.debug = getenv("KRUN_DEBUG") && strcmp(getenv("KRUN_DEBUG"), "0") != 0;
	t.vmlinux = getenv("KRUN_VMLINUX") ? getenv("KRUN_VMLINUX") : KRUN_DEFAULT_VMLINUX;
	for (int s = 0; s < TVM_NR_STREAMS; s++)
		t.stream_listen[s] = t.stream_fd[s] = -1;
	/* KRUN_DEBUG=2 also traces every vhost-user message. */
	if (t.debug)
		o.log_level = strcmp(getenv("KRUN_DEBUG"), "2") ? 4 : 5;
	if (access(t.vmlinux, R_OK) != 0) {
		fprintf(stderr, "tcg_vm: kernel %s: %s (set KRUN_VMLINUX)\n", t.vmlinux, strerror(errno));
		return 1;
	}
	if (vm_options_configure(&o, &ctx))
		return 1;
	ret = launch_spec_from_ctx(ctx, &t.spec);
	if (ret) {
		fprintf(stderr, "tcg_vm: launch spec: %s\n", strerror(-ret));
		return 1;
	}
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
