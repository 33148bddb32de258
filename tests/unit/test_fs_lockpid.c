/* FUSE server: F_GETLK names the guest pid of the conflicting lock's owner, and what the
 * server keeps per owner goes away with it (FLUSH, last FORGET), through fs_handle. */
#include "harness.h"
#include "test_fs_util.h"

#include <errno.h>

static char *scratch;
static char share[256];

static const char *new_share(void)
{
	return t_share_make(share, sizeof(share), scratch);
}

static int lk(struct fs *fs, uint32_t op, uint64_t nodeid, uint64_t fh, uint64_t owner,
	      uint32_t type, uint64_t start, uint64_t end, uint32_t pid, struct fuse_file_lock *o)
{
	struct fuse_lk_in in = { .fh = fh, .owner = owner,
				 .lk = { .start = start, .end = end, .type = type, .pid = pid } };
	struct t_reply r = t_call(fs, op, nodeid, &in, sizeof(in), NULL, 0);
	int err = t_err(r);

	if (!err && o)
		memcpy(o, &((struct fuse_lk_out *)r.data)->lk, sizeof(*o));
	return err;
}

static int flush(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t owner)
{
	struct fuse_flush_in in = { .fh = fh, .lock_owner = owner };

	return t_err(t_call(fs, FUSE_FLUSH, nodeid, &in, sizeof(in), NULL, 0));
}

static void test_getlk_names_holder(void)
{
	struct fs *fs = t_fs_new(new_share(), false, NULL, 0);
	struct fuse_file_lock o;
	struct fuse_entry_out e;
	uint64_t fh;

	CHECK(fs);
	t_put_file(share, "f", "0123456789");
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDWR, &fh, NULL), 0);
	/* Owner A (pid 111) writes 0-99, owner C (pid 222) reads 200-EOF, B asks. */
	CHECK_EQ(lk(fs, FUSE_SETLK, e.nodeid, fh, 0xa, F_WRLCK, 0, 99, 111, NULL), 0);
	CHECK_EQ(lk(fs, FUSE_SETLKW, e.nodeid, fh, 0xc, F_RDLCK, 200, INT64_MAX, 222, NULL), 0);
	CHECK_EQ(lk(fs, FUSE_GETLK, e.nodeid, fh, 0xb, F_RDLCK, 50, 60, 333, &o), 0);
	CHECK_EQ(o.type, F_WRLCK);
	CHECK_EQ(o.start, 0);
	CHECK_EQ(o.end, 99);
	CHECK_EQ(o.pid, 111);
	CHECK_EQ(lk(fs, FUSE_GETLK, e.nodeid, fh, 0xb, F_WRLCK, 300, 400, 333, &o), 0);
	CHECK_EQ(o.type, F_RDLCK);
	CHECK_EQ(o.end, INT64_MAX);
	CHECK_EQ(o.pid, 222);
	/* Asked by the holder itself: no conflict. A reader next to C's read lock: none either. */
	CHECK_EQ(lk(fs, FUSE_GETLK, e.nodeid, fh, 0xa, F_WRLCK, 0, 99, 111, &o), 0);
	CHECK_EQ(o.type, F_UNLCK);
	CHECK_EQ(lk(fs, FUSE_GETLK, e.nodeid, fh, 0xb, F_RDLCK, 200, 300, 333, &o), 0);
	CHECK_EQ(o.type, F_UNLCK);
	CHECK_EQ(o.pid, 0);
	/* A's lock moves to 500-599 and a new pid: GETLK follows the host kernel's record. */
	CHECK_EQ(lk(fs, FUSE_SETLK, e.nodeid, fh, 0xa, F_UNLCK, 0, 99, 0, NULL), 0);
	CHECK_EQ(lk(fs, FUSE_SETLK, e.nodeid, fh, 0xc, F_UNLCK, 0, INT64_MAX, 0, NULL), 0);
	CHECK_EQ(lk(fs, FUSE_SETLK, e.nodeid, fh, 0xa, F_WRLCK, 500, 599, 444, NULL), 0);
	CHECK_EQ(lk(fs, FUSE_GETLK, e.nodeid, fh, 0xb, F_WRLCK, 0, INT64_MAX, 333, &o), 0);
	CHECK_EQ(o.start, 500);
	CHECK_EQ(o.pid, 444);
	/* FLUSH (close in the guest) drops A's locks and what was kept about A. */
	CHECK_EQ(flush(fs, e.nodeid, fh, 0xa), 0);
	CHECK_EQ(lk(fs, FUSE_GETLK, e.nodeid, fh, 0xb, F_WRLCK, 0, INT64_MAX, 333, &o), 0);
	CHECK_EQ(o.type, F_UNLCK);
	fs_destroy(fs);
}

