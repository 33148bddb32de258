/* TSI guest side, setup: the supervisor process, the program's seccomp filter, the listener hand-off. */
#include "tsi.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tsi_int.h"

/* IOCTL_VM_SOCKETS_GET_LOCAL_CID on /dev/vsock (include/uapi/linux/vm_sockets.h). */
#define TSI_IOCTL_GET_LOCAL_CID _IO(7, 0xb9)

/* The program child's end of the channel to the supervisor; -1 without TSI. */
static int child_chan = -1;
/* The VM has a vsock device: the host proxy may hold connections of ours. */
static bool have_proxy;


/* Only a VM with a vsock device (a guest CID) has a host proxy to talk to. */
static bool have_vsock(void)
{
	unsigned int cid = ~0u;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (ioctl(fd, TSI_IOCTL_GET_LOCAL_CID, &cid) < 0)
		cid = ~0u;
	close(fd);
	return cid > TSI_VMADDR_CID_HOST && cid != ~0u;
}

void tsi_start(void)
{
	int sv[2];
	pid_t pid;

	if (!have_vsock()) {
		log_debug("no vsock device: programs get no network");
		return;
	}
	have_proxy = true;
	/* First: these processes must not hold the channel below. */
	tsi_dns_start();
	tsi_inbound_start();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("tsi: socketpair: %m");
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_error("tsi: fork: %m");
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (pid == 0) {
		close(sv[1]);
		tsi_helper_run(sv[0]);
	}
	close(sv[0]);
	child_chan = sv[1];
	log_debug("tsi: supervisor is pid %d", (int)pid);
}

void tsi_finish(void)
{
	if (!have_proxy)
		return;
	tsi_settle_start();
	tsi_inbound_drain(tsi_now_ms() + TSI_SETTLE_MS);
}

void tsi_parent_forked(void)
{
	if (child_chan >= 0)
		close(child_chan);
	child_chan = -1;
}

#define INSN(c, t, f, v) { .code = (c), .jt = (t), .jf = (f), .k = (v) }

/*
 * Indices below are fixed: the jump offsets count instructions to skip. sendto traps only
 * with a destination (a non-NULL address pointer), so plain send() never does. sendmsg hides
 * its destination in memory BPF cannot read: trapping it costs every sendmsg a round trip to
 * the supervisor (about a millisecond under TCG), so only programs started with
 * KRUN_TSI_SENDMSG=1 get it (insn SENDMSG_INSN compares with an impossible number otherwise).
 */
#define SENDMSG_INSN 6
#define NO_SYSCALL 0xffffffffu

static const struct tsi_bpf_insn filter_template[] = {
	/* 0 */ INSN(TSI_BPF_LD_W_ABS, 0, 0, TSI_SECCOMP_DATA_ARCH),
	/* 1 */ INSN(TSI_BPF_JEQ_K, 0, 15, TSI_AUDIT_ARCH_X86_64),   /* other ABIs: allow */
	/* 2 */ INSN(TSI_BPF_LD_W_ABS, 0, 0, TSI_SECCOMP_DATA_NR),
	/* 3 */ INSN(TSI_BPF_JEQ_K, 14, 0, SYS_connect),
	/* 4 */ INSN(TSI_BPF_JEQ_K, 13, 0, SYS_getpeername),
	/* 5 */ INSN(TSI_BPF_JEQ_K, 12, 0, SYS_getsockname),
	/* 6 */ INSN(TSI_BPF_JEQ_K, 11, 0, SYS_sendmsg),
	/* 7 */ INSN(TSI_BPF_JEQ_K, 0, 4, SYS_sendto),
	/* 8 */ INSN(TSI_BPF_LD_W_ABS, 0, 0, TSI_SECCOMP_DATA_ARG_LO(4)),
	/* 9 */ INSN(TSI_BPF_JEQ_K, 0, 8, 0),
	/* 10 */ INSN(TSI_BPF_LD_W_ABS, 0, 0, TSI_SECCOMP_DATA_ARG_HI(4)),
	/* 11 */ INSN(TSI_BPF_JEQ_K, 5, 6, 0),
	/* 12 */ INSN(TSI_BPF_JEQ_K, 0, 4, SYS_setsockopt),
	/* 13 */ INSN(TSI_BPF_LD_W_ABS, 0, 0, TSI_SECCOMP_DATA_ARG_LO(1)),
	/* 14 */ INSN(TSI_BPF_JEQ_K, 3, 0, IPPROTO_TCP),
	/* 15 */ INSN(TSI_BPF_JEQ_K, 2, 0, IPPROTO_IP),
	/* 16 */ INSN(TSI_BPF_JEQ_K, 1, 0, IPPROTO_IPV6),
	/* 17 */ INSN(TSI_BPF_RET_K, 0, 0, TSI_SECCOMP_RET_ALLOW),
	/* 18 */ INSN(TSI_BPF_RET_K, 0, 0, TSI_SECCOMP_RET_USER_NOTIF),
};

#define FILTER_LEN (sizeof(filter_template) / sizeof(filter_template[0]))

static bool env_on(char *const envp[], const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; envp && envp[i]; i++)
		if (!strncmp(envp[i], name, n) && envp[i][n] == '=')
			return !strcmp(envp[i] + n + 1, "1");
	return false;
}

static int install_filter(bool trap_sendmsg)
{
	struct tsi_bpf_insn filter[FILTER_LEN];
	struct tsi_bpf_prog prog = { .len = FILTER_LEN, .filter = filter };
	unsigned int flags = TSI_SECCOMP_FILTER_FLAG_NEW_LISTENER |
			     TSI_SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
	long fd;

	memcpy(filter, filter_template, sizeof(filter));
	if (!trap_sendmsg)
		filter[SENDMSG_INSN].k = NO_SYSCALL;
	fd = syscall(SYS_seccomp, TSI_SECCOMP_SET_MODE_FILTER, flags, &prog);

	/*
	 * WAIT_KILLABLE_RECV (5.19): once the supervisor took a connect, only a fatal signal
	 * interrupts it, so a signal cannot make the program restart a connect the host has
	 * already made. Older kernels do without.
	 */
	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_seccomp, TSI_SECCOMP_SET_MODE_FILTER,
			     TSI_SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	return fd < 0 ? -errno : (int)fd;
}

/*
 * The listener goes to the supervisor by number: sendmsg() would trap into the very filter
 * the supervisor cannot yet answer. It takes the fd with pidfd_getfd and acknowledges, and
 * only then may we close ours; write and read are never trapped.
 */
static int hand_over(int chan, int fd)
{
	int32_t msg[2] = { (int32_t)getpid(), fd };
	char ack;

	if (write(chan, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		return -errno;
	return read(chan, &ack, 1) == 1 && ack == 'L' ? 0 : -EPROTO;
}

void tsi_child_install(char *const envp[])
{
	int fd;

	if (child_chan < 0)
		return;
	fd = install_filter(env_on(envp, "KRUN_TSI_SENDMSG"));
	if (fd < 0)
		log_error("tsi: cannot install the seccomp filter: %s", strerror(-fd));
	else if (hand_over(child_chan, fd))
		log_error("tsi: cannot hand the listener to the supervisor: %m");
	if (fd >= 0)
		close(fd);
	close(child_chan);
	child_chan = -1;
}
