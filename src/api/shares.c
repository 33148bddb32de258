/* krun_* calls that share host directories: the root, tagged virtio-fs shares, volumes. */
#include "api/api.h"
#include "api/ctx.h"
#include "api/strv.h"
#include "common/krun_init.h"
#include "devices/fs/virtio_fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* An existing host directory; *out is its canonical path (stable if the cwd changes). */
static int host_dir(const char *path, char **out)
{
	struct stat st;

	*out = NULL;    /* defined on every path, whatever errno holds */
	if (!path || !*path)
		return -EINVAL;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*out = realpath(path, NULL);
	return *out ? 0 : -errno;
}

static int set_root(uint32_t ctx_id, char *dir, bool read_only)
{
	struct krun_ctx *c = ctx_lock(ctx_id);

	if (!c) {
		free(dir);
		return -ENOENT;
	}
	free(c->root_path);
	c->root_path = dir;
	c->root_read_only = read_only;
	ctx_unlock();
	return 0;
}

int32_t krun_set_root(uint32_t ctx_id, const char *root_path)
{
	char *dir;
	int ret = host_dir(root_path, &dir);

	return ret ? ret : set_root(ctx_id, dir, false);
}

static bool tag_used(const struct krun_ctx *c, const char *tag)
{
	unsigned int i;

	for (i = 0; i < c->nr_shares; i++)
		if (!strcmp(c->shares[i].tag, tag))
			return true;
	return false;
}

static int add_share_locked(struct krun_ctx *c, const char *tag, char *dir, bool read_only)
{
	struct ctx_share *grown;
	char *tag_copy;

	if (tag_used(c, tag))
		return -EEXIST;
	tag_copy = strdup(tag);
	if (!tag_copy)
		return -ENOMEM;
	grown = realloc(c->shares, (c->nr_shares + 1) * sizeof(*grown));
	if (!grown) {
		free(tag_copy);
		return -ENOMEM;
	}
	c->shares = grown;
	grown[c->nr_shares].tag = tag_copy;
	grown[c->nr_shares].host_path = dir;
	grown[c->nr_shares].read_only = read_only;
	c->nr_shares++;
	return 0;
}

int32_t krun_add_virtiofs3(uint32_t ctx_id, const char *c_tag, const char *c_path,
			   uint64_t shm_size, bool read_only)
{
	struct krun_ctx *c;
	char *dir;
	int ret;

	(void)shm_size; /* no DAX window: the guest reads through the FUSE queue */
	if (!c_tag || !*c_tag || strlen(c_tag) > VIRTIO_FS_TAG_MAX)
		return -EINVAL;
	/* Our own root tag would clash with the share the root is exported under. */
	if (!strcmp(c_tag, KRUN_ROOT_TAG))
		return -EINVAL;
	ret = host_dir(c_path, &dir);
	if (ret)
		return ret;
	if (!strcmp(c_tag, KRUN_FS_ROOT_TAG))
		return set_root(ctx_id, dir, read_only);
	c = ctx_lock(ctx_id);
	if (!c) {
		free(dir);
		return -ENOENT;
	}
	ret = add_share_locked(c, c_tag, dir, read_only);
	ctx_unlock();
	if (ret)
		free(dir);
	return ret;
}

int32_t krun_add_virtiofs2(uint32_t ctx_id, const char *c_tag, const char *c_path,
			   uint64_t shm_size)
{
	return krun_add_virtiofs3(ctx_id, c_tag, c_path, shm_size, false);
}

int32_t krun_add_virtiofs(uint32_t ctx_id, const char *c_tag, const char *c_path)
{
	return krun_add_virtiofs3(ctx_id, c_tag, c_path, 0, false);
}

static void free_volumes(struct ctx_volume *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].host_path);
		free(v[i].guest_path);
	}
	free(v);
}

/* "HOST:GUEST" split at the first ':'; both absolute, HOST a directory, GUEST not "/". */
static int parse_volume(const char *s, struct ctx_volume *out)
{
	const char *colon = strchr(s, ':');
	char *host;
	int ret;

	if (!colon || s[0] != '/' || colon[1] != '/' || !colon[2])
		return -EINVAL;
	host = strndup(s, (size_t)(colon - s));
	if (!host)
		return -ENOMEM;
	ret = host_dir(host, &out->host_path);
	free(host);
	if (ret)
		return ret;
	out->guest_path = strdup(colon + 1);
	if (!out->guest_path) {
		free(out->host_path);
		return -ENOMEM;
	}
	return 0;
}

static int parse_volumes(const char *const *in, struct ctx_volume **out, size_t *nr)
{
	struct ctx_volume *v;
	size_t n, i;
	int ret = strv_count(in, API_MAX_ARGS, &n);

	if (ret)
		return ret;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		ret = parse_volume(in[i], &v[i]);
		if (ret) {
			free_volumes(v, i);
			return ret;
		}
	}
	*out = v;
	*nr = n;
	return 0;
}

int32_t krun_set_mapped_volumes(uint32_t ctx_id, const char *const mapped_volumes[])
{
	struct ctx_volume *v, *old;
	struct krun_ctx *c;
	size_t n, old_n;
	int ret;

	if (!mapped_volumes)
		return -EINVAL;
	ret = parse_volumes(mapped_volumes, &v, &n);
	if (ret)
		return ret;
	c = ctx_lock(ctx_id);
	if (!c) {
		free_volumes(v, n);
		return -ENOENT;
	}
	old = c->volumes;
	old_n = c->nr_volumes;
	c->volumes = v;
	c->nr_volumes = (unsigned int)n;
	ctx_unlock();
	free_volumes(old, old_n);
	return 0;
}
