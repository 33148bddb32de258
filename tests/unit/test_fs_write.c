/* FUSE server write operations, confinement (escape attempts) and locks, through fs_handle. */
#include "harness.h"
#include "test_fs_util.h"

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static char *scratch;
static char share[512], outside[512];
static unsigned int test_no;

/* share<N>/ is exported; outside<N>/secret must stay out of reach. */
static const char *new_share(void)
{
	test_no++;
	snprintf(share, sizeof(share), "%s/share%u", scratch, test_no);
	snprintf(outside, sizeof(outside), "%s/outside%u", scratch, test_no);
	if (mkdir(share, 0755) || mkdir(outside, 0755))
		return NULL;
	t_put_file(outside, "secret", "SECRET");
	return share;
}

static bool outside_untouched(void)
{
	char path[600], buf[16] = { 0 };
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/secret", outside);
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf)) != 6 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return memcmp(buf, "SECRET", 6) == 0 && st.st_nlink == 1 && (st.st_mode & 07777) == 0644;
}

static int t_create(struct fs *fs, uint64_t parent, const char *name, uint32_t flags,
		    uint32_t mode, struct fuse_entry_out *e, uint64_t *fh)
{
	struct fuse_create_in in = { .flags = flags, .mode = S_IFREG | mode };
	struct t_reply r = t_call(fs, FUSE_CREATE, parent, &in, sizeof(in), name, strlen(name) + 1);
	int err = t_err(r);

	if (!err) {
		memcpy(e, r.data, sizeof(*e));
		*fh = ((struct fuse_open_out *)(r.data + sizeof(*e)))->fh;
	}
	return err;
}

static int t_mkdir(struct fs *fs, uint64_t parent, const char *name, uint32_t mode,
		   struct fuse_entry_out *e)
{
	struct fuse_mkdir_in in = { .mode = mode };
	struct t_reply r = t_call(fs, FUSE_MKDIR, parent, &in, sizeof(in), name, strlen(name) + 1);
	int err = t_err(r);

	if (!err && e)
		memcpy(e, r.data, sizeof(*e));
	return err;
}

static int t_name_op(struct fs *fs, uint32_t op, uint64_t parent, const char *name)
{
	return t_err(t_call(fs, op, parent, name, strlen(name) + 1, NULL, 0));
}

static int t_rename(struct fs *fs, uint64_t olddir, const char *old, uint64_t newdir,
		    const char *new, uint32_t flags)
{
	struct fuse_rename2_in in = { .newdir = newdir, .flags = flags };
	char names[600];
	size_t ol = strlen(old) + 1, nl = strlen(new) + 1;

	memcpy(names, old, ol);
	memcpy(names + ol, new, nl);
	return t_err(t_call(fs, FUSE_RENAME2, olddir, &in, sizeof(in), names, ol + nl));
}

static int t_symlink(struct fs *fs, uint64_t parent, const char *name, const char *target,
		     struct fuse_entry_out *e)
{
	struct t_reply r = t_call(fs, FUSE_SYMLINK, parent, name, strlen(name) + 1, target,
				  strlen(target) + 1);
	int err = t_err(r);

	if (!err && e)
		memcpy(e, r.data, sizeof(*e));
	return err;
}

static int t_link(struct fs *fs, uint64_t old, uint64_t newparent, const char *name,
		  struct fuse_entry_out *e)
{
	struct fuse_link_in in = { .oldnodeid = old };
	struct t_reply r = t_call(fs, FUSE_LINK, newparent, &in, sizeof(in), name, strlen(name) + 1);
	int err = t_err(r);

	if (!err && e)
		memcpy(e, r.data, sizeof(*e));
	return err;
}

static int t_mknod(struct fs *fs, uint64_t parent, const char *name, uint32_t mode, uint32_t rdev)
{
	struct fuse_mknod_in in = { .mode = mode, .rdev = rdev };

	return t_err(t_call(fs, FUSE_MKNOD, parent, &in, sizeof(in), name, strlen(name) + 1));
}

static int t_setattr(struct fs *fs, uint64_t nodeid, struct fuse_setattr_in *in,
		     struct fuse_attr *a)
{
	struct t_reply r = t_call(fs, FUSE_SETATTR, nodeid, in, sizeof(*in), NULL, 0);
	int err = t_err(r);

	if (!err && a)
		memcpy(a, &((struct fuse_attr_out *)r.data)->attr, sizeof(*a));
	return err;
}

