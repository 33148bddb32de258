/*
 * Test-only: serve a host directory through our FUSE server on /dev/fuse, so ordinary tools
 * can exercise it. Usage: fuse_mount [-r] SRC MOUNTPOINT. Exits 0 once the mount goes away.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/fs/fs.h"

#define THREADS 4
/* The kernel wants room for max_write (1 MiB) plus headers in every read. */
#define BUF_SIZE ((1 << 20) + 64 * 1024)
/* Readahead window of the mount: one max_pages request (see set_readahead). */
#define READAHEAD_KB 1024

struct server {
	struct fs *fs;
	int fd;
};

static void *serve(void *opaque)
{
	struct server *s = opaque;
	char *in = malloc(BUF_SIZE), *out = malloc(BUF_SIZE);

	while (in && out) {
		ssize_t n = read(s->fd, in, BUF_SIZE), r;
		struct iovec iv = { in, 0 }, ov = { out, BUF_SIZE };

		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == ENOENT))
			continue;       /* ENOENT: the request was interrupted before we read it */
		if (n <= 0)
			break;          /* ENODEV: unmounted */
		iv.iov_len = (size_t)n;
		r = fs_handle(s->fs, &iv, 1, &ov, 1);
		if (r < 0) {
			fprintf(stderr, "fuse_mount: malformed request from the kernel: %s\n",
				strerror((int)-r));
			continue;
		}
		/* ENOENT on write: the kernel no longer waits for this answer (interrupted). */
		if (r > 0 && write(s->fd, out, (size_t)r) < 0 && errno != ENOENT && errno != EINTR)
			fprintf(stderr, "fuse_mount: reply: %s\n", strerror(errno));
	}
	free(in);
	free(out);
	return NULL;
}

/*
 * At INIT the kernel offers its default 128 KiB readahead window and a server may only
 * shrink it, so a cold sequential read costs a round trip per 128 KiB. Like any block
 * device's, the window is set from user space (the mount's bdi in sysfs); a virtio-fs guest
 * can do the same for its mount. Best effort: the mount works either way. Needs the server
 * threads running, since the stat may ask the server.
 */
static void set_readahead(const char *mnt)
{
	char path[96];
	struct stat st;
	FILE *f;

	if (stat(mnt, &st))
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "%d\n", READAHEAD_KB);
	if (fclose(f))
		fprintf(stderr, "fuse_mount: %s: %s\n", path, strerror(errno));
}

int main(int argc, char **argv)
{
	struct fs_config cfg = { 0 };
	struct server s = { 0 };
	pthread_t th[THREADS];
	char opts[256];
	int argi = 1, ret;

	if (argc > 1 && strcmp(argv[1], "-r") == 0) {
		cfg.read_only = true;
		argi++;
	}
	if (argc - argi != 2) {
		fprintf(stderr, "usage: %s [-r] SRC MOUNTPOINT\n", argv[0]);
		return 2;
	}
	cfg.root_dir = argv[argi];
	ret = fs_create(&cfg, &s.fs);
	if (ret) {
		fprintf(stderr, "fuse_mount: %s: %s\n", cfg.root_dir, strerror(-ret));
		return 1;
	}
	s.fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (s.fd < 0) {
		perror("fuse_mount: /dev/fuse");
		return 1;
	}
	/* default_permissions: the kernel checks modes itself, as virtio-fs guests do. */
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0,"
		 "default_permissions,allow_other", s.fd);
	if (mount("krunfs", argv[argi + 1], "fuse.krunfs", MS_NOSUID | MS_NODEV, opts)) {
		perror("fuse_mount: mount");
		return 1;
	}
	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&th[i], NULL, serve, &s))
			return 1;
	set_readahead(argv[argi + 1]);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	close(s.fd);
	fs_destroy(s.fs);
	return 0;
}
