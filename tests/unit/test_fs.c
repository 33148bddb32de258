/* FUSE server read path, virtual files and malformed requests, driven through fs_handle. */
#include "harness.h"
#include "test_fs_util.h"

#include <errno.h>
#include <pthread.h>
#include <sys/uio.h>

#include "common/krun_init.h"

static char *scratch;
static char share[512];

/* A fresh share directory per test, inside one scratch directory removed at the end. */
static const char *new_share(void)
{
	return t_share_make(share, sizeof(share), scratch);
}

static char sink_buf[64];
static size_t sink_len;

static ssize_t sink_write(void *opaque, const void *buf, size_t len, uint64_t offset)
{
	(void)opaque;
	if (offset + len > sizeof(sink_buf))
		return -EFBIG;
	memcpy(sink_buf + offset, buf, len);
	if (offset + len > sink_len)
		sink_len = offset + len;
	return (ssize_t)len;
}

static const char init_data[] = "\x7f" "ELF pretend init";
static const struct fs_vfile vfiles[] = {
	{ .name = KRUN_INIT_NAME, .data = init_data, .size = sizeof(init_data) - 1, .mode = 0555 },
	{ .name = KRUN_EXIT_NAME, .mode = 0222, .write = sink_write },
};

/* Virtual files get inode numbers of their own, not the shadowed host file's. */
static bool fs_vfile_check_ino(uint64_t ino)
{
	char path[600];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", share, KRUN_INIT_NAME);
	return stat(path, &st) == 0 && st.st_ino != ino;
}

static void test_init(void)
{
	struct fs_config cfg = { .root_dir = new_share() };
	struct fuse_init_in in = { .major = 7, .minor = 38, .max_readahead = 4096,
				   .flags = FUSE_ASYNC_READ | FUSE_WRITEBACK_CACHE |
					    FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES };
	struct fuse_init_out *out;
	struct fs *fs = NULL;
	struct t_reply r;

	CHECK(fs_create(&cfg, &fs) == 0);
	/* Nothing but INIT before INIT. */
	CHECK_EQ(t_getattr(fs, FUSE_ROOT_ID, NULL), -EIO);
	r = t_call(fs, FUSE_INIT, 0, &in, sizeof(in), NULL, 0);
	CHECK_EQ(t_err(r), 0);
	out = (void *)r.data;
	CHECK_EQ(r.h.len, sizeof(r.h) + sizeof(*out));
	CHECK_EQ(out->major, 7);
	CHECK_EQ(out->minor, 38);
	CHECK(out->flags & FUSE_ASYNC_READ);
	CHECK(out->flags & FUSE_DO_READDIRPLUS);
	CHECK(!(out->flags & FUSE_WRITEBACK_CACHE));
	CHECK(!(out->flags & FUSE_POSIX_LOCKS));    /* not offered by this kernel */
	CHECK(out->max_write >= 128 * 1024);
	CHECK_EQ(out->max_pages, 256);
	/* A newer major: we answer with ours so the kernel can retry. */
	in.major = 8;
	r = t_call(fs, FUSE_INIT, 0, &in, sizeof(in), NULL, 0);
	CHECK_EQ(t_err(r), 0);
	CHECK_EQ(((struct fuse_init_out *)r.data)->major, 7);
	in.major = 7;
	in.minor = 5;
	CHECK_EQ(t_err(t_call(fs, FUSE_INIT, 0, &in, sizeof(in), NULL, 0)), -EPROTO);
	CHECK_EQ(t_err(t_call(fs, FUSE_DESTROY, 0, NULL, 0, NULL, 0)), 0);
	fs_destroy(fs);
}

static void test_create_errors(void)
{
	struct fs_config cfg = { .root_dir = "/nonexistent/krun" };
	struct fs *fs = NULL;

	CHECK(fs_create(&cfg, &fs) == -ENOENT);
	CHECK(fs_create(NULL, &fs) == -EINVAL);
}