static void test_crud(void)
{
	const char *dir = new_share();
	struct fuse_entry_out e, d, l, again;
	struct fuse_setattr_in sa;
	struct fuse_attr a;
	char buf[64];
	uint64_t fh, fh2;
	struct fs *fs = t_fs_new(dir, false, NULL, 0);

	CHECK(fs);
	CHECK_EQ(t_create(fs, FUSE_ROOT_ID, "new", O_RDWR, 0640, &e, &fh), 0);
	CHECK(S_ISREG(e.attr.mode));
	CHECK_EQ(e.attr.mode & 07777, 0640);        /* exact mode, our umask does not apply */
	CHECK_EQ(t_create(fs, FUSE_ROOT_ID, "new", O_RDWR | O_EXCL, 0640, &again, &fh2), -EEXIST);
	CHECK_EQ(t_write(fs, e.nodeid, fh, 0, "hello world", 11), 11);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 6, 5, buf), 5);
	CHECK(memcmp(buf, "world", 5) == 0);
	/* Existing file without O_EXCL: opens it, same node id, its mode untouched. */
	CHECK_EQ(t_create(fs, FUSE_ROOT_ID, "new", O_RDONLY, 0600, &again, &fh2), 0);
	CHECK_EQ(again.nodeid, e.nodeid);
	CHECK_EQ(again.attr.mode & 07777, 0640);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh2, 0, 5, buf), 5);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh2), 0);
	/* SETATTR: size through the fh, mode and times through the inode. */
	sa = (struct fuse_setattr_in){ .valid = FATTR_SIZE | FATTR_FH, .fh = fh, .size = 5 };
	CHECK_EQ(t_setattr(fs, e.nodeid, &sa, &a), 0);
	CHECK_EQ(a.size, 5);
	sa = (struct fuse_setattr_in){ .valid = FATTR_SIZE, .size = 2 };
	CHECK_EQ(t_setattr(fs, e.nodeid, &sa, &a), 0);
	CHECK_EQ(a.size, 2);
	sa = (struct fuse_setattr_in){ .valid = FATTR_MODE, .mode = S_IFREG | 0604 };
	CHECK_EQ(t_setattr(fs, e.nodeid, &sa, &a), 0);
	CHECK_EQ(a.mode & 07777, 0604);
	sa = (struct fuse_setattr_in){ .valid = FATTR_ATIME | FATTR_MTIME, .atime = 1000,
				       .mtime = 2000, .mtimensec = 5 };
	CHECK_EQ(t_setattr(fs, e.nodeid, &sa, &a), 0);
	CHECK_EQ(a.atime, 1000);
	CHECK_EQ(a.mtime, 2000);
	CHECK_EQ(a.mtimensec, 5);
	sa = (struct fuse_setattr_in){ .valid = FATTR_MTIME | FATTR_MTIME_NOW };
	CHECK_EQ(t_setattr(fs, e.nodeid, &sa, &a), 0);
	CHECK(a.mtime > 2000);
	sa = (struct fuse_setattr_in){ .valid = FATTR_UID | FATTR_GID, .uid = getuid(),
				       .gid = getgid() };
	CHECK_EQ(t_setattr(fs, e.nodeid, &sa, &a), 0);
	sa = (struct fuse_setattr_in){ .valid = FATTR_SIZE | FATTR_FH, .fh = 999, .size = 0 };
	CHECK_EQ(t_setattr(fs, e.nodeid, &sa, &a), -EBADF);
	/* fsync, fallocate, lseek, copy_file_range. */
	{
		struct fuse_fsync_in fi = { .fh = fh, .fsync_flags = FUSE_FSYNC_FDATASYNC };
		struct fuse_fallocate_in fa = { .fh = fh, .offset = 0, .length = 8192 };
		struct fuse_lseek_in ls = { .fh = fh, .offset = 0, .whence = SEEK_DATA };
		struct t_reply r;
		CHECK_EQ(t_err(t_call(fs, FUSE_FSYNC, e.nodeid, &fi, sizeof(fi), NULL, 0)), 0);
		CHECK_EQ(t_err(t_call(fs, FUSE_FALLOCATE, e.nodeid, &fa, sizeof(fa), NULL, 0)), 0);
		CHECK_EQ(t_getattr(fs, e.nodeid, &a), 0);
		CHECK_EQ(a.size, 8192);
		r = t_call(fs, FUSE_LSEEK, e.nodeid, &ls, sizeof(ls), NULL, 0);
		CHECK_EQ(t_err(r), 0);
		CHECK_EQ(((struct fuse_lseek_out *)r.data)->offset, 0);
	}
	{
		struct fuse_copy_file_range_in cr = { .fh_in = fh, .off_in = 0, .fh_out = 0,
						      .off_out = 0, .len = 2 };
		struct fuse_entry_out c;
		struct t_reply r;
		CHECK_EQ(t_create(fs, FUSE_ROOT_ID, "copy", O_WRONLY, 0644, &c, &fh2), 0);
		cr.nodeid_out = c.nodeid;
		cr.fh_out = fh2;
		r = t_call(fs, FUSE_COPY_FILE_RANGE, e.nodeid, &cr, sizeof(cr), NULL, 0);
		CHECK_EQ(t_err(r), 0);
		CHECK_EQ(((struct fuse_write_out *)r.data)->size, 2);
		CHECK_EQ(t_release(fs, FUSE_RELEASE, c.nodeid, fh2), 0);
	}
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh), 0);
	{
		struct fuse_syncfs_in si = { 0 };
		CHECK_EQ(t_err(t_call(fs, FUSE_SYNCFS, FUSE_ROOT_ID, &si, sizeof(si), NULL, 0)), 0);
	}
	/* Directories, rename (plain, NOREPLACE, EXCHANGE), link, symlink, unlink, rmdir. */
	CHECK_EQ(t_mkdir(fs, FUSE_ROOT_ID, "dir", 0750, &d), 0);
	CHECK(S_ISDIR(d.attr.mode));
	CHECK_EQ(d.attr.mode & 07777, 0750);
	CHECK_EQ(t_mkdir(fs, FUSE_ROOT_ID, "dir", 0750, NULL), -EEXIST);
	CHECK_EQ(t_rename(fs, FUSE_ROOT_ID, "new", d.nodeid, "moved", 0), 0);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "new", NULL), -ENOENT);
	CHECK_EQ(t_lookup(fs, d.nodeid, "moved", &again), 0);
	CHECK_EQ(again.nodeid, e.nodeid);           /* same inode after rename */
	CHECK_EQ(t_rename(fs, d.nodeid, "moved", FUSE_ROOT_ID, "copy", RENAME_NOREPLACE), -EEXIST);
	CHECK_EQ(t_rename(fs, d.nodeid, "moved", FUSE_ROOT_ID, "copy", RENAME_EXCHANGE), 0);
	CHECK_EQ(t_rename(fs, d.nodeid, "moved", FUSE_ROOT_ID, "copy", RENAME_WHITEOUT), -EINVAL);
	CHECK_EQ(t_link(fs, e.nodeid, FUSE_ROOT_ID, "hard", &l), 0);
	CHECK_EQ(l.nodeid, e.nodeid);
	CHECK_EQ(l.attr.nlink, 2);
	CHECK_EQ(t_link(fs, d.nodeid, FUSE_ROOT_ID, "dirlink", NULL), -EPERM);
	CHECK_EQ(t_symlink(fs, FUSE_ROOT_ID, "sym", "copy", &l), 0);
	CHECK(S_ISLNK(l.attr.mode));
	CHECK_EQ(t_name_op(fs, FUSE_UNLINK, FUSE_ROOT_ID, "sym"), 0);
	CHECK_EQ(t_name_op(fs, FUSE_RMDIR, FUSE_ROOT_ID, "dir"), -ENOTEMPTY);
	CHECK_EQ(t_name_op(fs, FUSE_UNLINK, d.nodeid, "moved"), 0);
	CHECK_EQ(t_name_op(fs, FUSE_RMDIR, FUSE_ROOT_ID, "dir"), 0);
	CHECK_EQ(t_name_op(fs, FUSE_UNLINK, FUSE_ROOT_ID, "nothing"), -ENOENT);
	CHECK_EQ(t_name_op(fs, FUSE_RMDIR, FUSE_ROOT_ID, ".."), -EINVAL);
	/* fifo and socket nodes are fine. */
	CHECK_EQ(t_mknod(fs, FUSE_ROOT_ID, "fifo", S_IFIFO | 0600, 0), 0);
	CHECK_EQ(t_mknod(fs, FUSE_ROOT_ID, "sock", S_IFSOCK | 0600, 0), 0);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "fifo", &l), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, l.nodeid, O_RDONLY, &fh, NULL), -ENXIO);
	fs_destroy(fs);
}

