/*
 * Peers for bench/fs_rtt.sh, measured in the same invocation as the guest's round trips: the
 * host's TSC rate (to turn the guest's cycles into time), the server's own cost of the same
 * request (fs_handle called in-process, no transport, no thread hop) and the native call
 * (fstatat on the host). Usage: fs_rtt_peer DIR NAME COUNT; prints key=value lines.
 */
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devices/fs/fs.h"
#include "tcg_vm.h"

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One request through fs_handle; returns the reply's error, or -EIO when there is no reply. */
static int call(struct fs *fs, uint32_t opcode, uint64_t node, const void *arg, uint32_t len,
		void *reply, size_t cap, uint64_t *unique)
{
	struct fuse_in_header ih = { .len = (uint32_t)sizeof(ih) + len, .opcode = opcode,
				     .unique = ++*unique, .nodeid = node };
	struct fuse_out_header oh = { 0 };
	struct iovec in[2] = { { &ih, sizeof(ih) }, { (void *)arg, len } };
	struct iovec out[2] = { { &oh, sizeof(oh) }, { reply, cap } };
	ssize_t n = fs_handle(fs, in, 2, out, 2);

	return n < (ssize_t)sizeof(oh) || oh.unique != ih.unique ? -5 : oh.error;
}

/* ns per request of n GETATTR (or LOOKUP) requests handled in-process; <0 on a failed reply. */
static double server_only(struct fs *fs, bool lookup, const char *name, long n)
{
	struct fuse_init_in init = { .major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION };
	union { struct fuse_init_out init; struct fuse_entry_out entry; struct fuse_attr_out attr; } r;
	struct fuse_getattr_in ga = { 0 };
	uint64_t unique = 0, node;
	uint32_t name_len = (uint32_t)strlen(name) + 1;
	double t0;

	if (call(fs, FUSE_INIT, 0, &init, sizeof(init), &r, sizeof(r.init), &unique) ||
	    call(fs, FUSE_LOOKUP, FUSE_ROOT_ID, name, name_len, &r, sizeof(r.entry), &unique))
		return -1;
	node = r.entry.nodeid;
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int e = lookup ? call(fs, FUSE_LOOKUP, FUSE_ROOT_ID, name, name_len, &r, sizeof(r.entry), &unique)
			       : call(fs, FUSE_GETATTR, node, &ga, sizeof(ga), &r, sizeof(r.attr), &unique);
		if (e)
			return -1;
	}
	return (now_ns() - t0) / (double)n;
}

static double native_stat(const char *dir, const char *name, long n)
{
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	double t0 = now_ns();

	for (long i = 0; i < n && dfd >= 0; i++)
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
			return -1;
	t0 = dfd >= 0 ? (now_ns() - t0) / (double)n : -1;
	if (dfd >= 0)
		close(dfd);
	return t0;
}

int main(int argc, char **argv)
{
	struct fs_config cfg = { 0 };
	struct fs *fs;
	long n = argc == 4 ? atol(argv[3]) : 0;
	double getattr_ns, lookup_ns;

	if (n <= 0) {
		fprintf(stderr, "usage: %s DIR NAME COUNT\n", argv[0]);
		return 2;
	}
	cfg.root_dir = argv[1];
	if (fs_create(&cfg, &fs)) {
		fprintf(stderr, "fs_rtt_peer: cannot export %s\n", argv[1]);
		return 1;
	}
	getattr_ns = server_only(fs, false, argv[2], n);
	lookup_ns = server_only(fs, true, argv[2], n);
	fs_destroy(fs);
	printf("tsc_khz=%lu\nserver_getattr_ns=%.0f\nserver_lookup_ns=%.0f\nnative_fstatat_ns=%.0f\n",
	       tcg_vm_tsc_khz(), getattr_ns, lookup_ns, native_stat(argv[1], argv[2], n));
	return getattr_ns < 0 || lookup_ns < 0 ? 1 : 0;
}
