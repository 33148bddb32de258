/* A fake virtio-mmio driver for unit tests: Linux's register sequence against fake guest RAM. */
#ifndef KRUN_TESTS_TEST_MMIO_DRIVER_H
#define KRUN_TESTS_TEST_MMIO_DRIVER_H

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/mmio.h"
#include "vmm/gmem.h"

#define MDRV_RAM_GPA 0x100000ull
#define MDRV_RAM_SIZE (1u << 20)
#define MDRV_QSIZE 16

struct mdrv {
	uint8_t *ram;
	struct gmem mem;
	struct virtio_mmio *m;
	uint16_t avail_idx[VIRTIO_DEV_MAX_QUEUES];
	uint16_t used_seen[VIRTIO_DEV_MAX_QUEUES];
	uint16_t next_desc[VIRTIO_DEV_MAX_QUEUES];
	uint64_t data_next;
};

static inline void *mdrv_hva(struct mdrv *d, uint64_t gpa)
{
	return d->ram + (gpa - MDRV_RAM_GPA);
}

/* Queue q's rings: desc at +q*0x4000, avail at +0x1000 after it, used at +0x2000. */
static inline uint64_t mdrv_ring(unsigned int q, unsigned int which)
{
	return MDRV_RAM_GPA + q * 0x4000ull + which * 0x1000ull;
}

static inline uint32_t mdrv_rd(struct mdrv *d, uint64_t off)
{
	uint32_t v = 0;

	virtio_mmio_read(d->m, off, &v, 4);
	return v;
}

static inline int mdrv_wr(struct mdrv *d, uint64_t off, uint32_t v)
{
	return virtio_mmio_write(d->m, off, &v, 4);
}

static inline int mdrv_init(struct mdrv *d)
{
	memset(d, 0, sizeof(*d));
	d->ram = calloc(1, MDRV_RAM_SIZE);
	gmem_init(&d->mem);
	d->data_next = MDRV_RAM_GPA + 0x40000;
	return d->ram ? gmem_add_region(&d->mem, MDRV_RAM_GPA, MDRV_RAM_SIZE, d->ram, MDRV_RAM_GPA) : -1;
}

static inline void mdrv_free(struct mdrv *d)
{
	virtio_mmio_destroy(d->m);
	free(d->ram);
}

static inline int mdrv_setup_queue(struct mdrv *d, unsigned int q)
{
	mdrv_wr(d, VIRTIO_MMIO_QUEUE_SEL, q);
	if (mdrv_rd(d, VIRTIO_MMIO_QUEUE_READY) || mdrv_rd(d, VIRTIO_MMIO_QUEUE_NUM_MAX) < MDRV_QSIZE)
		return -1;
	mdrv_wr(d, VIRTIO_MMIO_QUEUE_NUM, MDRV_QSIZE);
	mdrv_wr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)mdrv_ring(q, 0));
	mdrv_wr(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	mdrv_wr(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)mdrv_ring(q, 1));
	mdrv_wr(d, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
	mdrv_wr(d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)mdrv_ring(q, 2));
	mdrv_wr(d, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
	return mdrv_wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Linux virtio_mmio probe order: reset, ACK, DRIVER, features, FEATURES_OK, queues, DRIVER_OK. */
static inline int mdrv_start(struct mdrv *d, unsigned int nq)
{
	uint32_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	if (mdrv_rd(d, VIRTIO_MMIO_MAGIC_VALUE) != 0x74726976 || mdrv_rd(d, VIRTIO_MMIO_VERSION) != 2)
		return -1;
	mdrv_wr(d, VIRTIO_MMIO_STATUS, 0);
	mdrv_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	mdrv_wr(d, VIRTIO_MMIO_STATUS, st);
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, 1);     /* VERSION_1 */
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	st |= VIRTIO_CONFIG_S_FEATURES_OK;
	mdrv_wr(d, VIRTIO_MMIO_STATUS, st);
	if (!(mdrv_rd(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -2;
	for (unsigned int q = 0; q < nq; q++)
		if (mdrv_setup_queue(d, q))
			return -3;
	return mdrv_wr(d, VIRTIO_MMIO_STATUS, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

static inline uint64_t mdrv_alloc(struct mdrv *d, uint32_t len)
{
	uint64_t gpa = d->data_next;

	d->data_next += (len + 15) & ~15u;
	return gpa;
}

/* Post one chain of buffers (nout readable then the rest writable) on queue q; returns the head. */
static inline uint16_t mdrv_post(struct mdrv *d, unsigned int q, const uint64_t *gpas, const uint32_t *lens,
				 unsigned int nout, unsigned int n)
{
	struct vring_desc *desc = mdrv_hva(d, mdrv_ring(q, 0));
	struct vring_avail *avail = mdrv_hva(d, mdrv_ring(q, 1));
	uint16_t head = d->next_desc[q], i = head;

	for (unsigned int k = 0; k < n; k++) {
		uint16_t next = (uint16_t)((i + 1) % MDRV_QSIZE);
		desc[i].addr = gpas[k];
		desc[i].len = lens[k];
		desc[i].flags = (uint16_t)((k >= nout ? VRING_DESC_F_WRITE : 0) | (k + 1 < n ? VRING_DESC_F_NEXT : 0));
		desc[i].next = next;
		i = next;
	}
	d->next_desc[q] = i;
	avail->ring[d->avail_idx[q] % MDRV_QSIZE] = head;
	d->avail_idx[q]++;
	__atomic_store_n(&avail->idx, d->avail_idx[q], __ATOMIC_RELEASE);
	return head;
}

/* 1 and *len when a new used element arrived on q, else 0. */
static inline int mdrv_used(struct mdrv *d, unsigned int q, uint32_t *len)
{
	struct vring_used *used = mdrv_hva(d, mdrv_ring(q, 2));

	if (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) == d->used_seen[q])
		return 0;
	if (len)
		*len = used->ring[d->used_seen[q] % MDRV_QSIZE].len;
	d->used_seen[q]++;
	return 1;
}

#endif
