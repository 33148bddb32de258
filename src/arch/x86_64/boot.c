/* x86_64 direct boot: load a flat image, an ELF vmlinux or a bzImage (and an initrd) into guest RAM. */
#define LOG_MODULE "boot"
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86_64/arch.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/zeropage.h"
#include "util/log.h"

#define ELF_MAX_PHDRS 64
#define BZ_SETUP_MAX (64 * 512)

static int pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Copy file bytes [off, off+len) to guest [gpa, gpa+len); the range must be plain RAM. */
static int load_range(const struct gmem *mem, int fd, off_t off, uint64_t gpa, uint64_t len)
{
	void *dst = gmem_ptr(mem, gpa, len);

	if (!dst || gpa < LAYOUT_LOWMEM_MIN)
		return -ERANGE;
	return pread_full(fd, dst, len, off);
}

static int load_flat(const struct gmem *mem, const struct vmm_kernel *k, struct arch_boot *boot)
{
	void *dst = gmem_ptr(mem, k->load_addr, k->size);

	if (!dst || !k->image || k->load_addr < LAYOUT_LOWMEM_MIN ||
	    !gmem_ptr(mem, k->entry, 1)) {
		log_error("flat kernel image does not fit guest RAM");
		return -ERANGE;
	}
	memcpy(dst, k->image, k->size);
	boot->entry = k->entry;
	boot->kernel_end = k->load_addr + k->size;
	return 0;
}

static int check_ehdr(const Elf64_Ehdr *eh)
{
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_ident[EI_VERSION] != EV_CURRENT)
		return -ENOEXEC;
	if (eh->e_type != ET_EXEC || eh->e_machine != EM_X86_64 || eh->e_version != EV_CURRENT)
		return -ENOEXEC;
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > ELF_MAX_PHDRS)
		return -ENOEXEC;
	return 0;
}

static int load_phdr(const struct gmem *mem, int fd, uint64_t file_size, const Elf64_Phdr *ph,
		     struct arch_boot *boot)
{
	uint64_t file_end, mem_end;

	if (ph->p_type != PT_LOAD)
		return 0;
	if (ph->p_filesz > ph->p_memsz ||
	    __builtin_add_overflow(ph->p_offset, ph->p_filesz, &file_end) || file_end > file_size ||
	    __builtin_add_overflow(ph->p_paddr, ph->p_memsz, &mem_end) ||
	    !gmem_ptr(mem, ph->p_paddr, ph->p_memsz) || ph->p_paddr < LAYOUT_LOWMEM_MIN)
		return -ERANGE;
	/* Guest RAM is a fresh memfd: the p_memsz - p_filesz tail (.bss) is already zero. */
	if (mem_end > boot->kernel_end)
		boot->kernel_end = mem_end;
	return load_range(mem, fd, (off_t)ph->p_offset, ph->p_paddr, ph->p_filesz);
}

static int load_elf(const struct gmem *mem, int fd, uint64_t file_size, struct arch_boot *boot)
{
	Elf64_Ehdr eh;
	/* Zeroed: entries past e_phnum are never read, but no path can then see garbage. */
	Elf64_Phdr ph[ELF_MAX_PHDRS] = { 0 };
	int ret;

	if (file_size < sizeof(eh) || pread_full(fd, &eh, sizeof(eh), 0) || check_ehdr(&eh))
		return -ENOEXEC;
	if (eh.e_phoff > file_size || file_size - eh.e_phoff < (uint64_t)eh.e_phnum * sizeof(ph[0]))
		return -ENOEXEC;
	ret = pread_full(fd, ph, eh.e_phnum * sizeof(ph[0]), (off_t)eh.e_phoff);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		ret = load_phdr(mem, fd, file_size, &ph[i], boot);
		if (ret) {
			log_error("ELF segment %u does not fit guest RAM or file", i);
			return ret;
		}
	}
	/* x86_64 vmlinux: e_entry is the physical address of startup_64 (64-bit boot protocol). */
	if (boot->kernel_end == 0 || !gmem_ptr(mem, eh.e_entry, 1) || eh.e_entry < LAYOUT_LOWMEM_MIN) {
		log_error("ELF entry point 0x%llx outside the loaded image", (unsigned long long)eh.e_entry);
		return -ENOEXEC;
	}
	boot->entry = eh.e_entry;
	return 0;
}

