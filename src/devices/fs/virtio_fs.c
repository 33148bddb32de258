/*
 * virtio-fs device (virtio 1.2 section 5.11): queue 0 is the hiprio queue (FORGET and
 * friends, no reply needed), queues 1..N carry FUSE requests to the fs server.
 *
 * Threads: queue_notify runs on the event loop thread and only wakes workers. Hiprio
 * requests are cheap (forgets) and are handled inline there. Each request queue has a small
 * pool of worker threads that pop chains under the queue's mutex, run fs_handle without it
 * (so a slow read or a waiting lock blocks one worker, not the loop or the queue), and push
 * the reply under the mutex again. Replies may complete out of order, which the driver
 * allows (5.11.6: requests are matched by their FUSE unique id).
 *
 * Wake-ups: a kick wakes one idle worker, never all of them (a broadcast per kick cost
 * 10-20 futex calls per request). A busy worker goes on popping until the ring is empty, and
 * a worker that pops a chain while more are queued wakes one more idle worker, so a burst
 * still spreads over the pool; one that pops the last chain re-arms kicks before handling it.
 */
#define LOG_MODULE "virtio-fs"
#include "devices/fs/virtio_fs.h"

#include <errno.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/fs/fs.h"
#include "devices/fs/fs_priv.h"
#include "util/iov.h"
#include "util/log.h"
#include "virtio/device.h"

#define VIRTIO_ID_FS 26
#define VIRTIO_FS_QUEUE_SIZE 1024
#define VIRTIO_FS_WORKERS 4
#define HIPRIO_QUEUE 0

/* Waiting lock requests must leave each queue at least one free worker (fs_lock.c). */
_Static_assert(FS_MAX_LOCK_WAITERS < VIRTIO_FS_WORKERS, "lock waiters could stall a queue");

/* 5.11.4 Device configuration layout (without VIRTIO_FS_F_NOTIFICATION). */
struct virtio_fs_config {
	uint8_t tag[VIRTIO_FS_TAG_MAX];
	uint32_t num_request_queues;    /* little endian; we only run on x86-64 hosts */
} __attribute__((packed));

struct vfs_queue {
	struct vfs *vfs;
	unsigned int q;
	pthread_mutex_t lock;           /* the virtq: pops, pushes, used-ring signalling */
	pthread_cond_t kick;
	pthread_t workers[VIRTIO_FS_WORKERS];
	unsigned int nr_workers;
	unsigned int idle;              /* workers waiting on kick, under lock */
	bool failed;                    /* reported the broken queue once already */
};

struct vfs {
	struct virtio_dev dev;
	struct virtio_dev_ops ops;
	struct virtio_fs_config config;
	struct fs *fs;
	unsigned int nr_req;
	bool running;
	struct virtq_elem *hiprio_elem;
	struct vfs_queue queues[VIRTIO_DEV_MAX_QUEUES];
};

/* Returns the used length for the chain; a chain we cannot answer fails the device. */
static uint32_t handle_chain(struct vfs *v, struct virtq_elem *e)
{
	const struct iovec *in = e->iov, *out = e->iov + e->out_num;
	struct fuse_in_header ih;
	struct fuse_out_header oh;
	ssize_t ret;

	ret = fs_handle(v->fs, in, e->out_num, out, e->in_num);
	if (ret >= 0)
		return (uint32_t)ret;
	/* Malformed request or reply buffer too small: answer with the error if we can. */
	if (iov_to_buf(in, e->out_num, 0, &ih, sizeof(ih)) == sizeof(ih) &&
	    iov_length(out, e->in_num) >= sizeof(oh)) {
		oh = (struct fuse_out_header){ .len = sizeof(oh), .error = (int32_t)ret,
					       .unique = ih.unique };
		iov_from_buf(out, e->in_num, 0, &oh, sizeof(oh));
		return sizeof(oh);
	}
	/* No FUSE header in the request, or no room for one in the reply. FORGET-style
	 * requests on hiprio have no writable part at all, but fs_handle returns 0 for them. */
	virtio_dev_fail(&v->dev, "FUSE request without a usable header or reply buffer");
	return 0;
}

