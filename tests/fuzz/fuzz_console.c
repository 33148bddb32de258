/* libFuzzer target: a hostile guest driving the virtio-console device (data ports and control queues). */
#include <endian.h>
#include <fcntl.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/console.h"
#include "fuzz_evloop.h"
#include "fuzz_util.h"
#include "util/log.h"
#include "virtio/device.h"

/*
 * Input: actions back to back; the low 3 bits of each action byte pick the kind:
 *   0 transmit: a length byte and that many bytes, spread over (bits 6-7) + 1 descriptors, on
 *     the transmitq of port (bits 3-4), or with bit 5 on the control transmitq (where the
 *     bytes are struct virtio_console_control messages), then a kick;
 *   1 receive buffers: (bits 6-7) + 1 buffers of (next byte) bytes on the receiveq of port
 *     (bits 3-4), or with bit 5 on the control receiveq, then a kick;
 *   2 device reset and re-activation with the features in bits 3 (MULTIPORT) and 4
 *     (EMERG_WRITE) (the first activation negotiates both);
 *   3 raw guest RAM write: u16 offset, length byte, bytes (rings included), then every kick;
 *   4 host input: length byte and bytes written to the console's input (bit 3 clear) or to
 *     the named input port's socket (bit 3 set);
 *   5 host output: read what waits on every output (bit 3 clear), or stop reading: close the
 *     reader of port (bits 4-5) (port 0's pipe, port 2's pipe, port 3's socket; port 1: close
 *     the writer of its input instead, an EOF);
 *   6 emergency write of the next byte (config space emerg_wr), or with bit 3 the console's
 *     input EOF (the host closes the writer);
 *   7 one round of the event loop, or with bit 3 a kick of queue (bits 4-7) without adding.
 * Ports: 0 the console (pipes both ways), 1 "in" (CONSOLE_TO_GUEST, a socketpair), 2 "out"
 * (CONSOLE_FROM_GUEST, a pipe), 3 "sock" (CONSOLE_FROM_GUEST, a socketpair). Checked after each
 * action until the guest pokes RAM: every used entry names a posted buffer and fits it, control
 * messages are well-formed, each port's guest input is a prefix of what the host wrote, and
 * the named output ports carry exactly what the guest transmitted, in order.
 */
#define RAM_GPA 0x100000ull
#define RAM_SIZE 0x10000u
#define NQ 10u
#define QSIZE 16u
#define RING_SPAN 0x400u        /* desc at +0, avail at +0x100, used at +0x200 */
#define BUF_BASE 0x3000u
#define SLOT 0x100u             /* buffer of descriptor id i of queue q: BUF_BASE + q * 0x1000 + i * SLOT */
#define NPORTS 4u
#define STREAM_MAX 65536u
#define CTRL_HDR ((uint32_t)sizeof(struct virtio_console_control))

struct ring {
	uint16_t avail_idx, used_seen, desc_next;
	uint32_t posted[QSIZE];     /* bytes offered in each slot (receive queues) */
	uint8_t chain_descs[QSIZE]; /* descriptors of the chain in each avail slot */
};

/* One direction of one port's bytes, as the test expects to see them. */
struct stream {
	uint8_t data[STREAM_MAX];
	size_t len, seen;           /* bytes queued; bytes checked against what arrived */
	bool lost;                  /* no longer known (the guest poked RAM, or too many bytes) */
};

static uint8_t *ram;
static struct gmem mem;
static struct ring rings[NQ];
static struct virtio_dev *dev;
static bool multiport;
static unsigned int output_closed_calls;
/* Host ends, -1 once closed: the console's input writer and output reader, port 1's writer,
 * port 2's and 3's readers. */
static int con_in = -1, con_out = -1, in_port = -1, out_pipe = -1, out_sock = -1;
static struct stream to_guest[2];       /* ports 0 and 1 */
static struct stream from_guest[2];     /* ports 2 and 3 */
static size_t con_out_sent, con_out_read;
static const char *const names[NPORTS] = { "", "in", "out", "sock" };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(getenv("FUZZ_LOG") ? LOG_LEVEL_TRACE : LOG_LEVEL_OFF);
	ram = calloc(1, RAM_SIZE);
	gmem_init(&mem);
	if (!ram || gmem_add_region(&mem, RAM_GPA, RAM_SIZE, ram, RAM_GPA))
		abort();
	return 0;
}