static void test_lookup_hardlinks_forget(void)
{
	const char *dir = new_share();
	struct fuse_entry_out a, b, again;
	struct fuse_attr attr;
	char p1[600], p2[600];
	struct fs *fs;

	t_put_file(dir, "a", "hello");
	snprintf(p1, sizeof(p1), "%s/a", dir);
	snprintf(p2, sizeof(p2), "%s/b", dir);
	CHECK(link(p1, p2) == 0);
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "a", &a), 0);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "b", &b), 0);
	CHECK(a.nodeid != FUSE_ROOT_ID && a.nodeid != 0);
	CHECK_EQ(a.nodeid, b.nodeid);               /* hard links share one inode */
	CHECK_EQ(a.attr.nlink, 2);
	CHECK_EQ(a.attr.size, 5);
	CHECK(S_ISREG(a.attr.mode));
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "missing", NULL), -ENOENT);
	CHECK_EQ(t_getattr(fs, a.nodeid, &attr), 0);
	CHECK_EQ(attr.ino, a.attr.ino);
	CHECK_EQ(t_getattr(fs, FUSE_ROOT_ID, &attr), 0);
	CHECK(S_ISDIR(attr.mode));
	/* Two lookups: one forget keeps it, the second releases it and the id goes stale. */
	t_forget(fs, a.nodeid, 1);
	CHECK_EQ(t_getattr(fs, a.nodeid, NULL), 0);
	t_forget(fs, a.nodeid, 1);
	CHECK_EQ(t_getattr(fs, a.nodeid, NULL), -ENOENT);
	/* The slot is reused with a new generation: the old id stays invalid. */
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "a", &again), 0);
	CHECK(again.nodeid != a.nodeid);
	CHECK_EQ(t_getattr(fs, a.nodeid, NULL), -ENOENT);
	/* BATCH_FORGET too. */
	{
		struct {
			struct fuse_batch_forget_in h;
			struct fuse_forget_one one;
		} bf = { { .count = 1 }, { .nodeid = again.nodeid, .nlookup = 1 } };
		struct t_reply r = t_call3(fs, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL, 0,
					   NULL, 0, 0);
		CHECK_EQ(r.ret, 0);
	}
	CHECK_EQ(t_getattr(fs, again.nodeid, NULL), -ENOENT);
	/* The root never goes away. */
	t_forget(fs, FUSE_ROOT_ID, 100);
	CHECK_EQ(t_getattr(fs, FUSE_ROOT_ID, NULL), 0);
	fs_destroy(fs);
}

/*
 * A lookup of a name whose inode the server holds (the guest revalidating an entry) reuses
 * that inode, counting one more reference; once the host puts another file under the name,
 * the lookup finds the new inode. Symlinks are never followed on either path.
 */
static void test_lookup_known(void)
{
	const char *dir = new_share();
	struct fuse_entry_out a, again, swapped, l1, l2;
	char p1[600], p2[600];
	struct t_reply r;
	struct fs *fs;

	t_put_file(dir, "a", "old");
	t_put_file(dir, "b", "newer");
	snprintf(p1, sizeof(p1), "%s/l", dir);
	CHECK(symlink("a", p1) == 0);
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "a", &a), 0);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "a", &again), 0);
	CHECK_EQ(again.nodeid, a.nodeid);
	CHECK_EQ(again.attr.size, 3);
	t_forget(fs, a.nodeid, 1);
	CHECK_EQ(t_getattr(fs, a.nodeid, NULL), 0);     /* the second reference holds it */
	snprintf(p1, sizeof(p1), "%s/b", dir);
	snprintf(p2, sizeof(p2), "%s/a", dir);
	CHECK(rename(p1, p2) == 0);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "a", &swapped), 0);
	CHECK(swapped.nodeid != a.nodeid);
	CHECK_EQ(swapped.attr.size, 5);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "l", &l1), 0);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "l", &l2), 0);
	CHECK_EQ(l2.nodeid, l1.nodeid);
	CHECK(S_ISLNK(l2.attr.mode));
	CHECK_EQ(t_lookup(fs, swapped.nodeid, "x", NULL), -ENOTDIR);
	unlink(p2);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "a", NULL), -ENOENT);
	fs_destroy(fs);
	/* A miss is a negative entry the guest caches for the entry timeout (1 s by default);
	 * with KRUN_FS_CACHE=none it stays a plain ENOENT. */
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	r = t_call(fs, FUSE_LOOKUP, FUSE_ROOT_ID, "a", 2, NULL, 0);
	CHECK_EQ(t_err(r), 0);
	CHECK_EQ(((struct fuse_entry_out *)r.data)->nodeid, 0);
	CHECK_EQ(((struct fuse_entry_out *)r.data)->entry_valid, 1);
	fs_destroy(fs);
	setenv("KRUN_FS_CACHE", "none", 1);
	fs = t_fs_new(dir, false, NULL, 0);
	unsetenv("KRUN_FS_CACHE");
	CHECK(fs);
	CHECK_EQ(t_err(t_call(fs, FUSE_LOOKUP, FUSE_ROOT_ID, "a", 2, NULL, 0)), -ENOENT);
	fs_destroy(fs);
}

