/* FUSE server: FUSE_IOCTL, the file attribute ioctls only, with exact sizes, through fs_handle. */
#include "harness.h"
#include "test_fs_util.h"

#include <errno.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

static char *scratch;
static char share[256];
static const char *skip_why;

static const char *new_share(void)
{
	return t_share_make(share, sizeof(share), scratch);
}

/* One FUSE_IOCTL: data (in_size bytes sent unless sent differs), reply payload into out. */
struct io {
	uint32_t cmd, flags, in_size, out_size;
	const void *data;
	uint32_t sent;
};

#define GET(cmd, size) ((struct io){ cmd, 0, 0, size, NULL, 0 })
#define SET(cmd, ptr, size) ((struct io){ cmd, 0, size, 0, ptr, size })

static int do_ioctl(struct fs *fs, uint64_t nodeid, uint64_t fh, struct io io, void *out)
{
	struct fuse_ioctl_in in = { .fh = fh, .cmd = io.cmd, .flags = io.flags,
				    .in_size = io.in_size, .out_size = io.out_size };
	struct t_reply r = t_call(fs, FUSE_IOCTL, nodeid, &in, sizeof(in), io.data, io.sent);
	int err = t_err(r);

	if (err)
		return err;
	if (r.h.len != sizeof(r.h) + sizeof(struct fuse_ioctl_out) + io.out_size)
		return 2000;    /* the reply must be exactly the size the kernel expects */
	if (((struct fuse_ioctl_out *)r.data)->result != 0)
		return 2001;
	if (out)
		memcpy(out, r.data + sizeof(struct fuse_ioctl_out), io.out_size);
	return 0;
}

static int host_flags(const char *name, unsigned int *flags)
{
	char path[600];
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", share, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	ret = ioctl(fd, FS_IOC_GETFLAGS, flags) ? -errno : 0;
	close(fd);
	return ret;
}

/* Node id and an O_RDONLY handle (what fuse_priv_ioctl opens) on a name in the root. */
static int open_ro(struct fs *fs, const char *name, uint32_t op, uint64_t *nodeid, uint64_t *fh)
{
	struct fuse_entry_out e;
	int err = t_lookup(fs, FUSE_ROOT_ID, name, &e);

	*nodeid = e.nodeid;
	return err ? err : t_open(fs, op, e.nodeid, O_RDONLY, fh, NULL);
}

static void test_getflags_setflags(void)
{
	struct fs *fs = t_fs_new(new_share(), false, NULL, 0);
	unsigned int flags = 0, host = 0, set;
	uint64_t node, fh, dnode, dfh;
	char path[600];

	CHECK(fs);
	t_put_file(share, "f", "x");
	snprintf(path, sizeof(path), "%s/d", share);
	CHECK_EQ(mkdir(path, 0755), 0);
	CHECK_EQ(open_ro(fs, "f", FUSE_OPEN, &node, &fh), 0);
	CHECK_EQ(do_ioctl(fs, node, fh, GET(FS_IOC_GETFLAGS, 4), &flags), 0);
	CHECK_EQ(host_flags("f", &host), 0);
	CHECK_EQ(flags, host);
	/* chattr +A: noatime is one of the flags an owner may set. */
	set = flags | FS_NOATIME_FL;
	CHECK_EQ(do_ioctl(fs, node, fh, SET(FS_IOC_SETFLAGS, &set, 4), NULL), 0);
	CHECK_EQ(host_flags("f", &host), 0);
	CHECK(host & FS_NOATIME_FL);
	CHECK_EQ(do_ioctl(fs, node, fh, GET(FS_IOC_GETFLAGS, 4), &flags), 0);
	CHECK(flags & FS_NOATIME_FL);
	/* Directories too (lsattr -d), through a directory handle. */
	CHECK_EQ(open_ro(fs, "d", FUSE_OPENDIR, &dnode, &dfh), 0);
	CHECK_EQ(do_ioctl(fs, dnode, dfh, (struct io){ FS_IOC_GETFLAGS, FUSE_IOCTL_DIR, 0, 4, NULL, 0 },
			  &flags), 0);
	CHECK_EQ(host_flags("d", &host), 0);
	CHECK_EQ(flags, host);
	fs_destroy(fs);
}

