/* libFuzzer target: x86_64 ELF vmlinux and bzImage loaders (and initrd placement), hostile files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86_64/arch.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/zeropage.h"
#include "util/log.h"

/*
 * Input: a flags byte, a little-endian u16 initrd length, the initrd bytes (if flags bit 0),
 * then the kernel file. Flags bits 1-2 pick the guest RAM layout. Both files are memfds
 * opened by path (/proc/self/fd/N) as krun_set_kernel paths are.
 */
#define RAM_BYTES (32u << 20)
#define HIGH_GPA 0x100000000ull

static uint8_t *ram;            /* heap, so ASan sees writes past guest RAM */
static int kfd = -1, ifd = -1;
static char kpath[32], ipath[32];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(getenv("FUZZ_LOG") ? LOG_LEVEL_TRACE : LOG_LEVEL_OFF);
	ram = calloc(1, RAM_BYTES);
	kfd = memfd_create("fuzz-kernel", MFD_CLOEXEC);
	ifd = memfd_create("fuzz-initrd", MFD_CLOEXEC);
	if (!ram || kfd < 0 || ifd < 0)
		abort();
	snprintf(kpath, sizeof(kpath), "/proc/self/fd/%d", kfd);
	snprintf(ipath, sizeof(ipath), "/proc/self/fd/%d", ifd);
	return 0;
}

static void set_file(int fd, const uint8_t *p, size_t len)
{
	if (ftruncate(fd, 0) || (len && pwrite(fd, p, len, 0) != (ssize_t)len))
		abort();
}

/* Guest RAM shapes the loaders must respect: all carved from the one heap block. */
static void make_ram(struct gmem *mem, unsigned int layout)
{
	int ret = 0;

	gmem_init(mem);
	switch (layout) {
	case 0:     /* 4 MiB: room for small kernels only */
		ret = gmem_add_region(mem, 0, 4u << 20, ram, 0);
		break;
	case 1:     /* all of it */
		ret = gmem_add_region(mem, 0, RAM_BYTES, ram, 0);
		break;
	case 2:     /* low RAM plus a region above 4 GiB, as a large VM has */
		ret = gmem_add_region(mem, 0, 16u << 20, ram, 0) ||
		      gmem_add_region(mem, HIGH_GPA, 16u << 20, ram + (16u << 20), HIGH_GPA);
		break;
	default:    /* below 1 MiB only: no kernel fits */
		ret = gmem_add_region(mem, 0, LAYOUT_HIMEM, ram, 0);
		break;
	}
	if (ret)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmm_kernel k = { .source = VMM_KERNEL_FILE, .path = kpath };
	struct arch_boot boot;
	struct gmem mem;
	size_t off = 3, ilen = 0;
	int ret;

	if (size < 3 || size > (1u << 20))
		return 0;
	if (data[0] & 1) {
		ilen = (size_t)data[1] | (size_t)data[2] << 8;
		if (ilen > size - off)
			ilen = size - off;
		set_file(ifd, data + off, ilen);
		off += ilen;
		k.initrd_path = ipath;
	}
	set_file(kfd, data + off, size - off);
	make_ram(&mem, (data[0] >> 1) & 3);
	memset(ram + LAYOUT_ZERO_PAGE, 0, ZP_SIZE);
	ret = arch_load_kernel(&mem, &k, &boot);
	if (ret > 0)
		abort();
	if (ret == 0) {
		/* The entry point and the image lie in guest RAM, above the real-mode area (an
		 * empty segment may end the image at a region's start). */
		if (!gmem_ptr(&mem, boot.entry, 1) || boot.entry < LAYOUT_LOWMEM_MIN ||
		    boot.kernel_end < LAYOUT_LOWMEM_MIN || (!gmem_ptr(&mem, boot.kernel_end - 1, 1) &&
		    !gmem_ptr(&mem, boot.kernel_end, 0))) {
			fprintf(stderr, "fuzz_kernel_loader: entry %#llx end %#llx outside RAM\n",
				(unsigned long long)boot.entry, (unsigned long long)boot.kernel_end);
			abort();
		}
		if (k.initrd_path) {
			uint32_t img, isz;

			memcpy(&img, ram + LAYOUT_ZERO_PAGE + ZP_RAMDISK_IMAGE, 4);
			memcpy(&isz, ram + LAYOUT_ZERO_PAGE + ZP_RAMDISK_SIZE, 4);
			if (isz != ilen || img < boot.kernel_end || !gmem_ptr(&mem, img, isz)) {
				fprintf(stderr, "fuzz_kernel_loader: initrd %#x+%#x overlaps the kernel "
					"(end %#llx) or leaves RAM\n", img, isz,
					(unsigned long long)boot.kernel_end);
				abort();
			}
		}
	}
	return 0;
}
