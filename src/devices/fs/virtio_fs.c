/*
 * virtio-fs device (virtio 1.2 section 5.11): queue 0 is the hiprio queue (FORGET and
 * friends, no reply needed), queues 1..N carry FUSE requests to the fs server.
 *
 * Threads: hiprio requests are cheap (forgets) and are handled inline on the event loop
 * thread (queue_notify). Each request queue has a small pool of worker threads that pop
 * chains under the queue's mutex, run fs_handle without it (so a slow read or a waiting lock
 * blocks one worker, not the loop or the queue), and push the reply under the mutex again.
 * Replies may complete out of order, which the driver allows (5.11.6: requests are matched by
 * their FUSE unique id).
 *
 * Wake-ups: the request queues are self-notified (virtio/device.h): idle workers wait on the
 * queue's notify fd themselves, so a guest kick (a KVM ioeventfd, a vhost-user kick fd) wakes
 * a worker directly instead of the loop thread, which then had to wake a worker (two
 * cross-thread wake-ups of a few microseconds each per request). Each worker waits in its own
 * epoll set holding the kick fd with EPOLLEXCLUSIVE: the kernel wakes one waiting worker per
 * kick, never all of them (a broadcast per kick cost 10-20 futex calls per request), and the
 * eventfd's count keeps a kick that lands before the worker sleeps. A busy worker goes on
 * popping until the ring is empty, and a worker that pops a chain while more are queued wakes
 * one more idle worker through the queue's own "nudge" eventfd (also exclusive), so a burst
 * still spreads over the pool; one that pops the last chain re-arms kicks before handling it.
 * The nudge fd also carries queue_notify when the transport has no fd to give (unit tests).
 */
#define LOG_MODULE "virtio-fs"
#include "devices/fs/virtio_fs.h"

#include <errno.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

struct vfs_worker {
	struct vfs_queue *rq;
	pthread_t thread;
	int epfd;                       /* what it sleeps on: kick and nudge (exclusive), stop */
};

struct vfs_queue {
	struct vfs *vfs;
	unsigned int q;
	pthread_mutex_t lock;           /* the virtq: pops, pushes, used-ring signalling */
	int kick_fd;                    /* the transport's notify fd while active, or -1 */
	int nudge_fd;                   /* ours: queue_notify and spreading a burst */
	struct vfs_worker workers[VIRTIO_FS_WORKERS];
	unsigned int nr_workers;
	unsigned int idle;              /* workers waiting for a wake-up, under lock */
	bool failed;                    /* reported the broken queue once already */
};

struct vfs {
	struct virtio_dev dev;
	struct virtio_dev_ops ops;
	struct virtio_fs_config config;
	struct fs *fs;
	unsigned int nr_req;
	bool running;
	int stop_fd;                    /* written once to stop every worker, cleared after the joins */
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

/*
 * Sleep until a kick, a nudge or stop. The kick or nudge count is read so the fd goes quiet
 * again; a read that finds it empty lost a race with another worker, which is harmless (each
 * one that wakes looks at the ring). The stop fd is left set, for every worker to see.
 */
static void wait_wakeup(struct vfs_worker *w)
{
	struct epoll_event evs[3];
	uint64_t count;
	int n = epoll_wait(w->epfd, evs, 3, -1);

	for (int i = 0; i < n; i++) {
		if (evs[i].data.fd != w->rq->vfs->stop_fd &&
		    read(evs[i].data.fd, &count, sizeof(count)) < 0) {
			/* EAGAIN: another worker took this wake-up. */
		}
	}
}

static void wake_another(struct vfs_queue *rq)
{
	uint64_t one = 1;

	if (write(rq->nudge_fd, &one, sizeof(one)) < 0)
		log_warn("queue %u: cannot wake a worker: %d", rq->q, -errno);
}

/* Under rq->lock: pop the next chain, sleeping while the ring is empty. False: stopping. */
static bool next_chain(struct vfs_worker *w, struct virtq *vq, struct virtq_elem *e)
{
	struct vfs_queue *rq = w->rq;
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
		/* Counted while the lock is held: a kick or nudge from now on is seen by
		 * epoll_wait (the eventfd keeps its count until a worker reads it). */
		rq->idle++;
		pthread_mutex_unlock(&rq->lock);
		wait_wakeup(w);
		pthread_mutex_lock(&rq->lock);
		rq->idle--;
	}
	return false;
}