static void test_fsxattr(void)
{
	struct fs *fs = t_fs_new(new_share(), false, NULL, 0);
	struct fsxattr x = { 0 }, y;
	uint64_t node, fh;

	CHECK(fs);
	t_put_file(share, "f", "x");
	CHECK_EQ(open_ro(fs, "f", FUSE_OPEN, &node, &fh), 0);
	CHECK_EQ(do_ioctl(fs, node, fh, GET(FS_IOC_FSGETXATTR, sizeof(x)), &x), 0);
	/* Setting back what was read is allowed; a new project id is not (host quota). */
	CHECK_EQ(do_ioctl(fs, node, fh, SET(FS_IOC_FSSETXATTR, &x, sizeof(x)), NULL), 0);
	y = x;
	y.fsx_projid++;
	CHECK_EQ(do_ioctl(fs, node, fh, SET(FS_IOC_FSSETXATTR, &y, sizeof(y)), NULL), -EPERM);
	CHECK_EQ(do_ioctl(fs, node, fh, GET(FS_IOC_FSGETXATTR, sizeof(y)), &y), 0);
	CHECK_EQ(y.fsx_projid, x.fsx_projid);
	fs_destroy(fs);
}

/* Everything but the four commands, and malformed sizes, are refused before any effect. */
static void test_refused(void)
{
	const char *dir = new_share();
	struct fs *fs = t_fs_new(dir, false, NULL, 0), *ro = t_fs_new(dir, true, NULL, 0);
	unsigned int flags = FS_NOATIME_FL, host = 0;
	uint64_t node, fh, node2, fh2, rnode, rfh;
	uint8_t big[64] = { 0 };

	CHECK(fs && ro);
	t_put_file(dir, "f", "x");
	t_put_file(dir, "g", "y");
	CHECK_EQ(open_ro(fs, "f", FUSE_OPEN, &node, &fh), 0);
	CHECK_EQ(open_ro(fs, "g", FUSE_OPEN, &node2, &fh2), 0);
	/* Other commands: ENOTTY, whatever their sizes. */
	CHECK_EQ(do_ioctl(fs, node, fh, GET(FIONREAD, 4), NULL), -ENOTTY);
	CHECK_EQ(do_ioctl(fs, node, fh, GET(FS_IOC_GETVERSION, 8), NULL), -ENOTTY);
	CHECK_EQ(do_ioctl(fs, node, fh, GET(FIFREEZE, 0), NULL), -ENOTTY);
	/* Unrestricted (CUSE-style) ioctls: refused even for an allowed command. */
	CHECK_EQ(do_ioctl(fs, node, fh, (struct io){ FS_IOC_GETFLAGS, FUSE_IOCTL_UNRESTRICTED, 0, 4,
						     NULL, 0 }, NULL), -EPERM);
	/* Sizes: _IOC_SIZE(FS_IOC_GETFLAGS) is 8, but the kernel sends sizeof(unsigned int). */
	CHECK_EQ(do_ioctl(fs, node, fh, GET(FS_IOC_GETFLAGS, 8), NULL), -EINVAL);
	CHECK_EQ(do_ioctl(fs, node, fh, (struct io){ FS_IOC_GETFLAGS, 0, 4, 4, big, 4 }, NULL),
		 -EINVAL);
	CHECK_EQ(do_ioctl(fs, node, fh, (struct io){ FS_IOC_SETFLAGS, 0, 4, 0, &flags, 0 }, NULL),
		 -EINVAL);                  /* says 4 bytes, sends none */
	CHECK_EQ(do_ioctl(fs, node, fh, (struct io){ FS_IOC_SETFLAGS, 0, 4, 0, big, 8 }, NULL),
		 -EINVAL);                  /* sends more than it says */
	CHECK_EQ(do_ioctl(fs, node, fh, SET(FS_IOC_SETFLAGS, big, 8), NULL),
		 -EINVAL);
	CHECK_EQ(do_ioctl(fs, node, fh, SET(FS_IOC_FSSETXATTR, big, 27), NULL),
		 -EINVAL);
	CHECK_EQ(host_flags("f", &host), 0);
	CHECK(!(host & FS_NOATIME_FL));
	/* Handles: unknown, or one opened on another node. */
	CHECK_EQ(do_ioctl(fs, node, 0x777, GET(FS_IOC_GETFLAGS, 4), NULL), -EBADF);
	CHECK_EQ(do_ioctl(fs, node, fh2, GET(FS_IOC_GETFLAGS, 4), NULL), -EBADF);
	/* A reply buffer too small for the payload is the driver's error, nothing is done. */
	{
		struct fuse_ioctl_in in = { .fh = fh, .cmd = FS_IOC_GETFLAGS, .out_size = 4 };
		struct t_reply r = t_call3(fs, FUSE_IOCTL, node, &in, sizeof(in), NULL, 0, NULL, 0,
					   sizeof(struct fuse_out_header) +
					   sizeof(struct fuse_ioctl_out) + 2);
		CHECK_EQ(r.ret, -ENOBUFS);
	}
	/* Read-only share: getting is fine, setting is EROFS. */
	CHECK_EQ(open_ro(ro, "f", FUSE_OPEN, &rnode, &rfh), 0);
	CHECK_EQ(do_ioctl(ro, rnode, rfh, GET(FS_IOC_GETFLAGS, 4), NULL), 0);
	CHECK_EQ(do_ioctl(ro, rnode, rfh, SET(FS_IOC_SETFLAGS, &flags, 4), NULL),
		 -EROFS);
	CHECK_EQ(host_flags("f", &host), 0);
	CHECK(!(host & FS_NOATIME_FL));
	fs_destroy(fs);
	fs_destroy(ro);
}