static void test_open_read(void)
{
	const char *dir = new_share();
	struct fuse_entry_out e;
	char buf[64];
	uint64_t fh;
	struct fs *fs;

	t_put_file(dir, "f", "0123456789");
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDONLY, &fh, NULL), 0);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 0, 4, buf), 4);
	CHECK(memcmp(buf, "0123", 4) == 0);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 8, 100, buf), 2);
	CHECK(memcmp(buf, "89", 2) == 0);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 100, 10, buf), 0);
	/* Reply limited by the out buffer: 16 + 3 bytes offered. */
	{
		struct fuse_read_in in = { .fh = fh, .offset = 0, .size = 10 };
		struct t_reply r = t_call3(fs, FUSE_READ, e.nodeid, &in, sizeof(in), NULL, 0, NULL,
					   0, sizeof(struct fuse_out_header) + 3);
		CHECK_EQ(t_err(r), 0);
		CHECK_EQ(r.h.len, sizeof(r.h) + 3);
	}
	{
		struct fuse_flush_in in = { .fh = fh };
		CHECK_EQ(t_err(t_call(fs, FUSE_FLUSH, e.nodeid, &in, sizeof(in), NULL, 0)), 0);
	}
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh), 0);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 0, 4, buf), -EBADF);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh), -EBADF);
	/* OPENDIR on a file, OPEN of a directory for writing. */
	CHECK_EQ(t_open(fs, FUSE_OPENDIR, e.nodeid, O_RDONLY, &fh, NULL), -ENOTDIR);
	CHECK_EQ(t_open(fs, FUSE_OPEN, FUSE_ROOT_ID, O_RDWR, &fh, NULL), -EISDIR);
	fs_destroy(fs);
}

/* Collects names from READDIR(PLUS) replies until an empty one; counts entries with nodeids. */
static int list_dir(struct fs *fs, uint32_t op, uint64_t fh, uint32_t bufsize, char *names,
		    size_t cap, int *with_nodeid)
{
	uint64_t off = 0;
	int n = 0;

	names[0] = 0;
	*with_nodeid = 0;
	for (int rounds = 0; rounds < 1000; rounds++) {
		struct fuse_read_in in = { .fh = fh, .offset = off, .size = bufsize };
		struct t_reply r = t_call(fs, op, FUSE_ROOT_ID, &in, sizeof(in), NULL, 0);
		size_t len, pos = 0;

		if (t_err(r))
			return t_err(r);
		len = r.h.len - sizeof(r.h);
		if (len == 0)
			return n;
		while (pos < len) {
			struct fuse_dirent *d;
			size_t rec;
			if (op == FUSE_READDIRPLUS) {
				struct fuse_direntplus *dp = (void *)(r.data + pos);
				d = &dp->dirent;
				if (dp->entry_out.nodeid) {
					(*with_nodeid)++;
					t_forget(fs, dp->entry_out.nodeid, 1);
				}
				rec = FUSE_DIRENTPLUS_SIZE(dp);
			} else {
				d = (void *)(r.data + pos);
				rec = FUSE_DIRENT_SIZE(d);
			}
			strncat(names, d->name, d->namelen < 64 ? d->namelen : 64);
			strncat(names, ",", cap - strlen(names) - 1);
			off = d->off;
			pos += rec;
			n++;
		}
	}
	return -ELOOP;
}

