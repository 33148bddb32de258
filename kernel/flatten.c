/* Host tool: flattens vmlinux's PT_LOAD segments by physical address into the raw image libkrunfw serves. */
/*
 * Usage: flatten VMLINUX IMAGE HEADER
 *   IMAGE   bytes to copy into guest memory at the load address (lowest p_paddr); gaps between
 *           segments are zero-filled; the trailing bss is not stored (startup_64 clears it), and
 *           the size is rounded up to 64 KiB so the image can be mapped with any page size.
 *   HEADER  C defines: KRUNFW_LOAD_ADDR, KRUNFW_ENTRY_ADDR (e_entry, the physical address of
 *           startup_64), KRUNFW_IMAGE_SIZE and KRUNFW_MEM_END (end of the bss: guest RAM must
 *           extend at least this far).
 * The input is checked strictly: a malformed ELF fails the build instead of producing an image
 * the guest would crash on.
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLATTEN_ALIGN 0x10000ULL            /* 64 KiB: the largest guest page size libkrun maps */
#define FLATTEN_MAX_SPAN (256ULL << 20)     /* far above any microVM kernel; catches garbage */
#define FLATTEN_MIN_PADDR 0x100000ULL       /* below 1 MiB lie the boot structures */
#define FLATTEN_MAX_LOADS 16

struct blob {
	unsigned char *data;
	size_t size;
};

static const char *prog = "flatten";

static int fail(const char *msg, const char *arg)
{
	fprintf(stderr, "%s: %s%s%s\n", prog, msg, arg ? " " : "", arg ? arg : "");
	return -1;
}

static int read_file(const char *path, struct blob *b)
{
	FILE *f = fopen(path, "rb");
	long len;

	if (!f)
		return fail("cannot open", path);
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return fail("cannot size", path);
	}
	b->size = (size_t)len;
	b->data = malloc(b->size ? b->size : 1);
	if (!b->data || fread(b->data, 1, b->size, f) != b->size) {
		fclose(f);
		return fail("cannot read", path);
	}
	fclose(f);
	return 0;
}

/* True when [off, off+len) lies inside a buffer of `size` bytes, without overflow. */
static int in_bounds(uint64_t off, uint64_t len, uint64_t size)
{
	uint64_t end;

	return !__builtin_add_overflow(off, len, &end) && end <= size;
}

static int check_ehdr(const struct blob *b, const Elf64_Ehdr *eh)
{
	if (b->size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return fail("not an ELF file", NULL);
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_ident[EI_VERSION] != EV_CURRENT)
		return fail("not a little-endian ELF64 (version 1) file", NULL);
	if (eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC)
		return fail("not an x86_64 executable (ET_EXEC, EM_X86_64)", NULL);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum == PN_XNUM)
		return fail("bad program header table description", NULL);
	if (!in_bounds(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), b->size) ||
	    eh->e_phoff % 8 != 0)
		return fail("program header table outside the file or misaligned", NULL);
	return 0;
}

/* Collects the PT_LOAD headers sorted by physical address and checks each one. */
static int collect_loads(const struct blob *b, const Elf64_Ehdr *eh, Elf64_Phdr *loads, int *n)
{
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(b->data + eh->e_phoff);
	uint64_t end;

	*n = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr p = ph[i];
		int j;

		if (p.p_type != PT_LOAD)
			continue;
		if (*n == FLATTEN_MAX_LOADS)
			return fail("too many PT_LOAD segments", NULL);
		if (p.p_filesz > p.p_memsz)
			return fail("PT_LOAD with p_filesz > p_memsz", NULL);
		if (!in_bounds(p.p_offset, p.p_filesz, b->size))
			return fail("PT_LOAD data outside the file", NULL);
		if (__builtin_add_overflow(p.p_paddr, p.p_memsz, &end) || p.p_paddr < FLATTEN_MIN_PADDR)
			return fail("PT_LOAD physical range overflows or lies below 1 MiB", NULL);
		for (j = *n; j > 0 && loads[j - 1].p_paddr > p.p_paddr; j--)
			loads[j] = loads[j - 1];
		loads[j] = p;
		(*n)++;
	}
	if (*n == 0)
		return fail("no PT_LOAD segment", NULL);
	for (int i = 1; i < *n; i++)
		if (loads[i - 1].p_paddr + loads[i - 1].p_memsz > loads[i].p_paddr)
			return fail("PT_LOAD segments overlap in physical memory", NULL);
	return 0;
}

