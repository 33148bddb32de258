/* virtio-fs device over fake guest memory: rings built by hand, FUSE requests as the driver posts them. */
#include "harness.h"
#include "test_fs_util.h"

#include <errno.h>
#include <linux/virtio_ring.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/krun_init.h"
#include "devices/fs/virtio_fs.h"
#include "virtio/device.h"
#include "vmm/gmem.h"

#define GPA_BASE 0x100000ULL
#define RAM_SIZE (1 << 20)
#define QSZ 8
/* Per queue q: desc at q*0x4000, avail +0x1000, used +0x2000; buffers from 0x40000. */
#define Q_DESC(q) (GPA_BASE + (q) * 0x4000ULL)
#define Q_AVAIL(q) (Q_DESC(q) + 0x1000)
#define Q_USED(q) (Q_DESC(q) + 0x2000)
#define BUF_GPA (GPA_BASE + 0x40000)

static uint8_t *ram;
static struct gmem mem;
static int signals[2], resets;
static char *scratch;
/* The request queue's notify fd as a transport would hand it over, or -1: kicks as calls. */
static int kick_fd = -1;

static void *gpa(uint64_t a)
{
	return ram + (a - GPA_BASE);
}

static void sig(struct virtio_dev *dev, unsigned int q)
{
	(void)dev;
	__atomic_add_fetch(&signals[q], 1, __ATOMIC_SEQ_CST);
}

static void need_reset(struct virtio_dev *dev)
{
	(void)dev;
	__atomic_add_fetch(&resets, 1, __ATOMIC_SEQ_CST);
}

static int notify_fd(struct virtio_dev *dev, unsigned int q)
{
	(void)dev;
	return q == 1 ? kick_fd : -1;
}

