/*
 * TSI guest side: the kernel's socket diagnostics (NETLINK_SOCK_DIAG dumps), read for the
 * port checks (tsi_ports.c) and for the wait at the VM's end (tsi_settle.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "tsi_int.h"

/* One dump's answers; a larger dump arrives in several reads. */
#define DIAG_BUF_BYTES 8192

int tsi_diag_batch(const uint8_t *buf, size_t len, uint32_t seq, tsi_diag_fn each, void *ctx)
{
	while (len >= sizeof(struct tsi_nlmsghdr)) {
		struct tsi_nlmsghdr h;

		memcpy(&h, buf, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len || h.nlmsg_seq != seq)
			return -EIO;
		if (h.nlmsg_type == TSI_NLMSG_DONE) {
			int32_t err = 0;
			/* A dump the kernel could not make (no UDP diagnostics built in) ends in an errno. */
			if (h.nlmsg_len >= sizeof(h) + sizeof(err))
				memcpy(&err, buf + sizeof(h), sizeof(err));
			return err < 0 ? err : 1;
		}
		if (h.nlmsg_type == TSI_NLMSG_ERROR)
			return -EIO;
		if (h.nlmsg_type == TSI_SOCK_DIAG_BY_FAMILY)
			each(buf + sizeof(h), h.nlmsg_len - sizeof(h), ctx);
		/* NLMSG_ALIGN: messages start on 4-byte boundaries. */
		h.nlmsg_len = (h.nlmsg_len + 3u) & ~3u;
		if (h.nlmsg_len >= len)
			break;
		buf += h.nlmsg_len;
		len -= h.nlmsg_len;
	}
	return 0;
}

int tsi_diag_dump(int fd, const void *req, size_t req_len, uint32_t seq, tsi_diag_fn each,
		  void *ctx)
{
	static uint8_t buf[DIAG_BUF_BYTES] __attribute__((aligned(4)));

	if (send(fd, req, req_len, 0) != (ssize_t)req_len)
		return -EIO;
	/* Read the whole dump, whatever each() found: leftovers would confuse the next one. */
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		int ret;

		if (n <= 0)
			return -EIO;
		ret = tsi_diag_batch(buf, (size_t)n, seq, each, ctx);
		if (ret)
			return ret < 0 ? ret : 0;
	}
}
