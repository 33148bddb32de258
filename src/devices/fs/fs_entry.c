/* FUSE handlers for names and attributes: lookup/forget, getattr/setattr, create/remove/rename. */
#define LOG_MODULE "fs"
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "util/log.h"

/* Names in the root that belong to virtual files cannot be created or removed on the host. */
static bool vfile_clash(struct fs_req *req, uint64_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && fs_vfile_find(req->fs, name) >= 0;
}

/*
 * A missing name as an entry with node id 0 (linux/fuse.h): the guest caches the miss for
 * the entry timeout like any entry, instead of asking again. Programs probe for missing
 * names all the time (tar unlinks before it creates, exec and library searches), and the
 * create that follows such a probe needs no lookup of its own. A file the host creates
 * under that name shows up when the timeout runs out, as host-side renames and unlinks do.
 */
static ssize_t reply_negative(struct fs_req *req)
{
	struct fuse_entry_out e = {
		.entry_valid = req->fs->entry_valid_ns / 1000000000ULL,
		.entry_valid_nsec = req->fs->entry_valid_ns % 1000000000ULL,
	};

	return fs_reply(req, &e, sizeof(e));
}

ssize_t fs_entry_lookup(struct fs_req *req)
{
	const char *name = fs_arg_name(req, 0, NULL);
	struct fuse_entry_out e;
	struct fs_inode *parent;
	struct stat st;
	uint64_t nodeid;
	int ret, vf;

	if (!name)
		return fs_reply_err(req, -EINVAL);
	if (req->hdr.nodeid == FUSE_ROOT_ID && (vf = fs_vfile_find(req->fs, name)) >= 0)
		return fs_vfile_lookup(req, vf);
	parent = fs_inode_get(req->fs, req->hdr.nodeid);
	if (!parent)
		return fs_reply_err(req, -ENOENT);
	ret = fs_inode_lookup(req->fs, parent, name, &nodeid, &st);
	fs_inode_put(req->fs, parent);
	if (ret == -ENOENT && req->fs->entry_valid_ns)
		return reply_negative(req);
	if (ret)
		return fs_reply_err(req, ret);
	fs_fill_entry(req->fs, &e, nodeid, &st);
	return fs_reply(req, &e, sizeof(e));
}

ssize_t fs_entry_forget(struct fs_req *req)
{
	const struct fuse_forget_in *in = (const void *)req->arg;

	if (!fs_vfile_id(req->hdr.nodeid))
		fs_inode_forget(req->fs, req->hdr.nodeid, in->nlookup);
	return 0;   /* FORGET has no reply */
}

ssize_t fs_entry_batch_forget(struct fs_req *req)
{
	const struct fuse_batch_forget_in *in = (const void *)req->arg;
	size_t room = (req->arg_len - sizeof(*in)) / sizeof(struct fuse_forget_one);
	struct fuse_forget_one one;

	if (in->count > room) {
		log_warn_guest("BATCH_FORGET count %u beyond its %zu entries", in->count, room);
		return 0;
	}
	for (uint32_t i = 0; i < in->count; i++) {
		memcpy(&one, req->arg + sizeof(*in) + i * sizeof(one), sizeof(one));
		if (!fs_vfile_id(one.nodeid))
			fs_inode_forget(req->fs, one.nodeid, one.nlookup);
	}
	return 0;
}

static ssize_t reply_attr(struct fs_req *req, const struct stat *st)
{
	struct fuse_attr_out out = {
		.attr_valid = req->fs->attr_valid_ns / 1000000000ULL,
		.attr_valid_nsec = req->fs->attr_valid_ns % 1000000000ULL,
	};

	fs_fill_attr(&out.attr, st);
	return fs_reply(req, &out, sizeof(out));
}

