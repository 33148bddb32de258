/* virtio-vsock against a hostile guest: refusals, malformed and random packets, limits, timeouts. */
#include <errno.h>
#include <fcntl.h>

#include "harness.h"
#include "test_vsock_driver.h"
#include "util/log.h"

static void test_unmapped_port(void)
{
	struct rig r;
	struct gpkt p;

	CHECK_EQ(rig_start(&r, 0, 0), 0);
	CHECK_EQ(g_send(&r, 7000, 9999, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 65536, 0), 0);
	CHECK(expect_op(&r, 7000, VIRTIO_VSOCK_OP_RST, &p));
	CHECK_EQ(p.src_port, 9999);
	/* The listening port is not a destination for the guest. */
	CHECK_EQ(g_send(&r, 7001, G_LISTEN_PORT, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 65536, 0), 0);
	CHECK(expect_op(&r, 7001, VIRTIO_VSOCK_OP_RST, &p));
	rig_stop(&r);
}

static void test_malformed(void)
{
	struct virtio_vsock_hdr h;
	struct rig r;
	struct gpkt p;
	int fd;

	CHECK_EQ(rig_start(&r, 0, 0), 0);
	/* Header len beyond the buffer, no connection: RST. */
	h = g_hdr(8000, G_MAP_PORT, VIRTIO_VSOCK_OP_REQUEST, 100, 65536, 0);
	CHECK_EQ(g_send_raw(&r, &h, "0123456789", 10, G_HDR + 10), 0);
	CHECK(expect_op(&r, 8000, VIRTIO_VSOCK_OP_RST, &p));
	CHECK(no_packet(&r));
	/* Wrong source CID, wrong destination CID: dropped silently. */
	h = g_hdr(8001, G_MAP_PORT, VIRTIO_VSOCK_OP_REQUEST, 0, 65536, 0);
	h.src_cid = htole64(7);
	CHECK_EQ(g_send_raw(&r, &h, NULL, 0, G_HDR), 0);
	h.src_cid = htole64(G_CID);
	h.dst_cid = htole64(1);
	CHECK_EQ(g_send_raw(&r, &h, NULL, 0, G_HDR), 0);
	/* Shorter than a header: dropped. */
	CHECK_EQ(g_send_raw(&r, &h, NULL, 0, 10), 0);
	CHECK(no_packet(&r));
	/* Unknown type: RST. */
	h = g_hdr(8002, G_MAP_PORT, VIRTIO_VSOCK_OP_REQUEST, 0, 65536, 0);
	h.type = htole16(9);
	CHECK_EQ(g_send_raw(&r, &h, NULL, 0, G_HDR), 0);
	CHECK(expect_op(&r, 8002, VIRTIO_VSOCK_OP_RST, &p));
	/* On an established connection: huge len, then unknown op, each reset it. */
	fd = g_connect(&r, 8003, 65536);
	CHECK(fd >= 0);
	h = g_hdr(8003, G_MAP_PORT, VIRTIO_VSOCK_OP_RW, 0xffffffffu, 65536, 0);
	CHECK_EQ(g_send_raw(&r, &h, "abc", 3, G_HDR + 3), 0);
	CHECK(expect_op(&r, 8003, VIRTIO_VSOCK_OP_RST, &p));
	close(fd);
	fd = g_connect(&r, 8004, 65536);
	CHECK(fd >= 0);
	CHECK_EQ(g_send(&r, 8004, G_MAP_PORT, 99, NULL, 0, 65536, 0), 0);
	CHECK(expect_op(&r, 8004, VIRTIO_VSOCK_OP_RST, &p));
	close(fd);
	/* Data beyond the credit the device granted: RST. */
	fd = g_connect(&r, 8005, 65536);
	CHECK(fd >= 0);
	{
		static uint8_t big[G_DATA];
		bool rst = false;

		h = g_hdr(8005, G_MAP_PORT, VIRTIO_VSOCK_OP_RW, G_DATA, 65536, 0);
		/* Fill the host socket and the device's buffer without reading on the host. */
		for (int i = 0; i < 1000 && !rst; i++) {
			CHECK_EQ(g_send_raw(&r, &h, big, G_DATA, G_BUF), 0);
			while (!rst && g_recv(&r, &p, 0))
				rst = p.dst_port == 8005 && p.op == VIRTIO_VSOCK_OP_RST;
		}
		for (int i = 0; i < 20 && !rst && g_recv(&r, &p, 100); i++)
			rst = p.dst_port == 8005 && p.op == VIRTIO_VSOCK_OP_RST;
		CHECK(rst);
	}
	close(fd);
	/* Still working, never marked broken. */
	fd = g_connect(&r, 8006, 65536);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(mdrv_rd(&r.d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	rig_stop(&r);
}

static void test_conn_limit(void)
{
	struct rig r;
	struct gpkt p;
	int fds[4];

	CHECK_EQ(rig_start(&r, 4, 0), 0);
	for (int i = 0; i < 4; i++) {
		fds[i] = g_connect(&r, 9000 + (uint32_t)i, 65536);
		CHECK(fds[i] >= 0);
	}
	CHECK_EQ(g_send(&r, 9004, G_MAP_PORT, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 65536, 0), 0);
	CHECK(expect_op(&r, 9004, VIRTIO_VSOCK_OP_RST, &p));
	/* Host-initiated connections count too: refused while full. */
	{
		int c = connect_to(r.lpath);
		char b;
		CHECK(c >= 0);
		CHECK_EQ(read_timeout(c, &b, 1), 0);
		close(c);
	}
	CHECK_EQ(g_send(&r, 9000, G_MAP_PORT, VIRTIO_VSOCK_OP_RST, NULL, 0, 65536, 0), 0);
	fds[0] = g_connect(&r, 9005, 65536);
	CHECK(fds[0] >= 0);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	rig_stop(&r);
}

/* Random headers, ops, lengths and credit numbers: no crash, no broken device, still serving. */
static void test_random_packets(void)
{
	static uint8_t junk[G_DATA];
	uint32_t seed = 12345;
	struct rig r;
	struct gpkt p;
	int fd;

	CHECK_EQ(rig_start(&r, 16, 8192), 0);
	CHECK_EQ(fcntl(r.lfd, F_SETFL, O_NONBLOCK), 0);
	for (unsigned int i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)i;
	for (int i = 0; i < 3000; i++) {
		struct virtio_vsock_hdr h;
		uint32_t rnd[8], blen;

		for (int k = 0; k < 8; k++)
			rnd[k] = seed = seed * 1103515245u + 12345u;
		h = g_hdr(9300 + (rnd[0] >> 8) % 6, (rnd[1] >> 9) % 3 ? G_MAP_PORT : (rnd[1] >> 12) % 70000,
			  (uint16_t)((rnd[2] >> 8) % 10), (rnd[3] >> 7) % 3 ? (rnd[3] >> 11) % 5000 : rnd[3],
			  (rnd[4] >> 5) % 4 ? 65536 : rnd[4], (rnd[5] >> 6) % 4 ? 0 : rnd[5]);
		if ((rnd[6] >> 10) % 8 == 0)
			h.type = htole16((uint16_t)((rnd[6] >> 14) % 4));
		if ((rnd[6] >> 18) % 16 == 0)
			h.src_cid = htole64(rnd[7]);
		h.flags = htole32((rnd[7] >> 20) % 4);
		blen = (rnd[7] >> 3) % G_BUF;
		CHECK_EQ(g_send_raw(&r, &h, junk, blen > G_HDR ? blen - G_HDR : 0, blen ? blen : 1), 0);
		while (g_recv(&r, &p, 0))
			;
		for (int k = 0; k < 4; k++) {
			int a = accept4(r.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (a < 0)
				break;
			if (rnd[k] & 1)
				(void)!send(a, junk, 100, MSG_NOSIGNAL);
			close(a);
		}
	}
	while (g_recv(&r, &p, 50))
		;
	CHECK_EQ(mdrv_rd(&r.d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	for (uint32_t port = 9300; port < 9306; port++)
		g_send(&r, port, G_MAP_PORT, VIRTIO_VSOCK_OP_RST, NULL, 0, 65536, 0);
	fd = g_connect(&r, 9400, 65536);
	CHECK(fd >= 0);
	close(fd);
	rig_stop(&r);
}

/* A guest that never answers our REQUEST or SHUTDOWN(both) gets RST and frees its slot. */
static void test_unanswered_timeout(void)
{
	struct rig r;
	struct gpkt p;
	char b;
	int c, h;

	rig_timeout_ms = 300;
	CHECK_EQ(rig_start(&r, 0, 0), 0);
	rig_timeout_ms = 0;
	c = connect_to(r.lpath);
	CHECK(c >= 0);
	CHECK(expect_op(&r, G_LISTEN_PORT, VIRTIO_VSOCK_OP_REQUEST, &p));
	CHECK(expect_op(&r, G_LISTEN_PORT, VIRTIO_VSOCK_OP_RST, &p));   /* ~0.3-1.3 s later */
	CHECK_EQ(read_timeout(c, &b, 1), 0);
	close(c);
	h = g_connect(&r, 9500, 65536);
	CHECK(h >= 0);
	close(h);
	CHECK(expect_op(&r, 9500, VIRTIO_VSOCK_OP_SHUTDOWN, &p));
	/* SHUTDOWN(SEND) may come before SHUTDOWN(both). */
	for (int i = 0; i < 3 && !expect_op(&r, 9500, VIRTIO_VSOCK_OP_RST, &p); i++)
		CHECK_EQ(p.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	CHECK_EQ(p.op, VIRTIO_VSOCK_OP_RST);
	rig_stop(&r);
}

int main(void)
{
	log_set_level(LOG_LEVEL_OFF);   /* malformed packets warn by design */
	RUN_TEST(test_unmapped_port);
	RUN_TEST(test_malformed);
	RUN_TEST(test_conn_limit);
	RUN_TEST(test_random_packets);
	RUN_TEST(test_unanswered_timeout);
	return HARNESS_EXIT();
}
