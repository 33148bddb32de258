/*
 * vhost-user rings and memory: the frontend's ring descriptions turned into our virtqueues,
 * kick fds on the event loop (or, while the device is active, with the device's own threads for
 * the queues it serves itself), call fds for interrupts, and the shared-memory table.
 */
#define LOG_MODULE "vhost-user"
#include "virtio/vhost_user_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_ring.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"

void vhost_user_rings_init(struct vhost_user *vu)
{
	for (unsigned int i = 0; i < VIRTIO_DEV_MAX_QUEUES; i++) {
		vu->rings[i] = (struct vu_ring){
			.vu = vu, .index = i, .kick_fd = -1, .call_fd = -1, .err_fd = -1,
		};
	}
}

/* Spec "Ring states": a started ring is processed only once enabled. */
static bool ring_ready(const struct vu_ring *r)
{
	return r->started && r->enabled && r->addr_set && r->num;
}

static bool ring_configured(const struct vu_ring *r)
{
	return r->started && r->addr_set && r->num;
}

/* Ring addresses are frontend user addresses (spec "Memory access"): translate, then check. */
static int ring_to_vq(struct vhost_user *vu, struct vu_ring *r)
{
	struct virtq *vq = &vu->dev->vqs[r->index];
	uint64_t n = r->num;
	int ret;

	virtq_reset(vq);
	vq->size = r->num;
	ret = gmem_uaddr_to_gpa(&vu->mem, r->desc_ua, 16 * n, &vq->desc_gpa);
	if (!ret)
		ret = gmem_uaddr_to_gpa(&vu->mem, r->avail_ua, 6 + 2 * n, &vq->avail_gpa);
	if (!ret)
		ret = gmem_uaddr_to_gpa(&vu->mem, r->used_ua, 6 + 8 * n, &vq->used_gpa);
	if (ret)
		return ret;
	vq->event_idx = (vu->features >> VIRTIO_RING_F_EVENT_IDX) & 1;
	vq->indirect = (vu->features >> VIRTIO_RING_F_INDIRECT_DESC) & 1;
	vq->last_avail = r->base;
	return virtq_activate(vq, &vu->mem);
}

static void on_kick(void *opaque, uint32_t events);

int vhost_user_notify_fd(struct virtio_dev *dev, unsigned int q)
{
	struct vhost_user *vu = dev->transport.opaque;

	return q < VIRTIO_DEV_MAX_QUEUES && vu->rings[q].kick_handed ? vu->rings[q].kick_fd : -1;
}

/* Before activation: the device's threads will wait on the kick fds of the queues they serve. */
static void hand_over_kicks(struct vhost_user *vu)
{
	for (unsigned int i = 0; i < vu->nr_rings; i++) {
		struct vu_ring *r = &vu->rings[i];

		if (!((vu->dev->ops->self_notified_queues >> i) & 1) || r->kick_fd < 0 || r->kick_handed)
			continue;
		evloop_del(vu->loop, r->kick_fd);
		r->kick_handed = true;
	}
}

/* After the device stopped (or failed to start): the loop watches those fds again. */
static void take_back_kicks(struct vhost_user *vu)
{
	for (unsigned int i = 0; i < vu->nr_rings; i++) {
		struct vu_ring *r = &vu->rings[i];

		if (!r->kick_handed)
			continue;
		r->kick_handed = false;
		if (evloop_add(vu->loop, r->kick_fd, EPOLLIN, on_kick, r))
			log_warn("ring %u: cannot watch the kick fd again", i);
	}
}

static void reset_vqs(struct vhost_user *vu)
{
	for (unsigned int i = 0; i < vu->nr_rings; i++)
		virtq_reset(&vu->dev->vqs[i]);
}

void vhost_user_quiesce(struct vhost_user *vu)
{
	if (!vu->active)
		return;
	if (vu->dev->ops->reset)
		vu->dev->ops->reset(vu->dev);
	take_back_kicks(vu);
	/* After reset nobody moves last_avail: it is where a restarted ring must resume. */
	for (unsigned int i = 0; i < vu->nr_rings; i++)
		if (vu->dev->vqs[i].active)
			vu->rings[i].base = vu->dev->vqs[i].last_avail;
	reset_vqs(vu);
	vu->active = false;
}

/*
 * The device model has one activation for all queues. QEMU configures every ring before it
 * enables any (vhost_dev_start), so activating at the first enable sees them all.
 */