static ssize_t sink(void *opaque, const void *buf, size_t len, uint64_t off)
{
	(void)opaque, (void)buf, (void)off;
	return (ssize_t)len;
}

static void test_vfile(void)
{
	static const struct fs_vfile vf = { .name = "cfg", .data = "x", .size = 1, .mode = 0644,
					    .write = sink };
	struct fs *fs = t_fs_new(new_share(), false, &vf, 1);
	struct fuse_entry_out e;
	uint64_t fh;

	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "cfg", &e), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDONLY, &fh, NULL), 0);
	CHECK_EQ(do_ioctl(fs, e.nodeid, fh, GET(FS_IOC_GETFLAGS, 4), NULL), -ENOTTY);
	fs_destroy(fs);
}

/* The host file system must know the flags ioctls for the accepted cases to mean anything. */
static const char *host_support(void)
{
	unsigned int flags;
	int err;

	if (!new_share())
		return "no scratch share";
	t_put_file(share, "probe", "x");
	err = host_flags("probe", &flags);
	return err == -ENOTTY || err == -EOPNOTSUPP ? "the scratch file system has no FS_IOC_GETFLAGS"
						    : NULL;
}

int main(void)
{
	scratch = t_scratch();
	if (!scratch) {
		printf("FAIL test_fs_ioctl: cannot create a scratch directory\n");
		return 1;
	}
	skip_why = host_support();
	if (skip_why) {
		printf("SKIP test_getflags_setflags: %s\nSKIP test_fsxattr: %s\n", skip_why, skip_why);
	} else {
		RUN_TEST(test_getflags_setflags);
		RUN_TEST(test_fsxattr);
	}
	RUN_TEST(test_refused);
	RUN_TEST(test_vfile);
	t_rmrf(scratch);
	free(scratch);
	return HARNESS_EXIT();
}