/* A kick as the transport delivers it: the eventfd for a self-notified queue that has one. */
static void kick(struct virtio_dev *dev, unsigned int q)
{
	uint64_t one = 1;

	if (kick_fd >= 0 && ((dev->ops->self_notified_queues >> q) & 1))
		CHECK_EQ(write(kick_fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	else
		dev->ops->queue_notify(dev, q);
}

static struct virtio_dev *new_dev(struct fs *fs)
{
	struct virtio_dev *dev = NULL;

	if (virtio_fs_create(KRUN_ROOT_TAG, fs, 1, &dev))
		return NULL;
	memset(ram, 0, RAM_SIZE);
	memset(signals, 0, sizeof(signals));
	resets = 0;
	dev->mem = &mem;
	dev->transport.signal_queue = sig;
	dev->transport.needs_reset = need_reset;
	dev->transport.notify_fd = notify_fd;
	for (unsigned int q = 0; q < 2; q++) {
		struct virtq *vq = &dev->vqs[q];
		vq->size = QSZ;
		vq->desc_gpa = Q_DESC(q);
		vq->avail_gpa = Q_AVAIL(q);
		vq->used_gpa = Q_USED(q);
		vq->event_idx = true;       /* as Linux negotiates it: kicks depend on avail_event */
		if (virtq_activate(vq, &mem))
			return NULL;
	}
	if (dev->ops->activate(dev))
		return NULL;
	return dev;
}

/* Post one chain of descriptors (lengths; negative = device-writable) and kick queue q. */
static uint16_t avail_next[2];
static void post(struct virtio_dev *dev, unsigned int q, const uint64_t *addr, const int *len,
		 unsigned int n)
{
	struct vring_desc *d = gpa(Q_DESC(q));
	struct vring_avail *av = gpa(Q_AVAIL(q));
	uint16_t head = avail_next[q] % QSZ;

	for (unsigned int i = 0; i < n; i++) {
		uint16_t di = (uint16_t)((head + i) % QSZ);
		d[di].addr = addr[i];
		d[di].len = (uint32_t)(len[i] < 0 ? -len[i] : len[i]);
		d[di].flags = (uint16_t)((len[i] < 0 ? VRING_DESC_F_WRITE : 0) |
					 (i + 1 < n ? VRING_DESC_F_NEXT : 0));
		d[di].next = (uint16_t)((di + 1) % QSZ);
	}
	uint16_t old = av->idx, avail_event;

	av->ring[old % QSZ] = head;
	avail_next[q] = (uint16_t)(avail_next[q] + n);      /* heads advance by chain length */
	__atomic_store_n(&av->idx, (uint16_t)(old + 1), __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* A driver honouring EVENT_IDX (2.7.10) kicks only when the device asked for it. */
	avail_event = __atomic_load_n((uint16_t *)&((struct vring_used *)gpa(Q_USED(q)))->ring[QSZ],
				      __ATOMIC_ACQUIRE);
	if (vring_need_event(avail_event, (uint16_t)(old + 1), old))
		kick(dev, q);
}

/* Wait until the used ring of q reaches idx; returns the last used element's length or -1. */
static int wait_used(unsigned int q, uint16_t idx)
{
	struct vring_used *u = gpa(Q_USED(q));

	for (int i = 0; i < 2000; i++) {
		if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == idx)
			return (int)u->ring[(uint16_t)(idx - 1) % QSZ].len;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	return -1;
}

static uint64_t put_req(uint64_t at, uint32_t op, uint64_t unique, uint64_t nodeid,
			const void *arg, uint32_t alen)
{
	struct fuse_in_header h = { .len = sizeof(h) + alen, .opcode = op, .unique = unique,
				    .nodeid = nodeid };

	memcpy(gpa(at), &h, sizeof(h));
	memcpy((uint8_t *)gpa(at) + sizeof(h), arg, alen);
	return h.len;
}

static void test_config(void)
{
	struct fs_config cfg = { .root_dir = scratch };
	struct virtio_dev *dev = NULL;
	struct fs *fs = NULL;

	CHECK(fs_create(&cfg, &fs) == 0);
	CHECK_EQ(virtio_fs_create("", fs, 1, &dev), -EINVAL);
	CHECK_EQ(virtio_fs_create("a_tag_that_is_much_longer_than_36_bytes", fs, 1, &dev), -EINVAL);
	CHECK_EQ(virtio_fs_create("t", fs, 0, &dev), -EINVAL);
	CHECK_EQ(virtio_fs_create(KRUN_ROOT_TAG, fs, 2, &dev), 0);
	CHECK_EQ(dev->ops->device_id, 26);
	CHECK_EQ(dev->ops->num_queues, 3);
	CHECK_EQ(dev->config_size, 40);
	CHECK(memcmp(dev->config, KRUN_ROOT_TAG, strlen(KRUN_ROOT_TAG)) == 0);
	CHECK_EQ(dev->config[strlen(KRUN_ROOT_TAG)], 0);
	CHECK_EQ(dev->config[36], 2);
	/* The request queues wait on their notify fds; hiprio stays on the transport's loop. */
	CHECK_EQ(dev->ops->self_notified_queues, 0x6u);
	virtio_dev_destroy(dev);        /* destroys fs too */
}

static void test_requests(void)
{
	struct fs_config cfg = { .root_dir = scratch };
	struct fuse_init_in init = { .major = 7, .minor = 36, .flags = FUSE_ASYNC_READ };
	struct fuse_out_header oh;
	struct fuse_init_out io;
	struct virtio_dev *dev;
	struct fs *fs = NULL;
	uint64_t addr[3];
	int len[3];

	CHECK(fs_create(&cfg, &fs) == 0);
	dev = new_dev(fs);
	CHECK(dev);
	memset(avail_next, 0, sizeof(avail_next));
	/* INIT: one readable descriptor, the reply split over two writable ones. */
	addr[0] = BUF_GPA;
	len[0] = (int)put_req(BUF_GPA, FUSE_INIT, 11, 0, &init, sizeof(init));
	addr[1] = BUF_GPA + 0x1000;
	len[1] = -10;
	addr[2] = BUF_GPA + 0x2000;
	len[2] = -4096;
	post(dev, 1, addr, len, 3);
	CHECK_EQ(wait_used(1, 1), sizeof(oh) + sizeof(io));
	{
		uint8_t flat[sizeof(oh) + sizeof(io)];
		memcpy(flat, gpa(addr[1]), 10);
		memcpy(flat + 10, gpa(addr[2]), sizeof(flat) - 10);
		memcpy(&oh, flat, sizeof(oh));
		memcpy(&io, flat + sizeof(oh), sizeof(io));
	}
	CHECK_EQ(oh.unique, 11);
	CHECK_EQ(oh.error, 0);
	CHECK_EQ(io.major, 7);
	CHECK_EQ(io.minor, 36);
	CHECK(__atomic_load_n(&signals[1], __ATOMIC_SEQ_CST) >= 1);
	/* GETATTR of the root. */
	{
		struct fuse_getattr_in ga = { 0 };
		struct fuse_attr_out *ao = gpa(BUF_GPA + 0x2000 + sizeof(oh));
		addr[0] = BUF_GPA;
		len[0] = (int)put_req(BUF_GPA, FUSE_GETATTR, 12, FUSE_ROOT_ID, &ga, sizeof(ga));
		addr[1] = BUF_GPA + 0x2000;
		len[1] = -4096;
		post(dev, 1, addr, len, 2);
		CHECK_EQ(wait_used(1, 2), sizeof(oh) + sizeof(*ao));
		CHECK(S_ISDIR(ao->attr.mode));
	}
	/* Several requests in flight at once: all complete, each reply matches its unique. */
	{
		struct fuse_getattr_in ga = { 0 };
		for (int i = 0; i < 3; i++) {
			uint64_t a[2] = { BUF_GPA + 0x8000 + (uint64_t)i * 0x2000,
					  BUF_GPA + 0x9000 + (uint64_t)i * 0x2000 };
			int l[2] = { (int)put_req(a[0], FUSE_GETATTR, 100 + (uint64_t)i, FUSE_ROOT_ID,
						  &ga, sizeof(ga)), -4096 };
			post(dev, 1, a, l, 2);
		}
		CHECK(wait_used(1, 5) > 0);
		for (int i = 0; i < 3; i++) {
			memcpy(&oh, gpa(BUF_GPA + 0x9000 + (uint64_t)i * 0x2000), sizeof(oh));
			CHECK_EQ(oh.unique, 100 + i);
			CHECK_EQ(oh.error, 0);
		}
	}
	/* Hiprio FORGET: readable only, used length 0, handled inline. */
	{
		struct fuse_forget_in fi = { .nlookup = 1 };
		addr[0] = BUF_GPA + 0x3000;
		len[0] = (int)put_req(addr[0], FUSE_FORGET, 13, 5, &fi, sizeof(fi));
		post(dev, 0, addr, len, 1);
		CHECK_EQ(wait_used(0, 1), 0);
	}
	/* Reply buffer too small for LOOKUP's entry: an error reply, the device stays fine. */
	addr[0] = BUF_GPA;
	len[0] = (int)put_req(BUF_GPA, FUSE_LOOKUP, 14, FUSE_ROOT_ID, "x", 2);
	addr[1] = BUF_GPA + 0x2000;
	len[1] = -20;
	post(dev, 1, addr, len, 2);
	CHECK_EQ(wait_used(1, 6), sizeof(oh));
	memcpy(&oh, gpa(BUF_GPA + 0x2000), sizeof(oh));
	CHECK_EQ(oh.unique, 14);
	CHECK_EQ(oh.error, -ENOBUFS);
	CHECK_EQ(__atomic_load_n(&resets, __ATOMIC_SEQ_CST), 0);
	/* No FUSE header at all: nothing to answer, the device asks for a reset. */
	addr[0] = BUF_GPA;
	len[0] = 8;
	addr[1] = BUF_GPA + 0x2000;
	len[1] = -4096;
	post(dev, 1, addr, len, 2);
	CHECK_EQ(wait_used(1, 7), 0);
	CHECK_EQ(__atomic_load_n(&resets, __ATOMIC_SEQ_CST), 1);
	/* A chain whose next index leaves the table breaks the queue. */
	{
		struct vring_desc *d = gpa(Q_DESC(1));
		struct vring_avail *av = gpa(Q_AVAIL(1));
		uint16_t head = avail_next[1] % QSZ;
		d[head] = (struct vring_desc){ .addr = BUF_GPA, .len = 64, .flags = VRING_DESC_F_NEXT,
					       .next = 200 };
		av->ring[av->idx % QSZ] = head;
		__atomic_store_n(&av->idx, (uint16_t)(av->idx + 1), __ATOMIC_RELEASE);
		kick(dev, 1);
		for (int i = 0; i < 1000 && __atomic_load_n(&resets, __ATOMIC_SEQ_CST) < 2; i++)
			nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
		CHECK_EQ(__atomic_load_n(&resets, __ATOMIC_SEQ_CST), 2);
	}
	dev->ops->reset(dev);
	virtio_dev_destroy(dev);
}

/* One request at BUF_GPA + slot * 0x2000, its reply buffer 0x1000 further; returns the reply. */
static void *send(struct virtio_dev *dev, unsigned int slot, uint32_t op, uint64_t nodeid,
		  const void *arg, uint32_t alen)
{
	uint64_t a[2] = { BUF_GPA + slot * 0x2000ULL, BUF_GPA + slot * 0x2000ULL + 0x1000 };
	int l[2] = { (int)put_req(a[0], op, 200 + slot, nodeid, arg, alen), -4096 };

	memset(gpa(a[1]), 0, sizeof(struct fuse_out_header));
	post(dev, 1, a, l, 2);
	return gpa(a[1]);
}

/* The reply in slot's buffer, once the used ring says it is complete (acquire). */
static bool replied(void *reply, unsigned int slot, uint16_t used)
{
	return wait_used(1, used) >= 0 && ((struct fuse_out_header *)reply)->unique == 200 + slot &&
	       ((struct fuse_out_header *)reply)->error == 0;
}

/*
 * A worker stuck in SETLKW must not keep the next request waiting: the driver only kicks
 * past the avail_event we publish (EVENT_IDX), so the worker that popped the last chain has
 * to re-arm kicks before it blocks, and the kick must reach an idle worker.
 */
static void test_blocked_worker(void)
{
	struct fs_config cfg = { .root_dir = scratch };
	struct fuse_init_in init = { .major = 7, .minor = 36, .flags = FUSE_POSIX_LOCKS };
	struct fuse_open_in oi = { .flags = O_RDWR };
	struct fuse_lk_in lk = { .lk = { .start = 0, .end = 9, .type = F_WRLCK } };
	struct fuse_getattr_in ga = { 0 };
	struct virtio_dev *dev;
	struct fs *fs = NULL;
	void *r, *w;
	uint64_t node;

	t_put_file(scratch, "lk", "x");
	CHECK(fs_create(&cfg, &fs) == 0);
	dev = new_dev(fs);
	CHECK(dev);
	memset(avail_next, 0, sizeof(avail_next));
	CHECK(replied(send(dev, 0, FUSE_INIT, 0, &init, sizeof(init)), 0, 1));
	r = send(dev, 1, FUSE_LOOKUP, FUSE_ROOT_ID, "lk", 3);
	CHECK(replied(r, 1, 2));
	node = ((struct fuse_entry_out *)((uint8_t *)r + sizeof(struct fuse_out_header)))->nodeid;
	r = send(dev, 2, FUSE_OPEN, node, &oi, sizeof(oi));
	CHECK(replied(r, 2, 3));
	lk.fh = ((struct fuse_open_out *)((uint8_t *)r + sizeof(struct fuse_out_header)))->fh;
	lk.owner = 1;
	CHECK(replied(send(dev, 3, FUSE_SETLK, node, &lk, sizeof(lk)), 3, 4));
	lk.owner = 2;
	w = send(dev, 0, FUSE_SETLKW, node, &lk, sizeof(lk));
	nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);    /* let it block */
	CHECK_EQ(__atomic_load_n(&((struct vring_used *)gpa(Q_USED(1)))->idx, __ATOMIC_ACQUIRE), 4);
	CHECK(replied(send(dev, 1, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga)), 1, 5));
	lk.owner = 1;
	lk.lk.type = F_UNLCK;
	r = send(dev, 2, FUSE_SETLK, node, &lk, sizeof(lk));
	CHECK(replied(r, 2, 7) && replied(w, 0, 7));
	dev->ops->reset(dev);
	virtio_dev_destroy(dev);
}

/* The same, with kicks arriving on the fd the device took over (no queue_notify call). */
static void test_requests_kick_fd(void)
{
	test_requests();
}

static void test_blocked_worker_kick_fd(void)
{
	test_blocked_worker();
}

/* After reset the fd is the transport's again: a kick then stays unread for it to see. */
static void test_kick_fd_released(void)
{
	struct fs_config cfg = { .root_dir = scratch };
	struct virtio_dev *dev;
	struct fs *fs = NULL;
	uint64_t v = 3;

	CHECK(fs_create(&cfg, &fs) == 0);
	dev = new_dev(fs);
	CHECK(dev);
	dev->ops->reset(dev);
	CHECK_EQ(write(kick_fd, &v, sizeof(v)), (ssize_t)sizeof(v));
	nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
	v = 0;
	CHECK_EQ(read(kick_fd, &v, sizeof(v)), (ssize_t)sizeof(v));
	CHECK_EQ(v, 3);
	virtio_dev_destroy(dev);
}

int main(void)
{
	void *p = NULL;

	scratch = t_scratch();
	if (!scratch || posix_memalign(&p, 4096, RAM_SIZE)) {
		printf("FAIL test_virtio_fs: setup\n");
		return 1;
	}
	ram = p;
	gmem_init(&mem);
	if (gmem_add_region(&mem, GPA_BASE, RAM_SIZE, ram, GPA_BASE)) {
		printf("FAIL test_virtio_fs: gmem\n");
		return 1;
	}
	RUN_TEST(test_config);
	RUN_TEST(test_requests);
	RUN_TEST(test_blocked_worker);
	kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (kick_fd < 0) {
		printf("FAIL test_virtio_fs: eventfd\n");
		return 1;
	}
	RUN_TEST(test_requests_kick_fd);
	RUN_TEST(test_blocked_worker_kick_fd);
	RUN_TEST(test_kick_fd_released);
	close(kick_fd);
	t_rmrf(scratch);
	free(scratch);
	free(ram);
	return HARNESS_EXIT();
}
