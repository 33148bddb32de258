/* libFuzzer target: sequences of hostile FUSE requests against the passthrough server. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/fs/fs.h"
#include "fuzz_util.h"
#include "util/log.h"

/*
 * Input: records back to back, each one control byte then one request. The request is as
 * long as its fuse_in_header.len says (cut short at the end of the input). Control byte:
 * bits 0-1 number of request iovecs - 1, bits 2-4 reply buffer size class, bits 5-6 number
 * of reply iovecs - 1. Every iovec is its own heap block, so ASan sees any overrun. Bit 7
 * of the first control byte makes the share read-only. The root also holds two virtual
 * files: node ids 1 << 62 (read-only data) and (1 << 62) + 1 (a write sink).
 * The scratch tree lives in $TMPDIR (default /tmp); TMPDIR=/dev/shm is several times faster.
 */
#define MAX_REQS 64
#define MAX_IOV 4
#define CANARY_TEXT "canary: must never change\n"

static char top[256];           /* $TMPDIR/krun-fuzz-fuse.XXXXXX: holds canary and share */
static char share[300], canary[300];
static struct stat canary_st;
static bool trace;              /* FUZZ_TRACE=1: print each reply (to write seeds, read crashes) */
static uint8_t sink_sum;

/* The sink reads every byte it is given: ASan flags a length beyond the guest's payload. */
static ssize_t sink_write(void *opaque, const void *buf, size_t len, uint64_t offset)
{
	(void)opaque;
	for (size_t i = 0; i < len; i++)
		sink_sum += ((const uint8_t *)buf)[i];
	return offset > (1u << 20) ? -EFBIG : (ssize_t)len;
}

static const char vf_data[] = "virtual file content\n";
static const struct fs_vfile vfiles[] = {
	{ .name = "vf_data", .data = vf_data, .size = sizeof(vf_data) - 1, .mode = 0444 },
	{ .name = "vf_sink", .mode = 0222, .write = sink_write },
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
	fprintf(stderr, "fuzz_fuse: %s: %s\n", what, strerror(errno));
	abort();
}

static void put(const char *name, const char *text)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", share, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		die(path);
	close(fd);
}

/* Remove everything below dirfd (not following symlinks), then dirfd's entries themselves. */
static void clear_dir(int dirfd)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *e;

	if (!d)
		die("fdopendir");
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd, e->d_name, 0) == 0)
			continue;
		/* A directory (maybe chmod 0 by the guest: root does not care). */
		int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			die(e->d_name);
		clear_dir(sub);
		if (unlinkat(dirfd, e->d_name, AT_REMOVEDIR))
			die(e->d_name);
	}
	closedir(d);
}

/* The share every iteration starts from: files, a directory, a FIFO and escape-bait symlinks. */
static void reset_share(void)
{
	char path[400];
	int fd = open(share, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		die(share);
	chmod(share, 0755);
	clear_dir(fd);
	put("a", "hello world\n");
	put("b", "");
	snprintf(path, sizeof(path), "%s/d", share);
	if (mkdir(path, 0755))
		die(path);
	put("d/f", "in a directory\n");
	snprintf(path, sizeof(path), "%s/p", share);
	if (mkfifo(path, 0644))
		die(path);
	snprintf(path, sizeof(path), "%s/up", share);
	if (symlink("../canary", path))
		die(path);
	snprintf(path, sizeof(path), "%s/abs", share);
	if (symlink(canary, path))
		die(path);
	snprintf(path, sizeof(path), "%s/dotdot", share);
	if (symlink("..", path))
		die(path);
}

/* Nothing outside the share may change: the canary's content and metadata, top's entries. */
static void check_outside(void)
{
	char buf[128];
	struct stat st;
	DIR *d;
	struct dirent *e;
	int fd = open(canary, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		die("canary vanished");
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != (ssize_t)strlen(CANARY_TEXT) || memcmp(buf, CANARY_TEXT, (size_t)n))
		die("canary content changed");
	if (lstat(canary, &st) || st.st_mode != canary_st.st_mode || st.st_uid != canary_st.st_uid ||
	    st.st_gid != canary_st.st_gid || st.st_nlink != canary_st.st_nlink ||
	    st.st_ino != canary_st.st_ino)
		die("canary metadata changed");
	d = opendir(top);
	if (!d)
		die(top);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, "canary") && strcmp(e->d_name, "share")) {
			fprintf(stderr, "fuzz_fuse: new entry outside the share: %s\n", e->d_name);
			abort();
		}
	closedir(d);
	if (lstat(share, &st) || !S_ISDIR(st.st_mode))
		die("share replaced");
}

