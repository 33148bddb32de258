/* vhost-user backend against a fake frontend on a socketpair: setup, a request, and abuse. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "util/evloop.h"
#include "util/iov.h"
#include "util/log.h"
#include "virtio/device.h"
#include "virtio/vhost_user.h"
#include "vring_driver.h"

#define DEV_FEATURE_BIT 3
#define RING_SIZE 8

/* A device that copies each request's readable bytes into its writable buffers. */
struct echo {
	struct virtio_dev dev;
	int activations, resets, notifies;
	uint8_t config[8];
	int notify_fds[2];          /* virtio_dev_notify_fd at the last activation */
};

static struct virtq_elem elem;

static int echo_activate(struct virtio_dev *dev)
{
	struct echo *e = dev->priv;

	for (unsigned int q = 0; q < 2; q++)
		e->notify_fds[q] = virtio_dev_notify_fd(dev, q);
	__atomic_add_fetch(&e->activations, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void echo_notify(struct virtio_dev *dev, unsigned int q)
{
	struct echo *e = dev->priv;
	struct virtq *vq = &dev->vqs[q];
	uint8_t buf[256];
	bool pushed = false;

	__atomic_add_fetch(&e->notifies, 1, __ATOMIC_SEQ_CST);
	while (virtq_pop(vq, &elem) == 1) {
		size_t n = iov_to_buf(elem.iov, elem.out_num, 0, buf, sizeof(buf));
		n = iov_from_buf(elem.iov + elem.out_num, elem.in_num, 0, buf, n);
		virtq_push(vq, elem.head, (uint32_t)n);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_used(dev, q);
}

static void echo_reset(struct virtio_dev *dev)
{
	struct echo *e = dev->priv;

	__atomic_add_fetch(&e->resets, 1, __ATOMIC_SEQ_CST);
}

static void echo_destroy(struct virtio_dev *dev)
{
	(void)dev;  /* static in the test */
}

static const struct virtio_dev_ops echo_ops = {
	.name = "echo", .device_id = 0x7fff, .features = 1ull << DEV_FEATURE_BIT,
	.num_queues = 2, .queue_max_size = 256,
	.activate = echo_activate, .queue_notify = echo_notify, .reset = echo_reset,
	.destroy = echo_destroy,
};

/* The same device, with ring 1's kicks waited for by "its own threads" (here: the test). */
static const struct virtio_dev_ops echo_self_ops = {
	.name = "echo", .device_id = 0x7fff, .features = 1ull << DEV_FEATURE_BIT,
	.num_queues = 2, .queue_max_size = 256, .self_notified_queues = 1u << 1,
	.activate = echo_activate, .queue_notify = echo_notify, .reset = echo_reset,
	.destroy = echo_destroy,
};

/* The backend on its own loop thread, the frontend end of the socket in the test. */
struct rig {
	struct echo echo;
	struct evloop *loop;
	struct vhost_user *vu;
	pthread_t thread;
	int fe;
};

static void *loop_main(void *arg)
{
	evloop_run(arg);
	return NULL;
}

static int rig_start(struct rig *r)
{
	int sv[2];

	memset(r, 0, sizeof(*r));
	r->echo.dev = (struct virtio_dev){ .ops = &echo_ops, .priv = &r->echo,
					   .config = r->echo.config, .config_size = 8 };
	memcpy(r->echo.config, "cfg01234", 8);
	r->loop = evloop_create();
	if (!r->loop || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	if (vhost_user_create(&r->echo.dev, r->loop, sv[1], &r->vu))
		return -1;
	r->fe = sv[0];
	return pthread_create(&r->thread, NULL, loop_main, r->loop) ? -1 : 0;
}

static void rig_stop(struct rig *r)
{
	evloop_stop(r->loop);
	pthread_join(r->thread, NULL);
	vhost_user_destroy(r->vu);
	evloop_destroy(r->loop);
	close(r->fe);
}

static int send_msg(int fd, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
		    const int *fds, unsigned int nfds)
{
	struct vhost_user_hdr hdr = { .request = req, .flags = VHOST_USER_VERSION | flags, .size = size };
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)payload, size } };
	char cbuf[CMSG_SPACE(sizeof(int) * 16)];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	if (nfds) {
		struct cmsghdr *c;
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)(sizeof(hdr) + size) ? 0 : -1;
}

static int wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 ? 0 : -1;
}

