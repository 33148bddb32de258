/* x86_64 direct boot without KVM: ELF/bzImage loading (and hostile files), initrd, zero page, MP table. */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "arch/x86_64/arch.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/zeropage.h"
#include "harness.h"
#include "util/log.h"

#define RAM_SIZE (64u << 20)

static uint8_t *ram;
static struct gmem mem;
static char tmpdir[] = "/tmp/krun-test-boot.XXXXXX";

static void fresh_ram(uint64_t size)
{
	memset(ram, 0, RAM_SIZE);
	gmem_init(&mem);
	if (gmem_add_region(&mem, 0, size, ram, 0))
		abort();
}

static const char *write_path(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static const char *write_file(const char *name, const void *data, size_t len)
{
	const char *path = write_path(name);
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len)
		abort();
	fclose(f);
	return path;
}

struct tiny_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint8_t code[16];
};

static struct tiny_elf make_elf(void)
{
	struct tiny_elf e;

	memset(&e, 0, sizeof(e));
	memcpy(e.eh.e_ident, ELFMAG, SELFMAG);
	e.eh.e_ident[EI_CLASS] = ELFCLASS64;
	e.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e.eh.e_ident[EI_VERSION] = EV_CURRENT;
	e.eh.e_type = ET_EXEC;
	e.eh.e_machine = EM_X86_64;
	e.eh.e_version = EV_CURRENT;
	e.eh.e_entry = 0x1000000;
	e.eh.e_phoff = sizeof(e.eh);
	e.eh.e_phentsize = sizeof(Elf64_Phdr);
	e.eh.e_phnum = 1;
	e.ph.p_type = PT_LOAD;
	e.ph.p_offset = offsetof(struct tiny_elf, code);
	e.ph.p_paddr = 0x1000000;
	e.ph.p_filesz = sizeof(e.code);
	e.ph.p_memsz = 0x2000;
	memcpy(e.code, "\xe6\xf5\xf4\xeb\xfd", 5);
	return e;
}

static int load_elf(const struct tiny_elf *e, size_t len, struct arch_boot *boot)
{
	struct vmm_kernel k = { .source = VMM_KERNEL_FILE, .path = write_file("k.elf", e, len) };

	return arch_load_kernel(&mem, &k, boot);
}

static void test_elf(void)
{
	struct tiny_elf e = make_elf(), bad;
	struct arch_boot boot;

	fresh_ram(RAM_SIZE);
	CHECK_EQ(load_elf(&e, sizeof(e), &boot), 0);
	CHECK_EQ(boot.entry, 0x1000000);
	CHECK_EQ(boot.kernel_end, 0x1002000);
	CHECK(!memcmp(ram + 0x1000000, e.code, 5));
	/* Hostile or foreign files: each is refused, nothing is written out of bounds. */
	CHECK_EQ(load_elf(&e, 40, &boot), -ENOEXEC);                    /* truncated header */
	bad = e; bad.eh.e_machine = EM_AARCH64;
	CHECK_EQ(load_elf(&bad, sizeof(bad), &boot), -ENOEXEC);
	bad = e; bad.eh.e_phnum = 1000;
	CHECK_EQ(load_elf(&bad, sizeof(bad), &boot), -ENOEXEC);
	bad = e; bad.ph.p_filesz = 4096;                                /* beyond the file */
	CHECK_EQ(load_elf(&bad, sizeof(bad), &boot), -ERANGE);
	bad = e; bad.ph.p_paddr = RAM_SIZE - 0x1000;                    /* beyond RAM */
	CHECK_EQ(load_elf(&bad, sizeof(bad), &boot), -ERANGE);
	bad = e; bad.ph.p_paddr = 0x7000;                               /* over our boot data */
	CHECK_EQ(load_elf(&bad, sizeof(bad), &boot), -ERANGE);
	bad = e; bad.ph.p_paddr = UINT64_MAX - 0x100;                   /* wraps */
	CHECK_EQ(load_elf(&bad, sizeof(bad), &boot), -ERANGE);
	bad = e; bad.ph.p_filesz = 0x3000;                              /* filesz > memsz */
	CHECK_EQ(load_elf(&bad, sizeof(bad), &boot), -ERANGE);
	bad = e; bad.eh.e_entry = 0x10;
	CHECK_EQ(load_elf(&bad, sizeof(bad), &boot), -ENOEXEC);
}

/* A synthetic bzImage: boot protocol 2.15 header, one setup sector, then the 64-bit kernel. */
static void test_bzimage(void)
{
	static uint8_t img[4 * 512];
	struct vmm_kernel k = { .source = VMM_KERNEL_FILE };
	struct arch_boot boot;
	uint32_t magic = ZP_HDRS_MAGIC, init_size = 0x10000;
	uint16_t version = 0x020f, xload = ZP_XLF_KERNEL_64;

	fresh_ram(RAM_SIZE);
	memset(img, 0, sizeof(img));
	img[ZP_SETUP_SECTS] = 1;
	img[ZP_JUMP + 1] = 0x6a;
	memcpy(img + ZP_HEADER, &magic, 4);
	memcpy(img + ZP_VERSION, &version, 2);
	memcpy(img + ZP_XLOADFLAGS, &xload, 2);
	memcpy(img + ZP_INIT_SIZE, &init_size, 4);
	memcpy(img + 1024, "PMKERNEL", 8);
	k.path = write_file("bzImage", img, sizeof(img));
	CHECK_EQ(arch_load_kernel(&mem, &k, &boot), 0);
	CHECK_EQ(boot.entry, LAYOUT_HIMEM + 0x200);
	CHECK(!memcmp(ram + LAYOUT_HIMEM, "PMKERNEL", 8));
	CHECK(!memcmp(ram + LAYOUT_ZERO_PAGE + ZP_HEADER, "HdrS", 4));
	CHECK_EQ(*(uint16_t *)(ram + LAYOUT_ZERO_PAGE + ZP_VERSION), 0x020f);
	/* Without XLF_KERNEL_64 there is no 64-bit entry: refused. */
	xload = 0;
	memcpy(img + ZP_XLOADFLAGS, &xload, 2);
	k.path = write_file("bzImage32", img, sizeof(img));
	CHECK_EQ(arch_load_kernel(&mem, &k, &boot), -ENOEXEC);
}

