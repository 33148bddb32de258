/*
 * Split virtqueue, device side (virtio 1.2 section 2.7). The guest writes these rings
 * concurrently and may be hostile: indexes and descriptors are copied once into locals,
 * every buffer is translated through gmem_ptr, chains are bounded and loops detected.
 */
#define LOG_MODULE "virtq"
#include "virtio/virtq.h"

#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>

#include "util/log.h"

void virtq_reset(struct virtq *vq)
{
	uint16_t size = vq->size;

	memset(vq, 0, sizeof(*vq));
	vq->size = size;
}

static void *ring_ptr(const struct gmem *mem, uint64_t gpa, uint64_t len, uint64_t align)
{
	if (gpa & (align - 1))
		return NULL;
	return gmem_ptr(mem, gpa, len);
}

int virtq_activate(struct virtq *vq, const struct gmem *mem)
{
	uint64_t n = vq->size;
	/* 2.7.5-2.7.8: sizes include the trailing event words used with EVENT_IDX. */
	uint64_t desc_len = 16 * n, avail_len = 6 + 2 * n, used_len = 6 + 8 * n;

	if (n == 0 || n > VIRTQ_MAX_SIZE)
		return -EINVAL;
	vq->mem = mem;
	vq->desc = ring_ptr(mem, vq->desc_gpa, desc_len, 16);
	vq->avail = ring_ptr(mem, vq->avail_gpa, avail_len, 2);
	vq->used = ring_ptr(mem, vq->used_gpa, used_len, 4);
	if (!vq->desc || !vq->avail || !vq->used)
		return -EFAULT;
	/* last_avail stays as the transport set it (0 after reset, or vhost-user's VRING_BASE). */
	vq->used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_RELAXED);
	vq->signalled_used_valid = false;
	vq->broken = false;
	vq->active = true;
	return 0;
}

static int fail(struct virtq *vq, const char *why)
{
	log_warn_guest("queue broken by the driver: %s", why);
	vq->broken = true;
	return -EIO;
}

static uint16_t avail_idx(struct virtq *vq)
{
	/* Acquire: ring entries written before idx must be visible when we read them. */
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
}

bool virtq_has_avail(struct virtq *vq)
{
	return vq->active && !vq->broken && avail_idx(vq) != vq->last_avail;
}

struct walk {
	struct virtq *vq;
	struct virtq_elem *elem;
	unsigned int segs;
	bool seen_writable;
};

static int add_buffer(struct walk *w, const struct vring_desc *d)
{
	bool writable = d->flags & VRING_DESC_F_WRITE;
	void *p;

	if (w->segs >= VIRTQ_MAX_SEGS)
		return fail(w->vq, "chain has too many buffers");
	if (!writable && w->seen_writable)
		return fail(w->vq, "readable buffer after a writable one");
	p = gmem_ptr(w->vq->mem, d->addr, d->len);
	if (!p)
		return fail(w->vq, "buffer outside guest memory");
	w->seen_writable |= writable;
	w->elem->iov[w->segs].iov_base = p;
	w->elem->iov[w->segs].iov_len = d->len;
	if (writable)
		w->elem->in_num++;
	else
		w->elem->out_num++;
	w->segs++;
	return 0;
}

/* 2.7.5.3: an indirect table is one flat chain; it may not nest or be mixed with NEXT. */
static int walk_indirect(struct walk *w, const struct vring_desc *outer)
{
	const struct vring_desc *table;
	unsigned int count = outer->len / sizeof(struct vring_desc), i = 0, steps = 0;

	if (!w->vq->indirect || outer->flags & VRING_DESC_F_NEXT)
		return fail(w->vq, "unexpected indirect descriptor");
	if (outer->len == 0 || outer->len % sizeof(struct vring_desc) || count > VIRTQ_MAX_SIZE)
		return fail(w->vq, "bad indirect table length");
	table = ring_ptr(w->vq->mem, outer->addr, outer->len, 1);
	if (!table)
		return fail(w->vq, "indirect table outside guest memory");
	for (;;) {
		struct vring_desc d;
		int ret;

		memcpy(&d, &table[i], sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT)
			return fail(w->vq, "nested indirect table");
		ret = add_buffer(w, &d);
		if (ret)
			return ret;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= count || ++steps >= count)
			return fail(w->vq, "indirect chain out of range or looping");
	}
}

static int walk_chain(struct walk *w, uint16_t head)
{
	unsigned int i = head, steps = 0;

	for (;;) {
		struct vring_desc d;
		int ret;

		memcpy(&d, &w->vq->desc[i], sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* An indirect descriptor must be the only one in its chain. */
			if (steps != 0)
				return fail(w->vq, "indirect descriptor inside a chain");
			return walk_indirect(w, &d);
		}
		ret = add_buffer(w, &d);
		if (ret)
			return ret;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= w->vq->size || ++steps >= w->vq->size)
			return fail(w->vq, "chain index out of range or looping");
	}
}

int virtq_pop(struct virtq *vq, struct virtq_elem *elem)
{
	uint16_t idx, head;
	struct walk w = { .vq = vq, .elem = elem };

	if (!vq->active || vq->broken)
		return vq->broken ? -EIO : 0;
	idx = avail_idx(vq);
	if (idx == vq->last_avail) {
		/*
		 * Drained. With EVENT_IDX the driver kicks only when its index passes our
		 * avail_event (2.7.10), so re-arm it here: every device that pops until empty
		 * keeps receiving kicks without having to remember virtq_enable_notify().
		 */
		if (!vq->event_idx || !virtq_enable_notify(vq))
			return 0;
		idx = avail_idx(vq);
	}
	if ((uint16_t)(idx - vq->last_avail) > vq->size)
		return fail(vq, "avail index moved by more than the queue size");
	head = __atomic_load_n(&vq->avail->ring[vq->last_avail % vq->size], __ATOMIC_RELAXED);
	if (head >= vq->size)
		return fail(vq, "head index beyond the queue size");
	elem->head = head;
	elem->out_num = elem->in_num = 0;
	if (walk_chain(&w, head))
		return -EIO;
	vq->last_avail++;
	return 1;
}

void virtq_unpop(struct virtq *vq)
{
	vq->last_avail--;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e;

	if (!vq->active || vq->broken)
		return;
	e = &vq->used->ring[vq->used_idx % vq->size];
	__atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
	vq->used_idx++;
	/* Release: the element must be visible before the index that publishes it. */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

static uint16_t *avail_event(struct virtq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

static uint16_t used_event(struct virtq *vq)
{
	return __atomic_load_n(&vq->avail->ring[vq->size], __ATOMIC_RELAXED);
}

bool virtq_should_signal(struct virtq *vq)
{
	uint16_t old, new;
	bool valid;

	if (!vq->active || vq->broken)
		return false;
	/* The used index store must be ordered before reading the driver's suppression state. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);
	old = vq->signalled_used;
	valid = vq->signalled_used_valid;
	new = vq->signalled_used = vq->used_idx;
	vq->signalled_used_valid = true;
	return !valid || vring_need_event(used_event(vq), new, old);
}

bool virtq_enable_notify(struct virtq *vq)
{
	if (!vq->active || vq->broken)
		return false;
	if (vq->event_idx)
		__atomic_store_n(avail_event(vq), vq->last_avail, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return avail_idx(vq) != vq->last_avail;
}

void virtq_disable_notify(struct virtq *vq)
{
	if (!vq->active || vq->broken || vq->event_idx)
		return;
	__atomic_store_n(&vq->used->flags, VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
}