int vhost_user_try_activate(struct vhost_user *vu)
{
	struct virtio_dev *dev = vu->dev;
	bool any = false;
	int ret = 0;

	if (vu->active)
		return 0;
	for (unsigned int i = 0; i < vu->nr_rings; i++)
		any |= ring_ready(&vu->rings[i]);
	if (!any)
		return 0;
	for (unsigned int i = 0; i < vu->nr_rings && !ret; i++) {
		virtq_reset(&dev->vqs[i]);
		if (ring_configured(&vu->rings[i]))
			ret = ring_to_vq(vu, &vu->rings[i]);
		if (ret)
			log_warn_guest("%s: ring %u is outside guest memory or misaligned",
				       dev->ops->name, i);
	}
	dev->mem = &vu->mem;
	dev->loop = vu->loop;
	dev->driver_features = vu->features & ~(1ull << VHOST_USER_F_PROTOCOL_FEATURES);
	hand_over_kicks(vu);
	if (!ret && dev->ops->activate)
		ret = dev->ops->activate(dev);
	if (ret) {
		log_warn_guest("%s: activation failed: %d", dev->ops->name, ret);
		take_back_kicks(vu);
		reset_vqs(vu);
		return ret;
	}
	vu->active = true;
	log_debug("%s: activated", dev->ops->name);
	return 0;
}

/* Run the device for ring i if it is live; activates the device on first use. */
static void deliver(struct vhost_user *vu, unsigned int i)
{
	struct vu_ring *r = &vu->rings[i];
	struct virtq *vq = &vu->dev->vqs[i];

	if (!ring_ready(r) || vhost_user_try_activate(vu) || !vu->active)
		return;
	if (!vq->active && ring_to_vq(vu, r)) {
		log_warn_guest("%s: ring %u is outside guest memory", vu->dev->ops->name, i);
		return;
	}
	log_trace("%s: ring %u notify (avail %s)", vu->dev->ops->name, i,
		  virtq_has_avail(vq) ? "yes" : "no");
	if (vu->dev->ops->queue_notify)
		vu->dev->ops->queue_notify(vu->dev, i);
}

