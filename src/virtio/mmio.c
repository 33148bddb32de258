/*
 * virtio-mmio transport v2 (virtio 1.2 section 4.2.2). Registers are accessed from vCPU threads
 * under `lock`; every device callback runs on the I/O loop thread (a vCPU hands activate/reset/
 * config writes over and waits), so devices never see two threads at once. The notify fd of
 * a queue the device serves from its own threads (self_notified_queues) stays out of the loop:
 * a kick (ioeventfd, or kick() below) wakes the device's thread directly.
 */
#define LOG_MODULE "virtio-mmio"
#include "virtio/mmio.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

#define MMIO_MAGIC 0x74726976u  /* "virt" */
#define MMIO_VERSION 2
#define TRANSPORT_FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) | \
			    (1ull << VIRTIO_RING_F_INDIRECT_DESC))

enum call_op { OP_ACTIVATE, OP_RESET, OP_CONFIG_WRITE };

struct call {
	enum call_op op;
	uint32_t off;
	uint32_t len;
	uint8_t data[8];
	int ret;
};

struct mmio_queue {
	struct virtio_mmio *m;
	unsigned int index;
	int notify_fd;
	bool ready;
};

struct virtio_mmio {
	struct virtio_dev *dev;
	const struct gmem *mem;
	struct evloop *loop;
	int irq_fd;
	uint64_t offered;
	pthread_mutex_t lock;           /* register state below */
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
	uint64_t driver_features;
	struct mmio_queue q[VIRTIO_DEV_MAX_QUEUES];
	uint32_t status;                /* atomic: the device may set NEEDS_RESET from the loop */
	uint32_t isr;                   /* atomic InterruptStatus */
	uint32_t config_gen;            /* atomic */
	bool activated;                 /* written only where device callbacks run */
	/* Hand-over of a device callback to the loop thread. */
	pthread_mutex_t call_lock;
	pthread_cond_t call_cond;
	int call_fd;
	struct call *call;
	bool call_done;
	bool loop_gone;
};

static void raise_irq(struct virtio_mmio *m, uint32_t bit)
{
	uint64_t one = 1;

	__atomic_or_fetch(&m->isr, bit, __ATOMIC_SEQ_CST);
	if (m->irq_fd >= 0 && write(m->irq_fd, &one, sizeof(one)) < 0)
		log_warn_guest("%s: cannot raise interrupt", m->dev->ops->name);
}

static void signal_queue(struct virtio_dev *dev, unsigned int q)
{
	(void)q;
	raise_irq(dev->transport.opaque, VIRTIO_MMIO_INT_VRING);
}

static void signal_config(struct virtio_dev *dev)
{
	struct virtio_mmio *m = dev->transport.opaque;

	__atomic_add_fetch(&m->config_gen, 1, __ATOMIC_SEQ_CST);
	raise_irq(m, VIRTIO_MMIO_INT_CONFIG);
}

/* 2.1.2: the device sets DEVICE_NEEDS_RESET and, once live, tells the driver via a config interrupt. */
static void needs_reset(struct virtio_dev *dev)
{
	struct virtio_mmio *m = dev->transport.opaque;
	uint32_t old = __atomic_fetch_or(&m->status, VIRTIO_CONFIG_S_NEEDS_RESET, __ATOMIC_SEQ_CST);

	if ((old & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_NEEDS_RESET))
		signal_config(dev);
}

static bool self_notified(const struct virtio_mmio *m, unsigned int q)
{
	return (m->dev->ops->self_notified_queues >> q) & 1;
}

/* The fd is ours and lives as long as the transport: the device may hold it while active. */
static int notify_fd(struct virtio_dev *dev, unsigned int q)
{
	struct virtio_mmio *m = dev->transport.opaque;

	return q < VIRTIO_DEV_MAX_QUEUES ? m->q[q].notify_fd : -1;
}

static uint32_t get_status(const struct virtio_mmio *m)
{
	return __atomic_load_n(&m->status, __ATOMIC_SEQ_CST);
}

static void run_op(struct virtio_mmio *m, struct call *c)
{
	struct virtio_dev *dev = m->dev;

	c->ret = 0;
	switch (c->op) {
	case OP_ACTIVATE:
		dev->mem = m->mem;
		dev->loop = m->loop;
		dev->driver_features = m->driver_features;
		c->ret = dev->ops->activate ? dev->ops->activate(dev) : 0;
		m->activated = c->ret == 0;
		break;
	case OP_RESET:
		if (m->activated && dev->ops->reset)
			dev->ops->reset(dev);
		m->activated = false;
		for (unsigned int i = 0; i < dev->ops->num_queues; i++)
			virtq_reset(&dev->vqs[i]);
		break;
	case OP_CONFIG_WRITE:
		if (dev->ops->config_write)
			dev->ops->config_write(dev, c->off, c->data, c->len);
		break;
	}
}