static void test_initrd(void)
{
	struct tiny_elf e = make_elf();
	struct vmm_kernel k = { .source = VMM_KERNEL_FILE };
	struct arch_boot boot;
	uint32_t image, size;

	fresh_ram(RAM_SIZE);
	k.path = strdup(write_file("k.elf", &e, sizeof(e)));
	k.initrd_path = write_file("initrd", "INITRD-DATA", 11);
	CHECK_EQ(arch_load_kernel(&mem, &k, &boot), 0);
	memcpy(&image, ram + LAYOUT_ZERO_PAGE + ZP_RAMDISK_IMAGE, 4);
	memcpy(&size, ram + LAYOUT_ZERO_PAGE + ZP_RAMDISK_SIZE, 4);
	CHECK_EQ(size, 11);
	CHECK_EQ(image & 0xfff, 0);
	CHECK(image >= boot.kernel_end && image + size <= RAM_SIZE);
	CHECK(!memcmp(ram + image, "INITRD-DATA", 11));
	free((void *)k.path);
}

static void check_e820(uint64_t expect_sum, uint64_t expect_end)
{
	uint8_t *zp = ram + LAYOUT_ZERO_PAGE;
	uint64_t sum = 0, end = 0;

	for (unsigned int i = 0; i < zp[ZP_E820_ENTRIES]; i++) {
		uint64_t addr, size;
		uint32_t type;
		memcpy(&addr, zp + ZP_E820_TABLE + 20 * i, 8);
		memcpy(&size, zp + ZP_E820_TABLE + 20 * i + 8, 8);
		memcpy(&type, zp + ZP_E820_TABLE + 20 * i + 16, 4);
		if (type == ZP_E820_RAM) {
			sum += size;
			end = addr + size;
		}
	}
	CHECK_EQ(sum, expect_sum);
	CHECK_EQ(end, expect_end);
}

static void test_boot_data(void)
{
	const uint64_t legacy = LAYOUT_HIMEM - LAYOUT_EBDA;
	uint8_t *fp = ram + LAYOUT_EBDA, *t, sum = 0;
	uint16_t len;
	char big[LAYOUT_CMDLINE_MAX + 10];

	fresh_ram(RAM_SIZE);
	CHECK_EQ(arch_setup_boot(&mem, RAM_SIZE, "console=hvc0 t.x=1", 2), 0);
	CHECK(!strcmp((char *)ram + LAYOUT_CMDLINE, "console=hvc0 t.x=1"));
	CHECK_EQ(*(uint32_t *)(ram + LAYOUT_ZERO_PAGE + ZP_CMD_LINE_PTR), LAYOUT_CMDLINE);
	check_e820(RAM_SIZE - legacy, RAM_SIZE);
	/* 4 GiB: 3 GiB below the hole, 1 GiB from 4 GiB (the test maps only low memory). */
	CHECK_EQ(arch_setup_boot(&mem, 4ull << 30, "x", 1), 0);
	check_e820((4ull << 30) - legacy, 5ull << 30);
	/* MP table: valid checksums, two processors. */
	CHECK_EQ(arch_setup_boot(&mem, RAM_SIZE, "x", 2), 0);
	CHECK(!memcmp(fp, "_MP_", 4));
	for (int i = 0; i < 16; i++)
		sum += fp[i];
	CHECK_EQ(sum, 0);
	t = ram + *(uint32_t *)(fp + 4);
	memcpy(&len, t + 4, 2);
	sum = 0;
	for (int i = 0; i < len; i++)
		sum += t[i];
	CHECK_EQ(sum, 0);
	CHECK(!memcmp(t, "PCMP", 4));
	CHECK(t[44] == 0 && t[44 + 20] == 0 && t[44 + 40] != 0);
	/* Page tables: 16 MiB identity-mapped with a 2 MiB page. */
	CHECK_EQ(((uint64_t *)(ram + LAYOUT_PD))[8], 0x1000000 | 0x83);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	CHECK_EQ(arch_setup_boot(&mem, RAM_SIZE, big, 1), -E2BIG);
	CHECK_EQ(arch_setup_boot(&mem, RAM_SIZE, "x", VMM_MAX_VCPUS + 1), -EINVAL);
}

int main(void)
{
	log_set_level(LOG_LEVEL_OFF);       /* refusals log errors by design */
	ram = calloc(1, RAM_SIZE);
	if (!ram || !mkdtemp(tmpdir))
		return 1;
	RUN_TEST(test_elf);
	RUN_TEST(test_bzimage);
	RUN_TEST(test_initrd);
	RUN_TEST(test_boot_data);
	for (const char *const *n = (const char *const[]){ "k.elf", "bzImage", "bzImage32", "initrd", NULL }; *n; n++)
		unlink(write_path(*n));
	rmdir(tmpdir);
	free(ram);
	return HARNESS_EXIT();
}
