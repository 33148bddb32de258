/* A fake virtio-vsock guest for unit tests: mmio transport, loop thread, rx/tx rings with fixed slots. */
#ifndef KRUN_TESTS_TEST_VSOCK_DRIVER_H
#define KRUN_TESTS_TEST_VSOCK_DRIVER_H

#include <endian.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/vsock/vsock.h"
#include "test_mmio_driver.h"
#include "util/evloop.h"

#define G_CID 3
#define G_HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define G_DATA 4096
#define G_BUF (G_HDR + G_DATA)
#define G_MAP_PORT 1234         /* mapped to rig.path, the test's listening socket */
#define G_LISTEN_PORT 777       /* the device listens on rig.lpath */

struct rig {
	struct mdrv d;
	struct evloop *loop;
	pthread_t thread;
	char dir[32], path[64], lpath[64];
	int lfd;
	uint64_t rx_gpa[MDRV_QSIZE], tx_gpa[MDRV_QSIZE];
	bool tx_busy[MDRV_QSIZE];
};

/* A received packet, host byte order. */
struct gpkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len, flags, buf_alloc, fwd_cnt, used_len;
	uint16_t type, op;
	uint8_t data[G_DATA];
};

/* The device's wait for guest answers; tests of that timeout lower it. */
static unsigned int rig_timeout_ms;
/* Device feature bits 0-31 the rig's driver accepts (seqpacket tests set bit 1). */
static uint32_t rig_features;