static void test_readdir(void)
{
	const char *dir = new_share();
	char names[4096], path[600];
	int n, with;
	uint64_t fh;
	struct fs *fs;

	for (int i = 0; i < 40; i++) {
		char name[48];
		snprintf(name, sizeof(name), "file_with_a_longish_name_%02d", i);
		t_put_file(dir, name, "x");
	}
	snprintf(path, sizeof(path), "%s/sub", dir);
	CHECK(mkdir(path, 0755) == 0);
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	CHECK_EQ(t_open(fs, FUSE_OPENDIR, FUSE_ROOT_ID, O_RDONLY, &fh, NULL), 0);
	/* A small buffer forces many rounds and offset continuation. */
	n = list_dir(fs, FUSE_READDIRPLUS, fh, 512, names, sizeof(names), &with);
	CHECK_EQ(n, 43);                            /* 40 files, sub, ".", ".." */
	CHECK_EQ(with, 41);                         /* "." and ".." carry no node id */
	CHECK(strstr(names, "file_with_a_longish_name_39,"));
	CHECK(strstr(names, "sub,"));
	n = list_dir(fs, FUSE_READDIR, fh, 300, names, sizeof(names), &with);
	CHECK_EQ(n, 43);
	/* A buffer too small for one entry yields an empty reply, not an error. */
	{
		struct fuse_read_in in = { .fh = fh, .offset = 0, .size = 8 };
		struct t_reply r = t_call(fs, FUSE_READDIRPLUS, FUSE_ROOT_ID, &in, sizeof(in),
					  NULL, 0);
		CHECK_EQ(t_err(r), 0);
		CHECK_EQ(r.h.len, sizeof(r.h));
	}
	CHECK_EQ(t_release(fs, FUSE_RELEASEDIR, FUSE_ROOT_ID, fh), 0);
	fs_destroy(fs);
}

static void test_readlink_statfs(void)
{
	const char *dir = new_share();
	struct fuse_entry_out e;
	char path[600];
	struct t_reply r;
	struct fs *fs;

	snprintf(path, sizeof(path), "%s/l", dir);
	CHECK(symlink("some/target", path) == 0);
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "l", &e), 0);
	CHECK(S_ISLNK(e.attr.mode));
	r = t_call(fs, FUSE_READLINK, e.nodeid, NULL, 0, NULL, 0);
	CHECK_EQ(t_err(r), 0);
	CHECK_EQ(r.h.len, sizeof(r.h) + strlen("some/target"));
	CHECK(memcmp(r.data, "some/target", strlen("some/target")) == 0);
	r = t_call(fs, FUSE_READLINK, FUSE_ROOT_ID, NULL, 0, NULL, 0);
	CHECK_EQ(t_err(r), -EINVAL);
	r = t_call(fs, FUSE_STATFS, FUSE_ROOT_ID, NULL, 0, NULL, 0);
	CHECK_EQ(t_err(r), 0);
	CHECK(((struct fuse_statfs_out *)r.data)->st.bsize > 0);
	{
		struct fuse_access_in in = { .mask = R_OK };
		CHECK_EQ(t_err(t_call(fs, FUSE_ACCESS, FUSE_ROOT_ID, &in, sizeof(in), NULL, 0)), 0);
	}
	fs_destroy(fs);
}