static void on_call(void *opaque, uint32_t events)
{
	struct virtio_mmio *m = opaque;
	struct call *c;
	uint64_t v;

	(void)events;
	if (read(m->call_fd, &v, sizeof(v)) < 0) {
		/* Spurious wake-up: nothing pending. */
	}
	pthread_mutex_lock(&m->call_lock);
	c = m->call;
	m->call = NULL;
	pthread_mutex_unlock(&m->call_lock);
	if (!c)
		return;
	run_op(m, c);
	pthread_mutex_lock(&m->call_lock);
	m->call_done = true;
	pthread_cond_broadcast(&m->call_cond);
	pthread_mutex_unlock(&m->call_lock);
}

/* Run a device callback where device callbacks run; the caller holds m->lock. */
static int call_device(struct virtio_mmio *m, struct call *c)
{
	uint64_t one = 1;

	pthread_mutex_lock(&m->call_lock);
	if (!m->loop || m->loop_gone) {
		pthread_mutex_unlock(&m->call_lock);
		run_op(m, c);
		return c->ret;
	}
	m->call = c;
	m->call_done = false;
	if (write(m->call_fd, &one, sizeof(one)) < 0)
		c->ret = -EIO;
	while (!m->call_done && !m->loop_gone)
		pthread_cond_wait(&m->call_cond, &m->call_lock);
	if (!m->call_done) {
		m->call = NULL;
		c->ret = -ESHUTDOWN;
	}
	pthread_mutex_unlock(&m->call_lock);
	return c->ret;
}

static void on_notify(void *opaque, uint32_t events)
{
	struct mmio_queue *mq = opaque;
	struct virtio_mmio *m = mq->m;
	uint64_t v;

	(void)events;
	if (read(mq->notify_fd, &v, sizeof(v)) < 0)
		return;
	if (m->activated && !(get_status(m) & VIRTIO_CONFIG_S_NEEDS_RESET) && m->dev->ops->queue_notify)
		m->dev->ops->queue_notify(m->dev, mq->index);
}

static struct mmio_queue *sel_queue(struct virtio_mmio *m)
{
	return m->queue_sel < m->dev->ops->num_queues ? &m->q[m->queue_sel] : NULL;
}

static uint32_t read_queue_reg(struct virtio_mmio *m, uint64_t off)
{
	struct mmio_queue *mq = sel_queue(m);
	struct virtq *vq = mq ? &m->dev->vqs[mq->index] : NULL;

	if (!mq)
		return 0;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return virtio_dev_queue_offer(m->dev->ops);
	case VIRTIO_MMIO_QUEUE_NUM: return vq->size;
	case VIRTIO_MMIO_QUEUE_READY: return mq->ready;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: return (uint32_t)vq->desc_gpa;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: return (uint32_t)(vq->desc_gpa >> 32);
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: return (uint32_t)vq->avail_gpa;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: return (uint32_t)(vq->avail_gpa >> 32);
	case VIRTIO_MMIO_QUEUE_USED_LOW: return (uint32_t)vq->used_gpa;
	case VIRTIO_MMIO_QUEUE_USED_HIGH: return (uint32_t)(vq->used_gpa >> 32);
	default: return 0;
	}
}

static int read_reg(struct virtio_mmio *m, uint64_t off, uint32_t *v)
{
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: *v = MMIO_MAGIC; return 0;
	case VIRTIO_MMIO_VERSION: *v = MMIO_VERSION; return 0;
	case VIRTIO_MMIO_DEVICE_ID: *v = m->dev->ops->device_id; return 0;
	case VIRTIO_MMIO_VENDOR_ID: *v = VIRTIO_MMIO_VENDOR; return 0;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		*v = m->dev_feat_sel < 2 ? (uint32_t)(m->offered >> (32 * m->dev_feat_sel)) : 0;
		return 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS: *v = __atomic_load_n(&m->isr, __ATOMIC_SEQ_CST); return 0;
	case VIRTIO_MMIO_STATUS: *v = get_status(m); return 0;
	case VIRTIO_MMIO_CONFIG_GENERATION: *v = __atomic_load_n(&m->config_gen, __ATOMIC_SEQ_CST); return 0;
	/* 4.2.2: no shared memory regions: length reads as all ones. */
	case VIRTIO_MMIO_SHM_LEN_LOW: case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW: case VIRTIO_MMIO_SHM_BASE_HIGH:
		*v = 0xffffffffu;
		return 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX: case VIRTIO_MMIO_QUEUE_NUM: case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW: case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case VIRTIO_MMIO_QUEUE_USED_LOW: case VIRTIO_MMIO_QUEUE_USED_HIGH:
		*v = read_queue_reg(m, off);
		return 0;
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: case VIRTIO_MMIO_DRIVER_FEATURES:
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: case VIRTIO_MMIO_QUEUE_SEL:
	case VIRTIO_MMIO_QUEUE_NOTIFY: case VIRTIO_MMIO_INTERRUPT_ACK: case VIRTIO_MMIO_SHM_SEL:
		*v = 0;     /* write-only */
		return 0;
	default:
		*v = 0;
		return -EINVAL;
	}
}

