/* Virtual files of the root directory (init binary, config, exit-status sink): never on the host. */
#define LOG_MODULE "fs"
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/iov.h"
#include "util/log.h"

/* Inode numbers the guest sees for virtual files; far above what host file systems hand out. */
#define VFILE_INO_BASE 0xfffffffffff00000ULL

int fs_vfile_find(struct fs *fs, const char *name)
{
	for (unsigned int i = 0; i < fs->nr_vfiles; i++)
		if (fs->vfiles[i].name && strcmp(fs->vfiles[i].name, name) == 0)
			return (int)i;
	return -1;
}

bool fs_vfile_id(uint64_t id)
{
	return id & FS_ID_VFILE;
}

static const struct fs_vfile *vfile_of(struct fs *fs, uint64_t id, unsigned int *idx)
{
	uint64_t i = id & ~FS_ID_VFILE;

	if (!(id & FS_ID_VFILE) || i >= fs->nr_vfiles)
		return NULL;
	if (idx)
		*idx = (unsigned int)i;
	return &fs->vfiles[i];
}

static void vfile_stat(struct fs *fs, const struct fs_vfile *vf, unsigned int idx,
		       struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_atim = st->st_mtim = st->st_ctim = fs->created;
	st->st_ino = VFILE_INO_BASE + idx;
	st->st_mode = S_IFREG | (vf->mode & 07777);
	st->st_nlink = 1;
	st->st_size = vf->data ? (off_t)vf->size : 0;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
}

ssize_t fs_vfile_lookup(struct fs_req *req, int idx)
{
	struct fuse_entry_out e;
	struct stat st;

	/* Not counted: virtual files live as long as the server, FORGET on them is a no-op. */
	vfile_stat(req->fs, &req->fs->vfiles[idx], (unsigned int)idx, &st);
	fs_fill_entry(req->fs, &e, FS_ID_VFILE | (unsigned int)idx, &st);
	return fs_reply(req, &e, sizeof(e));
}

static ssize_t reply_attr(struct fs_req *req)
{
	struct fuse_attr_out out = { .attr_valid = req->fs->attr_valid_ns / 1000000000ULL };
	const struct fs_vfile *vf;
	unsigned int idx;
	struct stat st;

	vf = vfile_of(req->fs, req->hdr.nodeid, &idx);
	if (!vf)
		return fs_reply_err(req, -ENOENT);
	vfile_stat(req->fs, vf, idx, &st);
	fs_fill_attr(&out.attr, &st);
	return fs_reply(req, &out, sizeof(out));
}

ssize_t fs_vfile_getattr(struct fs_req *req)
{
	return reply_attr(req);
}

ssize_t fs_vfile_setattr(struct fs_req *req)
{
	const struct fuse_setattr_in *in = (const void *)req->arg;
	const uint32_t harmless = FATTR_SIZE | FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW |
				  FATTR_MTIME_NOW | FATTR_FH | FATTR_LOCKOWNER | FATTR_CTIME;

	/* Truncating the sink ("> file" in a shell) and touching times are accepted no-ops. */
	if (in->valid & ~harmless)
		return fs_reply_err(req, -EPERM);
	return reply_attr(req);
}

ssize_t fs_vfile_open(struct fs_req *req)
{
	const struct fuse_open_in *in = (const void *)req->arg;
	struct fuse_open_out out = { .fh = req->hdr.nodeid };
	const struct fs_vfile *vf = vfile_of(req->fs, req->hdr.nodeid, NULL);
	uint32_t acc = in->flags & O_ACCMODE;

	if (!vf)
		return fs_reply_err(req, -ENOENT);
	if ((acc != O_RDONLY && !vf->write) || (acc != O_WRONLY && !vf->data))
		return fs_reply_err(req, -EACCES);
	/* Sinks bypass the guest page cache so every write reaches us; data is immutable. */
	out.open_flags = vf->write ? FOPEN_DIRECT_IO : FOPEN_KEEP_CACHE;
	return fs_reply(req, &out, sizeof(out));
}

ssize_t fs_vfile_read(struct fs_req *req)
{
	const struct fuse_read_in *in = (const void *)req->arg;
	const struct fs_vfile *vf = vfile_of(req->fs, in->fh, NULL);
	size_t n = in->size;

	if (!vf || in->fh != req->hdr.nodeid)
		return fs_reply_err(req, -EBADF);
	if (!vf->data)
		return fs_reply_err(req, -EACCES);
	if (in->offset >= vf->size)
		return fs_reply(req, NULL, 0);
	if (n > vf->size - in->offset)
		n = vf->size - in->offset;
	if (n > req->out_len - sizeof(struct fuse_out_header))
		n = req->out_len - sizeof(struct fuse_out_header);
	return fs_reply(req, (const char *)vf->data + in->offset, n);
}

ssize_t fs_vfile_write(struct fs_req *req)
{
	const struct fuse_write_in *in = (const void *)req->arg;
	const struct fs_vfile *vf = vfile_of(req->fs, in->fh, NULL);
	size_t start = sizeof(struct fuse_in_header) + sizeof(*in);
	struct fuse_write_out out = { 0 };
	ssize_t done;
	void *buf;

	if (!vf || in->fh != req->hdr.nodeid)
		return fs_reply_err(req, -EBADF);
	if (!vf->write)
		return fs_reply_err(req, -EACCES);
	if (in->size > req->hdr.len - start || in->size > FS_MAX_WRITE)
		return fs_reply_err(req, -EINVAL);
	/* A private copy: the sink must not see the guest change bytes while it parses them. */
	buf = malloc(in->size ? in->size : 1);
	if (!buf)
		return fs_reply_err(req, -ENOMEM);
	iov_to_buf(req->in, req->in_cnt, start, buf, in->size);
	done = vf->write(vf->opaque, buf, in->size, in->offset);
	free(buf);
	if (done < 0)
		return fs_reply_err(req, (int)done);
	out.size = (uint32_t)(done > in->size ? in->size : done);
	return fs_reply(req, &out, sizeof(out));
}

ssize_t fs_vfile_release(struct fs_req *req)
{
	const struct fuse_release_in *in = (const void *)req->arg;

	if (!vfile_of(req->fs, in->fh, NULL))
		return fs_reply_err(req, -EBADF);
	return fs_reply(req, NULL, 0);
}

ssize_t fs_vfile_readlink(struct fs_req *req)
{
	return fs_reply_err(req, -EINVAL);     /* a regular file, as readlink(2) says */
}

ssize_t fs_vfile_ioctl(struct fs_req *req)
{
	return fs_reply_err(req, -ENOTTY);     /* no file attributes to get or set */
}