static void test_xattr(void)
{
	const char *dir = new_share();
	struct fuse_getxattr_in gi = { .size = 0 };
	struct fuse_setxattr_in si = { .size = 5 };
	struct fuse_entry_out e;
	struct t_reply r;
	char arg[64];
	struct fs *fs;

	t_put_file(dir, "f", "x");
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	memcpy(arg, "user.k\0value", 12);
	r = t_call(fs, FUSE_SETXATTR, e.nodeid, &si, FUSE_COMPAT_SETXATTR_IN_SIZE, arg, 12);
	if (t_err(r) == -EOPNOTSUPP) {
		printf("SKIP test_xattr: no user xattrs on %s\n", scratch);
		fs_destroy(fs);
		return;
	}
	CHECK_EQ(t_err(r), 0);
	r = t_call(fs, FUSE_GETXATTR, e.nodeid, &gi, sizeof(gi), "user.k", 7);
	CHECK_EQ(t_err(r), 0);
	CHECK_EQ(((struct fuse_getxattr_out *)r.data)->size, 5);
	gi.size = 64;
	r = t_call(fs, FUSE_GETXATTR, e.nodeid, &gi, sizeof(gi), "user.k", 7);
	CHECK_EQ(t_err(r), 0);
	CHECK_EQ(r.h.len, sizeof(r.h) + 5);
	CHECK(memcmp(r.data, "value", 5) == 0);
	gi.size = 2;
	CHECK_EQ(t_err(t_call(fs, FUSE_GETXATTR, e.nodeid, &gi, sizeof(gi), "user.k", 7)), -ERANGE);
	gi.size = 64;
	r = t_call(fs, FUSE_LISTXATTR, e.nodeid, &gi, sizeof(gi), NULL, 0);
	CHECK_EQ(t_err(r), 0);
	CHECK(memmem(r.data, r.h.len - sizeof(r.h), "user.k", 7));
	/* value size beyond the request */
	si.size = 500;
	r = t_call(fs, FUSE_SETXATTR, e.nodeid, &si, FUSE_COMPAT_SETXATTR_IN_SIZE, arg, 12);
	CHECK_EQ(t_err(r), -EINVAL);
	/* unterminated name */
	CHECK_EQ(t_err(t_call(fs, FUSE_REMOVEXATTR, e.nodeid, "user.k", 6, NULL, 0)), -EINVAL);
	CHECK_EQ(t_err(t_call(fs, FUSE_REMOVEXATTR, e.nodeid, "user.k", 7, NULL, 0)), 0);
	CHECK_EQ(t_err(t_call(fs, FUSE_GETXATTR, e.nodeid, &gi, sizeof(gi), "user.k", 7)), -ENODATA);
	fs_destroy(fs);
}

