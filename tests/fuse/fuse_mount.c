/*
 * Test-only: serve a host directory through our FUSE server on /dev/fuse, so ordinary tools
 * can exercise it. Usage: fuse_mount [-r] [-s STATS] SRC MOUNTPOINT. Exits 0 once the mount
 * goes away. -s: count the kernel's requests by opcode; every SIGUSR1 (and the exit) writes
 * "NAME COUNT" lines to STATS (replaced atomically) and starts counting afresh, so a script
 * can learn how many requests each step of a workload cost (bench/fuse_ops.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
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

/* Opcodes up to here are counted one by one; the rest share the last slot. */
#define COUNTED_OPCODES 64

struct server {
	struct fs *fs;
	int fd;
	const char *stats_path;
	unsigned long counts[COUNTED_OPCODES];
};

static void count_request(struct server *s, const void *req, size_t len)
{
	const struct fuse_in_header *h = req;
	uint32_t op;

	if (!s->stats_path || len < sizeof(*h))
		return;
	op = h->opcode < COUNTED_OPCODES ? h->opcode : COUNTED_OPCODES - 1;
	__atomic_fetch_add(&s->counts[op], 1, __ATOMIC_RELAXED);
}

/* Writes the counts so far to the stats file and resets them. */
static void dump_counts(struct server *s)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", s->stats_path);
	f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "fuse_mount: %s: %s\n", tmp, strerror(errno));
		return;
	}
	for (uint32_t op = 0; op < COUNTED_OPCODES; op++) {
		unsigned long n = __atomic_exchange_n(&s->counts[op], 0, __ATOMIC_RELAXED);
		const char *name = fs_op_name(op);

		if (n && name)
			fprintf(f, "%s %lu\n", name, n);
		else if (n)
			fprintf(f, "OPCODE_%u %lu\n", op, n);
	}
	if (fclose(f) || rename(tmp, s->stats_path))
		fprintf(stderr, "fuse_mount: %s: %s\n", s->stats_path, strerror(errno));
}

/* SIGUSR1 is blocked in every thread and taken here, where stdio is safe to use. */
static void *stats_thread(void *opaque)
{
	struct server *s = opaque;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (sigwait(&set, &sig) == 0)
		dump_counts(s);
	return NULL;
}

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
		count_request(s, in, (size_t)n);
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
	pthread_t th[THREADS], stats;
	sigset_t usr1;
	char opts[256];
	int argi = 1, ret;

	for (; argi < argc && argv[argi][0] == '-'; argi++) {
		if (strcmp(argv[argi], "-r") == 0)
			cfg.read_only = true;
		else if (strcmp(argv[argi], "-s") == 0 && argi + 1 < argc)
			s.stats_path = argv[++argi];
		else
			break;
	}
	if (argc - argi != 2) {
		fprintf(stderr, "usage: %s [-r] [-s STATS] SRC MOUNTPOINT\n", argv[0]);
		return 2;
	}
	/* Before any thread starts, so that only stats_thread takes the signal. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	if (s.stats_path && pthread_create(&stats, NULL, stats_thread, &s))
		return 1;
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
	if (s.stats_path)
		dump_counts(&s);
	close(s.fd);
	fs_destroy(s.fs);
	return 0;
}
