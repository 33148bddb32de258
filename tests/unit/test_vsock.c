/* virtio-vsock through the mmio transport: connect, data both ways under credit, close, listen, backend. */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>

#include "api/launch.h"
#include "harness.h"
#include "libkrun.h"
#include "test_vsock_driver.h"
#include "util/log.h"

#define BULK (3u << 20)
#define GUEST_BUF 8192u         /* the guest's small buf_alloc: flow control on every few packets */
#define HOST_BUF 16384u         /* the device's buffer (its credit to the guest) */

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + i / 251);
}

static void test_config_and_echo(void)
{
	struct rig r;
	struct gpkt p;
	struct virtio_vsock_hdr h2;
	uint32_t cid = 0;
	char buf[16];
	int h;

	CHECK_EQ(rig_start(&r, 0, 0), 0);
	CHECK_EQ(mdrv_rd(&r.d, VIRTIO_MMIO_DEVICE_ID), 19);
	CHECK_EQ(virtio_mmio_read(r.d.m, VIRTIO_MMIO_CONFIG, &cid, 4), 0);
	CHECK_EQ(cid, G_CID);
	h = g_connect(&r, 5000, 65536);
	CHECK(h >= 0);
	CHECK_EQ(g_send(&r, 5000, G_MAP_PORT, VIRTIO_VSOCK_OP_RW, "hello", 5, 65536, 0), 0);
	CHECK_EQ(read_timeout(h, buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "hello", 5));
	CHECK_EQ(write(h, "world!", 6), 6);
	CHECK(expect_op(&r, 5000, VIRTIO_VSOCK_OP_RW, &p));
	CHECK_EQ(p.len, 6);
	CHECK_EQ(p.used_len, G_HDR + 6);
	CHECK(!memcmp(p.data, "world!", 6));
	CHECK_EQ(p.buf_alloc, VSOCK_DEFAULT_BUF_SIZE);
	CHECK_EQ(p.fwd_cnt, 5);
	/* A guest close (full SHUTDOWN) reaches the host as EOF and is answered by RST. */
	h2 = g_hdr(5000, G_MAP_PORT, VIRTIO_VSOCK_OP_SHUTDOWN, 0, 65536, 6);
	h2.flags = htole32(VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	CHECK_EQ(g_send_raw(&r, &h2, NULL, 0, G_HDR), 0);
	CHECK(expect_op(&r, 5000, VIRTIO_VSOCK_OP_RST, &p));
	CHECK_EQ(read_timeout(h, buf, sizeof(buf)), 0);
	close(h);
	rig_stop(&r);
}

struct host_io {
	int fd;
	size_t done;
	bool same;
};

static void *host_reader(void *opaque)
{
	struct host_io *io = opaque;
	uint8_t buf[8192];

	io->same = true;
	while (io->done < BULK) {
		ssize_t n = read_timeout(io->fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			io->same &= buf[i] == pattern(io->done + (size_t)i);
		io->done += (size_t)n;
		if (io->done % (256 * 1024) < (size_t)n)
			usleep(2000);   /* a slow reader: the device must buffer and stop granting credit */
	}
	return NULL;
}

static void *host_writer(void *opaque)
{
	struct host_io *io = opaque;
	uint8_t buf[6000];

	while (io->done < BULK) {
		size_t n = BULK - io->done < sizeof(buf) ? BULK - io->done : sizeof(buf);
		ssize_t w;

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(io->done + i);
		w = write(io->fd, buf, n);
		if (w <= 0)
			break;
		io->done += (size_t)w;
	}
	return NULL;
}

/* Guest to host: the guest sends only within the device's credit and sees CREDIT_UPDATEs. */
static void test_bulk_to_host(void)
{
	struct host_io io = { 0 };
	uint32_t peer_buf = 0, peer_fwd = 0, tx_cnt = 0, updates = 0;
	uint8_t chunk[G_DATA];
	pthread_t t;
	struct gpkt p;
	struct rig r;

	CHECK_EQ(rig_start(&r, 0, HOST_BUF), 0);
	CHECK_EQ(g_send(&r, 5001, G_MAP_PORT, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, GUEST_BUF, 0), 0);
	CHECK(expect_op(&r, 5001, VIRTIO_VSOCK_OP_RESPONSE, &p));
	CHECK_EQ(p.buf_alloc, HOST_BUF);
	peer_buf = p.buf_alloc;
	peer_fwd = p.fwd_cnt;
	io.fd = host_accept(&r);
	CHECK(io.fd >= 0);
	pthread_create(&t, NULL, host_reader, &io);
	while (tx_cnt < BULK) {
		uint32_t credit = peer_buf - (tx_cnt - peer_fwd), n = BULK - tx_cnt;

		if (credit == 0) {
			if (!g_recv(&r, &p, 2000))
				break;
			updates += p.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE;
			peer_buf = p.buf_alloc;
			peer_fwd = p.fwd_cnt;
			continue;
		}
		n = n < credit ? n : credit;
		n = n < G_DATA ? n : G_DATA;
		for (uint32_t i = 0; i < n; i++)
			chunk[i] = pattern(tx_cnt + i);
		if (g_send(&r, 5001, G_MAP_PORT, VIRTIO_VSOCK_OP_RW, chunk, n, GUEST_BUF, 0))
			break;
		tx_cnt += n;
	}
	pthread_join(t, NULL);
	CHECK_EQ(tx_cnt, BULK);
	CHECK_EQ(io.done, BULK);
	CHECK(io.same);
	CHECK(updates > 10);
	close(io.fd);
	rig_stop(&r);
}

/* Host to guest: the device never has more in flight than the guest's buf_alloc. */
static void test_bulk_to_guest(void)
{
	struct host_io io = { 0 };
	uint32_t rx = 0, announced = 0, max_in_flight = 0;
	bool same = true;
	pthread_t t;
	struct gpkt p;
	struct rig r;

	CHECK_EQ(rig_start(&r, 0, HOST_BUF), 0);
	io.fd = -1;
	CHECK_EQ(g_send(&r, 5002, G_MAP_PORT, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, GUEST_BUF, 0), 0);
	CHECK(expect_op(&r, 5002, VIRTIO_VSOCK_OP_RESPONSE, &p));
	io.fd = host_accept(&r);
	CHECK(io.fd >= 0);
	pthread_create(&t, NULL, host_writer, &io);
	while (rx < BULK && g_recv(&r, &p, 2000)) {
		if (p.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
			g_send(&r, 5002, G_MAP_PORT, VIRTIO_VSOCK_OP_CREDIT_UPDATE, NULL, 0, GUEST_BUF, rx);
			announced = rx;
			continue;
		}
		if (p.op != VIRTIO_VSOCK_OP_RW)
			continue;
		for (uint32_t i = 0; i < p.len; i++)
			same &= p.data[i] == pattern(rx + i);
		rx += p.len;
		if (rx - announced > max_in_flight)
			max_in_flight = rx - announced;
		if (rx - announced >= GUEST_BUF / 2) {
			g_send(&r, 5002, G_MAP_PORT, VIRTIO_VSOCK_OP_CREDIT_UPDATE, NULL, 0, GUEST_BUF, rx);
			announced = rx;
		}
	}
	pthread_join(t, NULL);
	CHECK_EQ(rx, BULK);
	CHECK(same);
	CHECK(max_in_flight <= GUEST_BUF);
	close(io.fd);
	rig_stop(&r);
}

static void test_host_close_and_guest_rst(void)
{
	struct rig r;
	struct gpkt p;
	char c;
	int h;

	CHECK_EQ(rig_start(&r, 0, 0), 0);
	h = g_connect(&r, 6000, 65536);
	CHECK(h >= 0);
	CHECK_EQ(write(h, "x", 1), 1);
	close(h);
	CHECK(expect_op(&r, 6000, VIRTIO_VSOCK_OP_RW, &p));
	CHECK(expect_op(&r, 6000, VIRTIO_VSOCK_OP_SHUTDOWN, &p));
	if (p.flags == VIRTIO_VSOCK_SHUTDOWN_SEND)  /* EOF seen before the full close */
		CHECK(expect_op(&r, 6000, VIRTIO_VSOCK_OP_SHUTDOWN, &p));
	CHECK_EQ(p.flags, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	CHECK_EQ(g_send(&r, 6000, G_MAP_PORT, VIRTIO_VSOCK_OP_RST, NULL, 0, 65536, 1), 0);
	/* Guest RST: the host's end sees the connection closed. */
	h = g_connect(&r, 6001, 65536);
	CHECK(h >= 0);
	CHECK_EQ(g_send(&r, 6001, G_MAP_PORT, VIRTIO_VSOCK_OP_RST, NULL, 0, 65536, 0), 0);
	CHECK_EQ(read_timeout(h, &c, 1), 0);
	close(h);
	/* Data for the reset connection gets RST: the device forgot it. */
	CHECK_EQ(g_send(&r, 6001, G_MAP_PORT, VIRTIO_VSOCK_OP_RW, "y", 1, 65536, 0), 0);
	CHECK(expect_op(&r, 6001, VIRTIO_VSOCK_OP_RST, &p));
	rig_stop(&r);
}

/* krun_add_vsock_port2(listen=true): a host connection becomes a REQUEST to the guest's port. */
static void test_listen(void)
{
	struct rig r;
	struct gpkt p;
	char buf[8];
	int c;

	rig_timeout_ms = 300;
	CHECK_EQ(rig_start(&r, 0, 0), 0);
	rig_timeout_ms = 0;
	c = connect_to(r.lpath);
	CHECK(c >= 0);
	CHECK(expect_op(&r, G_LISTEN_PORT, VIRTIO_VSOCK_OP_REQUEST, &p));
	CHECK_EQ(p.dst_cid, G_CID);
	CHECK_EQ(write(c, "ping", 4), 4);
	CHECK(no_packet(&r));                   /* nothing before the guest accepts */
	CHECK_EQ(g_send(&r, G_LISTEN_PORT, p.src_port, VIRTIO_VSOCK_OP_RESPONSE, NULL, 0, 65536, 0), 0);
	CHECK(expect_op(&r, G_LISTEN_PORT, VIRTIO_VSOCK_OP_RW, &p));
	CHECK_EQ(p.len, 4);
	CHECK(!memcmp(p.data, "ping", 4));
	CHECK_EQ(g_send(&r, G_LISTEN_PORT, p.src_port, VIRTIO_VSOCK_OP_RW, "pong", 4, 65536, 4), 0);
	CHECK_EQ(read_timeout(c, buf, sizeof(buf)), 4);
	CHECK(!memcmp(buf, "pong", 4));
	close(c);
	CHECK(expect_op(&r, G_LISTEN_PORT, VIRTIO_VSOCK_OP_SHUTDOWN, &p));
	CHECK_EQ(g_send(&r, G_LISTEN_PORT, p.src_port, VIRTIO_VSOCK_OP_RST, NULL, 0, 65536, 4), 0);
	/* A guest that refuses (RST) closes the host's connection. */
	c = connect_to(r.lpath);
	CHECK(expect_op(&r, G_LISTEN_PORT, VIRTIO_VSOCK_OP_REQUEST, &p));
	CHECK_EQ(g_send(&r, G_LISTEN_PORT, p.src_port, VIRTIO_VSOCK_OP_RST, NULL, 0, 65536, 0), 0);
	CHECK_EQ(read_timeout(c, buf, 1), 0);
	close(c);
	rig_stop(&r);
	CHECK_EQ(access(r.lpath, F_OK), -1);    /* the device removed its socket */
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A host socket that does not read stalls only its own connection. */
static void test_slow_conn_isolated(void)
{
	static uint8_t chunk[G_DATA];
	uint32_t peer_fwd = 0, tx = 0;
	struct rig r;
	struct gpkt p;
	char buf[8];
	int slow, fast;
	double cpu;

	CHECK_EQ(rig_start(&r, 0, HOST_BUF), 0);
	slow = g_connect(&r, 9100, 65536);
	fast = g_connect(&r, 9101, 65536);
	CHECK(slow >= 0 && fast >= 0);
	/* Send on the slow one until the device stops granting credit. */
	for (;;) {
		if (tx - peer_fwd + G_DATA <= HOST_BUF) {
			CHECK_EQ(g_send(&r, 9100, G_MAP_PORT, VIRTIO_VSOCK_OP_RW, chunk, G_DATA, 65536, 0), 0);
			tx += G_DATA;
			continue;
		}
		if (!g_recv(&r, &p, 200))
			break;
		if (p.dst_port == 9100)
			peer_fwd = p.fwd_cnt;
		CHECK(tx < (64u << 20));
	}
	cpu = cpu_seconds();
	usleep(100000);
	CHECK(cpu_seconds() - cpu < 0.03);      /* stalled on EPOLLOUT, not polling */
	CHECK_EQ(g_send(&r, 9101, G_MAP_PORT, VIRTIO_VSOCK_OP_RW, "fast", 4, 65536, 0), 0);
	CHECK_EQ(read_timeout(fast, buf, sizeof(buf)), 4);
	close(slow);
	close(fast);
	rig_stop(&r);
}

struct fake_backend {
	int peer;           /* the test's end of the last pair handed to the device */
	unsigned int calls, resets;
	int sndbuf;         /* nonzero: SO_SNDBUF of the device's end, to make it block early */
};

static int fb_connect(void *opaque, uint32_t port, uint32_t peer_port, uint16_t type, int *fd)
{
	struct fake_backend *fb = opaque;
	int sv[2];

	(void)peer_port;
	fb->calls++;
	if (port != 4000)
		return -ECONNREFUSED;
	if (socketpair(AF_UNIX, (type == VIRTIO_VSOCK_TYPE_SEQPACKET ? SOCK_SEQPACKET : SOCK_STREAM) |
		       SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		return -errno;
	if (fb->sndbuf)
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &fb->sndbuf, sizeof(fb->sndbuf));
	fb->peer = sv[1];
	*fd = sv[0];
	return 0;
}

static void fb_reset(void *opaque)
{
	((struct fake_backend *)opaque)->resets++;
}

static const struct vsock_backend_ops fb_ops = { .connect = fb_connect, .reset = fb_reset };

/* Guest port of connection i in round `round`: scattered, as a guest's ephemeral ports are. */
static uint32_t many_port(unsigned int i, unsigned int round)
{
	return 20000u + i * 97u + round * 7u;
}

static int many_open(struct rig *r, struct fake_backend *fb, uint32_t gport)
{
	struct gpkt p;

	fb->peer = -1;
	if (g_send(r, gport, 4000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 65536, 0) ||
	    !expect_op(r, gport, VIRTIO_VSOCK_OP_RESPONSE, &p))
		return -1;
	return fb->peer;
}

/* Each connection's bytes reach its own host fd; which one says whether the lookup is right. */
static int many_check(struct rig *r, const int *peers, const uint32_t *ports, unsigned int n)
{
	for (unsigned int k = n; k-- > 0;) {
		uint32_t got = 0;

		if (g_send(r, ports[k], 4000, VIRTIO_VSOCK_OP_RW, &ports[k], 4, 65536, 0) ||
		    read_timeout(peers[k], &got, 4) != 4 || got != ports[k])
			return -1;
	}
	return 0;
}

/* The connection table under churn: many at once, every other one closed, the slots reused. */
static void test_many_conns(void)
{
	enum { N = 150 };
	struct fake_backend fb = { .peer = -1 };
	static int peers[N];
	static uint32_t ports[N];
	struct gpkt p;
	struct rig r;

	CHECK_EQ(rig_start_with(&r, N, 0, &fb_ops, &fb), 0);
	for (unsigned int i = 0; i < N; i++) {
		ports[i] = many_port(i, 0);
		peers[i] = many_open(&r, &fb, ports[i]);
		CHECK(peers[i] >= 0);
	}
	CHECK_EQ(g_send(&r, 9999, 4000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 65536, 0), 0);
	CHECK(expect_op(&r, 9999, VIRTIO_VSOCK_OP_RST, &p));   /* the limit holds */
	CHECK_EQ(many_check(&r, peers, ports, N), 0);
	for (unsigned int i = 0; i < N; i += 2) {
		CHECK_EQ(g_send(&r, ports[i], 4000, VIRTIO_VSOCK_OP_RST, NULL, 0, 65536, 0), 0);
		CHECK_EQ(read_timeout(peers[i], &p, 1), 0);    /* the device closed its end */
		close(peers[i]);
	}
	for (unsigned int i = 0; i < N; i += 2) {
		ports[i] = many_port(i, 1);
		peers[i] = many_open(&r, &fb, ports[i]);
		CHECK(peers[i] >= 0);
	}
	CHECK_EQ(many_check(&r, peers, ports, N), 0);
	/* A closed connection's port is unknown now: its data gets RST, not a live peer's fd. */
	CHECK_EQ(g_send(&r, many_port(0, 0), 4000, VIRTIO_VSOCK_OP_RW, "x", 1, 65536, 0), 0);
	CHECK(expect_op(&r, many_port(0, 0), VIRTIO_VSOCK_OP_RST, &p));
	for (unsigned int i = 0; i < N; i++)
		close(peers[i]);
	rig_stop(&r);
}

/* Ports the map does not claim go to the backend (the TSI proxy's hook). */
static void test_backend(void)
{
	struct fake_backend fb = { .peer = -1 };
	struct rig r;
	struct gpkt p;
	char buf[8];
	int h;

	CHECK_EQ(rig_start_with(&r, 0, 0, &fb_ops, &fb), 0);
	h = g_connect(&r, 9200, 65536);         /* the map wins for its port */
	CHECK(h >= 0);
	CHECK_EQ(fb.calls, 0);
	close(h);
	CHECK_EQ(g_send(&r, 9201, 4000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 65536, 0), 0);
	CHECK(expect_op(&r, 9201, VIRTIO_VSOCK_OP_RESPONSE, &p));
	CHECK_EQ(p.src_port, 4000);
	CHECK(fb.peer >= 0);
	CHECK_EQ(g_send(&r, 9201, 4000, VIRTIO_VSOCK_OP_RW, "tsi", 3, 65536, 0), 0);
	CHECK_EQ(read_timeout(fb.peer, buf, sizeof(buf)), 3);
	CHECK_EQ(g_send(&r, 9202, 4001, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 65536, 0), 0);
	CHECK(expect_op(&r, 9202, VIRTIO_VSOCK_OP_RST, &p));
	CHECK_EQ(fb.calls, 2);
	CHECK_EQ(mdrv_start(&r.d, 3), 0);       /* a device reset reaches the backend */
	CHECK_EQ(fb.resets, 1);
	CHECK_EQ(read_timeout(fb.peer, buf, 1), 0);     /* and ends its connections */
	close(fb.peer);
	rig_stop(&r);
}

/* A seqpacket packet header from guest port 9300 to the fake backend's port 4000. */
static int seq_send(struct rig *r, uint16_t op, const void *data, uint32_t len, uint32_t flags,
		    uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct virtio_vsock_hdr h = g_hdr(9300, 4000, op, len, buf_alloc, fwd_cnt);

	h.type = htole16(VIRTIO_VSOCK_TYPE_SEQPACKET);
	h.flags = htole32(flags);
	return g_send_raw(r, &h, data, len, G_HDR + len);
}

static int seq_open(struct rig *r, struct fake_backend *fb, uint32_t buf_alloc)
{
	struct gpkt p;

	rig_features = 1u << VIRTIO_VSOCK_F_SEQPACKET;
	if (rig_start_with(r, 0, 0, &fb_ops, fb) || seq_send(r, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 0,
							     buf_alloc, 0))
		return -1;
	if (!expect_op(r, 9300, VIRTIO_VSOCK_OP_RESPONSE, &p) || p.type != VIRTIO_VSOCK_TYPE_SEQPACKET)
		return -1;
	return fb->peer >= 0 ? 0 : -1;
}

/* 5.10.6.6: guest messages end at EOM and reach the host whole; host messages get EOM. */
static void test_seq_boundaries(void)
{
	struct fake_backend fb = { .peer = -1 };
	struct rig r;
	struct gpkt p;
	char buf[16];

	CHECK_EQ(seq_open(&r, &fb, 65536), 0);
	CHECK_EQ(seq_send(&r, VIRTIO_VSOCK_OP_RW, "ab", 2, 0, 65536, 0), 0);
	CHECK_EQ(seq_send(&r, VIRTIO_VSOCK_OP_RW, "cd", 2, VIRTIO_VSOCK_SEQ_EOM, 65536, 0), 0);
	/* An empty message is not passed on: the host would read it as EOF. */
	CHECK_EQ(seq_send(&r, VIRTIO_VSOCK_OP_RW, NULL, 0, VIRTIO_VSOCK_SEQ_EOM, 65536, 0), 0);
	CHECK_EQ(seq_send(&r, VIRTIO_VSOCK_OP_RW, "xyz", 3, VIRTIO_VSOCK_SEQ_EOM, 65536, 0), 0);
	CHECK_EQ(read_timeout(fb.peer, buf, sizeof(buf)), 4);
	CHECK(!memcmp(buf, "abcd", 4));
	CHECK_EQ(read_timeout(fb.peer, buf, sizeof(buf)), 3);
	CHECK(!memcmp(buf, "xyz", 3));
	CHECK_EQ(send(fb.peer, "hello", 5, 0), 5);
	CHECK_EQ(send(fb.peer, "w", 1, 0), 1);
	CHECK(expect_op(&r, 9300, VIRTIO_VSOCK_OP_RW, &p));
	CHECK_EQ(p.len, 5);
	CHECK_EQ(p.flags, VIRTIO_VSOCK_SEQ_EOM);
	CHECK_EQ(p.type, VIRTIO_VSOCK_TYPE_SEQPACKET);
	CHECK_EQ(p.fwd_cnt, 7);         /* every guest byte went to the host */
	CHECK(!memcmp(p.data, "hello", 5));
	CHECK(expect_op(&r, 9300, VIRTIO_VSOCK_OP_RW, &p));
	CHECK_EQ(p.len, 1);
	CHECK_EQ(p.flags, VIRTIO_VSOCK_SEQ_EOM);
	/* A stream packet on a seqpacket connection is a protocol error. */
	CHECK_EQ(g_send(&r, 9300, 4000, VIRTIO_VSOCK_OP_RW, "s", 1, 65536, 0), 0);
	CHECK(expect_op(&r, 9300, VIRTIO_VSOCK_OP_RST, &p));
	CHECK_EQ(p.type, VIRTIO_VSOCK_TYPE_SEQPACKET);
	close(fb.peer);
	rig_stop(&r);
	rig_features = 0;
}

/* Reads fragments of one message until EOM; returns its length (0 on a protocol surprise). */
static uint32_t seq_collect(struct rig *r, uint8_t *out, uint32_t cap, unsigned int *frags,
			    uint32_t *credit_left)
{
	uint32_t got = 0;
	struct gpkt p;

	while (expect_op(r, 9300, VIRTIO_VSOCK_OP_RW, &p) && got + p.len <= cap) {
		memcpy(out + got, p.data, p.len);
		got += p.len;
		(*frags)++;
		if (p.flags & VIRTIO_VSOCK_SEQ_EOM)
			return got;
		if (credit_left && (*credit_left -= p.len) == 0)
			return got;     /* the device must wait for our credit now */
	}
	return 0;
}

/* A message larger than an rx buffer and than the guest's credit: fragments, EOM on the last. */
static void test_seq_split_and_credit(void)
{
	static uint8_t msg[10000], got[10000];
	struct fake_backend fb = { .peer = -1 };
	unsigned int frags = 0;
	uint32_t credit = 5000, n;
	struct rig r;
	struct gpkt p;

	for (unsigned int i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7);
	CHECK_EQ(seq_open(&r, &fb, 5000), 0);
	CHECK_EQ(send(fb.peer, msg, sizeof(msg), 0), (ssize_t)sizeof(msg));
	n = seq_collect(&r, got, sizeof(got), &frags, &credit);
	CHECK_EQ(n, 5000);              /* 4096 + 904: exactly the credit, no EOM yet */
	CHECK_EQ(frags, 2);
	CHECK(!g_recv(&r, &p, 100) || p.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST);
	/* The guest's application read it all: credit for 5000 more. */
	CHECK_EQ(seq_send(&r, VIRTIO_VSOCK_OP_CREDIT_UPDATE, NULL, 0, 0, 5000, 5000), 0);
	n = seq_collect(&r, got + 5000, sizeof(got) - 5000, &frags, NULL);
	CHECK_EQ(n, 5000);
	CHECK_EQ(frags, 4);
	CHECK(!memcmp(got, msg, sizeof(msg)));
	close(fb.peer);
	rig_stop(&r);
	rig_features = 0;
}

/* The device's fwd_cnt as a CREDIT_UPDATE answering our CREDIT_REQUEST reports it. */
static uint32_t seq_fwd_cnt(struct rig *r)
{
	struct gpkt p;

	if (seq_send(r, VIRTIO_VSOCK_OP_CREDIT_REQUEST, NULL, 0, 0, 65536, 0))
		return UINT32_MAX;
	while (g_recv(r, &p, 2000))
		if (p.dst_port == 9300 && p.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE)
			return p.fwd_cnt;
	return UINT32_MAX;
}

/* A host socket that blocks: messages wait whole, in order, and are credited only once sent. */
static void test_seq_backpressure(void)
{
	struct fake_backend fb = { .peer = -1, .sndbuf = 4096 };
	static char msg[3000], buf[4000];
	struct rig r;
	uint32_t fwd;

	CHECK_EQ(seq_open(&r, &fb, 65536), 0);
	for (int k = 0; k < 20; k++) {
		memset(msg, 'a' + k, sizeof(msg));
		/* Each message in two packets: the EOM packet completes it. */
		CHECK_EQ(seq_send(&r, VIRTIO_VSOCK_OP_RW, msg, 1000, 0, 65536, 0), 0);
		CHECK_EQ(seq_send(&r, VIRTIO_VSOCK_OP_RW, msg + 1000, 2000, VIRTIO_VSOCK_SEQ_EOM,
				  65536, 0), 0);
	}
	fwd = seq_fwd_cnt(&r);
	CHECK(fwd < 60000);             /* what waits in the device is not credited yet */
	CHECK_EQ(fwd % 3000, 0);        /* and only whole messages went out */
	for (int k = 0; k < 20; k++) {
		CHECK_EQ(read_timeout(fb.peer, buf, sizeof(buf)), 3000);
		CHECK(buf[0] == 'a' + k && buf[2999] == 'a' + k);
	}
	CHECK_EQ(seq_fwd_cnt(&r), 60000);
	close(fb.peer);
	rig_stop(&r);
	rig_features = 0;
}

/* More complete messages than the device queues for a blocked host: the excess is dropped
 * (a datagram's fate), but still credited, so the guest's sender never stalls on it. */
static void test_seq_queue_full(void)
{
	struct fake_backend fb = { .peer = -1, .sndbuf = 4096 };
	struct pollfd pfd;
	struct rig r;
	int got = 0;
	char c;

	CHECK_EQ(seq_open(&r, &fb, 65536), 0);
	for (int k = 0; k < 80; k++)
		CHECK_EQ(seq_send(&r, VIRTIO_VSOCK_OP_RW, "m", 1, VIRTIO_VSOCK_SEQ_EOM, 65536, 0), 0);
	pfd = (struct pollfd){ .fd = fb.peer, .events = POLLIN };
	while (poll(&pfd, 1, 300) == 1 && recv(fb.peer, &c, 1, 0) == 1)
		got++;
	CHECK(got >= 32 && got < 80);
	CHECK_EQ(seq_fwd_cnt(&r), 80);
	close(fb.peer);
	rig_stop(&r);
	rig_features = 0;
}

/* Without VIRTIO_VSOCK_F_SEQPACKET negotiated a seqpacket REQUEST is refused, in its type. */
static void test_seq_not_negotiated(void)
{
	struct fake_backend fb = { .peer = -1 };
	struct rig r;
	struct gpkt p;

	rig_features = 0;
	CHECK_EQ(rig_start_with(&r, 0, 0, &fb_ops, &fb), 0);
	CHECK_EQ(seq_send(&r, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 0, 65536, 0), 0);
	CHECK(expect_op(&r, 9300, VIRTIO_VSOCK_OP_RST, &p));
	CHECK_EQ(p.type, VIRTIO_VSOCK_TYPE_SEQPACKET);
	CHECK_EQ(fb.calls, 0);
	rig_stop(&r);
}

/* krun_add_vsock_port/2 reach the launch spec that krun_start_enter and tcg_vm build from. */
static void test_launch_spec(void)
{
	struct launch_spec *spec;
	int id = krun_create_ctx();

	CHECK(id >= 0);
	CHECK_EQ(krun_set_root((uint32_t)id, "/"), 0);
	CHECK_EQ(krun_add_vsock_port((uint32_t)id, 1234, "/tmp/vsock-test-a.sock"), 0);
	CHECK_EQ(krun_add_vsock_port2((uint32_t)id, 777, "/tmp/vsock-test-does-not-exist.sock", true), 0);
	CHECK_EQ(launch_spec_from_ctx((uint32_t)id, &spec), 0);
	CHECK_EQ(spec->nr_vsock_ports, 2);
	CHECK_EQ(spec->vsock_ports[0].port, 1234);
	CHECK(!spec->vsock_ports[0].listen);
	CHECK(!strcmp(spec->vsock_ports[0].path, "/tmp/vsock-test-a.sock"));
	CHECK_EQ(spec->vsock_ports[1].port, 777);
	CHECK(spec->vsock_ports[1].listen);
	launch_spec_free(spec);
	krun_free_ctx((uint32_t)id);
}

int main(void)
{
	log_set_level(LOG_LEVEL_OFF);   /* malformed packets warn by design */
	RUN_TEST(test_config_and_echo);
	RUN_TEST(test_bulk_to_host);
	RUN_TEST(test_bulk_to_guest);
	RUN_TEST(test_host_close_and_guest_rst);
	RUN_TEST(test_listen);
	RUN_TEST(test_slow_conn_isolated);
	RUN_TEST(test_backend);
	RUN_TEST(test_many_conns);
	RUN_TEST(test_seq_boundaries);
	RUN_TEST(test_seq_split_and_credit);
	RUN_TEST(test_seq_backpressure);
	RUN_TEST(test_seq_queue_full);
	RUN_TEST(test_seq_not_negotiated);
	RUN_TEST(test_launch_spec);
	return HARNESS_EXIT();
}