/* Under rq->lock: pop the next chain, sleeping while the ring is empty. False: stopping. */
static bool next_chain(struct vfs_queue *rq, struct virtq *vq, struct virtq_elem *e)
{
	struct vfs *v = rq->vfs;

	while (__atomic_load_n(&v->running, __ATOMIC_ACQUIRE)) {
		int r = virtq_pop(vq, e);

		if (r > 0)
			return true;
		if (r < 0 && !rq->failed) {
			rq->failed = true;
			virtio_dev_fail(&v->dev, "request queue broken by the driver");
		}
		/* Idle: ask for kicks again (with EVENT_IDX the driver kicks only past the
		 * avail_event we publish, 2.7.10), unless buffers slipped in meanwhile. */
		if (r == 0 && virtq_enable_notify(vq))
			continue;
		rq->idle++;
		pthread_cond_wait(&rq->kick, &rq->lock);
		rq->idle--;
	}
	return false;
}

static void *worker(void *opaque)
{
	struct vfs_queue *rq = opaque;
	struct vfs *v = rq->vfs;
	struct virtq *vq = &v->dev.vqs[rq->q];
	struct virtq_elem *e = malloc(sizeof(*e));
	uint32_t len;
	bool more;

	if (!e) {
		virtio_dev_fail(&v->dev, "out of memory for a request queue worker");
		return NULL;
	}
	pthread_mutex_lock(&rq->lock);
	while (next_chain(rq, vq, e)) {
		/* The ring looks empty: publish avail_event now, not when this chain is done, or
		 * the driver would not kick for the next one while we are busy (a SETLKW waiting
		 * for a lock that only that next request releases would never return). */
		more = (virtq_has_avail(vq) || virtq_enable_notify(vq)) && rq->idle;
		pthread_mutex_unlock(&rq->lock);
		/* After the unlock, so the woken worker does not block on our mutex at once. */
		if (more)
			pthread_cond_signal(&rq->kick);
		len = handle_chain(v, e);
		pthread_mutex_lock(&rq->lock);
		virtq_push(vq, e->head, len);
		virtio_dev_notify_used(&v->dev, rq->q);
	}
	pthread_mutex_unlock(&rq->lock);
	free(e);
	return NULL;
}

/* Hiprio: FORGET/BATCH_FORGET (5.11.6.1), handled inline since they never block. */
static void drain_hiprio(struct vfs *v)
{
	struct virtq *vq = &v->dev.vqs[HIPRIO_QUEUE];
	bool pushed = false;
	int r;

	for (;;) {
		while ((r = virtq_pop(vq, v->hiprio_elem)) > 0) {
			virtq_push(vq, v->hiprio_elem->head, handle_chain(v, v->hiprio_elem));
			pushed = true;
		}
		/* Publish avail_event before going idle; loop if the driver raced us. */
		if (r < 0 || !virtq_enable_notify(vq))
			break;
	}
	if (r < 0)
		virtio_dev_fail(&v->dev, "hiprio queue broken by the driver");
	if (pushed)
		virtio_dev_notify_used(&v->dev, HIPRIO_QUEUE);
}

static void stop_workers(struct vfs *v)
{
	/* Waiting lock requests give up so the workers can be joined. */
	__atomic_store_n(&v->fs->cancel_waits, true, __ATOMIC_RELAXED);
	__atomic_store_n(&v->running, false, __ATOMIC_RELEASE);
	for (unsigned int q = 1; q <= v->nr_req; q++) {
		/* Under the queue lock, so a worker cannot miss the wake-up between check and wait. */
		pthread_mutex_lock(&v->queues[q].lock);
		pthread_cond_broadcast(&v->queues[q].kick);
		pthread_mutex_unlock(&v->queues[q].lock);
	}
	for (unsigned int q = 1; q <= v->nr_req; q++) {
		for (unsigned int i = 0; i < v->queues[q].nr_workers; i++)
			pthread_join(v->queues[q].workers[i], NULL);
		v->queues[q].nr_workers = 0;
	}
	__atomic_store_n(&v->fs->cancel_waits, false, __ATOMIC_RELAXED);
}