static void test_read_only(void)
{
	const char *dir = new_share();
	struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = 0777 };
	struct fuse_entry_out e;
	uint64_t fh;
	struct fs *fs;

	t_put_file(dir, "f", "x");
	fs = t_fs_new(dir, true, NULL, 0);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDWR, &fh, NULL), -EROFS);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDONLY | O_TRUNC, &fh, NULL), -EROFS);
	CHECK_EQ(t_create(fs, FUSE_ROOT_ID, "n", O_RDWR, 0644, &e, &fh), -EROFS);
	CHECK_EQ(t_mkdir(fs, FUSE_ROOT_ID, "d", 0755, NULL), -EROFS);
	CHECK_EQ(t_name_op(fs, FUSE_UNLINK, FUSE_ROOT_ID, "f"), -EROFS);
	CHECK_EQ(t_setattr(fs, e.nodeid, &sa, NULL), -EROFS);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDONLY, &fh, NULL), 0);
	CHECK_EQ(t_write(fs, e.nodeid, fh, 0, "y", 1), -EROFS);
	fs_destroy(fs);
}

static void test_escape(void)
{
	const char *dir = new_share();
	struct fuse_entry_out root2, abs_l, rel_l, f, sub;
	char path[700], target[700], buf[64];
	uint64_t fh;
	struct fs *fs;

	snprintf(target, sizeof(target), "%s/secret", outside);
	snprintf(path, sizeof(path), "%s/abs", dir);
	CHECK(symlink(target, path) == 0);
	snprintf(path, sizeof(path), "%s/rel", dir);
	snprintf(target, sizeof(target), "../outside%u/secret", test_no);
	CHECK(symlink(target, path) == 0);
	snprintf(path, sizeof(path), "%s/updir", dir);
	CHECK(symlink("..", path) == 0);
	t_put_file(dir, "f", "inside");
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	/* ".." of the root is the root. */
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "..", &root2), 0);
	CHECK_EQ(root2.nodeid, FUSE_ROOT_ID);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, ".", &root2), 0);
	CHECK_EQ(root2.nodeid, FUSE_ROOT_ID);
	/* Symlinks out of the share are looked up as symlinks and never opened through. */
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "abs", &abs_l), 0);
	CHECK(S_ISLNK(abs_l.attr.mode));
	CHECK_EQ(t_open(fs, FUSE_OPEN, abs_l.nodeid, O_RDONLY, &fh, NULL), -ELOOP);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "rel", &rel_l), 0);
	CHECK(S_ISLNK(rel_l.attr.mode));
	CHECK_EQ(t_open(fs, FUSE_OPEN, rel_l.nodeid, O_RDONLY, &fh, NULL), -ELOOP);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "updir", &sub), 0);
	CHECK(S_ISLNK(sub.attr.mode));
	CHECK_EQ(t_lookup(fs, sub.nodeid, "secret", NULL), -ENOTDIR);
	CHECK_EQ(t_open(fs, FUSE_OPENDIR, sub.nodeid, O_RDONLY, &fh, NULL), -ENOTDIR);
	/* Attribute changes and xattrs on a symlink act on the link, not its target. */
	{
		struct fuse_setattr_in sa = { .valid = FATTR_SIZE, .size = 0 };
		CHECK(t_setattr(fs, abs_l.nodeid, &sa, NULL) != 0);
		sa = (struct fuse_setattr_in){ .valid = FATTR_MODE, .mode = 0777 };
		t_setattr(fs, abs_l.nodeid, &sa, NULL);
	}
	/* CREATE over an existing symlink name (no O_EXCL) must not open or create the target. */
	CHECK_EQ(t_create(fs, FUSE_ROOT_ID, "abs", O_RDWR | O_TRUNC, 0644, &f, &fh), -ELOOP);
	/* Names that try to walk: refused before any syscall. */
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "../outside1", NULL), -EINVAL);
	CHECK_EQ(t_mknod(fs, FUSE_ROOT_ID, "../x", S_IFREG | 0644, 0), -EINVAL);
	CHECK_EQ(t_mkdir(fs, FUSE_ROOT_ID, "..", 0755, NULL), -EINVAL);
	/* Swap race: look "f" up, replace it by a symlink to the secret, then open the old id. */
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &f), 0);
	snprintf(path, sizeof(path), "%s/f", dir);
	snprintf(target, sizeof(target), "%s/swap", dir);
	{
		char secret[700];
		snprintf(secret, sizeof(secret), "%s/secret", outside);
		CHECK(symlink(secret, target) == 0);
		CHECK(rename(target, path) == 0);   /* "f" is now a symlink to the secret */
	}
	CHECK_EQ(t_open(fs, FUSE_OPEN, f.nodeid, O_RDONLY, &fh, NULL), 0);
	CHECK_EQ(t_read(fs, FUSE_READ, f.nodeid, fh, 0, sizeof(buf), buf), 6);
	CHECK(memcmp(buf, "inside", 6) == 0);       /* the inode we looked up, not the target */
	CHECK_EQ(t_release(fs, FUSE_RELEASE, f.nodeid, fh), 0);
	/* Hard link of the symlink links the symlink itself. */
	{
		struct fuse_entry_out hl;
		CHECK_EQ(t_link(fs, abs_l.nodeid, FUSE_ROOT_ID, "abs2", &hl), 0);
		CHECK(S_ISLNK(hl.attr.mode));
	}
	/* Rename to a name with '/' and into a bogus directory. */
	CHECK_EQ(t_rename(fs, FUSE_ROOT_ID, "abs2", FUSE_ROOT_ID, "../../stolen", 0), -EINVAL);
	CHECK_EQ(t_rename(fs, FUSE_ROOT_ID, "abs2", 4242, "x", 0), -ENOENT);
	/* Device nodes: refused at MKNOD, and an existing one is never opened. */
	CHECK_EQ(t_mknod(fs, FUSE_ROOT_ID, "null", S_IFCHR | 0666, makedev(1, 3)), -EPERM);
	CHECK_EQ(t_mknod(fs, FUSE_ROOT_ID, "disk", S_IFBLK | 0666, makedev(8, 0)), -EPERM);
	snprintf(path, sizeof(path), "%s/hostnull", dir);
	if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) == 0) {
		struct fuse_entry_out dn;
		CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "hostnull", &dn), 0);
		CHECK_EQ(t_open(fs, FUSE_OPEN, dn.nodeid, O_RDWR, &fh, NULL), -EACCES);
		CHECK_EQ(t_create(fs, FUSE_ROOT_ID, "hostnull", O_RDWR, 0644, &dn, &fh), -EACCES);
	}
	CHECK(outside_untouched());
	fs_destroy(fs);
}

