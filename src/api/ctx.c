/* The context table: create, look up, take and free configuration contexts. */
#include "api/api.h"
#include "api/ctx.h"
#include "api/krunfw.h"
#include "api/strv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define LOG_MODULE "api"
#include "util/log.h"

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct krun_ctx **table;
static size_t table_len, table_cap;
/* IDs are never reused, so a stale ID cannot reach a newer context. */
static uint32_t next_id;

static struct krun_ctx *find(uint32_t id, size_t *idx)
{
	size_t i;

	for (i = 0; i < table_len; i++)
		if (table[i]->id == id) {
			if (idx)
				*idx = i;
			return table[i];
		}
	return NULL;
}

struct krun_ctx *ctx_lock(uint32_t id)
{
	struct krun_ctx *c;

	pthread_mutex_lock(&table_lock);
	c = find(id, NULL);
	if (!c)
		pthread_mutex_unlock(&table_lock);
	return c;
}

void ctx_unlock(void)
{
	pthread_mutex_unlock(&table_lock);
}

static struct krun_ctx *remove_locked(uint32_t id)
{
	size_t i;
	struct krun_ctx *c = find(id, &i);

	if (c)
		table[i] = table[--table_len];
	return c;
}

struct krun_ctx *ctx_take(uint32_t id)
{
	struct krun_ctx *c;

	pthread_mutex_lock(&table_lock);
	c = remove_locked(id);
	pthread_mutex_unlock(&table_lock);
	return c;
}

static void free_shares(struct krun_ctx *c)
{
	unsigned int i;

	for (i = 0; i < c->nr_shares; i++) {
		free(c->shares[i].tag);
		free(c->shares[i].host_path);
	}
	free(c->shares);
	for (i = 0; i < c->nr_volumes; i++) {
		free(c->volumes[i].host_path);
		free(c->volumes[i].guest_path);
	}
	free(c->volumes);
	for (i = 0; i < c->nr_vsock_ports; i++)
		free(c->vsock_ports[i].path);
	free(c->vsock_ports);
}

void ctx_destroy(struct krun_ctx *c, bool keep_efd)
{
	if (!c)
		return;
	free_shares(c);
	free(c->root_path);
	strv_free(c->port_map);
	strv_free(c->rlimits);
	free(c->workdir);
	free(c->exec_path);
	strv_free(c->argv);
	strv_free(c->env);
	free(c->kernel_path);
	free(c->initrd_path);
	free(c->kernel_cmdline);
	free(c->console_output);
	if (c->shutdown_efd >= 0 && !keep_efd)
		close(c->shutdown_efd);
	free(c);
}

static int insert_locked(struct krun_ctx *c)
{
	if (next_id > INT32_MAX)
		return -ENOSPC;
	if (table_len == table_cap) {
		size_t cap = table_cap ? table_cap * 2 : 8;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): a table of pointers, sized as such */
		struct krun_ctx **grown = realloc(table, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		table = grown;
		table_cap = cap;
	}
	c->id = next_id++;
	table[table_len++] = c;
	return (int)c->id;
}

int32_t krun_create_ctx(void)
{
	struct krun_ctx *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->vcpus = CTX_DEFAULT_VCPUS;
	c->ram_mib = CTX_DEFAULT_RAM_MIB;
	c->shutdown_efd = -1;
	/* Now, not at start: callers like crun close fds and switch namespaces in between. */
	if (krunfw_load() < 0)
		log_debug("libkrunfw.so.5 not found; krun_set_kernel will be required");
	pthread_mutex_lock(&table_lock);
	ret = insert_locked(c);
	pthread_mutex_unlock(&table_lock);
	if (ret < 0)
		free(c);
	return ret;
}

int32_t krun_free_ctx(uint32_t ctx_id)
{
	struct krun_ctx *c = ctx_take(ctx_id);

	if (!c)
		return -ENOENT;
	ctx_destroy(c, false);
	return 0;
}

int ctx_replace_strv(uint32_t id, size_t field, char **v)
{
	struct krun_ctx *c = ctx_lock(id);
	char ***slot, **old;

	if (!c) {
		strv_free(v);
		return -ENOENT;
	}
	slot = (char ***)((char *)c + field);
	old = *slot;
	*slot = v;
	ctx_unlock();
	strv_free(old);
	return 0;
}
