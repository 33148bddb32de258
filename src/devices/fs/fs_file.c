/* FUSE handlers for regular files: open/create, read/write, flush/release, fsync and friends. */
#define LOG_MODULE "fs"
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/iov.h"
#include "util/log.h"

/* Enough segments for max_pages plus header pieces; a longer chain is served partially. */
#define IO_SEGS (FS_MAX_PAGES + 8)

static bool wants_write(uint32_t flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/*
 * With FUSE_WRITEBACK_CACHE the guest kernel writes whole pages from its page cache: it
 * reads the rest of a partly written page through any open handle, write-only ones included,
 * and it places appends itself (the offset of every WRITE is final, while pwritev on an
 * O_APPEND fd would ignore it).
 */
int fs_file_host_flags(struct fs *fs, int flags)
{
	if (!fs->writeback)
		return flags;
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags & ~O_APPEND;
}

/* A file we may write but not read (mode 0200, no CAP_DAC_OVERRIDE) still opens write-only;
 * only a partial-page write through it then fails. */
static int reopen_file(struct fs *fs, struct fs_inode *inode, int flags)
{
	int host = fs_file_host_flags(fs, flags);
	int fd = fs_inode_reopen(fs, inode, host);

	if (fd == -EACCES && host != flags)
		fd = fs_inode_reopen(fs, inode, flags & ~O_APPEND);
	return fd;
}

static ssize_t reply_open(struct fs_req *req, uint64_t fh, uint32_t open_flags)
{
	struct fuse_open_out out = { .fh = fh, .open_flags = open_flags };

	return fs_reply(req, &out, sizeof(out));
}

/*
 * FUSE_OPEN_KILL_SUIDGID (linux/fuse.h) comes with O_TRUNC from a caller without
 * CAP_FSETID: the truncation must drop suid/sgid (fs_inode_kill_suidgid). Takes fd (or an
 * error) and returns it, or closes it and returns the error.
 */
static int trunc_kill(struct fs *fs, struct fs_inode *inode, int fd, uint32_t flags,
		      uint32_t open_flags)
{
	int ret;

	if (fd < 0 || !(flags & O_TRUNC) || !(open_flags & FUSE_OPEN_KILL_SUIDGID))
		return fd;
	ret = fs_inode_kill_suidgid(fs, inode, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

ssize_t fs_file_open(struct fs_req *req)
{
	const struct fuse_open_in *in = (const void *)req->arg;
	struct fs_inode *inode;
	uint64_t fh;
	int fd, ret;

	if (req->fs->read_only && wants_write(in->flags))
		return fs_reply_err(req, -EROFS);
	inode = fs_inode_get(req->fs, req->hdr.nodeid);
	if (!inode)
		return fs_reply_err(req, -ENOENT);
	if (S_ISDIR(inode->type) && (in->flags & O_ACCMODE) != O_RDONLY)
		fd = -EISDIR;
	else
		fd = trunc_kill(req->fs, inode, reopen_file(req->fs, inode, (int)in->flags),
				in->flags, in->open_flags);
	if (fd < 0) {
		fs_inode_put(req->fs, inode);
		return fs_reply_err(req, fd);
	}
	ret = fs_fh_new(req->fs, fd, inode, &fh);   /* consumes fd and the inode ref */
	return ret ? fs_reply_err(req, ret) : reply_open(req, fh, req->fs->open_flags);
}

/*
 * O_CREAT|O_EXCL|O_NOFOLLOW first: it never follows a symlink and never opens an existing
 * node. If the name exists and the guest did not ask for O_EXCL, the existing file is
 * looked up without following and reopened by inode, which refuses symlinks and devices.
 */
static int create_open(struct fs *fs, struct fs_inode *parent, const char *name,
		       const struct fuse_create_in *in, bool *created)
{
	const int keep = FS_OPEN_GUEST_FLAGS | O_TRUNC;
	struct fs_inode *inode;
	struct stat st;
	uint64_t nodeid;
	int fd, ret;

	fd = openat(parent->fd, name, (fs_file_host_flags(fs, (int)in->flags) & keep) | O_CREAT |
		    O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, in->mode & 07777);
	*created = fd >= 0;
	if (fd >= 0 || errno != EEXIST || (in->flags & O_EXCL))
		return fd >= 0 ? fs_inode_fd_guard(fs, fd) : -errno;
	ret = fs_inode_lookup(fs, parent, name, &nodeid, &st);
	if (ret)
		return ret;
	inode = fs_inode_get(fs, nodeid);
	/* A new file keeps its mode: O_TRUNC only truncates (and kills) an existing one. */
	fd = inode ? trunc_kill(fs, inode, reopen_file(fs, inode, (int)in->flags), in->flags,
				in->open_flags) : -ENOENT;
	fs_inode_put(fs, inode);
	fs_inode_forget(fs, nodeid, 1);     /* fs_entry_new takes the guest's reference */
	return fd;
}

ssize_t fs_file_create(struct fs_req *req)
{
	const struct fuse_create_in *in = (const void *)req->arg;
	const char *name = fs_arg_name(req, sizeof(*in), NULL);
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out = { 0 };
	struct fs_inode *parent, *inode = NULL;
	bool created = false;
	int fd, ret;

	if (!name || fs_name_is_dot(name) || ((in->mode & S_IFMT) && !S_ISREG(in->mode)))
		return fs_reply_err(req, -EINVAL);
	if (req->hdr.nodeid == FUSE_ROOT_ID && fs_vfile_find(req->fs, name) >= 0)
		return fs_reply_err(req, -EEXIST);
	parent = fs_inode_get(req->fs, req->hdr.nodeid);
	if (!parent)
		return fs_reply_err(req, -ENOENT);
	fd = S_ISDIR(parent->type) ? create_open(req->fs, parent, name, in, &created) : -ENOTDIR;
	/* Owner and mode are set only on a file we created, never on an existing one. */
	ret = fd < 0 ? fd : fs_entry_new(req, parent, name, created ?
					 S_IFREG | (in->mode & 07777) : (mode_t)-1, &out.e);
	fs_inode_put(req->fs, parent);
	if (!ret) {
		inode = fs_inode_get(req->fs, out.e.nodeid);
		ret = inode ? fs_fh_new(req->fs, fd, inode, &out.o.fh) : -ENOENT;
		out.o.open_flags = req->fs->open_flags;
		fd = -1;
		if (ret)
			fs_inode_forget(req->fs, out.e.nodeid, 1);
	}
	if (fd >= 0)
		close(fd);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, &out, sizeof(out));
}

ssize_t fs_file_read(struct fs_req *req)
{
	const struct fuse_read_in *in = (const void *)req->arg;
	struct fuse_out_header h = { .unique = req->hdr.unique };
	struct iovec iov[IO_SEGS];
	size_t size = in->size;
	struct fs_fh *fh;
	unsigned int n;
	ssize_t got;

	if (in->offset > INT64_MAX)
		return fs_reply_err(req, -EINVAL);
	fh = fs_fh_get(req->fs, in->fh);
	if (!fh)
		return fs_reply_err(req, -EBADF);
	if (size > req->out_len - sizeof(h))
		size = req->out_len - sizeof(h);
	if (size > FS_MAX_WRITE)
		size = FS_MAX_WRITE;
	/* Straight into the guest's buffers: no bounce copy for file data. */
	n = iov_slice(req->out, req->out_cnt, sizeof(h), size, iov, IO_SEGS);
	got = n ? preadv(fh->fd, iov, (int)n, (off_t)in->offset) : 0;
	if (got < 0)
		got = -errno;
	fs_fh_put(req->fs, fh);
	if (got < 0)
		return fs_reply_err(req, (int)got);
	h.len = sizeof(h) + (uint32_t)got;
	iov_from_buf(req->out, req->out_cnt, 0, &h, sizeof(h));
	return h.len;
}

ssize_t fs_file_write(struct fs_req *req)
{
	const struct fuse_write_in *in = (const void *)req->arg;
	size_t start = sizeof(struct fuse_in_header) + sizeof(*in);
	struct fuse_write_out out = { 0 };
	struct iovec iov[IO_SEGS];
	struct fs_fh *fh;
	unsigned int n;
	ssize_t done;

	/* linux/fuse.h: the payload follows fuse_write_in and is exactly `size` bytes. */
	if (in->size > req->hdr.len - start || in->size > FS_MAX_WRITE || in->offset > INT64_MAX)
		return fs_reply_err(req, -EINVAL);
	fh = fs_fh_get(req->fs, in->fh);
	if (!fh)
		return fs_reply_err(req, -EBADF);
	/* Like the VFS (file_remove_privs), privileges go before the data is written. */
	done = in->write_flags & FUSE_WRITE_KILL_SUIDGID ?
	       fs_inode_kill_suidgid(req->fs, fh->inode, fh->fd) : 0;
	n = iov_slice(req->in, req->in_cnt, start, in->size, iov, IO_SEGS);
	if (!done && n && (done = pwritev(fh->fd, iov, (int)n, (off_t)in->offset)) < 0)
		done = -errno;
	fs_fh_put(req->fs, fh);
	if (done < 0)
		return fs_reply_err(req, (int)done);
	out.size = (uint32_t)done;
	return fs_reply(req, &out, sizeof(out));
}

ssize_t fs_file_flush(struct fs_req *req)
{
	const struct fuse_flush_in *in = (const void *)req->arg;
	struct fs_fh *fh = fs_fh_get(req->fs, in->fh);

	if (!fh)
		return fs_reply_err(req, -EBADF);
	/* close(2) semantics: a process closing any fd of a file drops its POSIX locks. */
	fs_lock_drop_owner(req->fs, fh->inode, in->lock_owner);
	fs_fh_put(req->fs, fh);
	return fs_reply(req, NULL, 0);
}

ssize_t fs_file_release(struct fs_req *req)
{
	const struct fuse_release_in *in = (const void *)req->arg;
	int ret = fs_fh_release(req->fs, in->fh);

	return ret ? fs_reply_err(req, ret) : fs_reply(req, NULL, 0);
}

ssize_t fs_file_fsync(struct fs_req *req)
{
	const struct fuse_fsync_in *in = (const void *)req->arg;
	struct fs_fh *fh = fs_fh_get(req->fs, in->fh);
	int ret;

	if (!fh)
		return fs_reply_err(req, -EBADF);
	ret = (in->fsync_flags & FUSE_FSYNC_FDATASYNC) ? fdatasync(fh->fd) : fsync(fh->fd);
	ret = ret ? -errno : 0;
	fs_fh_put(req->fs, fh);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, NULL, 0);
}

ssize_t fs_file_fallocate(struct fs_req *req)
{
	const struct fuse_fallocate_in *in = (const void *)req->arg;
	struct fs_fh *fh;
	int ret = 0;

	if (in->offset > INT64_MAX || in->length > INT64_MAX)
		return fs_reply_err(req, -EINVAL);
	fh = fs_fh_get(req->fs, in->fh);
	if (!fh)
		return fs_reply_err(req, -EBADF);
	if (fallocate(fh->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length))
		ret = -errno;
	fs_fh_put(req->fs, fh);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, NULL, 0);
}