static void set_addr_half(uint64_t *addr, uint32_t v, bool high)
{
	*addr = high ? (*addr & 0xffffffffull) | ((uint64_t)v << 32) : (*addr & ~0xffffffffull) | v;
}

/* 4.2.3.2: queue registers may change only while the queue is not ready and before DRIVER_OK. */
static int write_queue_addr(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct mmio_queue *mq = sel_queue(m);
	struct virtq *vq;

	if (!mq || mq->ready || (get_status(m) & VIRTIO_CONFIG_S_DRIVER_OK))
		return -EINVAL;
	vq = &m->dev->vqs[mq->index];
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM: vq->size = (uint16_t)(v > 0xffff ? 0 : v); break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_addr_half(&vq->desc_gpa, v, off == VIRTIO_MMIO_QUEUE_DESC_HIGH);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		set_addr_half(&vq->avail_gpa, v, off == VIRTIO_MMIO_QUEUE_AVAIL_HIGH);
		break;
	default:
		set_addr_half(&vq->used_gpa, v, off == VIRTIO_MMIO_QUEUE_USED_HIGH);
		break;
	}
	return 0;
}

static void fail_driver(struct virtio_mmio *m, const char *why)
{
	virtio_dev_fail(m->dev, why);
}

/* QueueReady = 1 validates the rings once (size, alignment, inside RAM): 2.7 and 4.2.3.2. */
static int write_queue_ready(struct virtio_mmio *m, uint32_t v)
{
	struct mmio_queue *mq = sel_queue(m);
	uint32_t st = get_status(m);
	struct virtq *vq;
	int ret;

	if (!mq || (st & VIRTIO_CONFIG_S_DRIVER_OK) || !(st & VIRTIO_CONFIG_S_FEATURES_OK))
		return -EINVAL;
	vq = &m->dev->vqs[mq->index];
	if (v == 0 || mq->ready) {
		mq->ready = v != 0 && mq->ready;
		if (!mq->ready)
			virtq_reset(vq);
		return 0;
	}
	if (vq->size == 0 || vq->size > virtio_dev_queue_offer(m->dev->ops) ||
	    (vq->size & (vq->size - 1))) {
		fail_driver(m, "queue size is zero, too large or not a power of two");
		return -EINVAL;
	}
	vq->event_idx = (m->driver_features >> VIRTIO_RING_F_EVENT_IDX) & 1;
	vq->indirect = (m->driver_features >> VIRTIO_RING_F_INDIRECT_DESC) & 1;
	ret = virtq_activate(vq, m->mem);
	if (ret) {
		fail_driver(m, "queue rings misaligned or outside guest memory");
		return ret;
	}
	mq->ready = true;
	return 0;
}

static void kick(struct virtio_mmio *m, uint32_t q)
{
	uint64_t one = 1;

	if (q >= m->dev->ops->num_queues) {
		log_warn_guest("%s: notify for queue %u that does not exist", m->dev->ops->name, q);
		return;
	}
	if (m->q[q].notify_fd >= 0) {
		/* No ioeventfd caught this write: hand it on like one (to the loop or the device). */
		if (write(m->q[q].notify_fd, &one, sizeof(one)) < 0)
			log_warn_guest("%s: cannot queue a notification", m->dev->ops->name);
		return;
	}
	if (m->activated && !(get_status(m) & VIRTIO_CONFIG_S_NEEDS_RESET) && m->dev->ops->queue_notify)
		m->dev->ops->queue_notify(m->dev, q);
}

static void reset(struct virtio_mmio *m)
{
	struct call c = { .op = OP_RESET };

	call_device(m, &c);
	for (unsigned int i = 0; i < m->dev->ops->num_queues; i++) {
		struct virtq *vq = &m->dev->vqs[i];
		m->q[i].ready = false;
		vq->size = 0;
		vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	}
	m->dev_feat_sel = m->drv_feat_sel = m->queue_sel = 0;
	m->driver_features = 0;
	__atomic_store_n(&m->isr, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&m->status, 0, __ATOMIC_SEQ_CST);
}

