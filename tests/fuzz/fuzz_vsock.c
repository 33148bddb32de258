/* libFuzzer target: a hostile guest driving the virtio-vsock device through its rx/tx rings. */
#include <endian.h>
#include <fcntl.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/vsock/vsock.h"
#include "fuzz_evloop.h"
#include "fuzz_util.h"
#include "util/log.h"
#include "virtio/device.h"

/*
 * Input: actions back to back; the low 3 bits of each action byte pick the kind:
 *   0 tx packet: a raw virtio_vsock_hdr (44 bytes), a payload length byte and the payload,
 *     spread over (bits 3-4) + 1 descriptors, then a tx kick; with bit 5 the payload is
 *     instead (length byte) * 32 zero bytes that the input does not carry;
 *   1 rx buffers: (bits 3-7) + 1 buffers of (next byte) * 8 bytes each, then an rx kick;
 *   2 device reset and re-activation (what a driver reload does), negotiating
 *     VIRTIO_VSOCK_F_SEQPACKET unless bit 3 is set (the first activation negotiates it);
 *   3 raw guest RAM write: u16 offset, length byte, bytes (rings included), then both kicks;
 *   4 the host accepts pending connections to the mapped ports and closes them;
 *   5 kick queue (bits 3-4) without adding anything;
 *   6 host side, bits 3-4: 0 accept pending connections to the mapped ports (kept, at most
 *     8), 1 write (length byte, bytes) to kept connection (bits 5-7; one message on a
 *     seqpacket one), 2 close it, 3 connect to the port the device listens on;
 *   7 one round of the event loop (the device's host socket and timer handlers).
 * Host port 1234 maps to a SOCK_STREAM socket the target listens on, host port 1235 to a
 * SOCK_SEQPACKET one (a guest seqpacket socket reaches it; 5.10.6.6); the device listens for
 * host connections to guest port 77. The loop is pulled in to run it one round at a time.
 */
#define RAM_GPA 0x100000ull
#define RAM_SIZE 0x20000u
#define QSIZE 32u
#define BUF_SLOT 0x400u
#define RX_BUFS 0x4000u
#define TX_BUFS 0xc000u
#define TX_SLOT 0x2400u         /* header + up to 255 * 32 payload bytes */
#define TX_SLOTS 8u
#define HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define MAP_PORT 1234
#define MAP_SEQ_PORT 1235
#define LISTEN_PORT 77
#define HOST_CONNS 8

struct ring {
	uint64_t base;          /* desc at +0, avail at +0x200, used at +0x300 */
	uint16_t avail_idx, used_seen;
	uint16_t desc_next;     /* tx: next descriptor id to fill (chains take consecutive ids) */
	uint32_t posted[QSIZE]; /* rx: bytes offered in each slot */
};

static uint8_t *ram;
static struct gmem mem;
static char dir[80], sock_path[128], seq_path[128], listen_path[128];
static int lfd = -1, seq_lfd = -1;
static int host[HOST_CONNS] = { -1, -1, -1, -1, -1, -1, -1, -1 };
static struct ring rings[3];
static bool trace;              /* FUZZ_TRACE=1: print each packet the guest receives */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cleanup(void)
{
	if (lfd >= 0)
		close(lfd);
	if (seq_lfd >= 0)
		close(seq_lfd);
	unlink(sock_path);
	unlink(seq_path);
	rmdir(dir);
}

static int listen_at(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16))
		abort();
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	trace = getenv("FUZZ_TRACE") != NULL;
	log_set_level(getenv("FUZZ_LOG") ? LOG_LEVEL_TRACE : LOG_LEVEL_OFF);
	snprintf(dir, sizeof(dir), "%s/krun-fuzz-vsock.XXXXXX",
		 tmp && strlen(tmp) < 60 ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/host.sock", dir);
	snprintf(seq_path, sizeof(seq_path), "%s/seq.sock", dir);
	snprintf(listen_path, sizeof(listen_path), "%s/listen.sock", dir);
	lfd = listen_at(sock_path, SOCK_STREAM);
	seq_lfd = listen_at(seq_path, SOCK_SEQPACKET);
	atexit(cleanup);
	ram = calloc(1, RAM_SIZE);
	gmem_init(&mem);
	if (!ram || gmem_add_region(&mem, RAM_GPA, RAM_SIZE, ram, RAM_GPA))
		abort();
	return 0;
}