static void on_kick(void *opaque, uint32_t events)
{
	struct vu_ring *r = opaque;
	uint64_t count;

	(void)events;
	if (read(r->kick_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warn_guest("ring %u: kick fd read failed: %d", r->index, -errno);
	deliver(r->vu, r->index);
}

static void drop_kick(struct vhost_user *vu, struct vu_ring *r)
{
	if (r->kick_fd < 0)
		return;
	evloop_del(vu->loop, r->kick_fd);
	close(r->kick_fd);
	r->kick_fd = -1;
}

int vhost_user_set_kick(struct vhost_user *vu, unsigned int i, int fd)
{
	struct vu_ring *r = &vu->rings[i];
	int ret;

	/* The device's threads wait on the old fd: stop them first (a kick restarts them). */
	if (r->kick_handed)
		vhost_user_quiesce(vu);
	drop_kick(vu, r);
	if (fd >= 0) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return -errno;
		ret = evloop_add(vu->loop, fd, EPOLLIN, on_kick, r);
		if (ret)
			return ret;
		r->kick_fd = fd;
	} else {
		/* Bit 8 asks for polling, which we do not do: the ring runs on enable only. */
		log_warn("ring %u: frontend asked for kick polling (unsupported)", i);
	}
	/* Spec "Ring states": without protocol features a started ring is enabled at once. */
	r->started = true;
	if (!(vu->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
		r->enabled = true;
	return 0;
}

static void swap_fd(struct vhost_user *vu, int *slot, int fd)
{
	int old;

	pthread_mutex_lock(&vu->call_lock);
	old = *slot;
	*slot = fd;
	pthread_mutex_unlock(&vu->call_lock);
	if (old >= 0)
		close(old);
}

void vhost_user_set_call(struct vhost_user *vu, unsigned int i, int fd)
{
	swap_fd(vu, &vu->rings[i].call_fd, fd);
}

void vhost_user_set_err(struct vhost_user *vu, unsigned int i, int fd)
{
	swap_fd(vu, &vu->rings[i].err_fd, fd);
}

int vhost_user_set_enable(struct vhost_user *vu, unsigned int i, bool on)
{
	vu->rings[i].enabled = on;
	if (on)
		deliver(vu, i);
	return 0;
}

uint16_t vhost_user_stop_ring(struct vhost_user *vu, unsigned int i)
{
	struct vu_ring *r = &vu->rings[i];

	vhost_user_quiesce(vu);
	r->started = false;
	if (vu->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
		r->enabled = false;
	drop_kick(vu, r);
	/* The frontend sends a new call fd when it restarts the ring. */
	swap_fd(vu, &r->call_fd, -1);
	return r->base;
}

void vhost_user_reset_rings(struct vhost_user *vu)
{
	vhost_user_quiesce(vu);
	for (unsigned int i = 0; i < VIRTIO_DEV_MAX_QUEUES; i++) {
		struct vu_ring *r = &vu->rings[i];
		drop_kick(vu, r);
		swap_fd(vu, &r->call_fd, -1);
		swap_fd(vu, &r->err_fd, -1);
		*r = (struct vu_ring){ .vu = vu, .index = i, .kick_fd = -1, .call_fd = -1, .err_fd = -1 };
	}
}

static void unmap_list(struct vu_map *maps, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		munmap(maps[i].base, maps[i].len);
}

void vhost_user_unmap_all(struct vhost_user *vu)
{
	unmap_list(vu->maps, vu->nr_maps);
	vu->nr_maps = 0;
	gmem_init(&vu->mem);
}

/*
 * Map one region of the frontend's memory. The fd must be a regular file (memfd, shm,
 * hugetlbfs) at least as long as offset+size, so no guest address can fault past its end.
 */
static int map_region(const struct vhost_user_region *reg, int fd, struct vu_map *map, uint8_t **hva)
{
	uint64_t end, start = reg->mmap_offset & ~((uint64_t)sysconf(_SC_PAGESIZE) - 1);
	struct stat st;
	void *p;

	*map = (struct vu_map){ .base = NULL };     /* defined on every path */
	*hva = NULL;
	if (reg->size == 0 || __builtin_add_overflow(reg->mmap_offset, reg->size, &end) ||
	    end - start > SIZE_MAX || start > INT64_MAX)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < end)
		return -EINVAL;
	p = mmap(NULL, end - start, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, (off_t)start);
	if (p == MAP_FAILED)
		return -errno;
	*map = (struct vu_map){ .base = p, .len = end - start };
	*hva = (uint8_t *)p + (reg->mmap_offset - start);
	return 0;
}

int vhost_user_set_mem(struct vhost_user *vu, const struct vhost_user_mem *m, int *fds)
{
	struct vu_map maps[VHOST_USER_MAX_REGIONS];
	struct gmem mem;
	unsigned int n = 0;
	bool was_active = vu->active;
	int ret = 0;

	gmem_init(&mem);
	for (; n < m->nregions; n++) {
		const struct vhost_user_region *reg = &m->regions[n];
		uint8_t *hva = NULL;

		ret = map_region(reg, fds[n], &maps[n], &hva);
		if (ret)
			break;
		ret = gmem_add_region(&mem, reg->gpa, reg->size, hva, reg->uaddr);
		if (ret) {
			munmap(maps[n].base, maps[n].len);
			break;
		}
	}
	for (unsigned int i = 0; i < m->nregions; i++) {
		close(fds[i]);
		fds[i] = -1;
	}
	if (ret) {
		unmap_list(maps, n);
		return ret;
	}
	vhost_user_quiesce(vu);
	vhost_user_unmap_all(vu);
	vu->mem = mem;
	for (unsigned int i = 0; i < n; i++)
		vu->maps[i] = maps[i];
	vu->nr_maps = n;
	/* Rings that were running resume over the new table (addresses are re-translated). */
	for (unsigned int i = 0; was_active && i < vu->nr_rings; i++)
		deliver(vu, i);
	return 0;
}

void vhost_user_dump(struct vhost_user *vu)
{
	for (unsigned int i = 0; i < vu->nr_rings; i++) {
		const struct vu_ring *r = &vu->rings[i];
		struct virtq *vq = &vu->dev->vqs[i];

		if (!vq->active) {
			log_warn("%s ring %u: %s%s, device queue inactive", vu->dev->ops->name, i,
				 r->started ? "started" : "stopped", r->enabled ? " enabled" : "");
			continue;
		}
		/* The avail_event word follows the used ring (virtio 1.2 section 2.7.10). */
		log_warn("%s ring %u: avail idx %u, last_avail %u, used idx %u, avail_event %u, "
			 "used_event %u%s", vu->dev->ops->name, i,
			 __atomic_load_n(&vq->avail->idx, __ATOMIC_RELAXED), vq->last_avail,
			 __atomic_load_n(&vq->used->idx, __ATOMIC_RELAXED),
			 __atomic_load_n((uint16_t *)&vq->used->ring[vq->size], __ATOMIC_RELAXED),
			 __atomic_load_n(&vq->avail->ring[vq->size], __ATOMIC_RELAXED),
			 vq->broken ? ", broken" : "");
	}
}