/* 3.1.1 initialization order; 2.2.2: FEATURES_OK only for a subset that includes VERSION_1. */
static int write_status(struct virtio_mmio *m, uint32_t v)
{
	uint32_t old = get_status(m), added = v & ~old;
	struct call c = { .op = OP_ACTIVATE };

	if (v == 0) {
		reset(m);
		return 0;
	}
	v &= ~(uint32_t)VIRTIO_CONFIG_S_NEEDS_RESET;
	if ((old & ~(uint32_t)VIRTIO_CONFIG_S_NEEDS_RESET) & ~v) {
		log_warn_guest("%s: driver cleared status bits without a reset", m->dev->ops->name);
		return -EINVAL;
	}
	if ((added & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    ((m->driver_features & ~m->offered) || !(m->driver_features >> VIRTIO_F_VERSION_1 & 1)))
		v &= ~(uint32_t)VIRTIO_CONFIG_S_FEATURES_OK;
	if ((added & VIRTIO_CONFIG_S_DRIVER_OK) && !(v & VIRTIO_CONFIG_S_FEATURES_OK))
		return -EINVAL;
	__atomic_or_fetch(&m->status, v, __ATOMIC_SEQ_CST);
	if ((added & VIRTIO_CONFIG_S_DRIVER_OK) && call_device(m, &c)) {
		fail_driver(m, "device could not start with this configuration");
		return c.ret;
	}
	return 0;
}

static int write_reg(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: m->dev_feat_sel = v; return 0;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: m->drv_feat_sel = v; return 0;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (m->drv_feat_sel > 1 || (get_status(m) & VIRTIO_CONFIG_S_FEATURES_OK))
			return -EINVAL;
		set_addr_half(&m->driver_features, v, m->drv_feat_sel == 1);
		return 0;
	case VIRTIO_MMIO_QUEUE_SEL: m->queue_sel = v; return 0;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_DESC_LOW: case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case VIRTIO_MMIO_QUEUE_USED_LOW: case VIRTIO_MMIO_QUEUE_USED_HIGH:
		return write_queue_addr(m, off, v);
	case VIRTIO_MMIO_QUEUE_READY: return write_queue_ready(m, v);
	case VIRTIO_MMIO_QUEUE_NOTIFY: kick(m, v); return 0;
	case VIRTIO_MMIO_INTERRUPT_ACK: __atomic_and_fetch(&m->isr, ~v, __ATOMIC_SEQ_CST); return 0;
	case VIRTIO_MMIO_STATUS: return write_status(m, v);
	case VIRTIO_MMIO_SHM_SEL: return 0;
	default: return -EINVAL;
	}
}

static bool config_access_ok(const struct virtio_mmio *m, uint64_t coff, unsigned int len)
{
	return (len == 1 || len == 2 || len == 4 || len == 8) && coff % (len == 8 ? 4 : len) == 0 &&
	       coff <= m->dev->config_size && len <= m->dev->config_size - coff;
}

int virtio_mmio_read(struct virtio_mmio *m, uint64_t off, void *data, unsigned int len)
{
	uint32_t v = 0;
	int ret;

	if (off >= VIRTIO_MMIO_CONFIG && off < VIRTIO_MMIO_REGION_SIZE) {
		uint64_t coff = off - VIRTIO_MMIO_CONFIG;
		memset(data, 0, len > 8 ? 8 : len);
		if (!config_access_ok(m, coff, len) || !m->dev->config)
			return -EINVAL;
		memcpy(data, m->dev->config + coff, len);
		return 0;
	}
	if (len != 4 || off % 4 || off >= VIRTIO_MMIO_CONFIG) {
		memset(data, 0, len > 8 ? 8 : len);
		log_warn_guest("%s: bad register read at 0x%llx, %u bytes", m->dev->ops->name,
			       (unsigned long long)off, len);
		return -EINVAL;
	}
	pthread_mutex_lock(&m->lock);
	ret = read_reg(m, off, &v);
	pthread_mutex_unlock(&m->lock);
	memcpy(data, &v, 4);
	return ret;
}