static void *worker(void *opaque)
{
	struct vfs_worker *w = opaque;
	struct vfs_queue *rq = w->rq;
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
	while (next_chain(w, vq, e)) {
		/* The ring looks empty: publish avail_event now, not when this chain is done, or
		 * the driver would not kick for the next one while we are busy (a SETLKW waiting
		 * for a lock that only that next request releases would never return). */
		more = (virtq_has_avail(vq) || virtq_enable_notify(vq)) && rq->idle;
		pthread_mutex_unlock(&rq->lock);
		/* After the unlock, so the woken worker does not block on our mutex at once. */
		if (more)
			wake_another(rq);
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
	uint64_t count = 1;

	/* Waiting lock requests give up so the workers can be joined. */
	__atomic_store_n(&v->fs->cancel_waits, true, __ATOMIC_RELAXED);
	__atomic_store_n(&v->running, false, __ATOMIC_RELEASE);
	/* Level-triggered and never read by a worker: no worker can sleep past it. */
	if (write(v->stop_fd, &count, sizeof(count)) < 0)
		log_warn("cannot stop the request queue workers: %d", -errno);
	for (unsigned int q = 1; q <= v->nr_req; q++) {
		struct vfs_queue *rq = &v->queues[q];

		for (unsigned int i = 0; i < rq->nr_workers; i++) {
			pthread_join(rq->workers[i].thread, NULL);
			close(rq->workers[i].epfd);
		}
		rq->nr_workers = 0;
		rq->idle = 0;
		/* The transport's fd is its own again (virtio/device.h); a stale nudge goes. */
		rq->kick_fd = -1;
		if (read(rq->nudge_fd, &count, sizeof(count)) < 0) {
			/* EAGAIN: no nudge pending. */
		}
	}
	if (read(v->stop_fd, &count, sizeof(count)) < 0)
		log_warn("cannot re-arm the request queue workers: %d", -errno);
	__atomic_store_n(&v->fs->cancel_waits, false, __ATOMIC_RELAXED);
}

static int watch(int epfd, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* One worker's wait set; EPOLLEXCLUSIVE makes a kick or nudge wake one waiting worker. */
static int start_worker(struct vfs_queue *rq, struct vfs_worker *w)
{
	int ret;

	w->rq = rq;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		return -errno;
	ret = watch(w->epfd, rq->nudge_fd, EPOLLIN | EPOLLEXCLUSIVE);
	if (!ret && rq->kick_fd >= 0)
		ret = watch(w->epfd, rq->kick_fd, EPOLLIN | EPOLLEXCLUSIVE);
	if (!ret)
		ret = watch(w->epfd, rq->vfs->stop_fd, EPOLLIN);
	if (!ret && pthread_create(&w->thread, NULL, worker, w))
		ret = -EAGAIN;
	if (ret)
		close(w->epfd);
	return ret;
}

static int vfs_activate(struct virtio_dev *dev)
{
	struct vfs *v = dev->priv;
	int ret;

	__atomic_store_n(&v->running, true, __ATOMIC_RELEASE);
	for (unsigned int q = 1; q <= v->nr_req; q++) {
		struct vfs_queue *rq = &v->queues[q];
		rq->failed = false;
		rq->kick_fd = virtio_dev_notify_fd(dev, q);
		for (unsigned int i = 0; i < VIRTIO_FS_WORKERS; i++) {
			ret = start_worker(rq, &rq->workers[i]);
			if (ret) {
				stop_workers(v);
				return ret;
			}
			rq->nr_workers++;
		}
	}
	return 0;
}

/*
 * A kick that came as a call (the transport had no fd to hand over). The idle count is read
 * under the lock: a worker that found the ring empty holds the lock until it is counted, so
 * it is either counted here (and its epoll_wait sees the nudge, however late it gets there)
 * or will see the new buffers itself. No idle worker: the busy ones pop the new buffers when
 * they finish theirs.
 */
static void wake_one(struct vfs_queue *rq)
{
	bool idle;

	pthread_mutex_lock(&rq->lock);
	idle = rq->idle > 0;
	pthread_mutex_unlock(&rq->lock);
	if (idle)
		wake_another(rq);
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

/* Also undoes a partial virtio_fs_create: fds not made yet are -1. */
static void free_vfs(struct vfs *v)
{
	for (unsigned int q = 0; q < VIRTIO_DEV_MAX_QUEUES; q++) {
		pthread_mutex_destroy(&v->queues[q].lock);
		if (v->queues[q].nudge_fd >= 0)
			close(v->queues[q].nudge_fd);
	}
	if (v->stop_fd >= 0)
		close(v->stop_fd);
	if (v->fs)
		fs_destroy(v->fs);
	free(v->hiprio_elem);
	free(v);
}

static void vfs_destroy(struct virtio_dev *dev)
{
	struct vfs *v = dev->priv;

	vfs_reset(dev);
	free_vfs(v);
}

/* The eventfds are made here, not at activation, so a running VM never needs new ones. */
static int make_fds(struct vfs *v)
{
	v->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->stop_fd < 0)
		return -errno;
	for (unsigned int q = 1; q <= v->nr_req; q++) {
		v->queues[q].nudge_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->queues[q].nudge_fd < 0)
			return -errno;
	}
	return 0;
}

/* On error the caller keeps fs. */
int virtio_fs_create(const char *tag, struct fs *fs, unsigned int num_request_queues,
		     struct virtio_dev **out)
{
	struct vfs *v;
	size_t tag_len = tag ? strlen(tag) : 0;
	int ret;

	if (!fs || tag_len == 0 || tag_len > VIRTIO_FS_TAG_MAX || num_request_queues == 0 ||
	    num_request_queues >= VIRTIO_DEV_MAX_QUEUES)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->nr_req = num_request_queues;
	v->stop_fd = -1;
	for (unsigned int q = 0; q < VIRTIO_DEV_MAX_QUEUES; q++) {
		v->queues[q] = (struct vfs_queue){ .vfs = v, .q = q, .kick_fd = -1, .nudge_fd = -1 };
		pthread_mutex_init(&v->queues[q].lock, NULL);
	}
	v->hiprio_elem = malloc(sizeof(*v->hiprio_elem));
	ret = v->hiprio_elem ? make_fds(v) : -ENOMEM;
	if (ret) {
		free_vfs(v);
		return ret;
	}
	v->ops = (struct virtio_dev_ops){
		.name = "virtio-fs", .device_id = VIRTIO_ID_FS,
		.features = (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | (1ULL << VIRTIO_RING_F_EVENT_IDX),
		.num_queues = (uint16_t)(1 + num_request_queues),
		.queue_max_size = VIRTIO_FS_QUEUE_SIZE,
		/* Every request queue; hiprio stays on the loop (handled inline). */
		.self_notified_queues = ((1u << (num_request_queues + 1)) - 1) & ~(1u << HIPRIO_QUEUE),
		.activate = vfs_activate, .queue_notify = vfs_queue_notify,
		.reset = vfs_reset, .destroy = vfs_destroy,
	};
	/* 5.11.4: the tag is not NUL-terminated when it fills all 36 bytes. */
	memcpy(v->config.tag, tag, tag_len);
	v->config.num_request_queues = num_request_queues;
	v->fs = fs;
	v->dev.ops = &v->ops;
	v->dev.priv = v;
	v->dev.config = (uint8_t *)&v->config;
	v->dev.config_size = sizeof(v->config);
	*out = &v->dev;
	return 0;
}