/* Payload size of the reply to req, or -1 (timeout, hang-up, wrong header). */
static int recv_reply(int fd, uint32_t req, void *buf, uint32_t cap)
{
	struct vhost_user_hdr hdr;

	if (wait_readable(fd, 2000) || recv(fd, &hdr, sizeof(hdr), MSG_WAITALL) != sizeof(hdr))
		return -1;
	if (hdr.request != req || hdr.flags != (VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY) ||
	    hdr.size > cap)
		return -1;
	if (hdr.size && recv(fd, buf, hdr.size, MSG_WAITALL) != hdr.size)
		return -1;
	return (int)hdr.size;
}

/* Send with NEED_REPLY; returns the REPLY_ACK status (0 ok, 1 failed) or -1. */
static long ack(int fd, uint32_t req, const void *payload, uint32_t size, const int *fds,
		unsigned int nfds)
{
	uint64_t status;

	if (send_msg(fd, req, VHOST_USER_FLAG_NEED_REPLY, payload, size, fds, nfds))
		return -1;
	if (recv_reply(fd, req, &status, sizeof(status)) != sizeof(status))
		return -1;
	return (long)status;
}

static uint64_t get_u64(int fd, uint32_t req)
{
	uint64_t v = 0;

	if (send_msg(fd, req, 0, NULL, 0, NULL, 0) || recv_reply(fd, req, &v, sizeof(v)) != sizeof(v))
		return ~0ull;
	return v;
}

static long set_u64(int fd, uint32_t req, uint64_t v)
{
	return ack(fd, req, &v, sizeof(v), NULL, 0);
}

static long set_state(int fd, uint32_t req, uint32_t index, uint32_t num)
{
	struct vhost_user_vring_state s = { .index = index, .num = num };

	return ack(fd, req, &s, sizeof(s), NULL, 0);
}

/* True when every write end of the pipe is closed (the backend dropped the fd we sent). */
static bool pipe_orphaned(int rd)
{
	char c;

	for (int i = 0; i < 200; i++) {
		if (read(rd, &c, 1) == 0)
			return true;
		usleep(5000);
	}
	return false;
}

static void test_handshake(void)
{
	struct rig r;
	uint64_t f;

	CHECK_EQ(rig_start(&r), 0);
	f = get_u64(r.fe, VHOST_USER_GET_FEATURES);
	CHECK(f & (1ull << 32));       /* VIRTIO_F_VERSION_1 */
	CHECK(f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES));
	CHECK(f & (1ull << DEV_FEATURE_BIT));
	f = get_u64(r.fe, VHOST_USER_GET_PROTOCOL_FEATURES);
	CHECK(f & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
	CHECK(f & (1ull << VHOST_USER_PROTOCOL_F_CONFIG));
	CHECK_EQ(set_u64(r.fe, VHOST_USER_SET_PROTOCOL_FEATURES, f), 0);
	CHECK_EQ(get_u64(r.fe, VHOST_USER_GET_QUEUE_NUM), 2);
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0), 0);
	/* Features the backend never offered are refused. */
	CHECK_EQ(set_u64(r.fe, VHOST_USER_SET_FEATURES, 1ull << 63), 1);
	CHECK_EQ(set_u64(r.fe, VHOST_USER_SET_PROTOCOL_FEATURES, 1ull << 40), 1);
	rig_stop(&r);
}

/* Guest RAM for the frontend side: a memfd, seen by the test at `ram`. */
struct fe_mem {
	int fd;
	uint8_t *ram;
};