static uint64_t ring_gpa(unsigned int q, unsigned int part)
{
	return RAM_GPA + q * RING_SPAN + part * 0x100;
}

static void *at(uint64_t gpa)
{
	return ram + (gpa - RAM_GPA);
}

static uint64_t slot_gpa(unsigned int q, unsigned int id)
{
	return RAM_GPA + BUF_BASE + q * 0x1000 + id * SLOT;
}

static unsigned int rxq(unsigned int port)
{
	return port == 0 ? 0 : 2 * port + 2;
}

static void on_output_closed(void *opaque)
{
	(void)opaque;
	output_closed_calls++;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void make_pipe(int *reader, int *writer)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		abort();
	fcntl(p[0], F_SETPIPE_SZ, 4096);    /* a full pipe within a few actions */
	*reader = p[0];
	*writer = p[1];
}

static void make_socketpair(int *dev_end, int *host_end)
{
	int s[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, s))
		abort();
	*dev_end = s[0];
	*host_end = s[1];
}

static int start(bool multi, bool emerg)
{
	memset(ram, 0, BUF_BASE);   /* the rings; buffers keep whatever they held */
	for (unsigned int q = 0; q < NQ; q++) {
		struct virtq *vq = &dev->vqs[q];

		rings[q] = (struct ring){ 0 };
		virtq_reset(vq);
		vq->size = QSIZE;
		vq->desc_gpa = ring_gpa(q, 0);
		vq->avail_gpa = ring_gpa(q, 1);
		vq->used_gpa = ring_gpa(q, 2);
		if (virtq_activate(vq, &mem))
			abort();
	}
	multiport = multi;
	dev->mem = &mem;
	dev->driver_features = 1ull << 32;  /* VIRTIO_F_VERSION_1 */
	if (multi)
		dev->driver_features |= 1ull << VIRTIO_CONSOLE_F_MULTIPORT;
	if (emerg)
		dev->driver_features |= 1ull << VIRTIO_CONSOLE_F_EMERG_WRITE;
	return dev->ops->activate(dev);
}

static struct vring_desc *desc(unsigned int q)
{
	return at(ring_gpa(q, 0));
}

static void publish(unsigned int q, uint16_t head, unsigned int ndesc)
{
	struct vring_avail *avail = at(ring_gpa(q, 1));

	avail->ring[rings[q].avail_idx % QSIZE] = head;
	rings[q].chain_descs[rings[q].avail_idx % QSIZE] = (uint8_t)ndesc;
	rings[q].avail_idx++;
	__atomic_store_n(&avail->idx, rings[q].avail_idx, __ATOMIC_RELEASE);
}

/* Descriptors the device may still hold (chains come back in order on every queue). */
static unsigned int descs_in_flight(unsigned int q)
{
	struct vring_used *used = at(ring_gpa(q, 2));
	uint16_t first = __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
	unsigned int chains = (uint16_t)(rings[q].avail_idx - first), n = 0;

	if (chains > QSIZE)
		return QSIZE;   /* a poked ring: consider it full */
	for (unsigned int i = 0; i < chains; i++)
		n += rings[q].chain_descs[(uint16_t)(first + i) % QSIZE];
	return n;
}

static void fail(const char *what, unsigned int q, unsigned int a, unsigned int b)
{
	fprintf(stderr, "fuzz_console: queue %u: %s (%u, %u)\n", q, what, a, b);
	abort();
}

static void check_ctrl_msg(const uint8_t *buf, uint32_t len)
{
	struct virtio_console_control m;
	uint16_t event;
	uint32_t id;

	if (!len)
		return;         /* a buffer too small for the message, handed back empty */
	if (len < CTRL_HDR)
		fail("short control message", 2, len, 0);
	memcpy(&m, buf, sizeof(m));
	id = le32toh(m.id);
	event = le16toh(m.event);
	if (id >= NPORTS || event < VIRTIO_CONSOLE_PORT_ADD || event > VIRTIO_CONSOLE_PORT_NAME ||
	    event == VIRTIO_CONSOLE_PORT_REMOVE || event == VIRTIO_CONSOLE_PORT_READY)
		fail("bad control message", 2, id, event);
	if (event == VIRTIO_CONSOLE_PORT_NAME &&
	    (len - CTRL_HDR != strlen(names[id]) || memcmp(buf + CTRL_HDR, names[id], len - CTRL_HDR)))
		fail("wrong port name", 2, id, len);
	if (event != VIRTIO_CONSOLE_PORT_NAME && event != VIRTIO_CONSOLE_RESIZE && len != CTRL_HDR)
		fail("control message length", 2, id, len);
	/* Port 1's host end is its input alone: it is closed only once the host closed it. */
	if (event == VIRTIO_CONSOLE_PORT_OPEN && id == 1 && !m.value && in_port >= 0)
		fail("port 1 reported closed while the host keeps it open", 2, id, event);
}