static int t_lk(struct fs *fs, uint32_t op, uint64_t nodeid, uint64_t fh, uint64_t owner,
		uint32_t type, uint64_t start, uint64_t end, uint32_t flags, struct fuse_file_lock *o)
{
	struct fuse_lk_in in = { .fh = fh, .owner = owner, .lk_flags = flags,
				 .lk = { .start = start, .end = end, .type = type } };
	struct t_reply r = t_call(fs, op, nodeid, &in, sizeof(in), NULL, 0);
	int err = t_err(r);

	if (!err && o)
		memcpy(o, &((struct fuse_lk_out *)r.data)->lk, sizeof(*o));
	return err;
}

static void test_locks(void)
{
	const char *dir = new_share();
	struct fuse_file_lock o;
	struct fuse_entry_out e;
	uint64_t fh1, fh2;
	struct fs *fs;

	t_put_file(dir, "f", "0123456789");
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDWR, &fh1, NULL), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDWR, &fh2, NULL), 0);
	/* Owner A locks bytes 0-4; owner B conflicts there but not at 5-9. */
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh1, 0xa, F_WRLCK, 0, 4, 0, NULL), 0);
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh2, 0xb, F_WRLCK, 0, 4, 0, NULL), -EAGAIN);
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh2, 0xb, F_WRLCK, 5, 9, 0, NULL), 0);
	/* Same owner through another handle does not conflict with itself. */
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh2, 0xa, F_WRLCK, 0, 2, 0, NULL), 0);
	CHECK_EQ(t_lk(fs, FUSE_GETLK, e.nodeid, fh2, 0xb, F_RDLCK, 0, INT64_MAX, 0, &o), 0);
	CHECK_EQ(o.type, F_WRLCK);
	CHECK_EQ(o.start, 0);
	CHECK_EQ(o.end, 4);
	CHECK_EQ(t_lk(fs, FUSE_GETLK, e.nodeid, fh2, 0xb, F_RDLCK, 20, 30, 0, &o), 0);
	CHECK_EQ(o.type, F_UNLCK);
	/* FLUSH by owner A (close in the guest) drops A's locks. */
	{
		struct fuse_flush_in fl = { .fh = fh1, .lock_owner = 0xa };
		CHECK_EQ(t_err(t_call(fs, FUSE_FLUSH, e.nodeid, &fl, sizeof(fl), NULL, 0)), 0);
	}
	CHECK_EQ(t_lk(fs, FUSE_SETLKW, e.nodeid, fh2, 0xb, F_WRLCK, 0, 4, 0, NULL), 0);
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh2, 0xb, 77, 0, 4, 0, NULL), -EINVAL);
	/* flock: exclusive on one handle excludes the other. */
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh1, 1, F_WRLCK, 0, 0, FUSE_LK_FLOCK, NULL), 0);
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh2, 2, F_RDLCK, 0, 0, FUSE_LK_FLOCK, NULL),
		 -EWOULDBLOCK);
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh1, 1, F_UNLCK, 0, 0, FUSE_LK_FLOCK, NULL), 0);
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh2, 2, F_RDLCK, 0, 0, FUSE_LK_FLOCK, NULL), 0);
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, 999, 2, F_RDLCK, 0, 0, 0, NULL), -EBADF);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh1), 0);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh2), 0);
	fs_destroy(fs);
}

