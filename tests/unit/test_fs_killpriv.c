/* FUSE server: HANDLE_KILLPRIV_V2 (suid/sgid killed on request) and cache timeouts from the
 * environment, through fs_handle. */
#include "harness.h"
#include "test_fs_util.h"

#include <errno.h>
#include <sys/xattr.h>

static char *scratch;
static char share[256];

static const char *new_share(void)
{
	return t_share_make(share, sizeof(share), scratch);
}

/* A host file `name` with `mode` (chmod, so the umask does not interfere). */
static void put_mode(const char *name, mode_t mode)
{
	char path[600];

	t_put_file(share, name, "0123456789");
	snprintf(path, sizeof(path), "%s/%s", share, name);
	if (chmod(path, mode))
		perror(path);
}

static mode_t host_mode(const char *name)
{
	char path[600];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", share, name);
	return stat(path, &st) ? (mode_t)-1 : st.st_mode & 07777;
}

/* Node id and an O_RDWR handle for an existing name in the root. */
static int open_rw(struct fs *fs, const char *name, uint64_t *nodeid, uint64_t *fh)
{
	struct fuse_entry_out e;
	int err = t_lookup(fs, FUSE_ROOT_ID, name, &e);

	*nodeid = e.nodeid;
	return err ? err : t_open(fs, FUSE_OPEN, e.nodeid, O_RDWR, fh, NULL);
}

static int write_flags(struct fs *fs, uint64_t nodeid, uint64_t fh, uint32_t wflags)
{
	struct fuse_write_in in = { .fh = fh, .size = 3, .write_flags = wflags };

	return t_err(t_call(fs, FUSE_WRITE, nodeid, &in, sizeof(in), "abc", 3));
}

static void test_init_offers_killpriv(void)
{
	struct fs_config cfg = { .root_dir = new_share() };
	struct fuse_init_in in = { .major = 7, .minor = 38,
				   .flags = FUSE_ASYNC_READ | FUSE_HANDLE_KILLPRIV_V2 };
	struct fs *fs = NULL;
	struct t_reply r;

	CHECK(fs_create(&cfg, &fs) == 0);
	r = t_call(fs, FUSE_INIT, 0, &in, sizeof(in), NULL, 0);
	CHECK_EQ(t_err(r), 0);
	CHECK(((struct fuse_init_out *)r.data)->flags & FUSE_HANDLE_KILLPRIV_V2);
	fs_destroy(fs);
}

/* FUSE_WRITE_KILL_SUIDGID: suid always, sgid only with group execute; no flag, no change. */
static void test_write_kills(void)
{
	struct fs *fs = t_fs_new(new_share(), false, NULL, 0);
	uint64_t a, b, fa, fb;

	CHECK(fs);
	put_mode("a", 06755);
	put_mode("b", 06745);
	CHECK_EQ(open_rw(fs, "a", &a, &fa), 0);
	CHECK_EQ(open_rw(fs, "b", &b, &fb), 0);
	CHECK_EQ(write_flags(fs, a, fa, 0), 0);
	if (geteuid() == 0)     /* with CAP_FSETID the host kernel keeps the bits on its own */
		CHECK_EQ(host_mode("a"), 06755);
	CHECK_EQ(write_flags(fs, a, fa, FUSE_WRITE_KILL_SUIDGID), 0);
	CHECK_EQ(host_mode("a"), 0755);
	CHECK_EQ(write_flags(fs, b, fb, FUSE_WRITE_KILL_SUIDGID), 0);
	CHECK_EQ(host_mode("b"), 02745);    /* sgid without group execute: a locking mark */
	fs_destroy(fs);
}

/* FATTR_KILL_SUIDGID with a truncate, with and without a handle; an explicit mode wins. */
static void test_setattr_kills(void)
{
	struct fs *fs = t_fs_new(new_share(), false, NULL, 0);
	struct fuse_setattr_in in = { .valid = FATTR_SIZE | FATTR_KILL_SUIDGID };
	struct fuse_entry_out e;
	uint64_t a, fa;

	CHECK(fs);
	put_mode("a", 06755);
	put_mode("b", 04755);
	put_mode("c", 04755);
	CHECK_EQ(open_rw(fs, "a", &a, &fa), 0);
	in.valid |= FATTR_FH;
	in.fh = fa;
	CHECK_EQ(t_err(t_call(fs, FUSE_SETATTR, a, &in, sizeof(in), NULL, 0)), 0);
	CHECK_EQ(host_mode("a"), 0755);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "b", &e), 0);
	in.valid &= ~FATTR_FH;
	CHECK_EQ(t_err(t_call(fs, FUSE_SETATTR, e.nodeid, &in, sizeof(in), NULL, 0)), 0);
	CHECK_EQ(host_mode("b"), 0755);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "c", &e), 0);
	in.valid |= FATTR_MODE;
	in.mode = S_IFREG | 04711;
	CHECK_EQ(t_err(t_call(fs, FUSE_SETATTR, e.nodeid, &in, sizeof(in), NULL, 0)), 0);
	CHECK_EQ(host_mode("c"), 04711);
	fs_destroy(fs);
}

