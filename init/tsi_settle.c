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
#define DIAG_BUF_BYTES 8192

/* When the program ended (tsi_finish), for the shared bound; only with TSI. */
static long finish_ms;
static bool started;

void tsi_settle_start(void)
{
	finish_ms = tsi_now_ms();
	started = true;
}

/* Counts the answers of one batch; 1 when the dump is over, 0 for more, -EIO when garbled. */
static int count_closed(const uint8_t *buf, size_t len, uint32_t seq, unsigned int *closed)
{
	while (len >= sizeof(struct tsi_nlmsghdr)) {
		struct tsi_nlmsghdr h;
		struct tsi_vsock_diag_msg m;

		memcpy(&h, buf, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len || h.nlmsg_seq != seq)
			return -EIO;
		if (h.nlmsg_type == TSI_NLMSG_DONE)
			return 1;
		if (h.nlmsg_type == TSI_NLMSG_ERROR)
			return -EIO;
		if (h.nlmsg_type == TSI_SOCK_DIAG_BY_FAMILY && h.nlmsg_len >= sizeof(h) + sizeof(m)) {
			memcpy(&m, buf + sizeof(h), sizeof(m));
			*closed += m.vdiag_ino == 0 && m.vdiag_dst_cid == TSI_VMADDR_CID_HOST;
		}
		h.nlmsg_len = (h.nlmsg_len + 3u) & ~3u;    /* NLMSG_ALIGN */
		if (h.nlmsg_len >= len)
			break;
		buf += h.nlmsg_len;
		len -= h.nlmsg_len;
	}
	return 0;
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
	static uint8_t buf[DIAG_BUF_BYTES] __attribute__((aligned(4)));
	unsigned int closed = 0;

	if (send(fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		int ret;

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		ret = count_closed(buf, (size_t)n, seq, &closed);
		if (ret < 0)
			return ret;
		if (ret == 1)
			return (int)closed;
	}
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