/* Guest input arrives in order, unchanged, never more than the host wrote. */
static void check_input(struct stream *s, unsigned int q, const uint8_t *buf, uint32_t len)
{
	if (s->lost)
		return;
	if (s->seen + len > s->len || memcmp(buf, s->data + s->seen, len))
		fail("input differs from what the host wrote", q, (unsigned int)s->seen, len);
	s->seen += len;
}

static void check_used(void)
{
	for (unsigned int q = 0; q < NQ; q++) {
		struct vring_used *used = at(ring_gpa(q, 2));
		uint16_t idx = __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
		bool receive = q == 0 || q == 2 || (q >= 4 && q % 2 == 0);

		for (; rings[q].used_seen != idx; rings[q].used_seen++) {
			struct vring_used_elem e = used->ring[rings[q].used_seen % QSIZE];
			const uint8_t *buf = at(slot_gpa(q, e.id % QSIZE));

			if (e.id >= QSIZE || (receive ? e.len > rings[q].posted[e.id] : e.len != 0))
				fail("used entry", q, e.id, e.len);
			if (q == 2)
				check_ctrl_msg(buf, e.len);
			else if (q == 0 || q == rxq(1))
				check_input(&to_guest[q == 0 ? 0 : 1], q, buf, e.len);
			else if (receive && e.len)
				fail("input on a port without a host input", q, e.id, e.len);
		}
	}
}

/* Named output ports carry exactly the transmitted bytes, in order. */
static void read_output(int *fd, struct stream *s)
{
	uint8_t buf[4096];
	ssize_t n;

	while (*fd >= 0 && (n = read(*fd, buf, sizeof(buf))) > 0) {
		if (!s) {
			con_out_read += (size_t)n;
			continue;
		}
		if (s->lost)
			continue;
		if (s->seen + (size_t)n > s->len || memcmp(buf, s->data + s->seen, (size_t)n))
			fail("output differs from what the guest sent", 0, (unsigned int)s->seen, (unsigned int)n);
		s->seen += (size_t)n;
	}
}

static void read_outputs(void)
{
	read_output(&con_out, NULL);
	read_output(&out_pipe, &from_guest[0]);
	read_output(&out_sock, &from_guest[1]);
	/* The console's output may interleave emergency writes: only its byte count is checked. */
	if (con_out_read > con_out_sent)
		fail("console output exceeds what the guest sent", 1, (unsigned int)con_out_read,
		     (unsigned int)con_out_sent);
}

static void note_sent(unsigned int port, const uint8_t *p, size_t len)
{
	struct stream *s = port >= 2 ? &from_guest[port - 2] : NULL;

	if (port == 0)
		con_out_sent += len;
	if (s && s->len + len <= STREAM_MAX) {
		memcpy(s->data + s->len, p, len);
		s->len += len;
	} else if (s) {
		s->lost = true;     /* too much to follow: stop comparing this port */
	}
}

static void kick(unsigned int q)
{
	dev->ops->queue_notify(dev, q);
}