/* FUSE_OPEN_KILL_SUIDGID with O_TRUNC on OPEN and on CREATE of an existing file. */
static void test_open_trunc_kills(void)
{
	struct fs *fs = t_fs_new(new_share(), false, NULL, 0);
	struct fuse_open_in oi = { .flags = O_RDWR | O_TRUNC,
				   .open_flags = FUSE_OPEN_KILL_SUIDGID };
	struct fuse_create_in ci = { .flags = O_RDWR | O_TRUNC, .mode = S_IFREG | 04755,
				     .open_flags = FUSE_OPEN_KILL_SUIDGID };
	struct fuse_entry_out e;

	CHECK(fs);
	put_mode("a", 06755);
	put_mode("b", 06755);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "a", &e), 0);
	CHECK_EQ(t_err(t_call(fs, FUSE_OPEN, e.nodeid, &oi, sizeof(oi), NULL, 0)), 0);
	CHECK_EQ(host_mode("a"), 0755);
	CHECK_EQ(t_err(t_call(fs, FUSE_CREATE, FUSE_ROOT_ID, &ci, sizeof(ci), "b", 2)), 0);
	CHECK_EQ(host_mode("b"), 0755);
	/* A file the CREATE makes keeps the mode asked for. */
	CHECK_EQ(t_err(t_call(fs, FUSE_CREATE, FUSE_ROOT_ID, &ci, sizeof(ci), "new", 4)), 0);
	CHECK_EQ(host_mode("new"), 04755);
	fs_destroy(fs);
}

/* security.capability goes with a write without any help (host kernel, file_remove_privs). */
static void test_write_drops_caps(void)
{
	/* struct vfs_cap_data, revision 2: CAP_NET_RAW permitted. */
	const uint32_t cap[5] = { 0x02000000, 1U << 13, 0, 0, 0 };
	struct fs *fs = t_fs_new(new_share(), false, NULL, 0);
	char path[600];
	uint64_t a, fa;

	CHECK(fs);
	put_mode("a", 0755);
	snprintf(path, sizeof(path), "%s/a", share);
	if (setxattr(path, "security.capability", cap, sizeof(cap), 0)) {
		printf("SKIP test_write_drops_caps: setxattr: %s\n", strerror(errno));
		fs_destroy(fs);
		return;
	}
	CHECK_EQ(open_rw(fs, "a", &a, &fa), 0);
	CHECK_EQ(write_flags(fs, a, fa, FUSE_WRITE_KILL_SUIDGID), 0);
	CHECK(getxattr(path, "security.capability", NULL, 0) < 0 && errno == ENODATA);
	fs_destroy(fs);
}

static struct fuse_entry_out lookup_with_env(const char *cache, const char *entry)
{
	struct fuse_entry_out e = { 0 };
	struct fs *fs;

	if (cache)
		setenv("KRUN_FS_CACHE", cache, 1);
	if (entry)
		setenv("KRUN_FS_ENTRY_TIMEOUT", entry, 1);
	fs = t_fs_new(share, false, NULL, 0);
	unsetenv("KRUN_FS_CACHE");
	unsetenv("KRUN_FS_ENTRY_TIMEOUT");
	if (fs && t_lookup(fs, FUSE_ROOT_ID, "a", &e))
		memset(&e, 0, sizeof(e));
	fs_destroy(fs);
	return e;
}

static void test_cache_env(void)
{
	struct fuse_entry_out e;

	CHECK(new_share());
	put_mode("a", 0644);
	e = lookup_with_env(NULL, NULL);
	CHECK(e.nodeid && e.entry_valid == 1 && e.attr_valid == 1);
	e = lookup_with_env("none", NULL);
	CHECK(e.nodeid && e.entry_valid == 0 && e.entry_valid_nsec == 0 && e.attr_valid == 0);
	e = lookup_with_env("always", "0.25");
	CHECK(e.nodeid && e.entry_valid == 0 && e.entry_valid_nsec == 250000000);
	CHECK_EQ(e.attr_valid, 86400);
	e = lookup_with_env("bogus", "-3");
	CHECK(e.nodeid && e.entry_valid == 1 && e.attr_valid == 1);
}

int main(void)
{
	scratch = t_scratch();
	if (!scratch) {
		printf("FAIL test_fs_killpriv: cannot create a scratch directory\n");
		return 1;
	}
	umask(022);
	RUN_TEST(test_init_offers_killpriv);
	RUN_TEST(test_write_kills);
	RUN_TEST(test_setattr_kills);
	RUN_TEST(test_open_trunc_kills);
	RUN_TEST(test_write_drops_caps);
	RUN_TEST(test_cache_env);
	t_rmrf(scratch);
	free(scratch);
	return HARNESS_EXIT();
}