ssize_t fs_entry_getattr(struct fs_req *req)
{
	struct fs_inode *inode = fs_inode_get(req->fs, req->hdr.nodeid);
	struct stat st;
	int ret;

	if (!inode)
		return fs_reply_err(req, -ENOENT);
	ret = fs_inode_stat(inode, &st);
	fs_inode_put(req->fs, inode);
	return ret ? fs_reply_err(req, ret) : reply_attr(req, &st);
}

static struct timespec set_time(uint32_t valid, uint32_t set_bit, uint32_t now_bit,
				uint64_t sec, uint32_t nsec)
{
	if (!(valid & set_bit))
		return (struct timespec){ .tv_nsec = UTIME_OMIT };
	if (valid & now_bit)
		return (struct timespec){ .tv_nsec = UTIME_NOW };
	return (struct timespec){ .tv_sec = (time_t)sec, .tv_nsec = nsec };
}

static int truncate_inode(struct fs *fs, struct fs_inode *inode, struct fs_fh *h, uint64_t size)
{
	int fd, ret = 0;

	if (size > INT64_MAX)
		return -EINVAL;
	if (h)
		return ftruncate(h->fd, (off_t)size) ? -errno : 0;
	if (S_ISDIR(inode->type))
		return -EISDIR;
	fd = fs_inode_reopen(fs, inode, O_WRONLY);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size))
		ret = -errno;
	close(fd);
	return ret;
}

