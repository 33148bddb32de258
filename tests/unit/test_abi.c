/* The ABI of $BUILD/libkrun.so.1: the krun_* functions of include/libkrun.h, no more, no less. */
#include "harness.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_NAMES 512
#define NAME_MAX_LEN 64

struct names {
	char v[MAX_NAMES][NAME_MAX_LEN];
	unsigned int n;
};

static struct names declared, exported;
static char so_path[512];
static void *handle;

/* Whole file, NUL-terminated; NULL if unreadable. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)size + 1)) && fread(buf, 1, (size_t)size, f) == (size_t)size) {
		buf[size] = '\0';
		*len = (size_t)size;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static bool has(const struct names *s, const char *name)
{
	for (unsigned int i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], name))
			return true;
	return false;
}

static void add(struct names *s, const char *name, size_t len)
{
	char buf[NAME_MAX_LEN];

	if (len >= NAME_MAX_LEN || s->n >= MAX_NAMES)
		return;
	memcpy(buf, name, len);
	buf[len] = '\0';
	if (!has(s, buf))
		strcpy(s->v[s->n++], buf);
}

/* Comments hold prose like "Same as krun_add_virtiofs(...)": blank them out first. */
static void strip_comments(char *s)
{
	char *end;

	while ((s = strstr(s, "/*"))) {
		end = strstr(s + 2, "*/");
		end = end ? end + 2 : s + strlen(s);
		memset(s, ' ', (size_t)(end - s));
		s = end;
	}
}

static bool ident_char(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Outside comments, every "krun_name (" in the header declares a function. */
static void parse_header(char *text)
{
	char *p = text, *q;

	strip_comments(text);
	while ((p = strstr(p, "krun_"))) {
		q = p;
		while (ident_char(*q))
			q++;
		if ((p == text || !ident_char(p[-1])) && q[strspn(q, " \t\n")] == '(')
			add(&declared, p, (size_t)(q - p));
		p = q;
	}
}

static const Elf64_Shdr *section(const Elf64_Ehdr *eh, size_t size, unsigned int type)
{
	const Elf64_Shdr *sh = (const Elf64_Shdr *)((const char *)eh + eh->e_shoff);

	if (eh->e_shoff + (size_t)eh->e_shnum * sizeof(*sh) > size)
		return NULL;
	for (unsigned int i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_type == type)
			return &sh[i];
	return NULL;
}

/* Defined global/weak symbols of .dynsym: what the library exports. */
static int read_dynsym(const char *img, size_t size)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	const Elf64_Shdr *sym, *str;
	const Elf64_Sym *s;

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64)
		return -EINVAL;
	sym = section(eh, size, SHT_DYNSYM);
	if (!sym || sym->sh_link >= eh->e_shnum)
		return -EINVAL;
	str = (const Elf64_Shdr *)(img + eh->e_shoff) + sym->sh_link;
	if (sym->sh_offset + sym->sh_size > size || str->sh_offset + str->sh_size > size)
		return -EINVAL;
	s = (const Elf64_Sym *)(img + sym->sh_offset);
	for (size_t i = 0; i < sym->sh_size / sizeof(*s); i++) {
		unsigned char bind = ELF64_ST_BIND(s[i].st_info);
		const char *name = img + str->sh_offset + s[i].st_name;

		if (s[i].st_shndx == SHN_UNDEF || s[i].st_name >= str->sh_size || !*name ||
		    (bind != STB_GLOBAL && bind != STB_WEAK))
			continue;
		add(&exported, name, strlen(name));
	}
	return 0;
}

static void test_header_declares_the_api(void)
{
	size_t len;
	char *text = slurp("include/libkrun.h", &len);

	CHECK(text != NULL);
	parse_header(text);
	free(text);
	/* The upstream header has 69 functions; a broken parse finds few or none. */
	CHECK(declared.n >= 69);
	CHECK(has(&declared, "krun_create_ctx") && has(&declared, "krun_start_enter"));
}

static void test_library_loads(void)
{
	/* RTLD_NOW: an undefined internal symbol must fail here, not in a client's VM start. */
	handle = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
	if (!handle)
		printf("    dlopen %s: %s\n", so_path, dlerror());
	CHECK(handle != NULL);
}

static void test_dynsym_readable(void)
{
	size_t len;
	char *img = slurp(so_path, &len);

	CHECK(img != NULL);
	CHECK_EQ(read_dynsym(img, len), 0);
	free(img);
	CHECK(exported.n > 0);
}

static void test_declared_are_exported(void)
{
	unsigned int missing = 0;
	Dl_info info;
	void *p;

	CHECK(handle != NULL);
	for (unsigned int i = 0; i < declared.n; i++) {
		p = dlsym(handle, declared.v[i]);
		/* dladdr: the address must be the library's own, not some other object's. */
		if (!p || !has(&exported, declared.v[i]) || !dladdr(p, &info) || !info.dli_fname ||
		    !strstr(info.dli_fname, "libkrun.so.1")) {
			printf("    declared in libkrun.h but not exported: %s\n", declared.v[i]);
			missing++;
		}
	}
	CHECK_EQ(missing, 0);
}

static void test_exported_are_declared(void)
{
	unsigned int extra = 0;

	for (unsigned int i = 0; i < exported.n; i++)
		if (!has(&declared, exported.v[i])) {
			printf("    exported but not declared in libkrun.h: %s\n", exported.v[i]);
			extra++;
		}
	CHECK_EQ(extra, 0);
}

static void test_only_krun_symbols(void)
{
	unsigned int bad = 0;

	for (unsigned int i = 0; i < exported.n; i++)
		if (strncmp(exported.v[i], "krun_", 5)) {
			printf("    exported symbol outside the krun_ namespace: %s\n", exported.v[i]);
			bad++;
		}
	CHECK_EQ(bad, 0);
}

int main(void)
{
	const char *build = getenv("BUILD");

	snprintf(so_path, sizeof(so_path), "%s/libkrun.so.1", build && *build ? build : "build");
	if (access(so_path, R_OK) != 0) {
		printf("SKIP test_abi: %s not built\n", so_path);
		return 0;
	}
	RUN_TEST(test_header_declares_the_api);
	RUN_TEST(test_library_loads);
	RUN_TEST(test_dynsym_readable);
	RUN_TEST(test_declared_are_exported);
	RUN_TEST(test_exported_are_declared);
	RUN_TEST(test_only_krun_symbols);
	if (handle)
		dlclose(handle);
	return HARNESS_EXIT();
}