static void test_vfiles(void)
{
	const char *dir = new_share();
	struct fuse_entry_out e, sink;
	struct fuse_attr attr;
	uint32_t oflags;
	char buf[64], path[600];
	uint64_t fh;
	struct fs *fs;

	t_put_file(dir, KRUN_INIT_NAME, "host file that must stay hidden");
	snprintf(path, sizeof(path), "%s/sub", dir);
	CHECK(mkdir(path, 0755) == 0);
	t_put_file(path, KRUN_INIT_NAME, "a subdirectory is not shadowed");
	fs = t_fs_new(dir, true, vfiles, 2);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, KRUN_INIT_NAME, &e), 0);
	CHECK(S_ISREG(e.attr.mode));
	CHECK_EQ(e.attr.mode & 07777, 0555);
	CHECK_EQ(e.attr.size, sizeof(init_data) - 1);
	CHECK_EQ(t_getattr(fs, e.nodeid, &attr), 0);
	CHECK_EQ(attr.size, sizeof(init_data) - 1);
	CHECK(attr.mtime > 1000000000);             /* the server's start, not the epoch */
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDWR, &fh, NULL), -EACCES);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDONLY, &fh, &oflags), 0);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 0, sizeof(buf), buf), sizeof(init_data) - 1);
	CHECK(memcmp(buf, init_data, sizeof(init_data) - 1) == 0);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 4, 3, buf), 3);
	CHECK(memcmp(buf, init_data + 4, 3) == 0);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 1000, 3, buf), 0);
	CHECK_EQ(t_write(fs, e.nodeid, fh, 0, "x", 1), -EACCES);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh), 0);
	/* The sink works even on a read-only share; writes are not cached by the guest. */
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, KRUN_EXIT_NAME, &sink), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, sink.nodeid, O_RDONLY, &fh, NULL), -EACCES);
	CHECK_EQ(t_open(fs, FUSE_OPEN, sink.nodeid, O_WRONLY | O_TRUNC, &fh, &oflags), 0);
	CHECK(oflags & FOPEN_DIRECT_IO);
	CHECK_EQ(t_write(fs, sink.nodeid, fh, 0, "42\n", 3), 3);
	CHECK_EQ(sink_len, 3);
	CHECK(memcmp(sink_buf, "42\n", 3) == 0);
	/* A handle of one virtual file used on another node is refused. */
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 0, 3, buf), -EBADF);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, sink.nodeid, fh), 0);
	/* Only in the root: the subdirectory's file of the same name is the host file. */
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "sub", &e), 0);
	CHECK_EQ(t_lookup(fs, e.nodeid, KRUN_INIT_NAME, &e), 0);
	CHECK_EQ(e.attr.size, strlen("a subdirectory is not shadowed"));
	/* Host operations cannot touch the host file hidden behind a virtual name. */
	{
		struct fuse_mkdir_in mi = { .mode = 0755 };
		fs_destroy(fs);
		fs = t_fs_new(dir, false, vfiles, 2);
		CHECK(fs);
		CHECK_EQ(t_err(t_call(fs, FUSE_UNLINK, FUSE_ROOT_ID, KRUN_INIT_NAME,
				      sizeof(KRUN_INIT_NAME), NULL, 0)), -EPERM);
		CHECK_EQ(t_err(t_call(fs, FUSE_MKDIR, FUSE_ROOT_ID, &mi, sizeof(mi), KRUN_EXIT_NAME,
				      sizeof(KRUN_EXIT_NAME))), -EEXIST);
		CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, KRUN_INIT_NAME, &e), 0);
		CHECK(fs_vfile_check_ino(e.attr.ino));
	}
	/* Directory operations on a virtual file. */
	CHECK_EQ(t_lookup(fs, sink.nodeid, "x", NULL), -EACCES);
	CHECK_EQ(t_open(fs, FUSE_OPENDIR, sink.nodeid, O_RDONLY, &fh, NULL), -EACCES);
	fs_destroy(fs);
}

static void test_malformed(void)
{
	const char *dir = new_share();
	struct fuse_in_header h = { .len = 10, .opcode = FUSE_GETATTR, .unique = 1 };
	struct iovec in = { &h, 10 }, out = { t_out, 4096 };
	struct fuse_entry_out e;
	struct t_reply r;
	char buf[16];
	struct fs *fs;

	t_put_file(dir, "f", "data");
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	/* Shorter than fuse_in_header. */
	CHECK_EQ(fs_handle(fs, &in, 1, &out, 1), -EINVAL);
	/* Header length disagrees with the buffers. */
	h.len = 200;
	in.iov_len = sizeof(h);
	CHECK_EQ(fs_handle(fs, &in, 1, &out, 1), -EINVAL);
	/* Reply buffer too small for a header. */
	r = t_call3(fs, FUSE_GETATTR, FUSE_ROOT_ID, buf, sizeof(struct fuse_getattr_in), NULL, 0,
		    NULL, 0, 8);
	CHECK_EQ(r.ret, -ENOBUFS);
	/* Too small for the fixed reply: refused before anything happens. */
	r = t_call3(fs, FUSE_LOOKUP, FUSE_ROOT_ID, "f", 2, NULL, 0, NULL, 0, 64);
	CHECK_EQ(r.ret, -ENOBUFS);
	/* Unknown opcodes. */
	CHECK_EQ(t_err(t_call(fs, 9999, FUSE_ROOT_ID, NULL, 0, NULL, 0)), -ENOSYS);
	CHECK_EQ(t_err(t_call(fs, FUSE_BMAP, FUSE_ROOT_ID, NULL, 0, NULL, 0)), -ENOSYS);
	/* Names: unterminated, empty, with '/', too long. */
	CHECK_EQ(t_err(t_call(fs, FUSE_LOOKUP, FUSE_ROOT_ID, "f", 1, NULL, 0)), -EINVAL);
	CHECK_EQ(t_err(t_call(fs, FUSE_LOOKUP, FUSE_ROOT_ID, "", 1, NULL, 0)), -EINVAL);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "a/b", NULL), -EINVAL);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "/etc", NULL), -EINVAL);
	{
		char longname[300];
		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = 0;
		CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, longname, NULL), -EINVAL);
	}
	/* Arguments shorter than the opcode's struct. */
	CHECK_EQ(t_err(t_call(fs, FUSE_GETATTR, FUSE_ROOT_ID, buf, 4, NULL, 0)), -EINVAL);
	CHECK_EQ(t_err(t_call(fs, FUSE_READ, FUSE_ROOT_ID, buf, 8, NULL, 0)), -EINVAL);
	/* Bogus node ids and handles, including a virtual-file-looking id. */
	CHECK_EQ(t_getattr(fs, 0, NULL), -ENOENT);
	CHECK_EQ(t_getattr(fs, 12345, NULL), -ENOENT);
	CHECK_EQ(t_getattr(fs, (7ULL << 32) | 1, NULL), -ENOENT);
	CHECK_EQ(t_getattr(fs, 1ULL << 62, NULL), -ENOENT);
	CHECK_EQ(t_lookup(fs, 999, "f", NULL), -ENOENT);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, 0, 0, 4, buf), -EBADF);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, 77, 0, 4, buf), -EBADF);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, 1ULL << 62, 0, 4, buf), -EBADF);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, 5), -EBADF);
	/* LOOKUP below a regular file. */
	CHECK_EQ(t_lookup(fs, e.nodeid, "x", NULL), -ENOTDIR);
	/* BATCH_FORGET claiming more entries than it carries: ignored, no reply. */
	{
		struct fuse_batch_forget_in bf = { .count = 1000000 };
		r = t_call3(fs, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL, 0, NULL, 0, 0);
		CHECK_EQ(r.ret, 0);
	}
	/* FORGET with too short an argument: no reply, no effect. */
	r = t_call3(fs, FUSE_FORGET, e.nodeid, buf, 3, NULL, 0, NULL, 0, 0);
	CHECK_EQ(r.ret, 0);
	CHECK_EQ(t_getattr(fs, e.nodeid, NULL), 0);
	/* WRITE whose size claims more payload than sent. */
	{
		struct fuse_write_in w = { .fh = 1, .size = 100 };
		r = t_call(fs, FUSE_WRITE, e.nodeid, &w, sizeof(w), "abc", 3);
		CHECK_EQ(t_err(r), -EINVAL);
	}
	fs_destroy(fs);
}