static void cleanup(void)
{
	int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		clear_dir(fd);
		rmdir(top);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* A guest may write at huge offsets or fallocate: keep files small on the host disk. */
	struct rlimit fsize = { 16 << 20, 16 << 20 };
	/* Few descriptors, so a few dozen requests exhaust them (EMFILE paths). */
	struct rlimit nofile = { 100, 100 };
	int fd;

	(void)argc;
	(void)argv;
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &fsize) || setrlimit(RLIMIT_NOFILE, &nofile))
		die("setrlimit");
	trace = getenv("FUZZ_TRACE") != NULL;
	log_set_level(getenv("FUZZ_LOG") ? LOG_LEVEL_TRACE : LOG_LEVEL_OFF);
	snprintf(top, sizeof(top), "%s/krun-fuzz-fuse.XXXXXX",
		 getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 200 ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(top))
		die("mkdtemp");
	snprintf(share, sizeof(share), "%s/share", top);
	snprintf(canary, sizeof(canary), "%s/canary", top);
	if (mkdir(share, 0755))
		die(share);
	fd = open(canary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, CANARY_TEXT, strlen(CANARY_TEXT)) != (ssize_t)strlen(CANARY_TEXT))
		die(canary);
	close(fd);
	if (lstat(canary, &canary_st))
		die(canary);
	atexit(cleanup);
	return 0;
}

static const size_t out_sizes[8] = {
	0, 8, sizeof(struct fuse_out_header), 24, 64, 200, 4096, 65536 + 4096,
};

/* Split len bytes into n heap blocks (n >= 1; empty blocks allowed) and fill them from src. */
static unsigned int make_iov(struct iovec *iov, unsigned int n, const uint8_t *src, size_t len,
			     uint32_t seed)
{
	size_t done = 0;

	for (unsigned int i = 0; i < n; i++) {
		size_t part = i + 1 == n ? len - done : (len - done) / (2 + ((seed >> (i * 4)) & 3));
		iov[i].iov_base = malloc(part ? part : 1);
		iov[i].iov_len = part;
		if (src && part)
			memcpy(iov[i].iov_base, src + done, part);
		done += part;
	}
	return n;
}

static void free_iov(struct iovec *iov, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		free(iov[i].iov_base);
}


static uint8_t peek(const struct iovec *iov, size_t at)
{
	for (; iov->iov_len <= at; iov++)
		at -= iov->iov_len;
	return ((const uint8_t *)iov->iov_base)[at];
}

/* The most payload a successful reply to this request may carry, or -1 for "no limit here". */
static long payload_limit(const struct fuse_in_header *h, const uint8_t *req, size_t len)
{
	uint32_t size;

	switch (h->opcode) {
	case FUSE_READ:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		if (len < sizeof(*h) + sizeof(struct fuse_read_in))
			return -1;
		memcpy(&size, req + sizeof(*h) + offsetof(struct fuse_read_in, size), 4);
		return size;
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
		/* linux/fuse.h: size 0 asks for the length only (fuse_getxattr_out). */
		if (len < sizeof(*h) + sizeof(struct fuse_getxattr_in))
			return -1;
		memcpy(&size, req + sizeof(*h), 4);
		return size ? size : (long)sizeof(struct fuse_getxattr_out);
	case FUSE_READLINK:
		return PATH_MAX;
	default:
		return -1;
	}
}

