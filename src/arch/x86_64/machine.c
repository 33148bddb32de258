/* The x86_64 machine: RAM placement, KVM irqchip/PIT, and the structures a 64-bit direct boot needs. */
#define LOG_MODULE "machine"
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86_64/arch.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/mptable.h"
#include "arch/x86_64/zeropage.h"
#include "util/log.h"

#define PTE_PRESENT 0x1ull
#define PTE_RW      0x2ull
#define PTE_PS      0x80ull

unsigned int arch_ram_regions(uint64_t ram_bytes, struct arch_ram_region out[ARCH_MAX_RAM_REGIONS])
{
	out[0].gpa = 0;
	if (ram_bytes <= LAYOUT_MMIO_HOLE_START) {
		out[0].size = ram_bytes;
		return 1;
	}
	out[0].size = LAYOUT_MMIO_HOLE_START;
	out[1].gpa = LAYOUT_MMIO_HOLE_END;
	out[1].size = ram_bytes - LAYOUT_MMIO_HOLE_START;
	return 2;
}

int arch_vm_init(int vm_fd)
{
	uint64_t ident = LAYOUT_KVM_IDENTITY_MAP;
	struct kvm_pit_config pit = { .flags = 0 };

	/* Intel VMX needs these two pages for real-mode emulation; harmless elsewhere. */
	if (ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
		log_debug("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0)
		log_debug("KVM_SET_TSS_ADDR: %s", strerror(errno));
	if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_error("KVM_CREATE_PIT2: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static void e820_add(uint8_t *zp, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t n = zp[ZP_E820_ENTRIES];
	uint8_t *e = zp + ZP_E820_TABLE + (size_t)n * ZP_E820_ENTRY_SIZE;

	if (n >= ZP_E820_MAX || size == 0)
		return;
	memcpy(e, &addr, 8);
	memcpy(e + 8, &size, 8);
	memcpy(e + 16, &type, 4);
	zp[ZP_E820_ENTRIES] = n + 1;
}

/* e820 mirrors the RAM regions exactly, minus the EBDA/legacy hole below 1 MiB. */
static void setup_e820(uint8_t *zp, uint64_t ram_bytes)
{
	struct arch_ram_region r[ARCH_MAX_RAM_REGIONS];
	unsigned int n = arch_ram_regions(ram_bytes, r);

	zp[ZP_E820_ENTRIES] = 0;
	e820_add(zp, 0, LAYOUT_EBDA, ZP_E820_RAM);
	e820_add(zp, LAYOUT_EBDA, LAYOUT_HIMEM - LAYOUT_EBDA, ZP_E820_RESERVED);
	e820_add(zp, LAYOUT_HIMEM, r[0].size - LAYOUT_HIMEM, ZP_E820_RAM);
	if (n > 1)
		e820_add(zp, r[1].gpa, r[1].size, ZP_E820_RAM);
}

static int setup_zero_page(const struct gmem *mem, uint64_t ram_bytes, const char *cmdline)
{
	uint8_t *zp = gmem_ptr(mem, LAYOUT_ZERO_PAGE, ZP_SIZE);
	size_t len = strlen(cmdline) + 1;
	char *dst = gmem_ptr(mem, LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX);
	uint32_t v32;
	uint16_t v16;

	if (!zp || !dst)
		return -ERANGE;
	if (len > LAYOUT_CMDLINE_MAX) {
		log_error("kernel command line too long (%zu bytes, at most %d)", len - 1,
			  LAYOUT_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	memcpy(dst, cmdline, len);
	v16 = ZP_BOOT_FLAG_MAGIC;
	memcpy(zp + ZP_BOOT_FLAG, &v16, 2);
	v32 = ZP_HDRS_MAGIC;
	memcpy(zp + ZP_HEADER, &v32, 4);
	zp[ZP_TYPE_OF_LOADER] = ZP_LOADER_UNDEFINED;
	zp[ZP_LOADFLAGS] |= ZP_LOADED_HIGH;
	v32 = (uint32_t)LAYOUT_CMDLINE;
	memcpy(zp + ZP_CMD_LINE_PTR, &v32, 4);
	v32 = 0;
	memcpy(zp + ZP_EXT_CMD_LINE_PTR, &v32, 4);
	v32 = LAYOUT_CMDLINE_MAX - 1;
	memcpy(zp + ZP_CMDLINE_SIZE, &v32, 4);
	setup_e820(zp, ram_bytes);
	return 0;
}

/* GDT with the 64-bit boot protocol's selectors: __BOOT_CS = 0x10, __BOOT_DS = 0x18, TSS 0x20. */
static int setup_gdt(const struct gmem *mem)
{
	static const uint64_t gdt[] = {
		0, 0,
		0x00af9b000000ffffull,  /* 0x10: 64-bit code, present, DPL 0 */
		0x00cf93000000ffffull,  /* 0x18: flat 4 GiB data, read/write */
		0x00008b0000000067ull,  /* 0x20: 64-bit TSS (busy), base 0: only to satisfy VM entry */
		0,
	};

	return gmem_write(mem, LAYOUT_GDT, gdt, sizeof(gdt));
}

/* Identity map of the low 4 GiB (RAM and the MMIO hole) with 2 MiB pages. */
static int setup_page_tables(const struct gmem *mem)
{
	uint64_t *pml4 = gmem_ptr(mem, LAYOUT_PML4, 4096);
	uint64_t *pdpt = gmem_ptr(mem, LAYOUT_PDPT, 4096);
	uint64_t *pd = gmem_ptr(mem, LAYOUT_PD, 4096ull * LAYOUT_PD_COUNT);

	if (!pml4 || !pdpt || !pd)
		return -ERANGE;
	pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_RW;
	for (unsigned int i = 0; i < LAYOUT_PD_COUNT; i++)
		pdpt[i] = (LAYOUT_PD + 4096ull * i) | PTE_PRESENT | PTE_RW;
	for (unsigned int i = 0; i < 512 * LAYOUT_PD_COUNT; i++)
		pd[i] = ((uint64_t)i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
	return 0;
}

int arch_setup_boot(const struct gmem *mem, uint64_t ram_bytes, const char *cmdline,
		    unsigned int nr_vcpus)
{
	int ret;

	if (ram_bytes < 2 * LAYOUT_HIMEM)
		return -EINVAL;
	ret = setup_zero_page(mem, ram_bytes, cmdline);
	if (!ret)
		ret = setup_gdt(mem);
	if (!ret)
		ret = setup_page_tables(mem);
	if (!ret)
		ret = mptable_write(mem, nr_vcpus);
	return ret;
}
