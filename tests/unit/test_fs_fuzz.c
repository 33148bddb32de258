/* Random and mutated FUSE requests against a scratch share: no crash, every reply well formed. */
#include "harness.h"
#include "test_fs_util.h"

#include <errno.h>

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Node ids and handles worth trying: real ones seen in replies, plus junk. */
static uint64_t ids[64];
static unsigned int nr_ids;

static void remember(uint64_t id)
{
	ids[nr_ids++ % 64] = id;
}

static uint64_t pick_id(void)
{
	switch (next_rand() % 4) {
	case 0:
		return FUSE_ROOT_ID;
	case 1:
		return next_rand();
	default:
		return nr_ids ? ids[next_rand() % (nr_ids < 64 ? nr_ids : 64)] : FUSE_ROOT_ID;
	}
}

/* Opcodes that would wait forever single-threaded (SETLKW) or fill the disk (FALLOCATE). */
static bool excluded(uint32_t op)
{
	return op == FUSE_SETLKW || op == FUSE_FALLOCATE || op == FUSE_DESTROY;
}

static void fill_args(uint8_t *a, size_t len)
{
	static const char *names[] = { "a", "b", "..", ".", "dir", "link", "x/y", "" };

	for (size_t i = 0; i < len; i++)
		a[i] = (uint8_t)next_rand();
	/* Plant plausible ids, sizes and names so requests get past the first checks. */
	for (size_t off = 0; off + 8 <= len && off < 64; off += 8) {
		uint64_t v = next_rand() % 3 ? pick_id() : next_rand() % 8192;
		memcpy(a + off, &v, 8);
	}
	if (len > 16 && next_rand() % 2) {
		size_t at = next_rand() % (len - 8);
		const char *n = names[next_rand() % 8];
		memcpy(a + at, n, strlen(n) + 1 <= len - at ? strlen(n) + 1 : len - at);
	}
}

static void test_fuzz(void)
{
	char tmpl[] = "/tmp/krun_fs_fuzz.XXXXXX", *dir = mkdtemp(tmpl);
	static uint8_t args[70000];
	struct fs *fs;
	int served = 0;

	CHECK(dir);
	t_put_file(dir, "a", "some data");
	t_put_file(dir, "b", "more");
	fs = t_fs_new(dir, false, NULL, 0);
	CHECK(fs);
	for (int i = 0; i < 40000; i++) {
		uint32_t op = (uint32_t)(next_rand() % 56);
		size_t alen = next_rand() % 4 ? next_rand() % 128 : next_rand() % sizeof(args);
		size_t out_len = next_rand() % 8 ? T_BUF : next_rand() % 256;
		struct t_reply r;

		if (excluded(op))
			continue;
		fill_args(args, alen);
		r = t_call3(fs, op, pick_id(), args, alen, NULL, 0, NULL, 0, out_len);
		if (r.ret < 0) {
			CHECK(r.ret == -ENOBUFS || r.ret == -EINVAL);
			continue;
		}
		if (r.ret == 0)
			continue;   /* FORGET-style: no reply */
		CHECK_EQ(r.ret, r.h.len);
		CHECK(r.h.len <= out_len);
		CHECK(r.h.error <= 0 && r.h.error > -4096);
		CHECK(r.h.error == 0 || r.h.len == sizeof(r.h));
		if (r.h.error == 0 && r.h.len >= sizeof(r.h) + sizeof(struct fuse_entry_out) &&
		    (op == FUSE_LOOKUP || op == FUSE_MKDIR || op == FUSE_CREATE))
			remember(((struct fuse_entry_out *)r.data)->nodeid);
		if (r.h.error == 0 && (op == FUSE_OPEN || op == FUSE_OPENDIR))
			remember(((struct fuse_open_out *)r.data)->fh);
		served++;
	}
	CHECK(served > 1000);
	/* Still healthy afterwards. */
	CHECK_EQ(t_getattr(fs, FUSE_ROOT_ID, NULL), 0);
	fs_destroy(fs);
	t_rmrf(dir);
}

int main(void)
{
	const char *seed = getenv("FS_FUZZ_SEED");

	if (seed)
		rng = strtoull(seed, NULL, 0) | 1;
	fprintf(stderr, "test_fs_fuzz: seed 0x%llx\n", (unsigned long long)rng);
	RUN_TEST(test_fuzz);
	return HARNESS_EXIT();
}
