/* libkrunfw.so.5: serves the embedded guest kernel image through the public libkrunfw ABI. */
#include "libkrunfw.h"
#include "krunfw_layout.h"

#define KRUNFW_EXPORT __attribute__((visibility("default")))

/* Defined by krunfw_image.S around the flattened vmlinux. */
extern char fw_image_start[];
extern char fw_image_end[];

KRUNFW_EXPORT char *krunfw_get_kernel(uint64_t *load_addr, uint64_t *entry_addr, size_t *size)
{
	if (load_addr)
		*load_addr = KRUNFW_LOAD_ADDR;
	if (entry_addr)
		*entry_addr = KRUNFW_ENTRY_ADDR;
	if (size)
		*size = (size_t)(fw_image_end - fw_image_start);
	return fw_image_start;
}

KRUNFW_EXPORT int krunfw_get_version(void)
{
	return KRUNFW_ABI_VERSION;
}
