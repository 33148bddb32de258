/* Guest physical memory: the one bounds-checked way from a guest address to host memory. */
#ifndef KRUN_VMM_GMEM_H
#define KRUN_VMM_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 8

struct gmem_region {
	uint64_t gpa;   /* guest-physical start */
	uint64_t size;
	uint8_t *hva;   /* where it is mapped in this process */
	uint64_t uaddr; /* the frontend's address for it (vhost-user ring addresses); = gpa in-process */
};

/* Regions are set before devices run and not changed while a queue is live. */
struct gmem {
	unsigned int nr;
	struct gmem_region regions[GMEM_MAX_REGIONS];
};

void gmem_init(struct gmem *mem);
int gmem_add_region(struct gmem *mem, uint64_t gpa, uint64_t size, void *hva, uint64_t uaddr)
	__attribute__((warn_unused_result));

/*
 * Host pointer for [gpa, gpa+len) if the whole range lies inside one region (no wrap-around),
 * else NULL. len 0 asks only that gpa lies inside a region.
 */
void *gmem_ptr(const struct gmem *mem, uint64_t gpa, uint64_t len);

int gmem_read(const struct gmem *mem, uint64_t gpa, void *dst, size_t len)
	__attribute__((warn_unused_result));
int gmem_write(const struct gmem *mem, uint64_t gpa, const void *src, size_t len)
	__attribute__((warn_unused_result));

/* Frontend (vhost-user) address to guest-physical; -EFAULT unless [uaddr, uaddr+len) is in one region. */
int gmem_uaddr_to_gpa(const struct gmem *mem, uint64_t uaddr, uint64_t len, uint64_t *gpa)
	__attribute__((warn_unused_result));

#endif
