/*
 * TSI guest side, the very end: a program that wrote to a host peer and exited at once has
 * left its last bytes on the way: in this kernel's vsock send queue (a worker puts them on
 * the virtqueue), on the virtqueue, or in the device's buffer. Closing a vsock stream or
 * seqpacket socket sends a SHUTDOWN after them, and the host device answers it with RST only
 * once those bytes are out of its hands (src/devices/vsock/vsock_conn.c, vsock_conn_drained);
 * until then the kernel keeps the closed socket, unowned, in its tables. So before the
 * reboot, PID 1 watches the vsock socket diagnostics until no closed socket waits for that
 * RST, for a bounded time (a host peer that never reads must not keep the VM alive).
 * Linux 6.1 has no SIOCOUTQ for vsock (added in 6.10) and no /proc/net/vsock; the
 * diagnostics (CONFIG_VSOCKETS_DIAG) list closed sockets too, with inode 0.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tsi.h"
#include "tsi_int.h"

#define SETTLE_POLL_MS 5

/* When the program ended (tsi_finish), for the shared bound; only with TSI. */
static long finish_ms;
static bool started;

void tsi_settle_start(void)
{
	finish_ms = tsi_now_ms();
	started = true;
}

/* tsi_diag_fn: a socket to the host that no process holds any more (inode 0)? */
static void count_closed(const void *msg, size_t len, void *ctx)
{
	unsigned int *closed = ctx;
	struct tsi_vsock_diag_msg m;

	if (len < sizeof(m))
		return;
	memcpy(&m, msg, sizeof(m));
	*closed += m.vdiag_ino == 0 && m.vdiag_dst_cid == TSI_VMADDR_CID_HOST;
}

/* Closed vsock connections to the host still waiting for its RST: how many, or -errno. */
static int closed_waiting(int fd, uint32_t seq)
{
	struct {
		struct tsi_nlmsghdr h;
		struct tsi_vsock_diag_req r;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = TSI_SOCK_DIAG_BY_FAMILY,
		       .nlmsg_flags = TSI_NLM_F_REQUEST | TSI_NLM_F_DUMP, .nlmsg_seq = seq },
		.r = { .sdiag_family = AF_VSOCK,
		       .vdiag_states = 1u << TSI_TCP_ESTABLISHED | 1u << TSI_TCP_CLOSING },
	};
	unsigned int closed = 0;
	int ret = tsi_diag_dump(fd, &req, sizeof(req), seq, count_closed, &closed);

	return ret < 0 ? ret : (int)closed;
}

void tsi_settle(void)
{
	struct timespec tick = { 0, SETTLE_POLL_MS * 1000000L };
	int fd, left = 0;
	uint32_t seq = 0;

	if (!started)
		return;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, TSI_NETLINK_SOCK_DIAG);
	if (fd < 0) {
		log_debug("tsi: no socket diagnostics (%m): not waiting for the host to take the last bytes");
		return;
	}
	for (;;) {
		left = closed_waiting(fd, ++seq);
		if (left <= 0 || tsi_now_ms() - finish_ms >= TSI_SETTLE_MS)
			break;
		nanosleep(&tick, NULL);
	}
	close(fd);
	if (left < 0)
		log_debug("tsi: vsock diagnostics: %s", strerror(-left));
	else if (left > 0)
		log_debug("tsi: %d closed connections still hold bytes for the host after %d ms: "
			  "they may be lost", left, TSI_SETTLE_MS);
}
