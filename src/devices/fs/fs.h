/*
 * The FUSE passthrough server behind virtio-fs (and, for tests, /dev/fuse). Transport-free:
 * it takes one request as iovecs and writes the reply into iovecs.
 */
#ifndef KRUN_DEVICES_FS_FS_H
#define KRUN_DEVICES_FS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct fs;

/* A file that exists only in the export's root directory, never on the host. */
struct fs_vfile {
	const char *name;           /* entry name in the root directory */
	const void *data;           /* read-only content, or NULL for a write-only sink */
	size_t size;
	uint32_t mode;              /* permission bits; the type is always a regular file */
	/* Writes (sink): returns bytes consumed or -errno. NULL: writes get -EACCES. */
	ssize_t (*write)(void *opaque, const void *buf, size_t len, uint64_t offset);
	void *opaque;
};

struct fs_config {
	const char *root_dir;       /* host directory exported as the root of this share */
	bool read_only;
	const struct fs_vfile *vfiles;  /* must stay valid for the server's lifetime */
	unsigned int nr_vfiles;
	double entry_timeout;       /* seconds; 0: KRUN_FS_CACHE and friends, else 1 (fs.c) */
	double attr_timeout;
};

int fs_create(const struct fs_config *cfg, struct fs **out) __attribute__((warn_unused_result));
void fs_destroy(struct fs *fs);

/*
 * Handle one FUSE request. `in` holds the request (fuse_in_header, arguments, write payload),
 * `out` the buffers for the reply. Returns the reply length written to `out` (0 when the
 * opcode has no reply, e.g. FORGET), or -errno when the request is malformed or `out` is too
 * small (the caller treats that as a driver error). Safe to call from several threads.
 */
ssize_t fs_handle(struct fs *fs, const struct iovec *in, unsigned int in_cnt,
		  const struct iovec *out, unsigned int out_cnt);

/* The name of a FUSE opcode we serve, without the FUSE_ prefix ("LOOKUP"), or NULL. */
const char *fs_op_name(uint32_t opcode);

#endif
