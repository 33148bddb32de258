/* A fake virtio driver for unit tests: builds split rings inside malloc'd "guest RAM". */
#ifndef KRUN_TESTS_VRING_DRIVER_H
#define KRUN_TESTS_VRING_DRIVER_H

#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtq.h"
#include "vmm/gmem.h"

#define FAKE_RAM_GPA 0x100000ull
#define FAKE_RAM_SIZE (1u << 20)

struct fake_guest {
	uint8_t *ram;
	struct gmem mem;
	struct virtq vq;
	uint16_t size;
	uint16_t avail_idx;
	uint16_t next_desc;
	uint64_t data_next;   /* bump allocator for buffers */
};

static inline void *fake_hva(struct fake_guest *g, uint64_t gpa)
{
	return g->ram + (gpa - FAKE_RAM_GPA);
}

static inline struct vring_desc *fake_desc(struct fake_guest *g)
{
	return fake_hva(g, g->vq.desc_gpa);
}

static inline struct vring_avail *fake_avail(struct fake_guest *g)
{
	return fake_hva(g, g->vq.avail_gpa);
}

static inline struct vring_used *fake_used(struct fake_guest *g)
{
	return fake_hva(g, g->vq.used_gpa);
}

/* Rings at fixed offsets: desc at +0, avail at +0x4000, used at +0x8000, data from +0x10000. */
static inline int fake_guest_init(struct fake_guest *g, uint16_t size)
{
	memset(g, 0, sizeof(*g));
	g->ram = calloc(1, FAKE_RAM_SIZE);
	if (!g->ram)
		return -1;
	gmem_init(&g->mem);
	if (gmem_add_region(&g->mem, FAKE_RAM_GPA, FAKE_RAM_SIZE, g->ram, FAKE_RAM_GPA))
		return -1;
	g->size = size;
	g->vq.size = size;
	g->vq.desc_gpa = FAKE_RAM_GPA;
	g->vq.avail_gpa = FAKE_RAM_GPA + 0x4000;
	g->vq.used_gpa = FAKE_RAM_GPA + 0x8000;
	g->data_next = FAKE_RAM_GPA + 0x10000;
	return virtq_activate(&g->vq, &g->mem);
}

static inline void fake_guest_free(struct fake_guest *g)
{
	free(g->ram);
	g->ram = NULL;
}

static inline uint64_t fake_alloc(struct fake_guest *g, uint32_t len)
{
	uint64_t gpa = g->data_next;

	g->data_next += (len + 15) & ~15u;
	return gpa;
}

/* Write a raw descriptor. */
static inline void fake_set_desc(struct fake_guest *g, uint16_t i, uint64_t addr, uint32_t len,
				 uint16_t flags, uint16_t next)
{
	struct vring_desc *d = &fake_desc(g)[i];

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

/* Publish head in the avail ring. */
static inline void fake_publish(struct fake_guest *g, uint16_t head)
{
	fake_avail(g)->ring[g->avail_idx % g->size] = head;
	g->avail_idx++;
	__atomic_store_n(&fake_avail(g)->idx, g->avail_idx, __ATOMIC_RELEASE);
}

/* Post a chain of nr_out readable then nr_in writable buffers (lens given); returns head. */
static inline uint16_t fake_post(struct fake_guest *g, const uint32_t *out_lens, unsigned int nr_out,
				 const uint32_t *in_lens, unsigned int nr_in, uint64_t *gpas)
{
	uint16_t head = g->next_desc, i = head;
	unsigned int total = nr_out + nr_in;

	for (unsigned int k = 0; k < total; k++) {
		uint32_t len = k < nr_out ? out_lens[k] : in_lens[k - nr_out];
		uint64_t gpa = fake_alloc(g, len);
		uint16_t next = (uint16_t)((i + 1) % g->size);
		uint16_t flags = (k >= nr_out ? VRING_DESC_F_WRITE : 0) | (k + 1 < total ? VRING_DESC_F_NEXT : 0);

		if (gpas)
			gpas[k] = gpa;
		fake_set_desc(g, i, gpa, len, flags, next);
		i = next;
	}
	g->next_desc = i;
	fake_publish(g, head);
	return head;
}

#endif