static void drain_host(void)
{
	int fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	while ((fd = accept4(seq_lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
}

static void close_host(void)
{
	for (unsigned int i = 0; i < HOST_CONNS; i++)
		if (host[i] >= 0) {
			close(host[i]);
			host[i] = -1;
		}
}

static size_t act_host(uint8_t a, const uint8_t *p, size_t n)
{
	unsigned int i = (a >> 5) % HOST_CONNS;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;

	switch ((a >> 3) & 3) {
	case 0:
		for (unsigned int k = 0; k < HOST_CONNS; k++) {
			if (host[k] < 0)
				host[k] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (host[k] < 0)
				host[k] = accept4(seq_lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		}
		return 0;
	case 1:
		if (n < 1)
			return n;
		len = p[0] < n - 1 ? p[0] : n - 1;
		if (host[i] >= 0)   /* full or gone: the device's business */
			(void)send(host[i], p + 1, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		return 1 + len;
	case 2:
		if (host[i] >= 0)
			close(host[i]);
		host[i] = -1;
		return 0;
	default:
		if (host[i] >= 0)
			close(host[i]);
		host[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", listen_path);
		if (host[i] >= 0 && connect(host[i], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(host[i]);
			host[i] = -1;
		}
		return 0;
	}
}

static int start(struct virtio_dev *dev, bool seqpacket)
{
	memset(ram, 0, 0x4000);     /* the rings; buffers keep whatever they held */
	for (unsigned int q = 0; q < 3; q++) {
		struct virtq *vq = &dev->vqs[q];

		rings[q] = (struct ring){ .base = RAM_GPA + q * 0x1000 };
		virtq_reset(vq);
		vq->size = QSIZE;
		vq->desc_gpa = rings[q].base;
		vq->avail_gpa = rings[q].base + 0x200;
		vq->used_gpa = rings[q].base + 0x300;
		if (virtq_activate(vq, &mem))
			abort();
	}
	dev->mem = &mem;
	dev->driver_features = 1ull << 32;  /* VIRTIO_F_VERSION_1 */
	if (seqpacket)
		dev->driver_features |= 1ull << VIRTIO_VSOCK_F_SEQPACKET;
	return dev->ops->activate(dev);
}

static struct vring_desc *desc(unsigned int q)
{
	return (struct vring_desc *)(ram + (rings[q].base - RAM_GPA));
}

static void publish(unsigned int q, uint16_t head)
{
	struct vring_avail *avail = (void *)(ram + (rings[q].base + 0x200 - RAM_GPA));

	avail->ring[rings[q].avail_idx % QSIZE] = head;
	rings[q].avail_idx++;
	__atomic_store_n(&avail->idx, rings[q].avail_idx, __ATOMIC_RELEASE);
}

/* Free slots: the device returned (or never took) the rest. */
static unsigned int in_flight(unsigned int q)
{
	struct vring_used *used = (void *)(ram + (rings[q].base + 0x300 - RAM_GPA));

	return (uint16_t)(rings[q].avail_idx - __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE));
}

/* Every rx completion fits the buffer it names and carries a header the guest can trust. */
static void check_rx(void)
{
	struct vring_used *used = (void *)(ram + (rings[0].base + 0x300 - RAM_GPA));
	uint16_t idx = __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);

	for (; rings[0].used_seen != idx; rings[0].used_seen++) {
		struct vring_used_elem e = used->ring[rings[0].used_seen % QSIZE];
		struct virtio_vsock_hdr h;

		/* len 0: a buffer too small for a header, handed back unused. */
		if (e.id >= QSIZE || e.len > rings[0].posted[e.id] || (e.len && e.len < HDR)) {
			fprintf(stderr, "fuzz_vsock: rx used id %u len %u (posted %u)\n", e.id, e.len,
				e.id < QSIZE ? rings[0].posted[e.id] : 0);
			abort();
		}
		if (!e.len)
			continue;
		memcpy(&h, ram + RX_BUFS + e.id * BUF_SLOT, sizeof(h));
		if (le64toh(h.src_cid) != 2 || le64toh(h.dst_cid) != VSOCK_DEFAULT_GUEST_CID ||
		    le32toh(h.len) > e.len - HDR) {
			fprintf(stderr, "fuzz_vsock: rx packet op %u cid %llu->%llu len %u in %u\n",
				le16toh(h.op), (unsigned long long)le64toh(h.src_cid),
				(unsigned long long)le64toh(h.dst_cid), le32toh(h.len), e.len);
			abort();
		}
		if (trace)
			fprintf(stderr, "rx: op %u %u->%u len %u buf_alloc %u fwd_cnt %u\n", le16toh(h.op),
				le32toh(h.src_port), le32toh(h.dst_port), le32toh(h.len),
				le32toh(h.buf_alloc), le32toh(h.fwd_cnt));
	}
}

static size_t act_tx(struct virtio_dev *dev, uint8_t a, const uint8_t *p, size_t n)
{
	unsigned int ndesc = ((a >> 3) & 3) + 1, slot = rings[1].desc_next % QSIZE;
	uint64_t gpa = RAM_GPA + TX_BUFS + (rings[1].avail_idx % TX_SLOTS) * TX_SLOT;
	uint8_t *buf = ram + (gpa - RAM_GPA);
	size_t need, len, done = 0;

	if (n < HDR + 1)
		return n;
	if (a & 0x20) {
		/* Bulk: p[HDR] * 32 zero bytes, enough to fill a host socket that is not read. */
		len = HDR + (size_t)p[HDR] * 32;
		need = HDR + 1;
		memset(buf + HDR, 0, len - HDR);
	} else {
		len = HDR + (p[HDR] < n - HDR - 1 ? p[HDR] : n - HDR - 1);
		need = HDR + 1 + (len - HDR);
		memcpy(buf + HDR, p + HDR + 1, len - HDR);
	}
	memcpy(buf, p, HDR);
	/* At most TX_SLOTS chains of at most 4 descriptors in flight: a new chain never reuses
	 * the descriptors or the buffer of one the device has not completed (tx completes in
	 * order), so the device sees the packets the input describes. Raw RAM writes (action 3)
	 * are how the input reaches broken rings. */
	_Static_assert(TX_SLOTS * 4 <= QSIZE, "tx chains in flight would share descriptors");
	if (in_flight(1) >= TX_SLOTS)
		return need;
	for (unsigned int i = 0; i < ndesc; i++) {
		uint16_t id = (uint16_t)((slot + i) % QSIZE);
		size_t part = i + 1 == ndesc ? len - done : (len - done) / 2;

		desc(1)[id] = (struct vring_desc){
			.addr = gpa + done, .len = (uint32_t)part,
			.flags = i + 1 < ndesc ? VRING_DESC_F_NEXT : 0, .next = (uint16_t)((id + 1) % QSIZE),
		};
		done += part;
	}
	publish(1, (uint16_t)slot);
	rings[1].desc_next = (uint16_t)(rings[1].desc_next + ndesc);
	dev->ops->queue_notify(dev, 1);
	return need;
}

static size_t act_rx(struct virtio_dev *dev, uint8_t a, const uint8_t *p, size_t n)
{
	unsigned int count = (a >> 3) + 1;
	uint32_t len;

	if (n < 1)
		return n;
	len = (uint32_t)p[0] * 8;
	for (unsigned int i = 0; i < count && in_flight(0) < QSIZE; i++) {
		uint16_t id = rings[0].avail_idx % QSIZE;

		desc(0)[id] = (struct vring_desc){ .addr = RAM_GPA + RX_BUFS + id * BUF_SLOT,
						   .len = len, .flags = VRING_DESC_F_WRITE };
		rings[0].posted[id] = len;
		publish(0, id);
	}
	dev->ops->queue_notify(dev, 0);
	return 1;
}

static size_t act_poke(struct virtio_dev *dev, const uint8_t *p, size_t n)
{
	size_t took = fuzz_poke_ram(ram, RAM_SIZE, p, n);

	if (!took)
		return n;
	/* The guest may have rewritten the used rings too: stop trusting our bookkeeping. */
	for (unsigned int q = 0; q < 3; q++) {
		struct vring_used *used = (void *)(ram + (rings[q].base + 0x300 - RAM_GPA));
		struct vring_avail *avail = (void *)(ram + (rings[q].base + 0x200 - RAM_GPA));

		rings[q].avail_idx = avail->idx;
		rings[q].used_seen = used->idx;
	}
	for (unsigned int i = 0; i < QSIZE; i++)
		rings[0].posted[i] = BUF_SLOT;
	dev->ops->queue_notify(dev, 1);
	dev->ops->queue_notify(dev, 0);
	return took;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vsock_port_map ports[3] = {
		{ .port = MAP_PORT, .path = sock_path, .listen = false },
		{ .port = MAP_SEQ_PORT, .path = seq_path, .listen = false },
		{ .port = LISTEN_PORT, .path = listen_path, .listen = true },
	};
	struct vsock_config cfg = { .ports = ports, .nr_ports = 3, .max_conns = 8, .buf_size = 4096 };
	struct virtio_dev *dev;
	struct evloop *loop;
	size_t off = 0;
	bool poked = false;
	int fds_before;

	if (size > 16384)
		return 0;
	drain_host();
	fds_before = t_open_fds();
	loop = evloop_create();
	if (!loop || virtio_vsock_create(&cfg, &dev))
		abort();
	dev->loop = loop;
	memset(ram + RX_BUFS, 0, RAM_SIZE - RX_BUFS);
	if (start(dev, true))
		abort();
	while (off < size) {
		uint8_t a = data[off++];

		switch (a & 7) {
		case 0:
			off += act_tx(dev, a, data + off, size - off);
			break;
		case 1:
			off += act_rx(dev, a, data + off, size - off);
			break;
		case 2:
			dev->ops->reset(dev);
			if (start(dev, !(a & 8)))
				abort();
			poked = false;
			break;
		case 3:
			off += act_poke(dev, data + off, size - off);
			poked = true;
			break;
		case 4:
			drain_host();
			break;
		case 5:
			dev->ops->queue_notify(dev, ((a >> 3) & 3) % 3);
			break;
		case 6:
			off += act_host(a, data + off, size - off);
			break;
		default:
			pump(loop);
			break;
		}
		if (!poked)
			check_rx();
	}
	virtio_dev_destroy(dev);
	evloop_destroy(loop);
	close_host();
	fuzz_check_fds("fuzz_vsock", fds_before);
	return 0;
}