static int load_bzimage(const struct gmem *mem, int fd, uint64_t file_size, struct arch_boot *boot)
{
	uint8_t *zp = gmem_ptr(mem, LAYOUT_ZERO_PAGE, ZP_SIZE);
	uint8_t setup[1024];
	uint32_t magic, init_size;
	uint16_t version, xload;
	uint64_t setup_len, hdr_end, pm_off;
	int ret;

	if (!zp || file_size < sizeof(setup) || pread_full(fd, setup, sizeof(setup), 0))
		return -ENOEXEC;
	memcpy(&magic, setup + ZP_HEADER, 4);
	memcpy(&version, setup + ZP_VERSION, 2);
	memcpy(&xload, setup + ZP_XLOADFLAGS, 2);
	memcpy(&init_size, setup + ZP_INIT_SIZE, 4);
	/* Boot protocol 2.12+ with XLF_KERNEL_64 is what makes the 64-bit entry at +0x200 valid. */
	if (magic != ZP_HDRS_MAGIC || version < 0x020c || !(xload & ZP_XLF_KERNEL_64))
		return -ENOEXEC;
	setup_len = ((uint64_t)(setup[ZP_SETUP_SECTS] ? setup[ZP_SETUP_SECTS] : 4) + 1) * 512;
	hdr_end = 0x202 + (uint64_t)setup[ZP_JUMP + 1];
	if (setup_len > BZ_SETUP_MAX || setup_len >= file_size || hdr_end > sizeof(setup))
		return -ENOEXEC;
	memcpy(zp + ZP_SETUP_HEADER, setup + ZP_SETUP_HEADER, hdr_end - ZP_SETUP_HEADER);
	pm_off = setup_len;
	if (!gmem_ptr(mem, LAYOUT_HIMEM, init_size > file_size - pm_off ? init_size : file_size - pm_off))
		return -ERANGE;
	ret = load_range(mem, fd, (off_t)pm_off, LAYOUT_HIMEM, file_size - pm_off);
	if (ret)
		return ret;
	boot->entry = LAYOUT_HIMEM + 0x200;
	boot->kernel_end = LAYOUT_HIMEM + (init_size > file_size - pm_off ? init_size : file_size - pm_off);
	return 0;
}

/* Initrd at the top of RAM below 4 GiB (and below the kernel's initrd_addr_max when it says). */
static int load_initrd(const struct gmem *mem, const char *path, struct arch_boot *boot)
{
	uint8_t *zp = gmem_ptr(mem, LAYOUT_ZERO_PAGE, ZP_SIZE);
	struct stat st;
	uint64_t top = 0, gpa, max;
	uint32_t addr_max;
	int fd, ret;

	for (unsigned int i = 0; i < mem->nr; i++)
		if (mem->regions[i].gpa < LAYOUT_MMIO_HOLE_START)
			top = mem->regions[i].gpa + mem->regions[i].size;
	memcpy(&addr_max, zp + ZP_INITRD_ADDR_MAX, 4);
	max = addr_max ? (uint64_t)addr_max + 1 : top;
	if (max < top)
		top = max;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > top) {
		close(fd);
		return -EINVAL;
	}
	gpa = (top - (uint64_t)st.st_size) & ~0xfffull;
	if (gpa < boot->kernel_end) {
		close(fd);
		log_error("initrd (%lld bytes) does not fit between the kernel and the top of RAM",
			  (long long)st.st_size);
		return -ENOMEM;
	}
	ret = load_range(mem, fd, 0, gpa, (uint64_t)st.st_size);
	close(fd);
	if (ret)
		return ret;
	*(uint32_t *)(zp + ZP_RAMDISK_IMAGE) = (uint32_t)gpa;
	*(uint32_t *)(zp + ZP_RAMDISK_SIZE) = (uint32_t)st.st_size;
	return 0;
}

static int load_file(const struct gmem *mem, const struct vmm_kernel *k, struct arch_boot *boot)
{
	struct stat st;
	int fd = open(k->path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		ret = -errno;
		log_error("cannot open kernel %s: %s", k->path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	/* Try ELF first: its magic is unambiguous; otherwise it must be a 64-bit-capable bzImage. */
	ret = load_elf(mem, fd, (uint64_t)st.st_size, boot);
	if (ret == -ENOEXEC)
		ret = load_bzimage(mem, fd, (uint64_t)st.st_size, boot);
	close(fd);
	if (ret)
		log_error("cannot load kernel %s: %s", k->path,
			  ret == -ENOEXEC ? "not an x86_64 ELF vmlinux or 64-bit bzImage" : strerror(-ret));
	return ret;
}

int arch_load_kernel(const struct gmem *mem, const struct vmm_kernel *k, struct arch_boot *boot)
{
	int ret;

	memset(boot, 0, sizeof(*boot));
	if (k->source == VMM_KERNEL_FLAT)
		ret = load_flat(mem, k, boot);
	else if (k->source == VMM_KERNEL_FILE && k->path)
		ret = load_file(mem, k, boot);
	else
		ret = -EINVAL;
	if (ret == 0 && k->initrd_path) {
		ret = load_initrd(mem, k->initrd_path, boot);
		if (ret)
			log_error("cannot load initrd %s: %s", k->initrd_path, strerror(-ret));
	}
	return ret;
}
