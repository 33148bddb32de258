/* Helpers for the fs unit tests: build FUSE requests by hand and run them through fs_handle. */
#ifndef KRUN_TESTS_TEST_FS_UTIL_H
#define KRUN_TESTS_TEST_FS_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/fs/fs.h"

#define T_BUF (1 << 20)

/* One reply: header and payload as fs_handle wrote them. */
struct t_reply {
	ssize_t ret;                /* fs_handle's return value */
	struct fuse_out_header h;
	uint8_t *data;              /* points into t_out */
};

static uint8_t t_in[T_BUF + 4096], t_out[T_BUF + 4096];
static uint64_t t_unique = 100;

/* Request = header + a + b + c (any may be NULL); reply into t_out (out_len bytes offered). */
static inline struct t_reply t_call3(struct fs *fs, uint32_t op, uint64_t nodeid,
				     const void *a, size_t alen, const void *b, size_t blen,
				     const void *c, size_t clen, size_t out_len)
{
	struct fuse_in_header *h = (void *)t_in;
	struct iovec in = { t_in, sizeof(*h) + alen + blen + clen }, out = { t_out, out_len };
	struct t_reply r = { 0 };

	memset(h, 0, sizeof(*h));
	h->len = (uint32_t)in.iov_len;
	h->opcode = op;
	h->unique = ++t_unique;
	h->nodeid = nodeid;
	h->uid = getuid();
	h->gid = getgid();
	if (alen)
		memcpy(t_in + sizeof(*h), a, alen);
	if (blen)
		memcpy(t_in + sizeof(*h) + alen, b, blen);
	if (clen)
		memcpy(t_in + sizeof(*h) + alen + blen, c, clen);
	memset(t_out, 0xa5, sizeof(struct fuse_out_header));
	r.ret = fs_handle(fs, &in, 1, &out, 1);
	memcpy(&r.h, t_out, sizeof(r.h));
	r.data = t_out + sizeof(r.h);
	return r;
}

static inline struct t_reply t_call(struct fs *fs, uint32_t op, uint64_t nodeid, const void *a,
				    size_t alen, const void *b, size_t blen)
{
	return t_call3(fs, op, nodeid, a, alen, b, blen, NULL, 0, T_BUF);
}

/* The reply's error, checking the header is consistent with what fs_handle returned. */
static inline int t_err(struct t_reply r)
{
	if (r.ret < 0)
		return (int)r.ret;
	if (r.ret != r.h.len || r.h.unique != t_unique)
		return 1000;    /* inconsistent reply: no errno has this value */
	return r.h.error;
}

static inline struct fs *t_fs_new(const char *root, bool ro, const struct fs_vfile *vf,
				  unsigned int nvf)
{
	struct fs_config cfg = { .root_dir = root, .read_only = ro, .vfiles = vf, .nr_vfiles = nvf };
	struct fuse_init_in in = { .major = 7, .minor = 38, .max_readahead = 65536,
				   .flags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_POSIX_LOCKS |
					    FUSE_FLOCK_LOCKS | FUSE_MAX_PAGES };
	struct fs *fs = NULL;

	if (fs_create(&cfg, &fs))
		return NULL;
	if (t_err(t_call(fs, FUSE_INIT, 0, &in, sizeof(in), NULL, 0))) {
		fs_destroy(fs);
		return NULL;
	}
	return fs;
}

static inline int t_lookup(struct fs *fs, uint64_t parent, const char *name,
			   struct fuse_entry_out *e)
{
	struct t_reply r = t_call(fs, FUSE_LOOKUP, parent, name, strlen(name) + 1, NULL, 0);
	int err = t_err(r);

	/* Node id 0: a negative entry (cached miss), the same answer as ENOENT. */
	if (!err && ((struct fuse_entry_out *)r.data)->nodeid == 0)
		return -ENOENT;
	if (!err && e)
		memcpy(e, r.data, sizeof(*e));
	return err;
}

static inline int t_getattr(struct fs *fs, uint64_t nodeid, struct fuse_attr *a)
{
	struct fuse_getattr_in in = { 0 };
	struct t_reply r = t_call(fs, FUSE_GETATTR, nodeid, &in, sizeof(in), NULL, 0);
	int err = t_err(r);

	if (!err && a)
		memcpy(a, &((struct fuse_attr_out *)r.data)->attr, sizeof(*a));
	return err;
}

static inline void t_forget(struct fs *fs, uint64_t nodeid, uint64_t n)
{
	struct fuse_forget_in in = { .nlookup = n };

	t_call3(fs, FUSE_FORGET, nodeid, &in, sizeof(in), NULL, 0, NULL, 0, 0);
}

static inline int t_open(struct fs *fs, uint32_t op, uint64_t nodeid, uint32_t flags,
			 uint64_t *fh, uint32_t *open_flags)
{
	struct fuse_open_in in = { .flags = flags };
	struct t_reply r = t_call(fs, op, nodeid, &in, sizeof(in), NULL, 0);
	int err = t_err(r);

	if (!err) {
		*fh = ((struct fuse_open_out *)r.data)->fh;
		if (open_flags)
			*open_flags = ((struct fuse_open_out *)r.data)->open_flags;
	}
	return err;
}

static inline int t_release(struct fs *fs, uint32_t op, uint64_t nodeid, uint64_t fh)
{
	struct fuse_release_in in = { .fh = fh };

	return t_err(t_call(fs, op, nodeid, &in, sizeof(in), NULL, 0));
}

/* Bytes read (copied to buf) or a negative error. */
static inline int t_read(struct fs *fs, uint32_t op, uint64_t nodeid, uint64_t fh, uint64_t off,
			 uint32_t size, void *buf)
{
	struct fuse_read_in in = { .fh = fh, .offset = off, .size = size };
	struct t_reply r = t_call(fs, op, nodeid, &in, sizeof(in), NULL, 0);
	int err = t_err(r);

	if (err)
		return err;
	memcpy(buf, r.data, r.h.len - sizeof(r.h));
	return (int)(r.h.len - sizeof(r.h));
}

static inline int t_write(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t off,
			  const void *buf, uint32_t size)
{
	struct fuse_write_in in = { .fh = fh, .offset = off, .size = size };
	struct t_reply r = t_call(fs, FUSE_WRITE, nodeid, &in, sizeof(in), buf, size);
	int err = t_err(r);

	return err ? err : (int)((struct fuse_write_out *)r.data)->size;
}

static inline char *t_scratch(void)
{
	char tmpl[] = "/tmp/krun_fs_test.XXXXXX", *d = mkdtemp(tmpl);

	return d ? strdup(d) : NULL;
}

/* A fresh share directory inside scratch in buf: share1, share2, ... (one counter per test
 * binary); buf, or NULL if it cannot be made. */
static inline const char *t_share_make(char *buf, size_t size, const char *scratch)
{
	static unsigned int n;

	snprintf(buf, size, "%s/share%u", scratch, ++n);
	return mkdir(buf, 0755) ? NULL : buf;
}

static inline void t_rmrf(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

static inline void t_put_file(const char *dir, const char *name, const char *content)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(content, f);
		fclose(f);
	}
}

#endif