static size_t act_tx(uint8_t a, const uint8_t *p, size_t n)
{
	unsigned int port = (a >> 3) & 3, q = a & 0x20 ? 3 : rxq(port) + 1;
	unsigned int ndesc = (a >> 6) + 1, id = rings[q].desc_next % QSIZE;
	size_t len, done = 0;

	if (n < 1)
		return n;
	len = p[0] < n - 1 ? p[0] : n - 1;
	if (descs_in_flight(q) + ndesc > QSIZE)
		return 1 + len;
	/* The chain's descriptors take consecutive ids; its bytes lie in the head's slot. */
	memcpy(at(slot_gpa(q, id)), p + 1, len);
	for (unsigned int i = 0; i < ndesc; i++) {
		uint16_t d = (uint16_t)((id + i) % QSIZE);
		size_t part = i + 1 == ndesc ? len - done : (len - done) / 2;

		desc(q)[d] = (struct vring_desc){
			.addr = slot_gpa(q, id) + done, .len = (uint32_t)part,
			.flags = i + 1 < ndesc ? VRING_DESC_F_NEXT : 0, .next = (uint16_t)((d + 1) % QSIZE),
		};
		done += part;
	}
	rings[q].desc_next = (uint16_t)(rings[q].desc_next + ndesc);
	/* Without MULTIPORT only port 0 exists: what goes elsewhere is never read. */
	if (q != 3 && (port == 0 || multiport))
		note_sent(port, p + 1, len);
	publish(q, (uint16_t)id, ndesc);
	kick(q);
	return 1 + len;
}

static size_t act_rx(uint8_t a, const uint8_t *p, size_t n)
{
	unsigned int q = a & 0x20 ? 2 : rxq((a >> 3) & 3), count = (a >> 6) + 1;

	if (n < 1)
		return n;
	for (unsigned int i = 0; i < count && descs_in_flight(q) < QSIZE; i++) {
		uint16_t id = rings[q].desc_next % QSIZE;

		desc(q)[id] = (struct vring_desc){ .addr = slot_gpa(q, id), .len = p[0],
						   .flags = VRING_DESC_F_WRITE };
		rings[q].posted[id] = p[0];
		rings[q].desc_next++;
		publish(q, id, 1);
	}
	kick(q);
	return 1;
}

static size_t act_poke(const uint8_t *p, size_t n)
{
	size_t took = fuzz_poke_ram(ram, RAM_SIZE, p, n);

	if (!took)
		return n;
	/* The guest may have rewritten the rings: stop trusting our bookkeeping. */
	for (unsigned int q = 0; q < NQ; q++) {
		struct vring_used *used = at(ring_gpa(q, 2));
		struct vring_avail *avail = at(ring_gpa(q, 1));

		rings[q].avail_idx = avail->idx;
		rings[q].used_seen = used->idx;
		for (unsigned int i = 0; i < QSIZE; i++)
			rings[q].posted[i] = SLOT;
	}
	for (unsigned int q = 0; q < NQ; q++)
		kick(q);
	return took;
}

static size_t act_host_input(uint8_t a, const uint8_t *p, size_t n)
{
	struct stream *s = &to_guest[(a >> 3) & 1];
	int fd = a & 8 ? in_port : con_in;
	size_t len;
	ssize_t w;

	if (n < 1)
		return n;
	len = p[0] < n - 1 ? p[0] : n - 1;
	if (fd >= 0) {
		w = write(fd, p + 1, len);
		if (w > 0 && s->len + (size_t)w <= STREAM_MAX) {
			memcpy(s->data + s->len, p + 1, (size_t)w);
			s->len += (size_t)w;
		} else if (w > 0) {
			s->lost = true;
		}
	}
	return 1 + len;
}

static void act_host_output(uint8_t a)
{
	int *readers[NPORTS] = { &con_out, &in_port, &out_pipe, &out_sock };

	if (a & 8)
		close_fd(readers[(a >> 4) & 3]);
	else
		read_outputs();
}

static void create_device(void)
{
	int dev_in, dev_out, dev_port_in, dev_pipe_out, dev_sock_out;
	struct console_config cfg = { .nr_ports = 3, .output_closed = on_output_closed };

	make_pipe(&dev_in, &con_in);
	make_pipe(&con_out, &dev_out);
	make_socketpair(&dev_port_in, &in_port);
	make_pipe(&out_pipe, &dev_pipe_out);
	make_socketpair(&dev_sock_out, &out_sock);
	/* Small buffers: the guest can fill the socket port too (the kernel rounds up). */
	setsockopt(dev_sock_out, SOL_SOCKET, SO_SNDBUF, &(int){ 2048 }, sizeof(int));
	setsockopt(out_sock, SOL_SOCKET, SO_RCVBUF, &(int){ 2048 }, sizeof(int));
	cfg.in_fd = dev_in;
	cfg.out_fd = dev_out;
	cfg.ports[0] = (struct console_port_config){ names[1], dev_port_in, CONSOLE_TO_GUEST };
	cfg.ports[1] = (struct console_port_config){ names[2], dev_pipe_out, CONSOLE_FROM_GUEST };
	cfg.ports[2] = (struct console_port_config){ names[3], dev_sock_out, CONSOLE_FROM_GUEST };
	if (virtio_console_create(&cfg, &dev))
		abort();
	/* The device keeps its own descriptions: ours of its ends may go now. */
	close(dev_in);
	close(dev_out);
	close(dev_port_in);
	close(dev_pipe_out);
	close(dev_sock_out);
}