static int fe_mem_init(struct fe_mem *m)
{
	m->fd = memfd_create("guest", MFD_CLOEXEC);
	if (m->fd < 0 || ftruncate(m->fd, FAKE_RAM_SIZE) < 0)
		return -1;
	m->ram = mmap(NULL, FAKE_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	return m->ram == MAP_FAILED ? -1 : 0;
}

static void fe_mem_free(struct fe_mem *m)
{
	munmap(m->ram, FAKE_RAM_SIZE);
	close(m->fd);
}

static long send_mem_table(int fe, const struct fe_mem *m, uint64_t size)
{
	struct vhost_user_mem mem = { .nregions = 1 };

	mem.regions[0] = (struct vhost_user_region){
		.gpa = FAKE_RAM_GPA, .size = size, .uaddr = (uintptr_t)m->ram, .mmap_offset = 0,
	};
	return ack(fe, VHOST_USER_SET_MEM_TABLE, &mem,
		   VHOST_USER_MEM_HDR_SIZE + sizeof(struct vhost_user_region), &m->fd, 1);
}

/* The frontend's view of ring q: user addresses inside its own mapping. */
static long setup_ring(int fe, const struct fe_mem *m, const struct fake_guest *g, uint32_t q,
		       int kick, int call)
{
	struct vhost_user_vring_addr a = {
		.index = q,
		.desc = (uintptr_t)m->ram + (g->vq.desc_gpa - FAKE_RAM_GPA),
		.avail = (uintptr_t)m->ram + (g->vq.avail_gpa - FAKE_RAM_GPA),
		.used = (uintptr_t)m->ram + (g->vq.used_gpa - FAKE_RAM_GPA),
	};
	uint64_t kv = q, cv = q;
	long ret = set_state(fe, VHOST_USER_SET_VRING_NUM, q, g->size);

	ret = ret ? ret : set_state(fe, VHOST_USER_SET_VRING_BASE, q, g->avail_idx);
	ret = ret ? ret : ack(fe, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	ret = ret ? ret : ack(fe, VHOST_USER_SET_VRING_KICK, &kv, sizeof(kv), &kick, 1);
	ret = ret ? ret : ack(fe, VHOST_USER_SET_VRING_CALL, &cv, sizeof(cv), &call, 1);
	return ret;
}

/* Full handshake up to SET_FEATURES with REPLY_ACK negotiated. */
static int negotiate(int fe)
{
	uint64_t f = get_u64(fe, VHOST_USER_GET_FEATURES);
	uint64_t p = 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK | 1ull << VHOST_USER_PROTOCOL_F_CONFIG;

	if (f == ~0ull || send_msg(fe, VHOST_USER_SET_PROTOCOL_FEATURES, 0, &p, sizeof(p), NULL, 0))
		return -1;
	return set_u64(fe, VHOST_USER_SET_FEATURES, f) == 0 ? 0 : -1;
}

/* A fake guest whose rings live in the frontend's memfd instead of calloc'd memory. */
static int guest_in(struct fake_guest *g, struct fe_mem *m, uint16_t size, uint64_t ring_off)
{
	if (fake_guest_init(g, size))
		return -1;
	free(g->ram);
	g->ram = m->ram;
	g->vq.desc_gpa += ring_off;
	g->vq.avail_gpa += ring_off;
	g->vq.used_gpa += ring_off;
	g->data_next += ring_off;
	return 0;
}

/* Guest memory with rings 0 and 1 set up, not enabled; fds: ring 0's kick and call, ring 1's. */
static void two_rings(struct rig *r, struct fe_mem *m, struct fake_guest *g0,
		      struct fake_guest *g1, const int fds[4])
{
	CHECK_EQ(fe_mem_init(m), 0);
	CHECK_EQ(guest_in(g0, m, RING_SIZE, 0), 0);
	CHECK_EQ(guest_in(g1, m, RING_SIZE, 0x20000), 0);
	CHECK_EQ(negotiate(r->fe), 0);
	CHECK_EQ(send_mem_table(r->fe, m, FAKE_RAM_SIZE), 0);
	CHECK_EQ(setup_ring(r->fe, m, g0, 0, fds[0], fds[1]), 0);
	CHECK_EQ(setup_ring(r->fe, m, g1, 1, fds[2], fds[3]), 0);
}

static void test_request_roundtrip(void)
{
	struct rig r;
	struct fe_mem m;
	struct fake_guest g0, g1;
	uint32_t out_len = 5, in_len = 16;
	uint64_t gpas[2], one = 1, calls;
	struct vhost_user_vring_state st = { .index = 0 };
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);
	int kick1 = eventfd(0, EFD_CLOEXEC), call1 = eventfd(0, EFD_CLOEXEC);
	uint16_t head;

	CHECK_EQ(rig_start(&r), 0);
	two_rings(&r, &m, &g0, &g1, (const int[]){ kick, call, kick1, call1 });
	/* Protocol features negotiated: rings start disabled, the device is not active yet. */
	CHECK_EQ(__atomic_load_n(&r.echo.activations, __ATOMIC_SEQ_CST), 0);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_ENABLE, 1, 1), 0);
	CHECK_EQ(__atomic_load_n(&r.echo.activations, __ATOMIC_SEQ_CST), 1);
	CHECK(r.echo.dev.vqs[1].active);

	head = fake_post(&g0, &out_len, 1, &in_len, 1, gpas);
	memcpy(fake_hva(&g0, gpas[0]), "hello", 5);
	CHECK_EQ(write(kick, &one, sizeof(one)), 8);
	CHECK_EQ(wait_readable(call, 2000), 0);
	CHECK_EQ(read(call, &calls, sizeof(calls)), 8);
	CHECK_EQ(fake_used(&g0)->idx, 1);
	CHECK_EQ(fake_used(&g0)->ring[0].id, head);
	CHECK_EQ(fake_used(&g0)->ring[0].len, 5);
	CHECK(memcmp(fake_hva(&g0, gpas[1]), "hello", 5) == 0);

	/* A new memory table while running: the device stops and resumes over the new one. */
	CHECK_EQ(send_mem_table(r.fe, &m, FAKE_RAM_SIZE), 0);
	CHECK_EQ(__atomic_load_n(&r.echo.resets, __ATOMIC_SEQ_CST), 1);
	CHECK_EQ(__atomic_load_n(&r.echo.activations, __ATOMIC_SEQ_CST), 2);
	head = fake_post(&g0, &out_len, 1, &in_len, 1, gpas);
	memcpy(fake_hva(&g0, gpas[0]), "again", 5);
	CHECK_EQ(write(kick, &one, sizeof(one)), 8);
	CHECK_EQ(wait_readable(call, 2000), 0);
	CHECK_EQ(read(call, &calls, sizeof(calls)), 8);
	CHECK_EQ(fake_used(&g0)->idx, 2);
	CHECK_EQ(fake_used(&g0)->ring[1].id, head);
	CHECK(memcmp(fake_hva(&g0, gpas[1]), "again", 5) == 0);

	/* GET_VRING_BASE stops the device and reports where the driver resumes. */
	CHECK_EQ(send_msg(r.fe, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0), 0);
	CHECK_EQ(recv_reply(r.fe, VHOST_USER_GET_VRING_BASE, &st, sizeof(st)), sizeof(st));
	CHECK_EQ(st.index, 0);
	CHECK_EQ(st.num, 2);
	CHECK_EQ(__atomic_load_n(&r.echo.resets, __ATOMIC_SEQ_CST), 2);
	/* A stopped ring may be reconfigured; a started one may not. */
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_NUM, 0, RING_SIZE), 0);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_NUM, 1, RING_SIZE), 1);
	/* RESET_DEVICE forgets every ring. */
	CHECK_EQ(ack(r.fe, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_NUM, 1, RING_SIZE), 0);
	rig_stop(&r);
	fe_mem_free(&m);
	close(kick), close(call), close(kick1), close(call1);
}

