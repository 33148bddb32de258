/*
 * The guest init's "is this port a guest's?" (init/tsi_ports.c): the parsing of socket
 * diagnostics answers from crafted netlink buffers (init/tsi_diag.c), then the real thing on
 * this host (netlink if the kernel has it, else the /proc/net fallback): TCP listeners on IPv4
 * and IPv6 count, a connected socket's port does not, UDP sockets count once bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../init/tsi_diag.c"
#include "../../init/tsi_ports.c"
#include "harness.h"

static uint8_t answers[512] __attribute__((aligned(4)));

/* Appends one netlink message (type, payload) to answers at *off. */
static void put_msg(size_t *off, uint16_t type, uint32_t seq, const void *payload, size_t len)
{
	struct tsi_nlmsghdr h = { .nlmsg_len = (uint32_t)(sizeof(h) + len), .nlmsg_type = type,
				  .nlmsg_seq = seq };

	memcpy(answers + *off, &h, sizeof(h));
	memcpy(answers + *off + sizeof(h), payload, len);
	*off += (sizeof(h) + len + 3) & ~(size_t)3;
}

static void put_socket(size_t *off, uint32_t seq, uint16_t port)
{
	struct tsi_inet_diag_msg m = { .idiag_family = AF_INET, .idiag_state = TSI_TCP_LISTEN };
	uint8_t payload[72] = { 0 };    /* a whole inet_diag_msg is 72 bytes */

	m.id.idiag_sport = htons(port);
	memcpy(payload, &m, sizeof(m));
	put_msg(off, TSI_SOCK_DIAG_BY_FAMILY, seq, payload, sizeof(payload));
}

static void put_done(size_t *off, uint32_t seq, int32_t err)
{
	put_msg(off, TSI_NLMSG_DONE, seq, &err, sizeof(err));
}

/* What diag_port_used learns from one batch: -errno, or found (0/1) + 2 once the dump is done. */
static int scan_answers(size_t len, uint32_t seq, uint16_t port)
{
	struct port_match pm = { .port = port };
	int ret = tsi_diag_batch(answers, len, seq, match_port, &pm);

	return ret < 0 ? ret : pm.found + 2 * ret;
}

static void test_scan_hit_and_miss(void)
{
	size_t off = 0;

	put_socket(&off, 7, 8080);
	put_socket(&off, 7, 9090);
	put_done(&off, 7, 0);
	CHECK_EQ(scan_answers(off, 7, 9090), 3);       /* there, and the dump is done */
	CHECK_EQ(scan_answers(off, 7, 1234), 2);       /* read to the end: not there */
}

static void test_scan_partial_dump(void)
{
	size_t off = 0;

	put_socket(&off, 3, 80);
	CHECK_EQ(scan_answers(off, 3, 443), 0);        /* more to read */
	CHECK_EQ(scan_answers(off, 3, 80), 1);         /* there; more to read */
}

static void test_scan_errors(void)
{
	size_t off = 0;
	int32_t err = -EPERM;

	put_done(&off, 5, -ENOENT);     /* no diagnostics for the protocol */
	CHECK_EQ(scan_answers(off, 5, 53), -ENOENT);
	CHECK_EQ(scan_answers(off, 6, 53), -EIO);      /* an answer to another question */
	off = 0;
	put_msg(&off, TSI_NLMSG_ERROR, 5, &err, sizeof(err));
	CHECK_EQ(scan_answers(off, 5, 53), -EIO);
	off = 0;
	put_socket(&off, 5, 53);
	CHECK_EQ(scan_answers(off - 8, 5, 53), -EIO);  /* cut short */
}

/* A socket of (family, type) bound to loopback on an ephemeral port; its port in *port. */
static int bound(int family, int type, uint16_t *port)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					  ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static void check_listener(int family)
{
	uint16_t port = 0;
	int fd = bound(family, SOCK_STREAM, &port);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(!tsi_guest_listens(port));       /* bound, not listening yet */
	CHECK_EQ(listen(fd, 4), 0);
	CHECK(tsi_guest_listens(port));
	CHECK(port_in_tables(port, false));    /* the /proc/net fallback agrees */
	close(fd);
	CHECK(!tsi_guest_listens(port));
	CHECK(!port_in_tables(port, false));
}

static void test_tcp_listener_ipv4(void)
{
	check_listener(AF_INET);
}

static void test_tcp_listener_ipv6(void)
{
	check_listener(AF_INET6);
}

/* A client's own port is no listener: connecting there must still reach the host. */
static void test_tcp_client_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	uint16_t port = 0;
	int l = bound(AF_INET, SOCK_STREAM, &port), c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(l >= 0 && c >= 0 && listen(l, 4) == 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	CHECK_EQ(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CHECK_EQ(getsockname(c, (struct sockaddr *)&sin, &len), 0);
	CHECK(!tsi_guest_listens(ntohs(sin.sin_port)));
	CHECK(tsi_guest_listens(port));
	close(c);
	close(l);
}

static void test_udp_bound(void)
{
	uint16_t port4 = 0, port6 = 0;
	int u4 = bound(AF_INET, SOCK_DGRAM, &port4), u6 = bound(AF_INET6, SOCK_DGRAM, &port6);

	CHECK(u4 >= 0 && u6 >= 0);
	CHECK(tsi_guest_udp_bound(port4));
	CHECK(tsi_guest_udp_bound(port6));
	CHECK(port_in_tables(port4, true) && port_in_tables(port6, true));
	close(u4);
	close(u6);
	CHECK(!tsi_guest_udp_bound(port4));
	CHECK(!tsi_guest_udp_bound(port6));
}

int main(void)
{
	RUN_TEST(test_scan_hit_and_miss);
	RUN_TEST(test_scan_partial_dump);
	RUN_TEST(test_scan_errors);
	RUN_TEST(test_tcp_listener_ipv4);
	RUN_TEST(test_tcp_listener_ipv6);
	RUN_TEST(test_tcp_client_port);
	RUN_TEST(test_udp_bound);
	return HARNESS_EXIT();
}
