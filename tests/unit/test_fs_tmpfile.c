/* FUSE server: FUSE_TMPFILE (unnamed files), LINK giving them a name, unknown opcodes, through
 * fs_handle. */
#include "harness.h"
#include "test_fs_util.h"

#include <dirent.h>
#include <errno.h>

static char *scratch;
static char share[256];

static const char *new_share(void)
{
	return t_share_make(share, sizeof(share), scratch);
}

/* Entries of the host directory besides . and .. */
static int host_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* TMPFILE as the 6.1 guest kernel sends it: fuse_create_in, then the placeholder name "/". */
static int t_tmpfile(struct fs *fs, uint64_t parent, uint32_t flags, uint32_t mode,
		   struct fuse_entry_out *e, uint64_t *fh)
{
	struct fuse_create_in in = { .flags = flags, .mode = mode, .umask = 022 };
	struct t_reply r = t_call(fs, FUSE_TMPFILE, parent, &in, sizeof(in), "/", 2);
	int err = t_err(r);

	if (!err) {
		memcpy(e, r.data, sizeof(*e));
		*fh = ((struct fuse_open_out *)(r.data + sizeof(*e)))->fh;
	}
	return err;
}

static int link_as(struct fs *fs, uint64_t node, uint64_t dir, const char *name,
		   struct fuse_entry_out *e)
{
	struct fuse_link_in in = { .oldnodeid = node };
	struct t_reply r = t_call(fs, FUSE_LINK, dir, &in, sizeof(in), name, strlen(name) + 1);
	int err = t_err(r);

	if (!err && e)
		memcpy(e, r.data, sizeof(*e));
	return err;
}

/* An unnamed file: exact mode, no link, usable through its handle, absent from the directory. */
static void test_tmpfile_unnamed(void)
{
	const char *dir = new_share();
	struct fs *fs = t_fs_new(dir, false, NULL, 0);
	struct fuse_entry_out e;
	char buf[16] = { 0 };
	uint64_t fh;

	CHECK(fs);
	CHECK_EQ(t_tmpfile(fs, FUSE_ROOT_ID, O_RDWR | O_TMPFILE | O_LARGEFILE, S_IFREG | 0640, &e,
			 &fh), 0);
	CHECK(e.nodeid != 0);
	CHECK(S_ISREG(e.attr.mode));
	CHECK_EQ(e.attr.mode & 07777, 0640);    /* the process umask (077 here) does not apply */
	CHECK_EQ(e.attr.nlink, 0);
	CHECK_EQ(t_write(fs, e.nodeid, fh, 0, "unnamed", 7), 7);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 0, sizeof(buf), buf), 7);
	CHECK(memcmp(buf, "unnamed", 7) == 0);
	CHECK_EQ(host_entries(dir), 0);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh), 0);
	t_forget(fs, e.nodeid, 1);
	CHECK_EQ(t_getattr(fs, e.nodeid, NULL), -ENOENT);     /* the node id is gone */
	CHECK_EQ(host_entries(dir), 0);
	fs_destroy(fs);
}

/* LINK names the tmpfile (same node id), and the name then reads its data on the host. */
static void test_tmpfile_link(void)
{
	const char *dir = new_share();
	struct fs *fs = t_fs_new(dir, false, NULL, 0);
	struct fuse_entry_out e, l, sub;
	char path[600], buf[16] = { 0 };
	uint64_t fh;
	FILE *f;

	CHECK(fs);
	CHECK_EQ(mkdir(strcat(strcpy(path, dir), "/sub"), 0755), 0);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "sub", &sub), 0);
	CHECK_EQ(t_tmpfile(fs, sub.nodeid, O_WRONLY | O_TMPFILE, S_IFREG | 0600, &e, &fh), 0);
	CHECK_EQ(t_write(fs, e.nodeid, fh, 0, "linked", 6), 6);
	CHECK_EQ(link_as(fs, e.nodeid, FUSE_ROOT_ID, "named", &l), 0);
	CHECK_EQ(l.nodeid, e.nodeid);
	CHECK_EQ(l.attr.nlink, 1);
	CHECK_EQ(l.attr.ino, e.attr.ino);
	snprintf(path, sizeof(path), "%s/named", dir);
	f = fopen(path, "r");
	CHECK(f);
	CHECK(fread(buf, 1, sizeof(buf), f) == 6);
	fclose(f);
	CHECK(memcmp(buf, "linked", 6) == 0);
	CHECK_EQ(host_entries(dir), 2);     /* sub and named */
	/* A second name works as for any file; a lookup finds the same node. */
	CHECK_EQ(link_as(fs, e.nodeid, sub.nodeid, "again", NULL), 0);
	CHECK_EQ(t_lookup(fs, sub.nodeid, "again", &l), 0);
	CHECK_EQ(l.nodeid, e.nodeid);
	CHECK_EQ(l.attr.nlink, 2);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh), 0);
	fs_destroy(fs);
}

