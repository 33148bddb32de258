/* Guest memory regions and the bounds-checked translation every guest access goes through. */
#include "vmm/gmem.h"

#include <errno.h>
#include <string.h>

void gmem_init(struct gmem *mem)
{
	memset(mem, 0, sizeof(*mem));
}

static bool range_end(uint64_t start, uint64_t len, uint64_t *end)
{
	return !__builtin_add_overflow(start, len, end);
}

static bool overlaps(const struct gmem_region *r, uint64_t gpa, uint64_t end)
{
	return gpa < r->gpa + r->size && r->gpa < end;
}

int gmem_add_region(struct gmem *mem, uint64_t gpa, uint64_t size, void *hva, uint64_t uaddr)
{
	uint64_t end, uend;

	if (mem->nr >= GMEM_MAX_REGIONS)
		return -ENOSPC;
	if (size == 0 || hva == NULL || !range_end(gpa, size, &end) || !range_end(uaddr, size, &uend))
		return -EINVAL;
	for (unsigned int i = 0; i < mem->nr; i++)
		if (overlaps(&mem->regions[i], gpa, end))
			return -EEXIST;
	mem->regions[mem->nr++] = (struct gmem_region){
		.gpa = gpa, .size = size, .hva = hva, .uaddr = uaddr,
	};
	return 0;
}

void *gmem_ptr(const struct gmem *mem, uint64_t gpa, uint64_t len)
{
	uint64_t end;

	if (!range_end(gpa, len, &end))
		return NULL;
	for (unsigned int i = 0; i < mem->nr; i++) {
		const struct gmem_region *r = &mem->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size && end - r->gpa <= r->size)
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int gmem_read(const struct gmem *mem, uint64_t gpa, void *dst, size_t len)
{
	const void *src = gmem_ptr(mem, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int gmem_write(const struct gmem *mem, uint64_t gpa, const void *src, size_t len)
{
	void *dst = gmem_ptr(mem, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int gmem_uaddr_to_gpa(const struct gmem *mem, uint64_t uaddr, uint64_t len, uint64_t *gpa)
{
	uint64_t end;

	if (!range_end(uaddr, len, &end))
		return -EFAULT;
	for (unsigned int i = 0; i < mem->nr; i++) {
		const struct gmem_region *r = &mem->regions[i];
		if (uaddr >= r->uaddr && uaddr - r->uaddr < r->size && end - r->uaddr <= r->size) {
			*gpa = r->gpa + (uaddr - r->uaddr);
			return 0;
		}
	}
	return -EFAULT;
}