/* The request split over many small iovecs parses like a flat one. */
static void test_scattered(void)
{
	const char *dir = new_share();
	uint8_t req[sizeof(struct fuse_in_header) + 2];
	struct fuse_in_header *h = (void *)req;
	struct iovec in[sizeof(req)], out[8];
	struct fuse_out_header oh;
	uint8_t obuf[8][32];
	struct fs *fs;
	ssize_t n;

	t_put_file(dir, "f", "data");
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	memset(req, 0, sizeof(req));
	h->len = sizeof(req);
	h->opcode = FUSE_LOOKUP;
	h->unique = 77;
	h->nodeid = FUSE_ROOT_ID;
	memcpy(req + sizeof(*h), "f", 2);
	for (size_t i = 0; i < sizeof(req); i++)
		in[i] = (struct iovec){ req + i, 1 };
	for (int i = 0; i < 8; i++)
		out[i] = (struct iovec){ obuf[i], 32 };
	n = fs_handle(fs, in, sizeof(req), out, 8);
	CHECK_EQ(n, sizeof(oh) + sizeof(struct fuse_entry_out));
	memcpy(&oh, obuf[0], sizeof(oh));
	CHECK_EQ(oh.error, 0);
	CHECK_EQ(oh.unique, 77);
	fs_destroy(fs);
}

/* DESTROY drops every node id and handle; a new INIT starts over. */
static void test_destroy_reinit(void)
{
	const char *dir = new_share();
	struct fuse_init_in in = { .major = 7, .minor = 38 };
	struct fuse_entry_out e;
	uint64_t fh;
	char buf[8];
	struct fs *fs;

	t_put_file(dir, "f", "data");
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDONLY, &fh, NULL), 0);
	CHECK_EQ(t_err(t_call(fs, FUSE_DESTROY, 0, NULL, 0, NULL, 0)), 0);
	CHECK_EQ(t_getattr(fs, FUSE_ROOT_ID, NULL), -EIO);
	CHECK_EQ(t_err(t_call(fs, FUSE_INIT, 0, &in, sizeof(in), NULL, 0)), 0);
	CHECK_EQ(t_getattr(fs, e.nodeid, NULL), -ENOENT);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 0, 4, buf), -EBADF);
	CHECK_EQ(t_getattr(fs, FUSE_ROOT_ID, NULL), 0);
	/* INTERRUPT for a request we do not hold: EAGAIN so the kernel may retry. */
	{
		struct fuse_interrupt_in ii = { .unique = 12345 };
		CHECK_EQ(t_err(t_call(fs, FUSE_INTERRUPT, 0, &ii, sizeof(ii), NULL, 0)), -EAGAIN);
	}
	fs_destroy(fs);
}

