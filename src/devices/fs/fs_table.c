/* Generation-checked slot tables: guest-visible ids (nodeids, fhs) map to slots, never pointers. */
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <stdlib.h>

int fs_table_init(struct fs_table *t, uint32_t limit, uint32_t first)
{
	t->cap = 64;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->limit = limit;
	t->used = first;        /* slots below `first` are never handed out (0 is no id) */
	t->free_head = 0;
	return 0;
}

void fs_table_fini(struct fs_table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = t->used = 0;
}

static int grow(struct fs_table *t)
{
	uint32_t ncap = t->cap * 2;
	struct fs_slot *n;

	if (ncap > t->limit)
		ncap = t->limit;
	if (ncap <= t->cap)
		return -ENFILE;
	n = realloc(t->slots, ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (uint32_t i = t->cap; i < ncap; i++)
		n[i] = (struct fs_slot){ 0 };
	t->slots = n;
	t->cap = ncap;
	return 0;
}

int fs_table_alloc(struct fs_table *t, void *ptr, uint32_t *idx)
{
	uint32_t i;

	if (t->free_head) {
		i = t->free_head;
		t->free_head = t->slots[i].next_free;
	} else {
		if (t->used >= t->cap) {
			int ret = grow(t);
			if (ret)
				return ret;
		}
		i = t->used++;
	}
	t->slots[i].ptr = ptr;
	t->slots[i].next_free = 0;
	*idx = i;
	return 0;
}

void *fs_table_lookup(struct fs_table *t, uint64_t id)
{
	uint64_t idx = id & 0xffffffffULL, gen = id >> 32;

	if (id & FS_ID_VFILE || idx == 0 || idx >= t->used)
		return NULL;
	if (gen != t->slots[idx].gen)
		return NULL;
	return t->slots[idx].ptr;
}

void fs_table_free(struct fs_table *t, uint32_t idx)
{
	/* A new generation makes every stale id for this slot invalid. */
	t->slots[idx].ptr = NULL;
	t->slots[idx].gen = (t->slots[idx].gen + 1) & FS_GEN_MASK;
	t->slots[idx].next_free = t->free_head;
	t->free_head = idx;
}

uint64_t fs_table_id(struct fs_table *t, uint32_t idx)
{
	return ((uint64_t)t->slots[idx].gen << 32) | idx;
}
