/* FUSE extended attribute handlers, applied to the inode through its /proc/self/fd magic link. */
#define LOG_MODULE "fs"
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#define XATTR_MAX (64 * 1024)

/*
 * There are no *at() xattr calls before Linux 6.13 and f*xattr() refuses O_PATH fds, so we
 * use the path /proc/self/fd/N. Resolving it jumps straight to our inode (as in
 * fs_inode_reopen); the jump is final, so even a symlink inode is not followed further.
 */
static void xattr_path(struct fs_inode *inode, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", inode->fd);
}

/* GETXATTR and LISTXATTR: size 0 asks for the length only (linux/fuse.h fuse_getxattr_out). */
static ssize_t get_or_list(struct fs_req *req, const char *name)
{
	const struct fuse_getxattr_in *in = (const void *)req->arg;
	struct fs_inode *inode = fs_inode_get(req->fs, req->hdr.nodeid);
	size_t size = in->size > XATTR_MAX ? XATTR_MAX : in->size;
	char path[64], *buf = NULL;
	ssize_t n;

	if (!inode)
		return fs_reply_err(req, -ENOENT);
	if (size && size > req->out_len - sizeof(struct fuse_out_header)) {
		fs_inode_put(req->fs, inode);
		return fs_reply_err(req, -ERANGE);
	}
	if (size && !(buf = malloc(size))) {
		fs_inode_put(req->fs, inode);
		return fs_reply_err(req, -ENOMEM);
	}
	xattr_path(inode, path, sizeof(path));
	n = name ? getxattr(path, name, buf, size) : listxattr(path, buf, size);
	if (n < 0)
		n = -errno;
	fs_inode_put(req->fs, inode);
	if (n >= 0 && size == 0) {
		struct fuse_getxattr_out out = { .size = (uint32_t)n };
		n = fs_reply(req, &out, sizeof(out));
	} else {
		n = n < 0 ? fs_reply_err(req, (int)n) : fs_reply(req, buf, (size_t)n);
	}
	free(buf);
	return n;
}

static bool xattr_name_ok(const char *name, size_t max)
{
	return name && strnlen(name, max) < max && name[0];
}

ssize_t fs_xattr_get(struct fs_req *req)
{
	const char *name = (const char *)req->arg + sizeof(struct fuse_getxattr_in);
	size_t max = req->arg_len - sizeof(struct fuse_getxattr_in);

	if (!xattr_name_ok(name, max > XATTR_NAME_MAX + 1 ? XATTR_NAME_MAX + 1 : max))
		return fs_reply_err(req, -EINVAL);
	return get_or_list(req, name);
}

ssize_t fs_xattr_list(struct fs_req *req)
{
	return get_or_list(req, NULL);
}

ssize_t fs_xattr_set(struct fs_req *req)
{
	/* Compat layout (no FUSE_SETXATTR_EXT): size, flags, then name\0 and the value. */
	const struct fuse_setxattr_in *in = (const void *)req->arg;
	const char *name = (const char *)req->arg + FUSE_COMPAT_SETXATTR_IN_SIZE;
	size_t max = req->arg_len - FUSE_COMPAT_SETXATTR_IN_SIZE, nlen;
	struct fs_inode *inode;
	char path[64];
	int ret = 0;

	if (!xattr_name_ok(name, max > XATTR_NAME_MAX + 1 ? XATTR_NAME_MAX + 1 : max))
		return fs_reply_err(req, -EINVAL);
	nlen = strlen(name) + 1;
	if (in->size > XATTR_MAX || in->size > max - nlen)
		return fs_reply_err(req, -EINVAL);
	inode = fs_inode_get(req->fs, req->hdr.nodeid);
	if (!inode)
		return fs_reply_err(req, -ENOENT);
	xattr_path(inode, path, sizeof(path));
	if (setxattr(path, name, name + nlen, in->size, (int)in->flags))
		ret = -errno;
	fs_inode_put(req->fs, inode);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, NULL, 0);
}

ssize_t fs_xattr_remove(struct fs_req *req)
{
	const char *name = (const char *)req->arg;
	struct fs_inode *inode;
	char path[64];
	int ret = 0;

	if (!xattr_name_ok(name, req->arg_len > XATTR_NAME_MAX + 1 ? XATTR_NAME_MAX + 1 :
			   req->arg_len))
		return fs_reply_err(req, -EINVAL);
	inode = fs_inode_get(req->fs, req->hdr.nodeid);
	if (!inode)
		return fs_reply_err(req, -ENOENT);
	xattr_path(inode, path, sizeof(path));
	if (removexattr(path, name))
		ret = -errno;
	fs_inode_put(req->fs, inode);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, NULL, 0);
}