static int vfs_activate(struct virtio_dev *dev)
{
	struct vfs *v = dev->priv;

	__atomic_store_n(&v->running, true, __ATOMIC_RELEASE);
	for (unsigned int q = 1; q <= v->nr_req; q++) {
		struct vfs_queue *rq = &v->queues[q];
		rq->failed = false;
		for (unsigned int i = 0; i < VIRTIO_FS_WORKERS; i++) {
			if (pthread_create(&rq->workers[i], NULL, worker, rq)) {
				stop_workers(v);
				return -EAGAIN;
			}
			rq->nr_workers++;
		}
	}
	return 0;
}

/*
 * The idle count is read under the lock: a worker that found the ring empty holds the lock
 * until it waits, so it is either counted here or will see the new buffers itself. No idle
 * worker: the busy ones pop the new buffers when they finish theirs. Signalled after the
 * unlock; a waiter counted under the lock is already registered on the condition.
 */
static void wake_one(struct vfs_queue *rq)
{
	bool idle;

	pthread_mutex_lock(&rq->lock);
	idle = rq->idle > 0;
	pthread_mutex_unlock(&rq->lock);
	if (idle)
		pthread_cond_signal(&rq->kick);
}

static void vfs_queue_notify(struct virtio_dev *dev, unsigned int q)
{
	struct vfs *v = dev->priv;

	if (q == HIPRIO_QUEUE) {
		drain_hiprio(v);
		return;
	}
	if (q > v->nr_req)
		return;
	wake_one(&v->queues[q]);
}

static void vfs_reset(struct virtio_dev *dev)
{
	struct vfs *v = dev->priv;

	if (__atomic_load_n(&v->running, __ATOMIC_ACQUIRE))
		stop_workers(v);
}

static void vfs_destroy(struct virtio_dev *dev)
{
	struct vfs *v = dev->priv;

	vfs_reset(dev);
	for (unsigned int q = 0; q < VIRTIO_DEV_MAX_QUEUES; q++) {
		pthread_mutex_destroy(&v->queues[q].lock);
		pthread_cond_destroy(&v->queues[q].kick);
	}
	fs_destroy(v->fs);
	free(v->hiprio_elem);
	free(v);
}

int virtio_fs_create(const char *tag, struct fs *fs, unsigned int num_request_queues,
		     struct virtio_dev **out)
{
	struct vfs *v;
	size_t tag_len = tag ? strlen(tag) : 0;

	if (!fs || tag_len == 0 || tag_len > VIRTIO_FS_TAG_MAX || num_request_queues == 0 ||
	    num_request_queues >= VIRTIO_DEV_MAX_QUEUES)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->hiprio_elem = malloc(sizeof(*v->hiprio_elem));
	if (!v->hiprio_elem) {
		free(v);
		return -ENOMEM;
	}
	v->ops = (struct virtio_dev_ops){
		.name = "virtio-fs", .device_id = VIRTIO_ID_FS,
		.features = (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | (1ULL << VIRTIO_RING_F_EVENT_IDX),
		.num_queues = (uint16_t)(1 + num_request_queues),
		.queue_max_size = VIRTIO_FS_QUEUE_SIZE,
		.activate = vfs_activate, .queue_notify = vfs_queue_notify,
		.reset = vfs_reset, .destroy = vfs_destroy,
	};
	/* 5.11.4: the tag is not NUL-terminated when it fills all 36 bytes. */
	memcpy(v->config.tag, tag, tag_len);
	v->config.num_request_queues = num_request_queues;
	v->fs = fs;
	v->nr_req = num_request_queues;
	for (unsigned int q = 0; q < VIRTIO_DEV_MAX_QUEUES; q++) {
		v->queues[q].vfs = v;
		v->queues[q].q = q;
		pthread_mutex_init(&v->queues[q].lock, NULL);
		pthread_cond_init(&v->queues[q].kick, NULL);
	}
	v->dev.ops = &v->ops;
	v->dev.priv = v;
	v->dev.config = (uint8_t *)&v->config;
	v->dev.config_size = sizeof(v->config);
	*out = &v->dev;
	return 0;
}