/* The entry must be file-backed code: inside an executable segment's p_filesz. */
static int check_entry(const Elf64_Ehdr *eh, const Elf64_Phdr *loads, int n)
{
	for (int i = 0; i < n; i++)
		if ((loads[i].p_flags & PF_X) && eh->e_entry >= loads[i].p_paddr &&
		    eh->e_entry - loads[i].p_paddr < loads[i].p_filesz)
			return 0;
	return fail("e_entry is not inside an executable segment's file data", NULL);
}

static int write_all(const char *path, const void *data, size_t len)
{
	char tmp[4096];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return fail("path too long:", path);
	f = fopen(tmp, "wb");
	if (!f)
		return fail("cannot create", tmp);
	if (fwrite(data, 1, len, f) != len || fclose(f) != 0)
		return fail("cannot write", tmp);
	/* rename: make never sees a half-written output. */
	if (rename(tmp, path) != 0)
		return fail("cannot rename to", path);
	return 0;
}

static int flatten(const struct blob *elf, const char *image_path, const char *header_path)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf->data;
	Elf64_Phdr loads[FLATTEN_MAX_LOADS];
	uint64_t lo, file_end = 0, mem_end = 0, size;
	unsigned char *img;
	char hdr[512];
	int n, len, ret;

	if (check_ehdr(elf, eh) || collect_loads(elf, eh, loads, &n) || check_entry(eh, loads, n))
		return -1;
	lo = loads[0].p_paddr;
	for (int i = 0; i < n; i++) {
		if (loads[i].p_paddr + loads[i].p_filesz > file_end)
			file_end = loads[i].p_paddr + loads[i].p_filesz;
		if (loads[i].p_paddr + loads[i].p_memsz > mem_end)
			mem_end = loads[i].p_paddr + loads[i].p_memsz;
	}
	if (mem_end - lo > FLATTEN_MAX_SPAN)
		return fail("segments span more than 256 MiB", NULL);
	size = (file_end - lo + FLATTEN_ALIGN - 1) & ~(FLATTEN_ALIGN - 1);
	img = calloc(1, size);
	if (!img)
		return fail("out of memory", NULL);
	for (int i = 0; i < n; i++)
		memcpy(img + (loads[i].p_paddr - lo), elf->data + loads[i].p_offset, loads[i].p_filesz);
	ret = write_all(image_path, img, size);
	free(img);
	if (ret)
		return -1;
	len = snprintf(hdr, sizeof(hdr),
		       "/* Generated by kernel/flatten from vmlinux; do not edit. */\n"
		       "#define KRUNFW_LOAD_ADDR 0x%llxULL\n"
		       "#define KRUNFW_ENTRY_ADDR 0x%llxULL\n"
		       "#define KRUNFW_IMAGE_SIZE 0x%llxULL\n"
		       "#define KRUNFW_MEM_END 0x%llxULL\n",
		       (unsigned long long)lo, (unsigned long long)eh->e_entry,
		       (unsigned long long)size, (unsigned long long)mem_end);
	return write_all(header_path, hdr, (size_t)len);
}

int main(int argc, char **argv)
{
	struct blob elf = { 0 };
	int ret;

	if (argc != 4) {
		fprintf(stderr, "usage: %s VMLINUX IMAGE HEADER\n", argv[0]);
		return 2;
	}
	prog = argv[0];
	if (read_file(argv[1], &elf))
		return 1;
	ret = flatten(&elf, argv[2], argv[3]);
	free(elf.data);
	return ret ? 1 : 0;
}
