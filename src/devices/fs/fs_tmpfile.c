/* FUSE_TMPFILE (linux/fuse.h 7.37): an unnamed regular file in a directory, open(O_TMPFILE). */
#define LOG_MODULE "fs"
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/*
 * The host file is made the same way, relative to the parent's O_PATH handle (no path walk
 * beyond "."), and is as linkable as the guest's: O_EXCL (never linkable) is passed on. The
 * access mode is the host's view of the guest's (fs_file_host_flags: with the writeback
 * cache the guest reads pages of write-only files too). The guest kernel sends a placeholder
 * name ("/", from vfs_tmpfile) after fuse_create_in; there is no name to honour: ignored.
 */
static int open_tmpfile(struct fs *fs, struct fs_inode *parent, const struct fuse_create_in *in)
{
	const int keep = FS_OPEN_GUEST_FLAGS | O_EXCL;
	int fd;

	if (!S_ISDIR(parent->type))
		return -ENOTDIR;
	fd = openat(parent->fd, ".", (fs_file_host_flags(fs, (int)in->flags) & keep) | O_TMPFILE |
		    O_CLOEXEC | O_NOCTTY, in->mode & 07777);
	if (fd < 0)
		return errno == EMFILE ? -ENFILE : -errno;
	return fs_inode_fd_guard(fs, fd);
}

/* Owner and mode as CREATE sets them, then the inode (one lookup) and a handle on fd. */
static int register_tmpfile(struct fs_req *req, struct fs_inode *parent, int fd,
			    const struct fuse_create_in *in, struct fuse_entry_out *e,
			    struct fuse_open_out *o)
{
	struct fs_inode *inode;
	struct stat st;
	uint64_t nodeid;
	int ret;

	if (fstat(fd, &st)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	fs_entry_own_new(req, parent, fd, &st, S_IFREG | (in->mode & 07777));
	ret = fs_inode_adopt(req->fs, fd, &nodeid, &st);
	if (ret) {
		close(fd);
		return ret;
	}
	inode = fs_inode_get(req->fs, nodeid);
	ret = inode ? fs_fh_new(req->fs, fd, inode, &o->fh) : -ENOENT;   /* consumes fd */
	if (!inode)
		close(fd);
	if (ret) {
		fs_inode_forget(req->fs, nodeid, 1);
		return ret;
	}
	o->open_flags = req->fs->open_flags;
	fs_fill_entry(req->fs, e, nodeid, &st);
	return 0;
}

ssize_t fs_tmpfile_create(struct fs_req *req)
{
	const struct fuse_create_in *in = (const void *)req->arg;
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out = { 0 };
	struct fs_inode *parent;
	int fd, ret;

	if ((in->mode & S_IFMT) && !S_ISREG(in->mode))
		return fs_reply_err(req, -EINVAL);
	parent = fs_inode_get(req->fs, req->hdr.nodeid);
	if (!parent)
		return fs_reply_err(req, -ENOENT);
	fd = open_tmpfile(req->fs, parent, in);
	ret = fd < 0 ? fd : register_tmpfile(req, parent, fd, in, &out.e, &out.o);
	fs_inode_put(req->fs, parent);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, &out, sizeof(out));
}
