/*
 * TSI guest side: whole IPv4/IPv6 UDP packets, for handing a host datagram to a guest socket
 * through a raw socket on the loopback with its true source address (RFC 791, 8200, 768).
 * Pure functions: the unit tests build them on the host too (tests/unit/test_tsi_pkt.c).
 */
#include "tsi_pkt.h"

#include <string.h>
#include <sys/socket.h>

#define IP4_HDR 20u
#define IP6_HDR 40u
#define UDP_HDR 8u
#define PROTO_UDP 17u
#define HOP_LIMIT 64u

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* One's complement sum of 16-bit big-endian words (odd tail padded with zero). */
static uint32_t sum16(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

uint16_t tsi_pkt_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void udp_header(uint8_t *u, const struct krun_tsi_dgram *src,
		       const struct krun_tsi_dgram *dst, size_t len)
{
	put16(u, src->port);
	put16(u + 2, dst->port);
	put16(u + 4, (uint32_t)(UDP_HDR + len));
	put16(u + 6, 0);
}

/* IPv4: the kernel fills in the header checksum; a zero UDP checksum means "none". */
static size_t build4(uint8_t *out, const struct krun_tsi_dgram *src,
		     const struct krun_tsi_dgram *dst, const void *data, size_t len)
{
	memset(out, 0, IP4_HDR);
	out[0] = 0x45;
	put16(out + 2, (uint32_t)(IP4_HDR + UDP_HDR + len));
	out[8] = HOP_LIMIT;
	out[9] = PROTO_UDP;
	memcpy(out + 12, src->addr, 4);
	memcpy(out + 16, dst->addr, 4);
	udp_header(out + IP4_HDR, src, dst, len);
	memcpy(out + IP4_HDR + UDP_HDR, data, len);
	return IP4_HDR + UDP_HDR + len;
}

/* IPv6 makes the UDP checksum mandatory: over a pseudo-header, the UDP header and data. */
static size_t build6(uint8_t *out, const struct krun_tsi_dgram *src,
		     const struct krun_tsi_dgram *dst, const void *data, size_t len)
{
	uint8_t *u = out + IP6_HDR;
	uint32_t ulen = (uint32_t)(UDP_HDR + len), sum;
	uint16_t csum;

	memset(out, 0, IP6_HDR);
	out[0] = 0x60;
	put16(out + 4, ulen);
	out[6] = PROTO_UDP;
	out[7] = HOP_LIMIT;
	memcpy(out + 8, src->addr, 16);
	memcpy(out + 24, dst->addr, 16);
	udp_header(u, src, dst, len);
	memcpy(u + UDP_HDR, data, len);
	sum = sum16(0, out + 8, 32) + (ulen >> 16) + (ulen & 0xffff) + PROTO_UDP;
	csum = tsi_pkt_fold(sum16(sum, u, ulen));
	put16(u + 6, csum ? csum : 0xffff);
	return IP6_HDR + ulen;
}

size_t tsi_pkt_udp(uint8_t *out, size_t size, const struct krun_tsi_dgram *src,
		   const struct krun_tsi_dgram *dst, const void *data, size_t len)
{
	size_t hdr = src->family == AF_INET ? IP4_HDR : IP6_HDR;

	if (src->family != dst->family || (src->family != AF_INET && src->family != AF_INET6))
		return 0;
	if (len > KRUN_TSI_DGRAM_MAX || size < hdr + UDP_HDR + len)
		return 0;
	return src->family == AF_INET ? build4(out, src, dst, data, len) :
					build6(out, src, dst, data, len);
}
