/* Finding and loading libkrunfw.so.5 and asking it for the flat kernel image. */
#include "api/krunfw.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "krunfw"
#include "util/log.h"

typedef char *(*get_kernel_fn)(uint64_t *load_addr, uint64_t *entry_addr, size_t *size);

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static get_kernel_fn get_kernel;

static get_kernel_fn try_open(const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	void *sym;

	if (!h) {
		log_debug("dlopen %s: %s", path, dlerror());
		return NULL;
	}
	sym = dlsym(h, "krunfw_get_kernel");
	if (!sym) {
		log_warn("%s has no krunfw_get_kernel", path);
		dlclose(h);
		return NULL;
	}
	log_debug("loaded %s", path);
	return (get_kernel_fn)sym;
}

/* The copy next to our own shared object (build/ keeps both side by side). */
static get_kernel_fn try_beside_self(void)
{
	char path[PATH_MAX];
	const char *slash;
	Dl_info info;
	int n;

	if (!dladdr((void *)krunfw_load, &info) || !info.dli_fname)
		return NULL;
	slash = strrchr(info.dli_fname, '/');
	if (!slash)
		return NULL;
	n = snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - info.dli_fname),
		     info.dli_fname, KRUNFW_SONAME);
	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	return try_open(path);
}

static get_kernel_fn search(void)
{
	const char *env = getenv("KRUN_LIBKRUNFW");
	get_kernel_fn fn = NULL;

	if (env && *env)
		fn = try_open(env);
	if (!fn)
		fn = try_open(KRUNFW_SONAME);
	if (!fn)
		fn = try_beside_self();
	return fn;
}

int krunfw_load(void)
{
	int ret = 0;

	pthread_mutex_lock(&load_lock);
	if (!get_kernel)
		get_kernel = search();
	if (!get_kernel)
		ret = -ENOENT;
	pthread_mutex_unlock(&load_lock);
	return ret;
}

int krunfw_kernel(struct vmm_kernel *k)
{
	get_kernel_fn fn;
	uint64_t load = 0, entry = 0;
	size_t size = 0;
	char *image;

	pthread_mutex_lock(&load_lock);
	fn = get_kernel;
	pthread_mutex_unlock(&load_lock);
	if (!fn)
		return -ENOENT;
	image = fn(&load, &entry, &size);
	if (!image || !size)
		return -ENOENT;
	memset(k, 0, sizeof(*k));
	k->source = VMM_KERNEL_FLAT;
	k->image = image;
	k->size = size;
	k->load_addr = load;
	k->entry = entry;
	return 0;
}
