/* Guest-physical MMIO ranges served in user space, looked up on every KVM_EXIT_MMIO. */
#ifndef KRUN_VMM_MMIO_BUS_H
#define KRUN_VMM_MMIO_BUS_H

#include <stdbool.h>
#include <stdint.h>

#define MMIO_BUS_MAX 32

/* Returns 0 or -errno; a read fills data (len bytes) even on error. */
typedef int (*mmio_bus_fn)(void *opaque, uint64_t offset, void *data, unsigned int len, bool write);

struct mmio_bus_range {
	uint64_t base;
	uint64_t size;
	mmio_bus_fn fn;
	void *opaque;
};

/* Fixed after setup: vCPU threads read it without locks. */
struct mmio_bus {
	unsigned int nr;
	struct mmio_bus_range ranges[MMIO_BUS_MAX];
};

int mmio_bus_add(struct mmio_bus *bus, uint64_t base, uint64_t size, mmio_bus_fn fn, void *opaque)
	__attribute__((warn_unused_result));
/* -ENOENT when nothing is mapped at [addr, addr+len) (reads then return all ones). */
int mmio_bus_access(const struct mmio_bus *bus, uint64_t addr, void *data, unsigned int len, bool write);

#endif