ssize_t fs_file_lseek(struct fs_req *req)
{
	const struct fuse_lseek_in *in = (const void *)req->arg;
	struct fuse_lseek_out out;
	struct fs_fh *fh;
	off_t off;

	if (in->whence != SEEK_DATA && in->whence != SEEK_HOLE && in->whence != SEEK_SET &&
	    in->whence != SEEK_END && in->whence != SEEK_CUR)
		return fs_reply_err(req, -EINVAL);
	fh = fs_fh_get(req->fs, in->fh);
	if (!fh)
		return fs_reply_err(req, -EBADF);
	/* The fd position is unused by reads and writes (pread/pwrite), so moving it is harmless. */
	off = lseek(fh->fd, (off_t)in->offset, (int)in->whence);
	if (off < 0)
		off = -errno;
	fs_fh_put(req->fs, fh);
	if (off < 0)
		return fs_reply_err(req, (int)off);
	out.offset = (uint64_t)off;
	return fs_reply(req, &out, sizeof(out));
}

ssize_t fs_file_copy_file_range(struct fs_req *req)
{
	const struct fuse_copy_file_range_in *in = (const void *)req->arg;
	struct fuse_write_out out = { 0 };
	struct fs_fh *src, *dst;
	loff_t off_in = (loff_t)in->off_in, off_out = (loff_t)in->off_out;
	ssize_t n = 0;

	if (in->flags || in->off_in > INT64_MAX || in->off_out > INT64_MAX)
		return fs_reply_err(req, -EINVAL);
	src = fs_fh_get(req->fs, in->fh_in);
	dst = fs_fh_get(req->fs, in->fh_out);
	if (!src || !dst)
		n = -EBADF;
	else
		n = copy_file_range(src->fd, &off_in, dst->fd, &off_out,
				    in->len > UINT32_MAX ? UINT32_MAX : in->len, 0);
	if (n == -1)
		n = -errno;
	if (src)
		fs_fh_put(req->fs, src);
	if (dst)
		fs_fh_put(req->fs, dst);
	if (n < 0)
		return fs_reply_err(req, (int)n);
	out.size = (uint32_t)n;
	return fs_reply(req, &out, sizeof(out));
}

ssize_t fs_file_syncfs(struct fs_req *req)
{
	struct fs_inode *root = fs_inode_get(req->fs, FUSE_ROOT_ID);
	int fd = fs_inode_reopen(req->fs, root, O_RDONLY | O_DIRECTORY), ret = 0;

	fs_inode_put(req->fs, root);
	if (fd < 0)
		return fs_reply_err(req, fd);
	if (syncfs(fd))
		ret = -errno;
	close(fd);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, NULL, 0);
}
