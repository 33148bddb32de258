/*
 * TSI guest side: is a guest port taken (a TCP listener, any UDP socket)? Then a connect to
 * it on the guest's loopback stays local. Asked of the kernel's socket diagnostics over
 * netlink: a dump of the listeners walks only the small listening hash, where reading
 * /proc/net/tcp and tcp6 walks every established bucket and formats text (1.5-4 ms per
 * connect under QEMU TCG here, against 0.04 ms for both netlink questions). /proc/net is the
 * fallback for a kernel without the diagnostics (CONFIG_INET_DIAG; for UDP also
 * CONFIG_INET_UDP_DIAG, which the product kernel does not have).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsi_int.h"

static int diag_fd = -1;
static uint32_t diag_seq;

static int diag_socket(void)
{
	if (diag_fd < 0)
		diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, TSI_NETLINK_SOCK_DIAG);
	return diag_fd;
}

/* A broken channel (a truncated or foreign answer): the next question opens a new one. */
static int diag_reset(void)
{
	if (diag_fd >= 0)
		close(diag_fd);
	diag_fd = -1;
	return -EIO;
}

struct port_match {
	uint16_t port;
	bool found;
};

/* tsi_diag_fn: a socket on the port we look for? */
static void match_port(const void *msg, size_t len, void *ctx)
{
	struct port_match *pm = ctx;
	struct tsi_inet_diag_msg m;

	if (len < sizeof(m))
		return;
	memcpy(&m, msg, sizeof(m));
	pm->found |= ntohs(m.id.idiag_sport) == pm->port;
}

/*
 * Sockets of (family, protocol) in the states of mask on a local port: 1 or 0, or -errno
 * when the kernel cannot tell. The port is matched here, not by the kernel's filter, whose
 * byte order differs between TCP and UDP on some kernels.
 */
static int diag_port_used(int family, int protocol, uint32_t states, uint16_t port)
{
	struct {
		struct tsi_nlmsghdr h;
		struct tsi_inet_diag_req_v2 r;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = TSI_SOCK_DIAG_BY_FAMILY,
		       .nlmsg_flags = TSI_NLM_F_REQUEST | TSI_NLM_F_DUMP, .nlmsg_seq = ++diag_seq },
		.r = { .sdiag_family = (uint8_t)family, .sdiag_protocol = (uint8_t)protocol,
		       .idiag_states = states },
	};
	struct port_match pm = { .port = port };
	int fd = diag_socket(), ret;

	if (fd < 0)
		return -errno;
	ret = tsi_diag_dump(fd, &req, sizeof(req), req.h.nlmsg_seq, match_port, &pm);
	if (ret == -EIO)
		return diag_reset();
	return ret < 0 ? ret : pm.found;   /* a dump that ended in an error leaves the channel fine */
}

/* The /proc/net fallback: a TCP listener on the port, or (udp) any UDP socket bound to it. */
static bool port_in_tables(uint16_t port, bool udp)
{
	static const char *const tcp[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	static const char *const udp_tables[] = { "/proc/net/udp", "/proc/net/udp6" };
	const char *const *tables = udp ? udp_tables : tcp;
	char line[256];
	bool found = false;

	for (unsigned int i = 0; i < 2 && !found; i++) {
		FILE *f = fopen(tables[i], "re");
		if (!f)
			continue;
		while (!found && fgets(line, sizeof(line), f)) {
			unsigned int lport, state;
			/* "sl: local_addr:port rem_addr:port st ..."; 0A is TCP_LISTEN. */
			if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", &lport, &state) == 2)
				found = lport == port && (udp || state == 0x0a);
		}
		fclose(f);
	}
	return found;
}

static bool port_used(uint16_t port, bool udp)
{
	/* The kernel said it has no diagnostics for the protocol: ask /proc from then on. */
	static bool no_diag[2];
	int protocol = udp ? IPPROTO_UDP : IPPROTO_TCP;
	/* UDP sockets are "close" (unconnected) or "established" (connected): any counts. */
	uint32_t states = udp ? ~0u : 1u << TSI_TCP_LISTEN;
	int v4, v6 = 0;

	if (no_diag[udp])
		return port_in_tables(port, udp);
	v4 = diag_port_used(AF_INET, protocol, states, port);
	if (v4 == 0)
		v6 = diag_port_used(AF_INET6, protocol, states, port);
	if (v4 == -ENOENT || v6 == -ENOENT)
		no_diag[udp] = true;
	if (v4 < 0 || v6 < 0)
		return port_in_tables(port, udp);
	return v4 == 1 || v6 == 1;
}

bool tsi_guest_listens(uint16_t port)
{
	return port_used(port, false);
}

bool tsi_guest_udp_bound(uint16_t port)
{
	return port_used(port, true);
}