/*
 * Ring 1 is self-notified: at activation the device gets the backend's copy of its kick fd,
 * which the loop then leaves alone (a kick stays on the fd); a new kick fd while active stops
 * the device, and a kick on the new fd (watched by the loop again) restarts it with that fd.
 */
static void test_self_notified_kick(void)
{
	struct rig r;
	struct fe_mem m;
	struct fake_guest g0, g1;
	uint64_t one = 1, v = 0, kv = 1;
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);
	int kick1 = eventfd(0, EFD_CLOEXEC), call1 = eventfd(0, EFD_CLOEXEC);
	int kick1b = eventfd(0, EFD_CLOEXEC), notifies;

	CHECK_EQ(rig_start(&r), 0);
	r.echo.dev.ops = &echo_self_ops;    /* before the first message: the loop reads it then */
	two_rings(&r, &m, &g0, &g1, (const int[]){ kick, call, kick1, call1 });
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_ENABLE, 1, 1), 0);
	CHECK_EQ(__atomic_load_n(&r.echo.activations, __ATOMIC_SEQ_CST), 1);
	CHECK_EQ(r.echo.notify_fds[0], -1);
	CHECK(r.echo.notify_fds[1] >= 0);
	notifies = __atomic_load_n(&r.echo.notifies, __ATOMIC_SEQ_CST);
	CHECK_EQ(write(kick1, &one, sizeof(one)), 8);
	usleep(20000);                      /* time for a wrong read by the loop */
	CHECK_EQ(__atomic_load_n(&r.echo.notifies, __ATOMIC_SEQ_CST), notifies);
	CHECK_EQ(read(r.echo.notify_fds[1], &v, sizeof(v)), 8);
	CHECK_EQ(v, 1);
	/* A new kick fd for ring 1 while active: the device stops first. */
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_VRING_KICK, &kv, sizeof(kv), &kick1b, 1), 0);
	CHECK_EQ(__atomic_load_n(&r.echo.resets, __ATOMIC_SEQ_CST), 1);
	CHECK_EQ(write(kick1b, &one, sizeof(one)), 8);
	for (int i = 0; i < 1000 && __atomic_load_n(&r.echo.activations, __ATOMIC_SEQ_CST) < 2; i++)
		usleep(1000);
	CHECK_EQ(__atomic_load_n(&r.echo.activations, __ATOMIC_SEQ_CST), 2);
	CHECK(r.echo.notify_fds[1] >= 0);
	rig_stop(&r);
	fe_mem_free(&m);
	close(kick), close(call), close(kick1), close(call1), close(kick1b);
}