/*
 * A reset drops the chain being written and those not yet taken: what the outputs hold now
 * is all that comes of the guest's earlier output. Input the device took while the guest had
 * poked its rings cannot be followed any more.
 */
static void reset_device(uint8_t a, bool poked)
{
	read_outputs();
	dev->ops->reset(dev);
	if (start(a & 8, a & 0x10))
		abort();
	for (unsigned int i = 0; i < 2; i++) {
		from_guest[i].len = from_guest[i].seen = 0;
		from_guest[i].lost = false;
	}
	con_out_sent = con_out_read = 0;
	if (!poked)
		return;
	for (unsigned int i = 0; i < 2; i++)
		to_guest[i].lost = true;
}

static void run(const uint8_t *data, size_t size)
{
	size_t off = 0;
	bool poked = false;

	while (off < size) {
		uint8_t a = data[off++], b;

		switch (a & 7) {
		case 0:
			off += act_tx(a, data + off, size - off);
			break;
		case 1:
			off += act_rx(a, data + off, size - off);
			break;
		case 2:
			reset_device(a, poked);
			poked = false;
			break;
		case 3:
			off += act_poke(data + off, size - off);
			poked = true;
			for (unsigned int i = 0; i < 2; i++)
				to_guest[i].lost = from_guest[i].lost = true;
			con_out_sent = SIZE_MAX / 2;    /* descriptor lengths are the guest's now */
			break;
		case 4:
			off += act_host_input(a, data + off, size - off);
			break;
		case 5:
			act_host_output(a);
			break;
		case 6:
			if (a & 8) {
				close_fd(&con_in);
			} else if (off < size) {
				b = data[off++];
				dev->ops->config_write(dev, offsetof(struct virtio_console_config, emerg_wr),
						       (uint32_t[]){ b }, 4);
				if (virtio_dev_has_feature(dev, VIRTIO_CONSOLE_F_EMERG_WRITE))
					con_out_sent++;
			}
			break;
		default:
			if (a & 8)
				kick((a >> 4) % NQ);
			else
				pump(dev->loop);
			break;
		}
		if (!poked)
			check_used();
		if (output_closed_calls > 1)
			fail("output_closed called twice", 0, output_closed_calls, 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evloop *loop;
	int fds_before;

	if (size > 16384)
		return 0;
	fds_before = t_open_fds();
	for (unsigned int i = 0; i < 2; i++) {
		to_guest[i].len = to_guest[i].seen = 0;
		from_guest[i].len = from_guest[i].seen = 0;
		to_guest[i].lost = from_guest[i].lost = false;
	}
	con_out_sent = con_out_read = 0;
	output_closed_calls = 0;
	loop = evloop_create();
	if (!loop)
		abort();
	create_device();
	dev->loop = loop;
	memset(ram + BUF_BASE, 0, RAM_SIZE - BUF_BASE);
	if (start(true, true))
		abort();
	run(data, size);
	if (getenv("FUZZ_TRACE"))   /* how much each check saw */
		fprintf(stderr, "in %zu/%zu %zu/%zu out %zu/%zu %zu/%zu console %zu/%zu closed %u\n",
			to_guest[0].seen, to_guest[0].len, to_guest[1].seen, to_guest[1].len,
			from_guest[0].seen, from_guest[0].len, from_guest[1].seen, from_guest[1].len,
			con_out_read, con_out_sent, output_closed_calls);
	virtio_dev_destroy(dev);
	evloop_destroy(loop);
	close_fd(&con_in);
	close_fd(&con_out);
	close_fd(&in_port);
	close_fd(&out_pipe);
	close_fd(&out_sock);
	fuzz_check_fds("fuzz_console", fds_before);
	return 0;
}