/* mdrv_start, accepting rig_features too (VIRTIO_VSOCK_F_SEQPACKET, virtio 1.2 5.10.3). */
static int rig_driver_start(struct mdrv *d)
{
	uint32_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	if (!rig_features)
		return mdrv_start(d, 3);
	mdrv_wr(d, VIRTIO_MMIO_STATUS, 0);
	mdrv_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	mdrv_wr(d, VIRTIO_MMIO_STATUS, st);
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, 1);     /* VERSION_1 */
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, rig_features);
	st |= VIRTIO_CONFIG_S_FEATURES_OK;
	mdrv_wr(d, VIRTIO_MMIO_STATUS, st);
	if (!(mdrv_rd(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -2;
	for (unsigned int q = 0; q < 3; q++)
		if (mdrv_setup_queue(d, q))
			return -3;
	return mdrv_wr(d, VIRTIO_MMIO_STATUS, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

static void *rig_loop(void *loop)
{
	evloop_run(loop);
	return NULL;
}

static void ring_add(struct rig *r, unsigned int q, uint16_t k, uint64_t gpa, uint32_t len, bool write)
{
	struct vring_desc *desc = mdrv_hva(&r->d, mdrv_ring(q, 0));
	struct vring_avail *avail = mdrv_hva(&r->d, mdrv_ring(q, 1));

	desc[k].addr = gpa;
	desc[k].len = len;
	desc[k].flags = write ? VRING_DESC_F_WRITE : 0;
	desc[k].next = 0;
	avail->ring[r->d.avail_idx[q] % MDRV_QSIZE] = k;
	r->d.avail_idx[q]++;
	__atomic_store_n(&avail->idx, r->d.avail_idx[q], __ATOMIC_RELEASE);
}

static int ring_used(struct rig *r, unsigned int q, uint16_t *id, uint32_t *len)
{
	struct vring_used *used = mdrv_hva(&r->d, mdrv_ring(q, 2));
	struct vring_used_elem e;

	if (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) == r->d.used_seen[q])
		return 0;
	e = used->ring[r->d.used_seen[q] % MDRV_QSIZE];
	r->d.used_seen[q]++;
	*id = (uint16_t)e.id;
	*len = e.len;
	return 1;
}

static void g_kick(struct rig *r, unsigned int q)
{
	mdrv_wr(&r->d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64))
		return -1;
	return fd;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	return fd;
}

/* The host end of a guest connection to G_MAP_PORT, or -1 after 2 s. */
static int host_accept(struct rig *r)
{
	struct pollfd p = { .fd = r->lfd, .events = POLLIN };

	return poll(&p, 1, 2000) == 1 ? accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
}

static int rig_start_with(struct rig *r, unsigned int max_conns, uint32_t buf_size,
			  const struct vsock_backend_ops *backend, void *opaque)
{
	struct vsock_port_map ports[2];
	struct vsock_config cfg = { .max_conns = max_conns, .buf_size = buf_size, .ports = ports, .nr_ports = 2,
				    .backend = backend, .backend_opaque = opaque, .timeout_ms = rig_timeout_ms };
	struct virtio_dev *dev;

	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/vsock-test-XXXXXX");
	if (!mkdtemp(r->dir) || mdrv_init(&r->d))
		return -1;
	snprintf(r->path, sizeof(r->path), "%s/host.sock", r->dir);
	snprintf(r->lpath, sizeof(r->lpath), "%s/listen.sock", r->dir);
	r->lfd = listen_at(r->path);
	ports[0] = (struct vsock_port_map){ G_MAP_PORT, r->path, false };
	ports[1] = (struct vsock_port_map){ G_LISTEN_PORT, r->lpath, true };
	if (r->lfd < 0 || virtio_vsock_create(&cfg, &dev))
		return -2;
	r->loop = evloop_create();
	if (!r->loop || virtio_mmio_create(dev, &r->d.mem, r->loop, -1, &r->d.m))
		return -3;
	pthread_create(&r->thread, NULL, rig_loop, r->loop);
	if (rig_driver_start(&r->d))
		return -4;
	for (uint16_t k = 0; k < MDRV_QSIZE; k++) {
		r->rx_gpa[k] = mdrv_alloc(&r->d, G_BUF);
		r->tx_gpa[k] = mdrv_alloc(&r->d, G_BUF);
		ring_add(r, 0, k, r->rx_gpa[k], G_BUF, true);
	}
	g_kick(r, 0);
	return 0;
}

static int rig_start(struct rig *r, unsigned int max_conns, uint32_t buf_size)
{
	return rig_start_with(r, max_conns, buf_size, NULL, NULL);
}

static void rig_stop(struct rig *r)
{
	evloop_stop(r->loop);
	pthread_join(r->thread, NULL);
	virtio_mmio_detach_loop(r->d.m);
	mdrv_free(&r->d);
	evloop_destroy(r->loop);
	close(r->lfd);
	unlink(r->path);
	rmdir(r->dir);
}

/* Next packet the device put on rx (the buffer goes straight back), or 0 after timeout_ms. */
static int g_recv(struct rig *r, struct gpkt *p, int timeout_ms)
{
	for (int i = 0; i <= timeout_ms * 4; i++) {
		struct virtio_vsock_hdr h;
		uint16_t id;
		uint32_t len;
		uint8_t *b;

		if (!ring_used(r, 0, &id, &len)) {
			if (i < timeout_ms * 4)
				usleep(250);
			continue;
		}
		b = mdrv_hva(&r->d, r->rx_gpa[id % MDRV_QSIZE]);
		memcpy(&h, b, sizeof(h));
		*p = (struct gpkt){ .src_cid = le64toh(h.src_cid), .dst_cid = le64toh(h.dst_cid),
				    .src_port = le32toh(h.src_port), .dst_port = le32toh(h.dst_port),
				    .len = le32toh(h.len), .flags = le32toh(h.flags),
				    .buf_alloc = le32toh(h.buf_alloc), .fwd_cnt = le32toh(h.fwd_cnt),
				    .type = le16toh(h.type), .op = le16toh(h.op), .used_len = len };
		if (p->len <= G_DATA)
			memcpy(p->data, b + G_HDR, p->len);
		ring_add(r, 0, id, r->rx_gpa[id % MDRV_QSIZE], G_BUF, true);
		g_kick(r, 0);
		return 1;
	}
	return 0;
}

static void reap_tx(struct rig *r)
{
	uint16_t id;
	uint32_t len;

	while (ring_used(r, 1, &id, &len))
		r->tx_busy[id % MDRV_QSIZE] = false;
}

/* Send raw header h (host byte order fields filled by the caller) plus data as one buffer. */
static int g_send_raw(struct rig *r, const struct virtio_vsock_hdr *h, const void *data, uint32_t len,
		      uint32_t buf_len)
{
	for (int i = 0; i < 8000; i++) {
		reap_tx(r);
		for (uint16_t k = 0; k < MDRV_QSIZE; k++) {
			uint8_t *b;

			if (r->tx_busy[k])
				continue;
			b = mdrv_hva(&r->d, r->tx_gpa[k]);
			memcpy(b, h, sizeof(*h));
			if (len)
				memcpy(b + G_HDR, data, len);
			r->tx_busy[k] = true;
			ring_add(r, 1, k, r->tx_gpa[k], buf_len, false);
			g_kick(r, 1);
			return 0;
		}
		usleep(250);
	}
	return -1;
}

static struct virtio_vsock_hdr g_hdr(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t len,
				     uint32_t buf_alloc, uint32_t fwd_cnt)
{
	return (struct virtio_vsock_hdr){
		.src_cid = htole64(G_CID), .dst_cid = htole64(2),
		.src_port = htole32(src_port), .dst_port = htole32(dst_port), .len = htole32(len),
		.type = htole16(VIRTIO_VSOCK_TYPE_STREAM), .op = htole16(op),
		.buf_alloc = htole32(buf_alloc), .fwd_cnt = htole32(fwd_cnt),
	};
}

static int g_send(struct rig *r, uint32_t src_port, uint32_t dst_port, uint16_t op, const void *data,
		  uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct virtio_vsock_hdr h = g_hdr(src_port, dst_port, op, len, buf_alloc, fwd_cnt);

	return g_send_raw(r, &h, data, len, G_HDR + len);
}

/* Wait for a packet with op on (guest port gport), skipping credit traffic. */
static int expect_op(struct rig *r, uint32_t gport, uint16_t op, struct gpkt *p)
{
	while (g_recv(r, p, 2000)) {
		if (p->dst_port != gport || p->op == VIRTIO_VSOCK_OP_CREDIT_UPDATE ||
		    p->op == VIRTIO_VSOCK_OP_CREDIT_REQUEST)
			continue;
		return p->op == op;
	}
	return 0;
}

/* Guest port gport connects to G_MAP_PORT; returns the host's end, or -1. */
static int g_connect(struct rig *r, uint32_t gport, uint32_t buf_alloc)
{
	struct gpkt p;

	if (g_send(r, gport, G_MAP_PORT, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, buf_alloc, 0))
		return -1;
	if (!expect_op(r, gport, VIRTIO_VSOCK_OP_RESPONSE, &p) || p.src_port != G_MAP_PORT ||
	    p.src_cid != 2 || p.dst_cid != G_CID || p.buf_alloc == 0)
		return -1;
	return host_accept(r);
}

static ssize_t read_timeout(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 2000) == 1 ? read(fd, buf, len) : -1;
}

static int no_packet(struct rig *r)
{
	struct gpkt p;

	return !g_recv(r, &p, 100);
}

#endif