static void test_config(void)
{
	struct rig r;
	struct vhost_user_config c = { .offset = 2, .size = 4 }, out;

	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(negotiate(r.fe), 0);
	CHECK_EQ(send_msg(r.fe, VHOST_USER_GET_CONFIG, 0, &c, VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0), 0);
	CHECK_EQ(recv_reply(r.fe, VHOST_USER_GET_CONFIG, &out, sizeof(out)), VHOST_USER_CONFIG_HDR_SIZE + 4);
	CHECK(memcmp(out.payload, "g012", 4) == 0);
	/* Past the end of config space, or a size that disagrees with the payload: empty reply. */
	c.offset = 6;
	CHECK_EQ(send_msg(r.fe, VHOST_USER_GET_CONFIG, 0, &c, VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0), 0);
	CHECK_EQ(recv_reply(r.fe, VHOST_USER_GET_CONFIG, &out, sizeof(out)), 0);
	c.offset = 0;
	CHECK_EQ(send_msg(r.fe, VHOST_USER_GET_CONFIG, 0, &c, VHOST_USER_CONFIG_HDR_SIZE + 2, NULL, 0), 0);
	CHECK_EQ(recv_reply(r.fe, VHOST_USER_GET_CONFIG, &out, sizeof(out)), 0);
	c.offset = 0xfffffffe;
	CHECK_EQ(send_msg(r.fe, VHOST_USER_GET_CONFIG, 0, &c, VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0), 0);
	CHECK_EQ(recv_reply(r.fe, VHOST_USER_GET_CONFIG, &out, sizeof(out)), 0);
	/* The echo device has no writable config. */
	c.offset = 0;
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_CONFIG, &c, VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0), 1);
	/* A request for a whole 256-byte config space is a valid message (answered empty here,
	 * past this device's config), not a reason to drop the frontend. */
	c = (struct vhost_user_config){ .offset = 0, .size = VHOST_USER_MAX_CONFIG };
	CHECK_EQ(send_msg(r.fe, VHOST_USER_GET_CONFIG, 0, &c, sizeof(c), NULL, 0), 0);
	CHECK_EQ(recv_reply(r.fe, VHOST_USER_GET_CONFIG, &out, sizeof(out)), 0);
	c = (struct vhost_user_config){ .offset = 2, .size = 4 };
	CHECK_EQ(send_msg(r.fe, VHOST_USER_GET_CONFIG, 0, &c, VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0), 0);
	CHECK_EQ(recv_reply(r.fe, VHOST_USER_GET_CONFIG, &out, sizeof(out)), VHOST_USER_CONFIG_HDR_SIZE + 4);
	rig_stop(&r);
}