struct stress {
	struct fs *fs;
	int errors;
};

/* Own request buffers: the t_call helpers share static ones. */
static ssize_t raw_call(struct fs *fs, uint8_t *inb, uint8_t *outb, uint32_t op, uint64_t nodeid,
			const void *arg, size_t alen, struct fuse_out_header *oh)
{
	struct fuse_in_header h = { .len = (uint32_t)(sizeof(h) + alen), .opcode = op,
				    .unique = 1, .nodeid = nodeid };
	struct iovec in = { inb, h.len }, out = { outb, 65536 };
	ssize_t r;

	memcpy(inb, &h, sizeof(h));
	memcpy(inb + sizeof(h), arg, alen);
	r = fs_handle(fs, &in, 1, &out, 1);
	memcpy(oh, outb, sizeof(*oh));
	return r;
}

static void *stress_thread(void *opaque)
{
	struct stress *s = opaque;
	uint8_t *inb = malloc(65536), *outb = malloc(65536);
	struct fuse_out_header oh;

	for (int i = 0; i < 2000 && inb && outb; i++) {
		struct fuse_entry_out e;
		struct fuse_open_in oi = { .flags = O_RDONLY };
		struct fuse_open_out oo;
		struct fuse_read_in ri = { .size = 4 };
		struct fuse_release_in rl;
		struct fuse_forget_in fi = { .nlookup = 1 };
		const char *name = (i & 1) ? "a" : "b";     /* hard links: one inode */

		raw_call(s->fs, inb, outb, FUSE_LOOKUP, FUSE_ROOT_ID, name, 2, &oh);
		if (oh.error) {
			s->errors++;
			continue;
		}
		memcpy(&e, outb + sizeof(oh), sizeof(e));
		raw_call(s->fs, inb, outb, FUSE_OPEN, e.nodeid, &oi, sizeof(oi), &oh);
		memcpy(&oo, outb + sizeof(oh), sizeof(oo));
		s->errors += oh.error != 0;
		ri.fh = oo.fh;
		raw_call(s->fs, inb, outb, FUSE_READ, e.nodeid, &ri, sizeof(ri), &oh);
		s->errors += oh.error != 0 || oh.len != sizeof(oh) + 4;
		rl = (struct fuse_release_in){ .fh = oo.fh };
		raw_call(s->fs, inb, outb, FUSE_RELEASE, e.nodeid, &rl, sizeof(rl), &oh);
		s->errors += oh.error != 0;
		raw_call(s->fs, inb, outb, FUSE_FORGET, e.nodeid, &fi, sizeof(fi), &oh);
	}
	free(inb);
	free(outb);
	return NULL;
}

/* Several threads looking up, opening, reading and forgetting the same inode at once. */
static void test_threads(void)
{
	const char *dir = new_share();
	struct stress s[4];
	pthread_t th[4];
	char a[600], b[600];
	struct fs *fs;

	t_put_file(dir, "a", "data");
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	CHECK(link(a, b) == 0);
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	for (int i = 0; i < 4; i++) {
		s[i] = (struct stress){ .fs = fs };
		CHECK(pthread_create(&th[i], NULL, stress_thread, &s[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(s[i].errors, 0);
	}
	fs_destroy(fs);
}

int main(void)
{
	scratch = t_scratch();
	if (!scratch) {
		printf("FAIL test_fs: cannot create a scratch directory\n");
		return 1;
	}
	RUN_TEST(test_init);
	RUN_TEST(test_create_errors);
	RUN_TEST(test_lookup_hardlinks_forget);
	RUN_TEST(test_lookup_known);
	RUN_TEST(test_open_read);
	RUN_TEST(test_readdir);
	RUN_TEST(test_readlink_statfs);
	RUN_TEST(test_vfiles);
	RUN_TEST(test_malformed);
	RUN_TEST(test_scattered);
	RUN_TEST(test_destroy_reinit);
	RUN_TEST(test_threads);
	t_rmrf(scratch);
	free(scratch);
	return HARNESS_EXIT();
}
