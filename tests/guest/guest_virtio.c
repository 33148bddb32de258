/* Test guest: a minimal virtio-mmio driver (virtio 1.2 sections 3.1.1, 4.2.3) polling split rings. */
#include <linux/virtio_mmio.h>

#include "guest.h"

#define WAIT_SPINS 200000
#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2

_Static_assert(__builtin_offsetof(struct vq, used) == 2048, "used ring placement");

/* Parse "virtio_mmio.device=4K@0xBASE:IRQ" entries and probe each for the device id. */
int vdev_find(const char *cmdline, uint32_t id, struct vdev *out)
{
	static const char key[] = "virtio_mmio.device=";
	const char *p = cmdline;

	for (; *p; p++) {
		const char *q;
		uint64_t base;

		if (memcmp(p, key, sizeof(key) - 1))
			continue;
		q = p + sizeof(key) - 1;
		while (*q && *q != '@')
			q++;
		if (*q != '@')
			return -1;
		base = parse_u64(q + 1, &q);
		if (*q != ':')
			return -1;
		if (mmio_read32(base + VIRTIO_MMIO_MAGIC_VALUE) == 0x74726976 &&
		    mmio_read32(base + VIRTIO_MMIO_DEVICE_ID) == id) {
			out->base = base;
			out->irq = (uint32_t)parse_u64(q + 1, 0);
			out->id = id;
			return 0;
		}
	}
	return -1;
}

static void wr(struct vdev *d, uint32_t off, uint32_t v)
{
	mmio_write32(d->base + off, v);
}

static uint32_t rd(struct vdev *d, uint32_t off)
{
	return mmio_read32(d->base + off);
}

static int setup_queue(struct vdev *d, struct vq *q, uint32_t index)
{
	uint64_t a = (uint64_t)(uintptr_t)q;

	/* Only what a previous use left behind: clearing the whole page costs ~10k emulated steps. */
	q->avail.idx = q->avail.flags = 0;
	q->used.idx = 0;
	q->last_used = 0;
	q->index = index;
	wr(d, VIRTIO_MMIO_QUEUE_SEL, index);
	if (rd(d, VIRTIO_MMIO_QUEUE_READY) || rd(d, VIRTIO_MMIO_QUEUE_NUM_MAX) < VQ_SIZE)
		return -1;
	wr(d, VIRTIO_MMIO_QUEUE_NUM, VQ_SIZE);
	wr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)a);
	wr(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(a >> 32));
	a += __builtin_offsetof(struct vq, avail);
	wr(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)a);
	wr(d, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(a >> 32));
	a = (uint64_t)(uintptr_t)q + __builtin_offsetof(struct vq, used);
	wr(d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)a);
	wr(d, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(a >> 32));
	wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
	return rd(d, VIRTIO_MMIO_QUEUE_READY) == 1 ? 0 : -1;
}

int vdev_init(struct vdev *d, struct vq *vqs, unsigned int nq)
{
	return vdev_init_features(d, vqs, nq, 0);
}

int vdev_init_features(struct vdev *d, struct vq *vqs, unsigned int nq, uint32_t features)
{
	if (rd(d, VIRTIO_MMIO_VERSION) != 2)
		return 1;
	wr(d, VIRTIO_MMIO_STATUS, 0);
	wr(d, VIRTIO_MMIO_STATUS, ST_ACK);
	wr(d, VIRTIO_MMIO_STATUS, ST_ACK | ST_DRIVER);
	wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	if (!(rd(d, VIRTIO_MMIO_DEVICE_FEATURES) & 1))
		return 2;
	/* VERSION_1 (bit 32) and the caller's device bits: no event index, no indirect descriptors. */
	wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	if (features & ~rd(d, VIRTIO_MMIO_DEVICE_FEATURES))
		return 2;
	wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(d, VIRTIO_MMIO_DRIVER_FEATURES, features);
	wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(d, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(d, VIRTIO_MMIO_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	if (!(rd(d, VIRTIO_MMIO_STATUS) & ST_FEATURES_OK))
		return 3;
	for (unsigned int i = 0; i < nq; i++)
		if (setup_queue(d, &vqs[i], i))
			return 4;
	wr(d, VIRTIO_MMIO_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	return (rd(d, VIRTIO_MMIO_STATUS) & 0x40) ? 5 : 0;
}

void vq_post(struct vdev *d, struct vq *q, const void *const *bufs, const uint32_t *lens,
	     unsigned int nout, unsigned int nin)
{
	unsigned int n = nout + nin;

	for (unsigned int i = 0; i < n && i < VQ_SIZE; i++) {
		q->desc[i].addr = (uint64_t)(uintptr_t)bufs[i];
		q->desc[i].len = lens[i];
		q->desc[i].flags = (uint16_t)((i >= nout ? DESC_F_WRITE : 0) | (i + 1 < n ? DESC_F_NEXT : 0));
		q->desc[i].next = (uint16_t)(i + 1);
	}
	q->avail.ring[q->avail.idx % VQ_SIZE] = 0;
	barrier();
	q->avail.idx++;
	barrier();
	wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

int64_t vq_wait(struct vdev *d, struct vq *q)
{
	(void)d;
	for (unsigned int i = 0; i < WAIT_SPINS; i++) {
		if (q->used.idx != q->last_used) {
			uint32_t len;
			barrier();
			len = q->used.ring[q->last_used % VQ_SIZE].len;
			q->last_used++;
			return len;
		}
	}
	return -1;
}

uint32_t vdev_status(struct vdev *d)
{
	return rd(d, VIRTIO_MMIO_STATUS);
}

uint32_t vdev_take_isr(struct vdev *d)
{
	uint32_t isr = rd(d, VIRTIO_MMIO_INTERRUPT_STATUS);

	if (isr)
		wr(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
	return isr;
}