static int write_config(struct virtio_mmio *m, uint64_t coff, const void *data, unsigned int len)
{
	struct call c = { .op = OP_CONFIG_WRITE, .off = (uint32_t)coff, .len = len };
	int ret;

	if (!config_access_ok(m, coff, len))
		return -EINVAL;
	memcpy(c.data, data, len);
	pthread_mutex_lock(&m->lock);
	ret = call_device(m, &c);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int virtio_mmio_write(struct virtio_mmio *m, uint64_t off, const void *data, unsigned int len)
{
	uint32_t v;
	int ret;

	if (off >= VIRTIO_MMIO_CONFIG && off < VIRTIO_MMIO_REGION_SIZE)
		ret = write_config(m, off - VIRTIO_MMIO_CONFIG, data, len);
	else if (len != 4 || off % 4 || off >= VIRTIO_MMIO_CONFIG)
		ret = -EINVAL;
	else {
		memcpy(&v, data, 4);
		pthread_mutex_lock(&m->lock);
		ret = write_reg(m, off, v);
		pthread_mutex_unlock(&m->lock);
	}
	if (ret == -EINVAL)
		log_warn_guest("%s: register write at 0x%llx, %u bytes refused", m->dev->ops->name,
			       (unsigned long long)off, len);
	return ret;
}

static int setup_fds(struct virtio_mmio *m)
{
	int ret;

	m->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->call_fd < 0)
		return -errno;
	ret = evloop_add(m->loop, m->call_fd, EPOLLIN, on_call, m);
	for (unsigned int i = 0; !ret && i < m->dev->ops->num_queues; i++) {
		m->q[i].notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->q[i].notify_fd < 0)
			return -errno;
		if (!self_notified(m, i))
			ret = evloop_add(m->loop, m->q[i].notify_fd, EPOLLIN, on_notify, &m->q[i]);
	}
	return ret;
}

int virtio_mmio_create(struct virtio_dev *dev, const struct gmem *mem, struct evloop *loop,
		       int irq_fd, struct virtio_mmio **out)
{
	struct virtio_mmio *m;
	int ret;

	if (!dev || dev->ops->num_queues > VIRTIO_DEV_MAX_QUEUES || !dev->ops->queue_max_size ||
	    dev->ops->queue_max_size > VIRTQ_MAX_SIZE) {
		virtio_dev_destroy(dev);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		virtio_dev_destroy(dev);
		return -ENOMEM;
	}
	*m = (struct virtio_mmio){ .dev = dev, .mem = mem, .loop = loop, .irq_fd = irq_fd, .call_fd = -1 };
	m->offered = dev->ops->features | TRANSPORT_FEATURES;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->call_lock, NULL);
	pthread_cond_init(&m->call_cond, NULL);
	for (unsigned int i = 0; i < VIRTIO_DEV_MAX_QUEUES; i++)
		m->q[i] = (struct mmio_queue){ .m = m, .index = i, .notify_fd = -1 };
	dev->transport = (struct virtio_dev_transport){ .signal_queue = signal_queue,
		.signal_config = signal_config, .needs_reset = needs_reset, .notify_fd = notify_fd,
		.opaque = m };
	ret = loop ? setup_fds(m) : 0;
	if (ret) {
		virtio_mmio_destroy(m);
		return ret;
	}
	*out = m;
	return 0;
}

void virtio_mmio_detach_loop(struct virtio_mmio *m)
{
	pthread_mutex_lock(&m->call_lock);
	m->loop_gone = true;
	pthread_cond_broadcast(&m->call_cond);
	pthread_mutex_unlock(&m->call_lock);
}

static void close_watched(struct evloop *loop, int fd)
{
	if (fd < 0)
		return;
	if (loop)
		evloop_del(loop, fd);
	close(fd);
}

void virtio_mmio_destroy(struct virtio_mmio *m)
{
	struct call c = { .op = OP_RESET };

	if (!m)
		return;
	virtio_mmio_detach_loop(m);
	run_op(m, &c);
	close_watched(m->loop, m->call_fd);
	for (unsigned int i = 0; i < VIRTIO_DEV_MAX_QUEUES; i++)
		close_watched(m->loop, m->q[i].notify_fd);
	virtio_dev_destroy(m->dev);
	pthread_cond_destroy(&m->call_cond);
	pthread_mutex_destroy(&m->call_lock);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int virtio_mmio_notify_fd(const struct virtio_mmio *m, unsigned int q)
{
	return q < VIRTIO_DEV_MAX_QUEUES ? m->q[q].notify_fd : -1;
}

unsigned int virtio_mmio_num_queues(const struct virtio_mmio *m)
{
	return m->dev->ops->num_queues;
}

uint32_t virtio_mmio_status(const struct virtio_mmio *m)
{
	return get_status(m);
}

uint32_t virtio_mmio_device_id(const struct virtio_mmio *m)
{
	return m->dev->ops->device_id;
}