struct waiter {
	struct fs *fs;
	uint64_t nodeid, fh, unique;
	int err;
};

static void *setlkw_thread(void *opaque)
{
	struct waiter *w = opaque;
	static __thread uint8_t inb[256], outb[256];
	struct fuse_lk_in lk = { .fh = w->fh, .owner = 0xb,
				 .lk = { .start = 0, .end = 4, .type = F_WRLCK } };
	struct fuse_in_header h = { .len = sizeof(h) + sizeof(lk), .opcode = FUSE_SETLKW,
				    .unique = w->unique, .nodeid = w->nodeid };
	struct iovec in = { inb, h.len }, out = { outb, sizeof(outb) };
	struct fuse_out_header oh;

	memcpy(inb, &h, sizeof(h));
	memcpy(inb + sizeof(h), &lk, sizeof(lk));
	if (fs_handle(w->fs, &in, 1, &out, 1) < 0) {
		w->err = 1000;
		return NULL;
	}
	memcpy(&oh, outb, sizeof(oh));
	w->err = oh.error;
	return NULL;
}

/* SETLKW waits without blocking the server, is bounded, and ends on INTERRUPT. */
static void test_setlkw_wait(void)
{
	const char *dir = new_share();
	struct waiter w[3];
	pthread_t th[3];
	struct fuse_entry_out e;
	uint64_t fh1, fh2;
	struct fs *fs;

	t_put_file(dir, "f", "0123456789");
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDWR, &fh1, NULL), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDWR, &fh2, NULL), 0);
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh1, 0xa, F_WRLCK, 0, 4, 0, NULL), 0);
	for (int i = 0; i < 3; i++) {
		w[i] = (struct waiter){ .fs = fs, .nodeid = e.nodeid, .fh = fh2,
					.unique = 5000 + (uint64_t)i, .err = 1 };
		CHECK(pthread_create(&th[i], NULL, setlkw_thread, &w[i]) == 0);
		usleep(50000);
	}
	/* Two wait; the third finds no waiter slot. Meanwhile the server answers others. */
	pthread_join(th[2], NULL);
	CHECK_EQ(w[2].err, -ENOLCK);
	CHECK_EQ(t_getattr(fs, e.nodeid, NULL), 0);
	{
		struct fuse_interrupt_in ii = { .unique = 5000 };
		struct t_reply r = t_call(fs, FUSE_INTERRUPT, 0, &ii, sizeof(ii), NULL, 0);
		CHECK_EQ(r.ret, 0);                 /* found: no reply */
	}
	pthread_join(th[0], NULL);
	CHECK_EQ(w[0].err, -EINTR);
	/* Owner a unlocks: the remaining waiter gets the lock. */
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh1, 0xa, F_UNLCK, 0, 4, 0, NULL), 0);
	pthread_join(th[1], NULL);
	CHECK_EQ(w[1].err, 0);
	CHECK_EQ(t_lk(fs, FUSE_SETLK, e.nodeid, fh1, 0xa, F_WRLCK, 0, 4, 0, NULL), -EAGAIN);
	fs_destroy(fs);
}

/* The table is bounded: node ids for many files, then all forgotten, leave no fds behind. */
static void test_many_inodes(void)
{
	const char *dir = new_share();
	uint64_t ids[300];
	char name[32];
	struct fs *fs;

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		t_put_file(dir, name, "x");
	}
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	for (int i = 0; i < 300; i++) {
		struct fuse_entry_out e;
		snprintf(name, sizeof(name), "f%d", i);
		CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, name, &e), 0);
		ids[i] = e.nodeid;
	}
	for (int i = 0; i < 300; i++)
		t_forget(fs, ids[i], 1);
	for (int i = 0; i < 300; i++)
		CHECK_EQ(t_getattr(fs, ids[i], NULL), -ENOENT);
	{
		int fd = open("/dev/null", O_RDONLY);
		CHECK(fd >= 0 && fd < 20);          /* the O_PATH fds were closed */
		close(fd);
	}
	fs_destroy(fs);
}

