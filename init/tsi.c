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

void tsi_parent_forked(void)
{
	if (child_chan >= 0)
		close(child_chan);
	child_chan = -1;
}

#define INSN(c, t, f, v) { .code = (c), .jt = (t), .jf = (f), .k = (v) }

/* Indices below are fixed: the jump offsets count instructions to skip. */
static struct tsi_bpf_insn filter[] = {
	/* 0 */ INSN(TSI_BPF_LD_W_ABS, 0, 0, TSI_SECCOMP_DATA_ARCH),
	/* 1 */ INSN(TSI_BPF_JEQ_K, 0, 9, TSI_AUDIT_ARCH_X86_64),    /* other ABIs: allow */
	/* 2 */ INSN(TSI_BPF_LD_W_ABS, 0, 0, TSI_SECCOMP_DATA_NR),
	/* 3 */ INSN(TSI_BPF_JEQ_K, 8, 0, SYS_connect),
	/* 4 */ INSN(TSI_BPF_JEQ_K, 7, 0, SYS_getpeername),
	/* 5 */ INSN(TSI_BPF_JEQ_K, 6, 0, SYS_getsockname),
	/* 6 */ INSN(TSI_BPF_JEQ_K, 0, 4, SYS_setsockopt),
	/* 7 */ INSN(TSI_BPF_LD_W_ABS, 0, 0, TSI_SECCOMP_DATA_ARG_LO(1)),
	/* 8 */ INSN(TSI_BPF_JEQ_K, 3, 0, IPPROTO_TCP),
	/* 9 */ INSN(TSI_BPF_JEQ_K, 2, 0, IPPROTO_IP),
	/* 10 */ INSN(TSI_BPF_JEQ_K, 1, 0, IPPROTO_IPV6),
	/* 11 */ INSN(TSI_BPF_RET_K, 0, 0, TSI_SECCOMP_RET_ALLOW),
	/* 12 */ INSN(TSI_BPF_RET_K, 0, 0, TSI_SECCOMP_RET_USER_NOTIF),
};

static int install_filter(void)
{
	struct tsi_bpf_prog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };
	unsigned int flags = TSI_SECCOMP_FILTER_FLAG_NEW_LISTENER |
			     TSI_SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
	long fd = syscall(SYS_seccomp, TSI_SECCOMP_SET_MODE_FILTER, flags, &prog);

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

static int send_fd(int chan, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'L';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(chan, &msg, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

void tsi_child_install(void)
{
	int fd;

	if (child_chan < 0)
		return;
	fd = install_filter();
	if (fd < 0)
		log_error("tsi: cannot install the seccomp filter: %s", strerror(-fd));
	else if (send_fd(child_chan, fd))
		log_error("tsi: cannot hand the listener to the supervisor: %m");
	if (fd >= 0)
		close(fd);
	close(child_chan);
	child_chan = -1;
}