/* Locks the server cannot attribute report pid 0: an owner that gave none, a host process. */
static void test_getlk_unknown_holder(void)
{
	struct fs *fs = t_fs_new(new_share(), false, NULL, 0);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	struct fuse_file_lock o;
	struct fuse_entry_out e;
	char path[600];
	uint64_t fh;
	int hfd;

	CHECK(fs);
	t_put_file(share, "f", "0123456789");
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDWR, &fh, NULL), 0);
	CHECK_EQ(lk(fs, FUSE_SETLK, e.nodeid, fh, 0xa, F_WRLCK, 0, 9, 0, NULL), 0);
	CHECK_EQ(lk(fs, FUSE_GETLK, e.nodeid, fh, 0xb, F_WRLCK, 0, 9, 333, &o), 0);
	CHECK_EQ(o.type, F_WRLCK);
	CHECK_EQ(o.pid, 0);
	CHECK_EQ(flush(fs, e.nodeid, fh, 0xa), 0);
	snprintf(path, sizeof(path), "%s/f", share);
	hfd = open(path, O_RDWR);
	CHECK(hfd >= 0);
	CHECK_EQ(fcntl(hfd, F_OFD_SETLK, &fl), 0);
	CHECK_EQ(lk(fs, FUSE_SETLK, e.nodeid, fh, 0xa, F_RDLCK, 100, 200, 111, NULL), 0);
	CHECK_EQ(lk(fs, FUSE_GETLK, e.nodeid, fh, 0xb, F_WRLCK, 0, 9, 333, &o), 0);
	CHECK_EQ(o.type, F_WRLCK);
	CHECK_EQ(o.pid, 0);          /* the host's lock: not a guest process */
	close(hfd);
	fs_destroy(fs);
}

/* Per-owner state is bounded by live owners: FLUSH and the last FORGET give it all back. */
static void test_owner_state_released(void)
{
	struct fs *fs = t_fs_new(new_share(), false, NULL, 0);
	struct fuse_entry_out e;
	int before, during;
	uint64_t fh;

	CHECK(fs);
	t_put_file(share, "f", "0123456789");
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, "f", &e), 0);
	CHECK_EQ(t_open(fs, FUSE_OPEN, e.nodeid, O_RDWR, &fh, NULL), 0);
	before = t_open_fds();
	for (uint64_t owner = 1; owner <= 50; owner++)
		CHECK_EQ(lk(fs, FUSE_SETLK, e.nodeid, fh, owner, F_RDLCK, owner, owner, 1000 + owner,
			    NULL), 0);
	during = t_open_fds();
	CHECK(during >= before + 50);
	for (uint64_t owner = 1; owner <= 25; owner++)
		CHECK_EQ(flush(fs, e.nodeid, fh, owner), 0);
	CHECK_EQ(t_open_fds(), during - 25);
	CHECK_EQ(t_release(fs, FUSE_RELEASE, e.nodeid, fh), 0);
	t_forget(fs, e.nodeid, 1);
	CHECK_EQ(t_open_fds(), before - 2);   /* the handle's fd and the inode's O_PATH fd, too */
	fs_destroy(fs);
}

int main(void)
{
	scratch = t_scratch();
	if (!scratch) {
		printf("FAIL test_fs_lockpid: cannot create a scratch directory\n");
		return 1;
	}
	RUN_TEST(test_getlk_names_holder);
	RUN_TEST(test_getlk_unknown_holder);
	RUN_TEST(test_owner_state_released);
	t_rmrf(scratch);
	free(scratch);
	return HARNESS_EXIT();
}