/* A guest holding many node ids gets ENFILE before the process runs out of descriptors. */
static void test_fd_reserve(void)
{
	const char *dir = new_share();
	struct rlimit old, low;
	int ok = 0, enfile = 0, spare[60];
	char name[32];
	struct fs *fs;

	for (int i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		t_put_file(dir, name, "x");
	}
	CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
	low = old;
	low.rlim_cur = 400;
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	fs = t_fs_new(dir, false, NULL, 0);     /* the guard caches the limit from here */
	CHECK(fs);
	for (int i = 0; i < 500; i++) {
		int err;
		snprintf(name, sizeof(name), "f%d", i);
		err = t_lookup(fs, FUSE_ROOT_ID, name, NULL);
		ok += err == 0;
		enfile += err == -ENFILE;
	}
	/* The reserve is still there for the rest of the process. */
	for (int i = 0; i < 60; i++)
		spare[i] = open("/dev/null", O_RDONLY);
	for (int i = 0; i < 60; i++)
		if (spare[i] >= 0)
			close(spare[i]);
	/* A raised limit counts as soon as the cached one would refuse a descriptor. */
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f499", NULL), 0);
	fs_destroy(fs);
	CHECK(ok > 200);
	CHECK_EQ(ok + enfile, 500);
	for (int i = 0; i < 60; i++)
		CHECK(spare[i] >= 0);
}

/* A server set up per KRUN_FS_CACHE / KRUN_FS_WRITEBACK (NULL: unset) after an INIT that
 * asks for WRITEBACK_CACHE; *on: whether the reply granted it. NULL on any failure. */
static struct fs *wb_fs(const char *dir, const char *cache, const char *wb, bool ro, bool *on)
{
	struct fuse_init_in in = { .major = 7, .minor = 38, .max_readahead = 65536,
				   .flags = FUSE_WRITEBACK_CACHE | FUSE_MAX_PAGES };
	struct fs_config cfg = { .root_dir = dir, .read_only = ro };
	struct fs *fs = NULL;
	struct t_reply r;

	if (cache)
		setenv("KRUN_FS_CACHE", cache, 1);
	if (wb)
		setenv("KRUN_FS_WRITEBACK", wb, 1);
	if (fs_create(&cfg, &fs))
		fs = NULL;
	unsetenv("KRUN_FS_CACHE");
	unsetenv("KRUN_FS_WRITEBACK");
	if (!fs)
		return NULL;
	r = t_call(fs, FUSE_INIT, 0, &in, sizeof(in), NULL, 0);
	if (t_err(r)) {
		fs_destroy(fs);
		return NULL;
	}
	*on = ((struct fuse_init_out *)r.data)->flags & FUSE_WRITEBACK_CACHE;
	return fs;
}

static bool wb_offered(const char *dir, const char *cache, const char *wb, bool ro)
{
	bool on = false;

	fs_destroy(wb_fs(dir, cache, wb, ro, &on));
	return on;
}

static bool host_content(const char *dir, const char *name, const char *want)
{
	char path[600], buf[64] = { 0 };
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

/*
 * KRUN_FS_WRITEBACK: offered only when configured and never on read-only shares. The guest
 * kernel then reads partial pages through write-only handles and places appends itself, so
 * a write-only open must read, and an O_APPEND one must write at the offset it is given.
 */
static void test_writeback(void)
{
	const char *dir = new_share();
	struct fuse_entry_out e, ce;
	uint64_t fh, cfh;
	char buf[16] = { 0 };
	bool on = false;
	struct fs *fs;

	CHECK(!wb_offered(dir, NULL, NULL, false));
	CHECK(wb_offered(dir, NULL, "1", false));
	CHECK(wb_offered(dir, "always", NULL, false));
	CHECK(!wb_offered(dir, "always", "0", false));
	CHECK(!wb_offered(dir, NULL, "1", true));
	t_put_file(dir, "f", "0123456789");
	fs = wb_fs(dir, NULL, "1", false, &on);
	CHECK(fs && on);
	if (!fs)
		return;
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_WRONLY | O_APPEND, &fh, NULL), 0);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 0, 4, buf), 4);
	CHECK(memcmp(buf, "0123", 4) == 0);
	CHECK_EQ(t_write(fs, e.nodeid, fh, 2, "ab", 2), 2);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh), 0);
	CHECK(host_content(dir, "f", "01ab456789"));
	/* CREATE O_WRONLY: readable too. */
	CHECK_EQ(t_create(fs, FUSE_ROOT_ID, "c", O_WRONLY | O_APPEND, 0600, &ce, &cfh), 0);
	CHECK_EQ(t_write(fs, ce.nodeid, cfh, 0, "xyz", 3), 3);
	CHECK_EQ(t_write(fs, ce.nodeid, cfh, 1, "Y", 1), 1);
	CHECK_EQ(t_read(fs, FUSE_READ, ce.nodeid, cfh, 0, 8, buf), 3);
	CHECK(memcmp(buf, "xYz", 3) == 0);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, ce.nodeid, cfh), 0);
	CHECK(host_content(dir, "c", "xYz"));
	fs_destroy(fs);
}

/* The FOPEN_* flags of an OPEN and of a CREATE reply, with KRUN_FS_CACHE / KRUN_FS_DIRECT_IO
 * set as given (NULL: unset); false on any failure. */
