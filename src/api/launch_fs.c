/* FUSE servers for a launch spec's shares; the root one also serves the init's files. */
#include "api/launch_priv.h"
#include "common/init_blob.h"
#include "common/krun_init.h"

#include <errno.h>

/* Kept apart from launch.c so the spec builder links without the FUSE server (unit tests). */
static void fill_root_vfiles(struct launch_spec *spec, struct fs_vfile *v)
{
	v[0] = (struct fs_vfile){
		.name = KRUN_INIT_NAME,
		.data = krun_init_blob,
		.size = krun_init_blob_size,
		.mode = 0555,
	};
	v[1] = (struct fs_vfile){
		.name = KRUN_INIT_CONFIG_NAME,
		/* An empty config still needs a non-NULL pointer: NULL means "write sink". */
		.data = spec->init_config ? spec->init_config : (const void *)"",
		.size = spec->init_config_len,
		.mode = 0444,
	};
	v[2] = (struct fs_vfile){
		.name = KRUN_EXIT_NAME,
		.mode = 0222,
		.write = launch_exit_write,
		.opaque = spec,
	};
}

int launch_create_fs(struct launch_spec *spec, unsigned int i, struct fs **out)
{
	struct launch_priv *priv = launch_priv_of(spec);
	struct fs_config cfg = { 0 };

	if (i >= spec->nr_shares)
		return -EINVAL;
	cfg.root_dir = spec->shares[i].host_path;
	cfg.read_only = spec->shares[i].read_only;
	if (i == 0) {
		fill_root_vfiles(spec, priv->root_vfiles);
		cfg.vfiles = priv->root_vfiles;
		cfg.nr_vfiles = LAUNCH_ROOT_VFILES;
	}
	return fs_create(&cfg, out);
}