/* Each attribute through the fh when the guest gave one, else through the inode fd. */
static int apply_setattr(struct fs *fs, struct fs_inode *inode, struct fs_fh *h,
			 const struct fuse_setattr_in *in)
{
	char name[16];
	int ret;

	fs_inode_procname(inode, name, sizeof(name));
	if (in->valid & FATTR_MODE) {
		ret = h ? fchmod(h->fd, in->mode & 07777) :
			  fchmodat(fs->proc_fd, name, in->mode & 07777, 0);
		if (ret)
			return -errno;
	}
	if (in->valid & (FATTR_UID | FATTR_GID)) {
		uid_t uid = in->valid & FATTR_UID ? in->uid : (uid_t)-1;
		gid_t gid = in->valid & FATTR_GID ? in->gid : (gid_t)-1;

		if (fchownat(inode->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
			return -errno;
	}
	if (in->valid & FATTR_SIZE) {
		ret = truncate_inode(fs, inode, h, in->size);
		if (ret)
			return ret;
	}
	if (in->valid & (FATTR_ATIME | FATTR_MTIME)) {
		struct timespec ts[2] = {
			set_time(in->valid, FATTR_ATIME, FATTR_ATIME_NOW, in->atime, in->atimensec),
			set_time(in->valid, FATTR_MTIME, FATTR_MTIME_NOW, in->mtime, in->mtimensec),
		};
		ret = h ? futimens(h->fd, ts) : utimensat(fs->proc_fd, name, ts, 0);
		if (ret)
			return -errno;
	}
	/* FATTR_KILL_SUIDGID (HANDLE_KILLPRIV_V2, linux/fuse.h) with truncate or chown; an
	 * explicit new mode in the same request is the guest's final word instead. */
	if ((in->valid & FATTR_KILL_SUIDGID) && !(in->valid & FATTR_MODE))
		return fs_inode_kill_suidgid(fs, inode, h ? h->fd : -1);
	return 0;
}

ssize_t fs_entry_setattr(struct fs_req *req)
{
	const struct fuse_setattr_in *in = (const void *)req->arg;
	struct fs_inode *inode = fs_inode_get(req->fs, req->hdr.nodeid);
	struct fs_fh *h = NULL;
	struct stat st;
	int ret;

	if (!inode)
		return fs_reply_err(req, -ENOENT);
	if (in->valid & FATTR_FH) {
		h = fs_fh_get(req->fs, in->fh);
		if (!h || h->inode != inode) {
			ret = -EBADF;
			goto out;
		}
	}
	ret = apply_setattr(req->fs, inode, h, in);
	if (!ret)
		ret = fs_inode_stat(inode, &st);
out:
	if (h)
		fs_fh_put(req->fs, h);
	fs_inode_put(req->fs, inode);
	return ret ? fs_reply_err(req, ret) : reply_attr(req, &st);
}

ssize_t fs_entry_readlink(struct fs_req *req)
{
	struct fs_inode *inode = fs_inode_get(req->fs, req->hdr.nodeid);
	char buf[PATH_MAX];
	ssize_t n;

	if (!inode)
		return fs_reply_err(req, -ENOENT);
	n = S_ISLNK(inode->type) ? readlinkat(inode->fd, "", buf, sizeof(buf)) : -1;
	if (n < 0)
		n = S_ISLNK(inode->type) ? -errno : -EINVAL;
	fs_inode_put(req->fs, inode);
	if (n < 0)
		return fs_reply_err(req, (int)n);
	return fs_reply(req, buf, (size_t)n);
}

ssize_t fs_entry_statfs(struct fs_req *req)
{
	struct fs_inode *inode = fs_inode_get(req->fs, req->hdr.nodeid);
	struct fuse_statfs_out out = { 0 };
	struct statfs s;
	int ret = 0;

	if (!inode)
		inode = fs_inode_get(req->fs, FUSE_ROOT_ID);    /* e.g. statfs on a virtual file */
	if (fstatfs(inode->fd, &s))
		ret = -errno;
	fs_inode_put(req->fs, inode);
	if (ret)
		return fs_reply_err(req, ret);
	out.st = (struct fuse_kstatfs){
		.blocks = s.f_blocks, .bfree = s.f_bfree, .bavail = s.f_bavail, .files = s.f_files,
		.ffree = s.f_ffree, .bsize = s.f_bsize, .namelen = s.f_namelen, .frsize = s.f_frsize,
	};
	return fs_reply(req, &out, sizeof(out));
}

ssize_t fs_entry_access(struct fs_req *req)
{
	const struct fuse_access_in *in = (const void *)req->arg;
	struct fs_inode *inode = fs_inode_get(req->fs, req->hdr.nodeid);
	char name[16];
	int ret = 0;

	if (!inode)
		return fs_reply_err(req, -ENOENT);
	if (in->mask & ~(uint32_t)(R_OK | W_OK | X_OK))
		ret = -EINVAL;
	else if ((in->mask & W_OK) && req->fs->read_only)
		ret = -EROFS;
	else if (!S_ISLNK(inode->type)) {
		fs_inode_procname(inode, name, sizeof(name));
		if (faccessat(req->fs->proc_fd, name, (int)in->mask, 0))
			ret = -errno;
	}
	fs_inode_put(req->fs, inode);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, NULL, 0);
}

/*
 * Owner and mode of a new file: the guest caller's uid/gid where we may set them (the host
 * process is privileged; otherwise files belong to it), and the mode exactly as the guest
 * asked, since our process umask must not apply (the guest kernel already applied its own).
 */
static void fix_new(struct fs_req *req, struct fs_inode *parent_or_null, int fd,
		    struct stat *st, mode_t want)
{
	struct fs *fs = req->fs;
	uid_t uid = req->hdr.uid != fs->euid ? req->hdr.uid : (uid_t)-1;
	gid_t gid = req->hdr.gid != fs->egid ? req->hdr.gid : (gid_t)-1;
	bool changed = false;
	struct stat pst;
	char name[16];

	/* Each step only when it can matter: creating files is metadata-bound (bench/fs.sh). */
	if (gid != (gid_t)-1 && parent_or_null && fs_inode_stat(parent_or_null, &pst) == 0 &&
	    (pst.st_mode & S_ISGID))
		gid = (gid_t)-1;    /* inherited from a setgid directory */
	if (fs->euid == 0 && (uid != (uid_t)-1 || gid != (gid_t)-1))
		changed = fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0;
	if (want && !S_ISLNK(st->st_mode) && (st->st_mode & 0777) != (want & 0777)) {
		snprintf(name, sizeof(name), "%d", fd);
		changed |= fchmodat(fs->proc_fd, name, (want & 07777) | (st->st_mode & S_ISGID),
				    0) == 0;
	}
	if (changed)
		(void)fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

void fs_entry_own_new(struct fs_req *req, struct fs_inode *parent, int fd, struct stat *st,
		      mode_t want)
{
	fix_new(req, parent, fd, st, want);
}

int fs_entry_new(struct fs_req *req, struct fs_inode *parent, const char *name, mode_t want,
		 struct fuse_entry_out *e)
{
	struct fs_inode *inode;
	struct stat st;
	uint64_t nodeid;
	int ret;

	ret = fs_inode_lookup(req->fs, parent, name, &nodeid, &st);
	if (ret)
		return ret;
	inode = fs_inode_get(req->fs, nodeid);
	if (inode && want != (mode_t)-1)
		fix_new(req, parent, inode->fd, &st, want);
	fs_inode_put(req->fs, inode);
	fs_fill_entry(req->fs, e, nodeid, &st);
	return 0;
}

/* Shared shape of MKNOD/MKDIR/SYMLINK/LINK: parent + name, one syscall, an entry reply. */
struct make_args {
	const char *name;
	mode_t mode;
	dev_t rdev;
	const char *target;         /* SYMLINK */
	struct fs_inode *old;       /* LINK */
};

static int make_node(struct fs *fs, struct fs_inode *parent, const struct make_args *a)
{
	char old[16];
	int ret;

	if (a->target)
		ret = symlinkat(a->target, parent->fd, a->name);
	else if (a->old) {
		/* Through /proc/self/fd so no host path is walked (AT_EMPTY_PATH needs a capability). */
		fs_inode_procname(a->old, old, sizeof(old));
		ret = linkat(fs->proc_fd, old, parent->fd, a->name, AT_SYMLINK_FOLLOW);
	} else if (S_ISDIR(a->mode))
		ret = mkdirat(parent->fd, a->name, a->mode & 07777);
	else
		ret = mknodat(parent->fd, a->name, a->mode, 0);
	return ret ? -errno : 0;
}

static ssize_t make(struct fs_req *req, const struct make_args *a)
{
	struct fs_inode *parent;
	struct fuse_entry_out e;
	int ret;

	if (!a->name || fs_name_is_dot(a->name))
		return fs_reply_err(req, -EINVAL);
	if (vfile_clash(req, req->hdr.nodeid, a->name))
		return fs_reply_err(req, -EEXIST);
	parent = fs_inode_get(req->fs, req->hdr.nodeid);
	if (!parent)
		return fs_reply_err(req, -ENOENT);
	ret = S_ISDIR(parent->type) ? make_node(req->fs, parent, a) : -ENOTDIR;
	if (!ret)
		ret = fs_entry_new(req, parent, a->name, a->old ? (mode_t)-1 :
				   a->target ? 0 : a->mode, &e);
	fs_inode_put(req->fs, parent);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, &e, sizeof(e));
}

ssize_t fs_entry_mknod(struct fs_req *req)
{
	const struct fuse_mknod_in *in = (const void *)req->arg;
	struct make_args a = { .name = fs_arg_name(req, sizeof(*in), NULL), .mode = in->mode };

	/* Device nodes would give the guest a door to host devices: refused outright. */
	if (!S_ISREG(in->mode) && !S_ISFIFO(in->mode) && !S_ISSOCK(in->mode))
		return fs_reply_err(req, S_ISCHR(in->mode) || S_ISBLK(in->mode) ? -EPERM : -EINVAL);
	return make(req, &a);
}

ssize_t fs_entry_mkdir(struct fs_req *req)
{
	const struct fuse_mkdir_in *in = (const void *)req->arg;
	struct make_args a = { .name = fs_arg_name(req, sizeof(*in), NULL),
			       .mode = S_IFDIR | (in->mode & 07777) };

	return make(req, &a);
}

ssize_t fs_entry_symlink(struct fs_req *req)
{
	uint32_t next = 0;
	struct make_args a = { .name = fs_arg_name(req, 0, &next) };
	const char *t, *nul;

	if (!a.name)
		return fs_reply_err(req, -EINVAL);
	/* The target is free text (it may name anything; we never follow it on the host). */
	t = (const char *)req->arg + next;
	nul = next < req->arg_len ? memchr(t, '\0', req->arg_len - next) : NULL;
	if (!nul || nul == t || nul - t >= PATH_MAX)
		return fs_reply_err(req, -EINVAL);
	a.target = t;
	return make(req, &a);
}

ssize_t fs_entry_link(struct fs_req *req)
{
	const struct fuse_link_in *in = (const void *)req->arg;
	struct make_args a = { .name = fs_arg_name(req, sizeof(*in), NULL) };
	ssize_t ret;

	a.old = fs_inode_get(req->fs, in->oldnodeid);
	if (!a.old)
		return fs_reply_err(req, fs_vfile_id(in->oldnodeid) ? -EPERM : -ENOENT);
	ret = S_ISDIR(a.old->type) ? fs_reply_err(req, -EPERM) : make(req, &a);
	fs_inode_put(req->fs, a.old);
	return ret;
}

static ssize_t remove_name(struct fs_req *req, int flags)
{
	const char *name = fs_arg_name(req, 0, NULL);
	struct fs_inode *parent;
	int ret = 0;

	if (!name || fs_name_is_dot(name))
		return fs_reply_err(req, -EINVAL);
	if (vfile_clash(req, req->hdr.nodeid, name))
		return fs_reply_err(req, -EPERM);
	parent = fs_inode_get(req->fs, req->hdr.nodeid);
	if (!parent)
		return fs_reply_err(req, -ENOENT);
	if (unlinkat(parent->fd, name, flags))
		ret = -errno;
	fs_inode_put(req->fs, parent);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, NULL, 0);
}