/* O_EXCL: never linkable, as open(2) promises; the share stays empty. */
static void test_tmpfile_excl_unlinkable(void)
{
	const char *dir = new_share();
	struct fs *fs = t_fs_new(dir, false, NULL, 0);
	struct fuse_entry_out e;
	uint64_t fh;

	CHECK(fs);
	CHECK_EQ(t_tmpfile(fs, FUSE_ROOT_ID, O_RDWR | O_TMPFILE | O_EXCL, S_IFREG | 0644, &e, &fh), 0);
	CHECK(link_as(fs, e.nodeid, FUSE_ROOT_ID, "named", NULL) < 0);
	CHECK_EQ(host_entries(dir), 0);
	fs_destroy(fs);
}

static void test_tmpfile_refused(void)
{
	const char *dir = new_share();
	struct fs *fs = t_fs_new(dir, false, NULL, 0), *ro = t_fs_new(dir, true, NULL, 0);
	struct fuse_create_in in = { .flags = O_RDWR, .mode = S_IFREG | 0644 };
	struct fuse_entry_out e, fe;
	uint64_t fh;

	CHECK(fs && ro);
	t_put_file(dir, "f", "x");
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &fe), 0);
	CHECK_EQ(t_tmpfile(fs, fe.nodeid, O_RDWR, S_IFREG | 0644, &e, &fh), -ENOTDIR);
	CHECK_EQ(t_tmpfile(fs, 0x12345678, O_RDWR, S_IFREG | 0644, &e, &fh), -ENOENT);
	CHECK_EQ(t_tmpfile(fs, FUSE_ROOT_ID, O_RDWR, S_IFDIR | 0755, &e, &fh), -EINVAL);
	CHECK_EQ(t_tmpfile(fs, FUSE_ROOT_ID, O_RDONLY, S_IFREG | 0644, &e, &fh), -EINVAL);
	CHECK_EQ(t_tmpfile(ro, FUSE_ROOT_ID, O_RDWR, S_IFREG | 0644, &e, &fh), -EROFS);
	/* Short argument: fewer bytes than fuse_create_in. */
	CHECK_EQ(t_err(t_call(fs, FUSE_TMPFILE, FUSE_ROOT_ID, &in, sizeof(in) - 4, NULL, 0)),
		 -EINVAL);
	CHECK_EQ(host_entries(dir), 1);
	fs_destroy(fs);
	fs_destroy(ro);
}

/* With the guest's writeback cache a write-only file is read too (page fills): the host file
 * must be open for reading as well, as for CREATE. */
static void test_tmpfile_writeback(void)
{
	struct fs_config cfg = { .root_dir = new_share() };
	struct fuse_init_in in = { .major = 7, .minor = 38, .max_readahead = 65536,
				   .flags = FUSE_ASYNC_READ | FUSE_WRITEBACK_CACHE };
	struct fuse_entry_out e;
	struct fs *fs = NULL;
	struct t_reply r;
	char buf[8] = { 0 };
	uint64_t fh;

	setenv("KRUN_FS_WRITEBACK", "1", 1);
	CHECK(fs_create(&cfg, &fs) == 0);
	unsetenv("KRUN_FS_WRITEBACK");
	r = t_call(fs, FUSE_INIT, 0, &in, sizeof(in), NULL, 0);
	CHECK_EQ(t_err(r), 0);
	if (!(((struct fuse_init_out *)r.data)->flags & FUSE_WRITEBACK_CACHE)) {
		fs_destroy(fs);
		CHECK(!"writeback cache not negotiated");
	}
	CHECK_EQ(t_tmpfile(fs, FUSE_ROOT_ID, O_WRONLY | O_TMPFILE, S_IFREG | 0600, &e, &fh), 0);
	CHECK_EQ(t_write(fs, e.nodeid, fh, 0, "wb", 2), 2);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 0, sizeof(buf), buf), 2);
	CHECK(memcmp(buf, "wb", 2) == 0);
	fs_destroy(fs);
}

/* Opcodes the server does not implement still get ENOSYS (the kernel then stops asking). */
static void test_unknown_opcodes(void)
{
	static const uint32_t ops[] = { FUSE_BMAP, FUSE_POLL, FUSE_NOTIFY_REPLY, FUSE_SETUPMAPPING,
					FUSE_REMOVEMAPPING, FUSE_TMPFILE + 1, 4000, CUSE_INIT };
	struct fs *fs = t_fs_new(new_share(), false, NULL, 0);
	uint8_t arg[64] = { 0 };

	CHECK(fs);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		CHECK_EQ(t_err(t_call(fs, ops[i], FUSE_ROOT_ID, arg, sizeof(arg), NULL, 0)), -ENOSYS);
	fs_destroy(fs);
}

int main(void)
{
	scratch = t_scratch();
	if (!scratch) {
		printf("FAIL test_fs_tmpfile: cannot create a scratch directory\n");
		return 1;
	}
	umask(077);
	RUN_TEST(test_tmpfile_unnamed);
	RUN_TEST(test_tmpfile_link);
	RUN_TEST(test_tmpfile_excl_unlinkable);
	RUN_TEST(test_tmpfile_refused);
	RUN_TEST(test_tmpfile_writeback);
	RUN_TEST(test_unknown_opcodes);
	t_rmrf(scratch);
	free(scratch);
	return HARNESS_EXIT();
}
