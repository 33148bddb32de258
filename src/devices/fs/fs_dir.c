/* FUSE handlers for directories: opendir, readdir and readdirplus (getdents64), release, fsync. */
#define LOG_MODULE "fs"
#include "devices/fs/fs_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

/* The largest READDIR reply we build; the guest asks for a page or a few. */
#define DIR_REPLY_MAX (128 * 1024)

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

ssize_t fs_dir_opendir(struct fs_req *req)
{
	struct fs_inode *inode = fs_inode_get(req->fs, req->hdr.nodeid);
	struct fuse_open_out out = { 0 };
	int fd, ret;

	if (!inode)
		return fs_reply_err(req, -ENOENT);
	fd = S_ISDIR(inode->type) ? fs_inode_reopen(req->fs, inode, O_RDONLY | O_DIRECTORY) :
				    -ENOTDIR;
	if (fd < 0) {
		fs_inode_put(req->fs, inode);
		return fs_reply_err(req, fd);
	}
	ret = fs_fh_new(req->fs, fd, inode, &out.fh);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, &out, sizeof(out));
}

struct dir_fill {
	struct fs_req *req;
	struct fs_fh *fh;
	bool plus;
	uint8_t *buf;
	size_t len, cap;
};

/* READDIRPLUS: the entry counts as a lookup unless it is "." or ".." (linux/fuse.h). */
static void plus_entry(struct dir_fill *f, const struct linux_dirent64 *d,
		       struct fuse_entry_out *e)
{
	struct stat st;
	uint64_t nodeid;

	memset(e, 0, sizeof(*e));
	e->attr.ino = d->d_ino;
	e->attr.mode = (uint32_t)d->d_type << 12;
	if (fs_name_is_dot(d->d_name))
		return;
	/* Shadowed by a virtual file: no attributes, the guest will LOOKUP it instead. */
	if (f->fh->inode->idx == FUSE_ROOT_ID && fs_vfile_find(f->req->fs, d->d_name) >= 0)
		return;
	if (fs_inode_lookup(f->req->fs, f->fh->inode, d->d_name, &nodeid, &st) == 0)
		fs_fill_entry(f->req->fs, e, nodeid, &st);
}

/* Appends one entry; false when it does not fit (the caller stops there). */
static bool add_entry(struct dir_fill *f, const struct linux_dirent64 *d)
{
	size_t namelen = strlen(d->d_name);
	/* FUSE_DIRENT_ALIGN from linux/fuse.h: records are 8-byte aligned. */
	size_t size = FUSE_DIRENT_ALIGN((f->plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET) +
					namelen);
	struct fuse_dirent *de;

	if (f->len + size > f->cap)
		return false;
	memset(f->buf + f->len, 0, size);
	if (f->plus) {
		struct fuse_direntplus *dp = (void *)(f->buf + f->len);
		plus_entry(f, d, &dp->entry_out);
		de = &dp->dirent;
	} else {
		de = (void *)(f->buf + f->len);
	}
	de->ino = d->d_ino;
	de->off = (uint64_t)d->d_off;
	de->namelen = (uint32_t)namelen;
	de->type = d->d_type;
	memcpy(de->name, d->d_name, namelen);
	f->len += size;
	return true;
}

/* Under fh->dir_lock: fill from the fd's position, leaving it after the last entry sent. */
static int fill(struct dir_fill *f, uint64_t offset)
{
	char raw[16384] __attribute__((aligned(8)));
	int fd = f->fh->fd;
	int64_t pos = (int64_t)offset;

	if (f->fh->dir_pos != offset && lseek(fd, (off_t)offset, SEEK_SET) < 0)
		return -errno;
	for (;;) {
		long n = syscall(SYS_getdents64, fd, raw, sizeof(raw));
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		for (long i = 0; i < n;) {
			const struct linux_dirent64 *d = (const void *)(raw + i);
			if (!add_entry(f, d))
				goto full;
			pos = d->d_off;
			i += d->d_reclen;
		}
	}
full:
	/* getdents may have read past what fit: rewind to just after the last entry sent. */
	if (lseek(fd, (off_t)pos, SEEK_SET) < 0)
		return -errno;
	f->fh->dir_pos = (uint64_t)pos;
	return 0;
}

static ssize_t readdir_common(struct fs_req *req, bool plus)
{
	const struct fuse_read_in *in = (const void *)req->arg;
	struct dir_fill f = { .req = req, .plus = plus };
	ssize_t ret;
	int err;

	f.cap = in->size;
	if (f.cap > req->out_len - sizeof(struct fuse_out_header))
		f.cap = req->out_len - sizeof(struct fuse_out_header);
	if (f.cap > DIR_REPLY_MAX)
		f.cap = DIR_REPLY_MAX;
	f.fh = fs_fh_get(req->fs, in->fh);
	if (!f.fh)
		return fs_reply_err(req, -EBADF);
	f.buf = malloc(f.cap ? f.cap : 1);
	if (!f.buf) {
		fs_fh_put(req->fs, f.fh);
		return fs_reply_err(req, -ENOMEM);
	}
	pthread_mutex_lock(&f.fh->dir_lock);
	err = fill(&f, in->offset);
	pthread_mutex_unlock(&f.fh->dir_lock);
	ret = err ? fs_reply_err(req, err) : fs_reply(req, f.buf, f.len);
	free(f.buf);
	fs_fh_put(req->fs, f.fh);
	return ret;
}

ssize_t fs_dir_readdir(struct fs_req *req)
{
	return readdir_common(req, false);
}

ssize_t fs_dir_readdirplus(struct fs_req *req)
{
	return readdir_common(req, true);
}