ssize_t fs_entry_unlink(struct fs_req *req)
{
	return remove_name(req, 0);
}

ssize_t fs_entry_rmdir(struct fs_req *req)
{
	return remove_name(req, AT_REMOVEDIR);
}

static ssize_t do_rename(struct fs_req *req, uint64_t newdir, uint32_t off, unsigned int flags)
{
	uint32_t next = 0;
	const char *oldname = fs_arg_name(req, off, &next);
	const char *newname = oldname ? fs_arg_name(req, next, NULL) : NULL;
	struct fs_inode *olddir, *ndir;
	int ret = 0;

	if (!oldname || !newname || fs_name_is_dot(oldname) || fs_name_is_dot(newname))
		return fs_reply_err(req, -EINVAL);
	if (flags & ~(unsigned int)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return fs_reply_err(req, -EINVAL);  /* RENAME_WHITEOUT would make a device node */
	if (vfile_clash(req, req->hdr.nodeid, oldname) || vfile_clash(req, newdir, newname))
		return fs_reply_err(req, -EPERM);
	olddir = fs_inode_get(req->fs, req->hdr.nodeid);
	ndir = fs_inode_get(req->fs, newdir);
	if (!olddir || !ndir)
		ret = -ENOENT;
	else if (renameat2(olddir->fd, oldname, ndir->fd, newname, flags))
		ret = -errno;
	fs_inode_put(req->fs, olddir);
	fs_inode_put(req->fs, ndir);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, NULL, 0);
}

ssize_t fs_entry_rename(struct fs_req *req)
{
	const struct fuse_rename_in *in = (const void *)req->arg;

	return do_rename(req, in->newdir, sizeof(*in), 0);
}

ssize_t fs_entry_rename2(struct fs_req *req)
{
	const struct fuse_rename2_in *in = (const void *)req->arg;

	return do_rename(req, in->newdir, sizeof(*in), in->flags);
}
