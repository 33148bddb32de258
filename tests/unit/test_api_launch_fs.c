/* The root share a launch spec serves: init, config and exit files through the FUSE server. */
#include "harness.h"
#include "test_fs_util.h"

#include "api/launch_priv.h"
#include "common/init_blob.h"
#include "common/krun_init.h"
#include "libkrun.h"

#include <errno.h>

static struct fs *fs_init(struct launch_spec *spec, unsigned int i)
{
	struct fuse_init_in in = { .major = 7, .minor = 38, .max_readahead = 65536 };
	struct fs *fs = NULL;

	if (launch_create_fs(spec, i, &fs))
		return NULL;
	if (t_err(t_call(fs, FUSE_INIT, 0, &in, sizeof(in), NULL, 0))) {
		fs_destroy(fs);
		return NULL;
	}
	return fs;
}

/* Opens a root entry by name; 0 or the FUSE error. */
static int open_root(struct fs *fs, const char *name, uint32_t flags, struct fuse_entry_out *e,
		     uint64_t *fh)
{
	int err = t_lookup(fs, FUSE_ROOT_ID, name, e);

	return err ? err : t_open(fs, FUSE_OPEN, e->nodeid, flags, fh, NULL);
}

static struct launch_spec *spec_for(const char *root, const char *share)
{
	const char *args[] = { "-c", "exit 3", NULL }, *env[] = { "A=1", NULL };
	int id = krun_create_ctx();
	struct launch_spec *spec = NULL;

	if (id < 0 || krun_set_root((uint32_t)id, root) ||
	    krun_add_virtiofs((uint32_t)id, "data", share) ||
	    krun_set_exec((uint32_t)id, "/bin/sh", args, env) ||
	    launch_spec_from_ctx((uint32_t)id, &spec))
		spec = NULL;
	krun_free_ctx((uint32_t)id);
	return spec;
}

static void test_root_vfiles(void)
{
	char *root = t_scratch(), *share = t_scratch(), buf[4096];
	struct launch_spec *spec = spec_for(root, share);
	struct fuse_entry_out e;
	struct fs *fs;
	uint64_t fh;

	CHECK(spec);
	CHECK_EQ(launch_create_fs(spec, spec->nr_shares, &fs), -EINVAL);
	fs = fs_init(spec, 0);
	CHECK(fs);
	CHECK_EQ(open_root(fs, KRUN_INIT_NAME, O_RDONLY, &e, &fh), 0);
	CHECK_EQ(e.attr.mode & 07777, 0555);
	CHECK_EQ(e.attr.size, krun_init_blob_size);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 0, 4, buf), 4);
	CHECK(!memcmp(buf, krun_init_blob, 4));
	CHECK_EQ(open_root(fs, KRUN_INIT_CONFIG_NAME, O_RDONLY, &e, &fh), 0);
	CHECK_EQ(e.attr.mode & 07777, 0444);
	CHECK_EQ(t_read(fs, FUSE_READ, e.nodeid, fh, 0, sizeof(buf), buf), spec->init_config_len);
	CHECK(!memcmp(buf, spec->init_config, spec->init_config_len));
	CHECK(!memcmp(buf, "exec=/bin/sh\0arg=-c\0arg=exit 3\0env=A=1\0", 39));
	/* The guest init reports the status by writing the exit file. */
	CHECK_EQ(open_root(fs, KRUN_EXIT_NAME, O_WRONLY, &e, &fh), 0);
	CHECK_EQ(launch_exit_status(spec), KRUN_STATUS_NO_REPORT);
	CHECK_EQ(t_write(fs, e.nodeid, fh, 0, "garbage", 7), -EINVAL);
	CHECK_EQ(launch_exit_status(spec), KRUN_STATUS_NO_REPORT);
	CHECK_EQ(t_write(fs, e.nodeid, fh, 0, "42\n", 3), 3);
	CHECK_EQ(launch_exit_status(spec), 42);
	fs_destroy(fs);
	/* Other shares serve only the host directory. */
	CHECK(!strcmp(spec->shares[1].tag, "data"));
	fs = fs_init(spec, 1);
	CHECK(fs);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, KRUN_EXIT_NAME, &e), -ENOENT);
	CHECK_EQ(t_lookup(fs, FUSE_ROOT_ID, KRUN_INIT_NAME, &e), -ENOENT);
	fs_destroy(fs);
	launch_spec_free(spec);
	t_rmrf(root);
	t_rmrf(share);
	free(root);
	free(share);
}

int main(void)
{
	krun_set_log_level(KRUN_LOG_LEVEL_OFF);
	RUN_TEST(test_root_vfiles);
	return HARNESS_EXIT();
}