static void run_one(struct fs *fs, uint8_t ctl, const uint8_t *req, size_t len)
{
	struct iovec in[MAX_IOV], out[MAX_IOV];
	unsigned int in_cnt = (ctl & 3) + 1, out_cnt = ((ctl >> 5) & 3) + 1;
	size_t out_len = out_sizes[(ctl >> 2) & 7];
	struct fuse_in_header h;
	struct fuse_out_header oh;
	size_t got = 0;
	ssize_t ret;
	long limit;

	memset(&h, 0, sizeof(h));
	memcpy(&h, req, len < sizeof(h) ? len : sizeof(h));
	make_iov(in, in_cnt, req, len, ctl * 2654435761u);
	make_iov(out, out_cnt, NULL, out_len, ctl * 40503u);
	for (unsigned int i = 0; i < out_cnt && got < sizeof(oh); i++) {
		size_t k = out[i].iov_len < sizeof(oh) - got ? out[i].iov_len : sizeof(oh) - got;
		memset(out[i].iov_base, 0xa5, k);
		got += k;
	}
	ret = fs_handle(fs, in, in_cnt, out, out_cnt);
	if (ret > 0) {
		/* A reply: a well-formed header that fits the buffers and matches the request. */
		got = 0;
		for (unsigned int i = 0; i < out_cnt && got < sizeof(oh); i++) {
			size_t k = out[i].iov_len < sizeof(oh) - got ? out[i].iov_len : sizeof(oh) - got;
			memcpy((uint8_t *)&oh + got, out[i].iov_base, k);
			got += k;
		}
		if ((size_t)ret > out_len || got < sizeof(oh) || oh.len != (uint32_t)ret ||
		    oh.unique != h.unique || oh.error > 0 || oh.error <= -4096 ||
		    (oh.error && oh.len != sizeof(oh))) {
			fprintf(stderr, "fuzz_fuse: bad reply to opcode %u: ret %zd out %zu len %u "
				"error %d\n", h.opcode, ret, out_len, oh.len, oh.error);
			abort();
		}
		/* The guest kernel asked for at most this much; more is a protocol violation. */
		limit = payload_limit(&h, req, len);
		if (!oh.error && limit >= 0 && oh.len - sizeof(oh) > (size_t)limit) {
			fprintf(stderr, "fuzz_fuse: opcode %u: %zu payload bytes for a request of %ld\n",
				h.opcode, oh.len - sizeof(oh), limit);
			abort();
		}
		if (trace) {
			char hex[17] = "";
			for (size_t i = 0; i < 8 && sizeof(oh) + i < oh.len; i++)
				snprintf(hex + 2 * i, 3, "%02x", peek(out, sizeof(oh) + i));
			fprintf(stderr, "op %u node %llu: len %u error %d payload %s\n", h.opcode,
				(unsigned long long)h.nodeid, oh.len, oh.error, hex);
		}
	} else if (ret < 0 && ret != -EINVAL && ret != -ENOBUFS) {
		fprintf(stderr, "fuzz_fuse: opcode %u: unexpected return %zd\n", h.opcode, ret);
		abort();
	}
	free_iov(in, in_cnt);
	free_iov(out, out_cnt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fs_config cfg = { .root_dir = share, .vfiles = vfiles, .nr_vfiles = 2 };
	static uint8_t buf[1 << 16];
	struct fs *fs = NULL;
	size_t off = 0;
	int fds_before;

	if (size > sizeof(buf))
		return 0;
	/* libFuzzer installs its own SIGXFSZ handler after LLVMFuzzerInitialize. */
	signal(SIGXFSZ, SIG_IGN);
	/* A fresh server on a fresh tree: node ids and handles come out the same every run. */
	reset_share();
	fds_before = t_open_fds();
	cfg.read_only = size && (data[0] & 0x80);
	if (fs_create(&cfg, &fs))
		die("fs_create");
	for (int n = 0; n < MAX_REQS && off < size; n++) {
		uint8_t ctl = data[off++];
		struct fuse_in_header h;
		size_t len;

		memset(&h, 0, sizeof(h));
		memcpy(&h, data + off, size - off < sizeof(h) ? size - off : sizeof(h));
		len = h.len;
		if (len < sizeof(h))
			len = sizeof(h);    /* a lying length: fs_handle must reject the request */
		if (len > size - off)
			len = size - off;
		memcpy(buf, data + off, len);
		/* A lone single-threaded server cannot serve the unlock a SETLKW would wait for. */
		if (len >= sizeof(h) && h.opcode == FUSE_SETLKW) {
			h.opcode = FUSE_SETLK;
			memcpy(buf, &h, sizeof(h));
		}
		run_one(fs, ctl, buf, len);
		off += len;
	}
	fs_destroy(fs);
	fuzz_check_fds("fuzz_fuse", fds_before);
	check_outside();
	return 0;
}
