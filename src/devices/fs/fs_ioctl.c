/*
 * FUSE_IOCTL (linux/fuse.h fuse_ioctl_in/out), limited to the file attribute ioctls.
 *
 * The guest kernel never forwards FS_IOC_GETFLAGS/SETFLAGS/FSGETXATTR/FSSETXATTR from its
 * callers as they are: the VFS turns them into fileattr_get/set, and fuse (fs/fuse/ioctl.c
 * fuse_priv_ioctl) sends a restricted FUSE_IOCTL on a handle of its own, with exactly
 * sizeof(unsigned int) or sizeof(struct fsxattr) bytes in or out. Those four are served on
 * the host file or directory the handle holds (regular files and directories only, see
 * fs_inode_reopen); any other command gets ENOTTY, and unrestricted ioctls (CUSE's, whose
 * buffers the server would have to describe) are refused.
 */
#define LOG_MODULE "fs"
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"

struct ioctl_rule {
	uint32_t cmd;
	uint32_t in_size, out_size;
};

static const struct ioctl_rule rules[] = {
	{ FS_IOC_GETFLAGS, 0, sizeof(unsigned int) },
	{ FS_IOC_SETFLAGS, sizeof(unsigned int), 0 },
	{ FS_IOC_FSGETXATTR, 0, sizeof(struct fsxattr) },
	{ FS_IOC_FSSETXATTR, sizeof(struct fsxattr), 0 },
};

union ioctl_buf {
	unsigned int flags;
	struct fsxattr fsx;
};

static const struct ioctl_rule *find_rule(uint32_t cmd)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].cmd == cmd)
			return &rules[i];
	return NULL;
}

/*
 * Project ids belong to the host's quota administration (the VFS lets only the initial user
 * namespace change them): a guest moving its files to another project would step out of
 * its quota. Extent size hints and the xflags (checked by the host kernel) may change.
 */
static int check_fssetxattr(int fd, const struct fsxattr *want)
{
	struct fsxattr cur;

	if (ioctl(fd, FS_IOC_FSGETXATTR, &cur))
		return -errno;
	return cur.fsx_projid == want->fsx_projid ? 0 : -EPERM;
}

static int run_ioctl(struct fs_req *req, const struct fuse_ioctl_in *in, union ioctl_buf *buf)
{
	struct fs *fs = req->fs;
	struct fs_fh *fh = fs_fh_get(fs, in->fh);
	int ret = 0;

	if (!fh)
		return -EBADF;
	/* The handle must be one the guest opened on this very node. */
	if (fs_inode_nodeid(fs, fh->inode) != req->hdr.nodeid)
		ret = -EBADF;
	else if (in->cmd == FS_IOC_FSSETXATTR)
		ret = check_fssetxattr(fh->fd, &buf->fsx);
	if (!ret && ioctl(fh->fd, in->cmd, buf) < 0)
		ret = -errno;
	fs_fh_put(fs, fh);
	return ret;
}

ssize_t fs_ioctl(struct fs_req *req)
{
	const struct fuse_ioctl_in *in = (const void *)req->arg;
	const struct ioctl_rule *rule = find_rule(in->cmd);
	struct {
		struct fuse_ioctl_out o;
		union ioctl_buf buf;
	} out = { 0 };
	union ioctl_buf buf = { 0 };
	int ret;

	if (in->flags & FUSE_IOCTL_UNRESTRICTED)
		return fs_reply_err(req, -EPERM);
	if (!rule)
		return fs_reply_err(req, -ENOTTY);
	/* Exact sizes: the argument bytes present, and what the guest says it sends and takes. */
	if (in->in_size != rule->in_size || in->out_size != rule->out_size ||
	    req->arg_len - sizeof(*in) != in->in_size) {
		log_warn_guest("ioctl %#x: %u bytes in (%zu sent), %u out", in->cmd, in->in_size,
			       req->arg_len - sizeof(*in), in->out_size);
		return fs_reply_err(req, -EINVAL);
	}
	if (req->out_len < sizeof(struct fuse_out_header) + sizeof(out.o) + rule->out_size)
		return -ENOBUFS;
	if (rule->in_size && req->fs->read_only)
		return fs_reply_err(req, -EROFS);
	memcpy(&buf, req->arg + sizeof(*in), rule->in_size);
	ret = run_ioctl(req, in, &buf);
	if (ret)
		return fs_reply_err(req, ret);
	memcpy(&out.buf, &buf, rule->out_size);
	return fs_reply(req, &out, sizeof(out.o) + rule->out_size);
}
