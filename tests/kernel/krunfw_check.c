/* Checks libkrunfw.so.5 through dlopen against the vmlinux it was built from (independent ELF reader). */
/*
 * Usage: krunfw_check LIBKRUNFW VMLINUX
 * Prints PASS/FAIL lines: ABI symbols and version, image placement (load address, entry, size,
 * alignment), and byte-for-byte equality of every PT_LOAD's file data with the image, zeros
 * elsewhere. Exit status 1 if anything failed.
 */
#include <dlfcn.h>
#include <elf.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libkrunfw.h"

#define MAX_IMAGE (64u << 20)

static int failures;

static void result(const char *name, const char *why, ...) __attribute__((format(printf, 2, 3)));

/* why == NULL means PASS. */
static void result(const char *name, const char *why, ...)
{
	va_list ap;

	if (!why) {
		printf("PASS %s\n", name);
		return;
	}
	failures++;
	printf("FAIL %s: ", name);
	va_start(ap, why);
	vprintf(why, ap);
	va_end(ap);
	putchar('\n');
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* Returns the PT_LOAD headers of a sane x86_64 ELF64 file, or NULL. */
static const Elf64_Phdr *elf_phdrs(const unsigned char *elf, size_t len, int *phnum)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > len ||
	    (len - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		return NULL;
	*phnum = eh->e_phnum;
	return (const Elf64_Phdr *)(elf + eh->e_phoff);
}

static void check_image(const unsigned char *img, uint64_t load, uint64_t entry, size_t size,
			const unsigned char *elf, size_t elf_len)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
	const Elf64_Phdr *ph;
	uint64_t lowest = UINT64_MAX;
	unsigned char *covered;
	int phnum, loads = 0;
	size_t stray = 0;

	ph = elf_phdrs(elf, elf_len, &phnum);
	if (!ph) {
		result("krunfw_image", "vmlinux is not a valid x86_64 ELF64");
		return;
	}
	for (int i = 0; i < phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_paddr < lowest)
			lowest = ph[i].p_paddr;
	result("krunfw_load_addr", load == lowest ? NULL : "load_addr 0x%llx, lowest PT_LOAD p_paddr 0x%llx",
	       (unsigned long long)load, (unsigned long long)lowest);
	result("krunfw_entry", entry == eh->e_entry && entry >= load && entry - load < size ? NULL :
	       "entry 0x%llx, ELF e_entry 0x%llx, image [0x%llx, +0x%zx)", (unsigned long long)entry,
	       (unsigned long long)eh->e_entry, (unsigned long long)load, size);
	if (load != lowest || entry < load || entry - load >= size)
		return;

	covered = calloc(1, size);
	if (!covered) {
		result("krunfw_image", "out of memory");
		return;
	}
	for (int i = 0; i < phnum; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_type != PT_LOAD)
			continue;
		loads++;
		if (p->p_offset > elf_len || elf_len - p->p_offset < p->p_filesz ||
		    p->p_paddr - load > size || size - (p->p_paddr - load) < p->p_filesz) {
			result("krunfw_image", "PT_LOAD %d (paddr 0x%llx, filesz 0x%llx) outside the image",
			       i, (unsigned long long)p->p_paddr, (unsigned long long)p->p_filesz);
			free(covered);
			return;
		}
		if (memcmp(img + (p->p_paddr - load), elf + p->p_offset, p->p_filesz)) {
			result("krunfw_image", "PT_LOAD %d (paddr 0x%llx) differs from vmlinux", i,
			       (unsigned long long)p->p_paddr);
			free(covered);
			return;
		}
		memset(covered + (p->p_paddr - load), 1, p->p_filesz);
	}
	for (size_t i = 0; i < size; i++)
		stray += !covered[i] && img[i];
	free(covered);
	result("krunfw_image", stray ? "%zu nonzero bytes outside the segments' file data" : NULL, stray);

	/* The entry's code bytes, located through the ELF's own view (file offset of e_entry). */
	for (int i = 0; i < phnum; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_type == PT_LOAD && entry >= p->p_paddr && entry - p->p_paddr + 16 <= p->p_filesz) {
			const unsigned char *want = elf + p->p_offset + (entry - p->p_paddr);

			result("krunfw_entry_bytes", memcmp(img + (entry - load), want, 16) ? "code at entry "
			       "differs from vmlinux" : NULL);
			printf("    %d PT_LOAD segments, image %zu KiB at 0x%llx, entry 0x%llx\n", loads,
			       size >> 10, (unsigned long long)load, (unsigned long long)entry);
			return;
		}
	}
	result("krunfw_entry_bytes", "e_entry is not in any PT_LOAD's file data");
}

int main(int argc, char **argv)
{
	krunfw_get_kernel_fn get_kernel;
	krunfw_get_version_fn get_version;
	uint64_t load = 0, entry = 0;
	size_t size = 0, elf_len = 0;
	unsigned char *elf;
	char *img;
	void *lib;
	int version;

	if (argc != 3) {
		fprintf(stderr, "usage: %s LIBKRUNFW VMLINUX\n", argv[0]);
		return 2;
	}
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		result("krunfw_dlopen", "%s", dlerror());
		return 1;
	}
	get_kernel = (krunfw_get_kernel_fn)dlsym(lib, "krunfw_get_kernel");
	get_version = (krunfw_get_version_fn)dlsym(lib, "krunfw_get_version");
	result("krunfw_symbols", get_kernel && get_version ? NULL : "krunfw_get_kernel or "
	       "krunfw_get_version missing");
	if (!get_kernel || !get_version)
		return 1;
	version = get_version();
	result("krunfw_version", version == KRUNFW_ABI_VERSION ? NULL : "version %d, want %d",
	       version, KRUNFW_ABI_VERSION);

	img = get_kernel(&load, &entry, &size);
	result("krunfw_size", img && size && size % 0x10000 == 0 && size <= MAX_IMAGE ? NULL :
	       "image %p size %zu (want nonzero, 64 KiB multiple, <= 64 MiB)", (void *)img, size);
	if (!img || !size || size > MAX_IMAGE)
		return 1;
	result("krunfw_align", (uintptr_t)img % 0x10000 == 0 ? NULL : "image at %p is not 64 KiB "
	       "aligned", (void *)img);
	/* libkrun may map the image into guest RAM: it must be writable (this faults otherwise). */
	((volatile char *)img)[size - 1] = ((volatile char *)img)[size - 1];

	elf = slurp(argv[2], &elf_len);
	if (!elf) {
		result("krunfw_image", "cannot read %s", argv[2]);
		return 1;
	}
	check_image((unsigned char *)img, load, entry, size, elf, elf_len);
	free(elf);
	dlclose(lib);
	return failures ? 1 : 0;
}
