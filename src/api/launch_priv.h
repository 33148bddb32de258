/* What launch.c and launch_fs.c share beyond launch.h: the spec's hidden storage. */
#ifndef KRUN_API_LAUNCH_PRIV_H
#define KRUN_API_LAUNCH_PRIV_H

#include <stddef.h>
#include <sys/types.h>

#include "api/launch.h"
#include "devices/fs/fs.h"

struct krun_ctx;

#define LAUNCH_ROOT_VFILES 3

/* A spec plus storage that must live as long as the FUSE servers made from it. */
struct launch_priv {
	struct launch_spec spec;
	struct fs_vfile root_vfiles[LAUNCH_ROOT_VFILES];
};

static inline struct launch_priv *launch_priv_of(struct launch_spec *spec)
{
	return (struct launch_priv *)((char *)spec - offsetof(struct launch_priv, spec));
}

/* Snapshot of a context the caller holds (locked, or taken out of the table). */
int launch_spec_from(const struct krun_ctx *c, struct launch_spec **out)
	__attribute__((warn_unused_result));
/* Write sink of KRUN_EXIT_NAME: "N\n" with N in 0..255 sets spec->exit_status (opaque). */
ssize_t launch_exit_write(void *opaque, const void *buf, size_t len, uint64_t offset);

#endif
