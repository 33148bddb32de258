/*
 * The guest init's raw UDP packets (init/tsi_pkt.c), with which the TSI supervisor hands a
 * host datagram to a guest socket from its true source: header fields, the IPv6 checksum,
 * and (with CAP_NET_RAW) the real thing on this host's loopback: a UDP socket receives the
 * packet with recvfrom() naming the forged source.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../init/tsi_pkt.c"
#include "harness.h"

static uint8_t pkt[TSI_PKT_MAX];

static struct krun_tsi_dgram peer(int family, const char *addr, uint16_t port)
{
	struct krun_tsi_dgram h = { .family = (uint16_t)family, .port = port };

	inet_pton(family, addr, h.addr);
	return h;
}

static unsigned int get16(const uint8_t *p)
{
	return (unsigned int)p[0] << 8 | p[1];
}

static void test_ipv4_fields(void)
{
	struct krun_tsi_dgram s = peer(AF_INET, "192.0.2.7", 53), d = peer(AF_INET, "127.0.0.1", 40000);
	size_t n = tsi_pkt_udp(pkt, sizeof(pkt), &s, &d, "hello", 5);

	CHECK_EQ(n, 20 + 8 + 5);
	CHECK_EQ(pkt[0], 0x45);
	CHECK_EQ(get16(pkt + 2), n);
	CHECK_EQ(pkt[9], 17);
	CHECK(!memcmp(pkt + 12, s.addr, 4) && !memcmp(pkt + 16, d.addr, 4));
	CHECK_EQ(get16(pkt + 20), 53);
	CHECK_EQ(get16(pkt + 22), 40000);
	CHECK_EQ(get16(pkt + 24), 8 + 5);
	CHECK(!memcmp(pkt + 28, "hello", 5));
}

/* A right checksum makes the sum over pseudo-header and datagram all ones (RFC 768). */
static void test_ipv6_checksum(void)
{
	static const size_t sizes[] = { 0, 1, 2, 1399, 1400 };
	struct krun_tsi_dgram s = peer(AF_INET6, "2001:db8::5", 443), d = peer(AF_INET6, "::1", 5353);
	static uint8_t data[1400];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + 7);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = tsi_pkt_udp(pkt, sizeof(pkt), &s, &d, data, sizes[k]);
		uint32_t ulen = (uint32_t)(8 + sizes[k]);

		CHECK_EQ(n, 40 + ulen);
		CHECK_EQ(pkt[0] >> 4, 6);
		CHECK_EQ(get16(pkt + 4), ulen);
		CHECK_EQ(pkt[6], 17);
		CHECK(get16(pkt + 46) != 0);
		CHECK_EQ(tsi_pkt_fold(sum16(sum16(ulen + 17, pkt + 8, 32), pkt + 40, ulen)), 0);
	}
}

static void test_refused(void)
{
	struct krun_tsi_dgram s4 = peer(AF_INET, "10.0.0.1", 1), d6 = peer(AF_INET6, "::1", 2);
	static uint8_t big[KRUN_TSI_DGRAM_MAX + 1];

	CHECK_EQ(tsi_pkt_udp(pkt, sizeof(pkt), &s4, &d6, "x", 1), 0);   /* mixed families */
	CHECK_EQ(tsi_pkt_udp(pkt, sizeof(pkt), &s4, &s4, big, sizeof(big)), 0);
	CHECK_EQ(tsi_pkt_udp(pkt, 20 + 8 + 3, &s4, &s4, "abcd", 4), 0);  /* no room */
	s4.family = AF_UNIX;
	CHECK_EQ(tsi_pkt_udp(pkt, sizeof(pkt), &s4, &s4, "x", 1), 0);
}

/* Through the kernel: a raw socket on the loopback, a UDP socket bound there. */
static void inject(int family, const char *from, const char *to)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family }, got;
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	socklen_t glen = sizeof(got);
	struct pollfd pfd;
	struct krun_tsi_dgram s = peer(family, from, 4242), d = peer(family, to, 0);
	int raw = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	int u = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char buf[64];
	size_t n;

	CHECK(raw >= 0 && u >= 0);
	CHECK_EQ(bind(u, (struct sockaddr *)&ss, len), 0);  /* the wildcard, as the init binds */
	CHECK_EQ(getsockname(u, (struct sockaddr *)&ss, &glen), 0);
	d.port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					   ((struct sockaddr_in6 *)&ss)->sin6_port);
	n = tsi_pkt_udp(pkt, sizeof(pkt), &s, &d, "datagram", 8);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, d.addr, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, d.addr, 16);
	CHECK_EQ(sendto(raw, pkt, n, 0, (struct sockaddr *)&ss, len), (ssize_t)n);
	pfd = (struct pollfd){ .fd = u, .events = POLLIN };
	CHECK_EQ(poll(&pfd, 1, 2000), 1);
	glen = sizeof(got);
	CHECK_EQ(recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&got, &glen), 8);
	CHECK(!memcmp(buf, "datagram", 8));
	CHECK_EQ(got.ss_family, family);
	if (family == AF_INET) {
		CHECK(!memcmp(&((struct sockaddr_in *)&got)->sin_addr, s.addr, 4));
		CHECK_EQ(ntohs(((struct sockaddr_in *)&got)->sin_port), 4242);
	} else {
		CHECK(!memcmp(&((struct sockaddr_in6 *)&got)->sin6_addr, s.addr, 16));
		CHECK_EQ(ntohs(((struct sockaddr_in6 *)&got)->sin6_port), 4242);
	}
	close(raw);
	close(u);
}

static void test_inject_ipv4(void)
{
	inject(AF_INET, "192.0.2.9", "127.0.0.1");
}

static void test_inject_ipv6(void)
{
	inject(AF_INET6, "2001:db8::9", "::1");
}

int main(void)
{
	int raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);

	RUN_TEST(test_ipv4_fields);
	RUN_TEST(test_ipv6_checksum);
	RUN_TEST(test_refused);
	if (raw < 0) {
		printf("SKIP test_inject_ipv4: no raw socket (%s): needs CAP_NET_RAW\n"
		       "SKIP test_inject_ipv6: the same\n", strerror(errno));
		return HARNESS_EXIT();
	}
	close(raw);
	RUN_TEST(test_inject_ipv4);
	RUN_TEST(test_inject_ipv6);
	return HARNESS_EXIT();
}