static bool open_flags_with(const char *dir, const char *cache, const char *dio,
			    uint32_t *open_flags, uint32_t *create_flags)
{
	struct fuse_init_in init = { .major = 7, .minor = 38, .max_readahead = 65536 };
	struct fuse_create_in in = { .flags = O_WRONLY | O_TRUNC, .mode = S_IFREG | 0644 };
	struct fs_config cfg = { .root_dir = dir };
	struct fuse_entry_out e;
	struct fs *fs = NULL;
	struct t_reply r;
	bool ok = false;
	uint64_t fh;

	if (cache)
		setenv("KRUN_FS_CACHE", cache, 1);
	if (dio)
		setenv("KRUN_FS_DIRECT_IO", dio, 1);
	if (fs_create(&cfg, &fs))
		fs = NULL;
	unsetenv("KRUN_FS_CACHE");
	unsetenv("KRUN_FS_DIRECT_IO");
	if (!fs || t_err(t_call(fs, FUSE_INIT, 0, &init, sizeof(init), NULL, 0)))
		goto out;
	r = t_call(fs, FUSE_CREATE, FUSE_ROOT_ID, &in, sizeof(in), "d", 2);
	if (t_err(r))
		goto out;
	memcpy(&e, r.data, sizeof(e));
	*create_flags = ((struct fuse_open_out *)(r.data + sizeof(e)))->open_flags;
	fh = ((struct fuse_open_out *)(r.data + sizeof(e)))->fh;
	ok = t_release(fs, FUSE_RELEASE, e.nodeid, fh) == 0 &&
	     t_open(fs, FUSE_OPEN, e.nodeid, O_RDONLY, &fh, open_flags) == 0 &&
	     t_release(fs, FUSE_RELEASE, e.nodeid, fh) == 0;
out:
	fs_destroy(fs);
	return ok;
}

/* flags2 of the INIT reply to a kernel offering flags2 bit 4 (DIRECT_IO_ALLOW_MMAP, 7.39),
 * with KRUN_FS_DIRECT_IO as given; ext: whether the request says FUSE_INIT_EXT. */
static uint32_t init_reply_flags2(const char *dir, const char *dio, bool ext)
{
	struct fuse_init_in in = { .major = 7, .minor = 39, .max_readahead = 65536,
				   .flags = ext ? FUSE_INIT_EXT : 0, .flags2 = 1U << 4 };
	struct fs_config cfg = { .root_dir = dir };
	struct fs *fs = NULL;
	uint32_t flags2 = 0xdead;
	struct t_reply r;

	if (dio)
		setenv("KRUN_FS_DIRECT_IO", dio, 1);
	if (fs_create(&cfg, &fs))
		fs = NULL;
	unsetenv("KRUN_FS_DIRECT_IO");
	if (!fs)
		return flags2;
	r = t_call(fs, FUSE_INIT, 0, &in, sizeof(in), NULL, 0);
	if (!t_err(r)) {
		const struct fuse_init_out *out = (const void *)r.data;
		flags2 = out->flags2 | ((out->flags & FUSE_INIT_EXT) ? 0x100 : 0);
	}
	fs_destroy(fs);
	return flags2;
}

/*
 * KRUN_FS_DIRECT_IO: guest direct I/O (no page cache) for every file opened or created, by
 * default only with KRUN_FS_CACHE=none; the variable overrides the mode either way. With it,
 * a kernel that can (7.39) is told to allow shared mappings of those files.
 */
static void test_direct_io(void)
{
	static const struct {
		const char *cache, *dio;
		bool direct;
	} cases[] = {
		{ NULL, NULL, false }, { "auto", NULL, false }, { "always", NULL, false },
		{ "none", NULL, true }, { "none", "0", false }, { NULL, "1", true },
		{ "always", "1", true }, { NULL, "yes", false },
	};
	const char *dir = new_share();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t of = 0, cf = 0;

		CHECK(open_flags_with(dir, cases[i].cache, cases[i].dio, &of, &cf));
		CHECK_EQ(!!(of & FOPEN_DIRECT_IO), cases[i].direct);
		CHECK_EQ(!!(cf & FOPEN_DIRECT_IO), cases[i].direct);
	}
	CHECK_EQ(init_reply_flags2(dir, "1", true), 0x100 | (1U << 4));
	CHECK_EQ(init_reply_flags2(dir, "1", false), 0);
	CHECK_EQ(init_reply_flags2(dir, NULL, true), 0);
}

int main(void)
{
	scratch = t_scratch();
	if (!scratch) {
		printf("FAIL test_fs_write: cannot create a scratch directory\n");
		return 1;
	}
	RUN_TEST(test_crud);
	RUN_TEST(test_xattr);
	RUN_TEST(test_read_only);
	RUN_TEST(test_escape);
	RUN_TEST(test_locks);
	RUN_TEST(test_setlkw_wait);
	RUN_TEST(test_many_inodes);
	RUN_TEST(test_fd_reserve);
	RUN_TEST(test_writeback);
	RUN_TEST(test_direct_io);
	t_rmrf(scratch);
	free(scratch);
	return HARNESS_EXIT();
}
