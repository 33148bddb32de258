/* A flat table of MMIO ranges; an access must lie entirely inside one range. */
#include "vmm/mmio_bus.h"

#include <errno.h>
#include <string.h>

int mmio_bus_add(struct mmio_bus *bus, uint64_t base, uint64_t size, mmio_bus_fn fn, void *opaque)
{
	uint64_t end;

	if (bus->nr >= MMIO_BUS_MAX || size == 0 || __builtin_add_overflow(base, size, &end))
		return -EINVAL;
	for (unsigned int i = 0; i < bus->nr; i++) {
		const struct mmio_bus_range *r = &bus->ranges[i];
		if (base < r->base + r->size && r->base < end)
			return -EEXIST;
	}
	bus->ranges[bus->nr++] = (struct mmio_bus_range){ base, size, fn, opaque };
	return 0;
}

int mmio_bus_access(const struct mmio_bus *bus, uint64_t addr, void *data, unsigned int len, bool write)
{
	for (unsigned int i = 0; i < bus->nr; i++) {
		const struct mmio_bus_range *r = &bus->ranges[i];
		if (addr >= r->base && addr - r->base < r->size && len <= r->size - (addr - r->base))
			return r->fn(r->opaque, addr - r->base, data, len, write);
	}
	if (!write)
		memset(data, 0xff, len);
	return -ENOENT;
}
