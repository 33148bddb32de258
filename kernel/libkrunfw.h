/* The public libkrunfw ABI (soname libkrunfw.so.5) as served by kernel/krunfw.c; for the VMM and tests. */
#ifndef KRUN_KERNEL_LIBKRUNFW_H
#define KRUN_KERNEL_LIBKRUNFW_H

#include <stddef.h>
#include <stdint.h>

#define KRUNFW_SONAME "libkrunfw.so.5"
/* What krunfw_get_version() returns; libkrun refuses a library with another ABI. */
#define KRUNFW_ABI_VERSION 5

/*
 * Returns the guest kernel, ready to copy into guest memory.
 *
 * Arguments:
 *  "load_addr"  - set to the guest-physical address where the image's first byte belongs.
 *  "entry_addr" - set to the guest-physical entry point (startup_64, the 64-bit boot protocol
 *                 entry: long mode, identity-mapped page tables, RSI = boot_params).
 *  "size"       - set to the image size in bytes (a multiple of 64 KiB).
 *
 * Returns:
 *  A pointer to the image inside the library (64 KiB aligned, writable: libkrun may map it into
 *  the guest). The kernel's bss is not part of the image: guest RAM must extend past
 *  load_addr + size far enough for it (the kernel clears it itself).
 */
char *krunfw_get_kernel(uint64_t *load_addr, uint64_t *entry_addr, size_t *size);

/* Returns KRUNFW_ABI_VERSION. */
int krunfw_get_version(void);

typedef char *(*krunfw_get_kernel_fn)(uint64_t *load_addr, uint64_t *entry_addr, size_t *size);
typedef int (*krunfw_get_version_fn)(void);

#endif