static void test_bad_messages(void)
{
	struct rig r;
	struct fe_mem m;
	struct vhost_user_mem mem = { .nregions = 9 };
	int p[2], fds[9];
	uint64_t v;
	uint32_t four = 4;

	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(fe_mem_init(&m), 0);
	CHECK_EQ(negotiate(r.fe), 0);
	/* Wrong payload sizes. */
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_VRING_NUM, &four, sizeof(four), NULL, 0), 1);
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_FEATURES, NULL, 0, NULL, 0), 1);
	/* Ring indexes out of range, odd sizes. */
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_NUM, 2, 8), 1);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_NUM, 0xffffffff, 8), 1);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_NUM, 0, 7), 1);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_NUM, 0, 512), 1);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_NUM, 0, 0), 1);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_BASE, 0, 0x10000), 1);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_ENABLE, 7, 1), 1);
	/* An fd where none belongs is refused and closed. */
	CHECK_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	v = 200;
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_VRING_KICK, &v, sizeof(v), &p[1], 1), 1);
	v = 0 | VHOST_USER_VRING_NOFD;
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_VRING_CALL, &v, sizeof(v), &p[1], 1), 1);
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_OWNER, NULL, 0, &p[1], 1), 0);
	/* Too many regions: every fd is closed. */
	for (int i = 0; i < 9; i++)
		fds[i] = p[1];
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_MEM_TABLE, &mem, sizeof(mem), fds, 8), 1);
	/* A region longer than its file would fault later: refused. */
	CHECK_EQ(send_mem_table(r.fe, &m, 2 * FAKE_RAM_SIZE), 1);
	close(p[1]);
	CHECK(pipe_orphaned(p[0]));
	close(p[0]);
	/* A request with its own reply answers a bad index with an empty payload. */
	{
		struct vhost_user_vring_state st = { .index = 9 };
		CHECK_EQ(send_msg(r.fe, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0), 0);
		CHECK_EQ(recv_reply(r.fe, VHOST_USER_GET_VRING_BASE, &st, sizeof(st)), 0);
	}
	/* Unknown requests: an error reply when asked for one, never a crash. */
	CHECK_EQ(ack(r.fe, 99, NULL, 0, NULL, 0), 1);
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_LOG_BASE, NULL, 0, NULL, 0), 1);
	CHECK_EQ(ack(r.fe, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0), 0);
	/* A payload larger than any request ends the connection. */
	CHECK_EQ(send_msg(r.fe, VHOST_USER_SET_OWNER, 0, m.ram, 4096, NULL, 0), 0);
	CHECK_EQ(wait_readable(r.fe, 2000), 0);
	CHECK_EQ(recv(r.fe, &v, sizeof(v), 0), 0);
	CHECK(vhost_user_closed(r.vu));
	rig_stop(&r);
	fe_mem_free(&m);
}

static void test_bad_version_and_hangup(void)
{
	struct rig r;
	struct fe_mem m;
	struct fake_guest g;
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);
	struct vhost_user_hdr hdr = { .request = VHOST_USER_SET_OWNER, .flags = 2 };
	uint64_t v;

	/* A header with another protocol version ends the connection. */
	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(send(r.fe, &hdr, sizeof(hdr), 0), sizeof(hdr));
	CHECK_EQ(wait_readable(r.fe, 2000), 0);
	CHECK_EQ(recv(r.fe, &v, sizeof(v), 0), 0);
	rig_stop(&r);

	/* Rings outside guest memory never reach the device; hang-up resets an active device. */
	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(fe_mem_init(&m), 0);
	CHECK_EQ(guest_in(&g, &m, RING_SIZE, 0), 0);
	CHECK_EQ(negotiate(r.fe), 0);
	CHECK_EQ(send_mem_table(r.fe, &m, 0x3000), 0);
	CHECK_EQ(setup_ring(r.fe, &m, &g, 0, kick, call), 0);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	CHECK_EQ(__atomic_load_n(&r.echo.activations, __ATOMIC_SEQ_CST), 0);
	CHECK_EQ(send_mem_table(r.fe, &m, FAKE_RAM_SIZE), 0);
	CHECK_EQ(set_state(r.fe, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	CHECK_EQ(__atomic_load_n(&r.echo.activations, __ATOMIC_SEQ_CST), 1);
	shutdown(r.fe, SHUT_RDWR);
	for (int i = 0; i < 200 && !vhost_user_closed(r.vu); i++)
		usleep(5000);
	CHECK(vhost_user_closed(r.vu));
	CHECK_EQ(__atomic_load_n(&r.echo.resets, __ATOMIC_SEQ_CST), 1);
	rig_stop(&r);
	fe_mem_free(&m);
	close(kick), close(call);
}

static void test_listen_accept(void)
{
	char dir[] = "/tmp/vu-test-XXXXXX", path[64];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd, cfd, afd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/sock", dir);
	lfd = vhost_user_listen(path);
	CHECK(lfd >= 0);
	CHECK_EQ(vhost_user_accept(lfd, 10), -ETIMEDOUT);
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, path);
	CHECK_EQ(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	afd = vhost_user_accept(lfd, 1000);
	CHECK(afd >= 0);
	close(afd), close(cfd), close(lfd);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	/* The abuse below makes the backend warn; the checks say what matters. */
	log_set_level(LOG_LEVEL_ERROR);
	RUN_TEST(test_handshake);
	RUN_TEST(test_request_roundtrip);
	RUN_TEST(test_self_notified_kick);
	RUN_TEST(test_config);
	RUN_TEST(test_bad_messages);
	RUN_TEST(test_bad_version_and_hangup);
	RUN_TEST(test_listen_accept);
	return HARNESS_EXIT();
}
