/* FUSE server core: lifecycle, request validation and dispatch (linux/fuse.h, protocol 7.38). */
#define LOG_MODULE "fs"
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/iov.h"
#include "util/log.h"

struct fs_op {
	fs_op_fn fn;
	fs_op_fn vfile_fn;          /* for node ids of virtual files; NULL: -EACCES */
	uint32_t in_size;           /* fixed argument bytes the opcode needs */
	uint32_t out_size;          /* fixed reply payload, checked before any effect */
	bool modifies;              /* refused with EROFS on read-only shares */
	bool no_reply;
	const char *name;           /* for logs and request statistics: "LOOKUP" */
};

ssize_t fs_reply(struct fs_req *req, const void *data, size_t len)
{
	struct fuse_out_header h = { .len = sizeof(h) + len, .unique = req->hdr.unique };

	if (req->out_len < h.len)
		return -ENOBUFS;
	iov_from_buf(req->out, req->out_cnt, 0, &h, sizeof(h));
	if (len)
		iov_from_buf(req->out, req->out_cnt, sizeof(h), data, len);
	return h.len;
}

ssize_t fs_reply_err(struct fs_req *req, int err)
{
	struct fuse_out_header h = { .len = sizeof(h), .unique = req->hdr.unique };

	/* linux/fuse.h: error is a negative errno; anything else the kernel turns into EIO. */
	h.error = (err < 0 && err > -4096) ? err : -EIO;
	iov_from_buf(req->out, req->out_cnt, 0, &h, sizeof(h));
	return h.len;
}

void fs_fill_attr(struct fuse_attr *a, const struct stat *st)
{
	*a = (struct fuse_attr){
		.ino = st->st_ino, .size = st->st_size, .blocks = st->st_blocks,
		.atime = st->st_atim.tv_sec, .mtime = st->st_mtim.tv_sec,
		.ctime = st->st_ctim.tv_sec, .atimensec = st->st_atim.tv_nsec,
		.mtimensec = st->st_mtim.tv_nsec, .ctimensec = st->st_ctim.tv_nsec,
		.mode = st->st_mode, .nlink = st->st_nlink, .uid = st->st_uid,
		.gid = st->st_gid, .rdev = st->st_rdev, .blksize = st->st_blksize,
	};
}

void fs_fill_entry(struct fs *fs, struct fuse_entry_out *e, uint64_t nodeid, const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = nodeid;
	e->generation = nodeid >> 32;
	e->entry_valid = fs->entry_valid_ns / 1000000000ULL;
	e->entry_valid_nsec = fs->entry_valid_ns % 1000000000ULL;
	e->attr_valid = fs->attr_valid_ns / 1000000000ULL;
	e->attr_valid_nsec = fs->attr_valid_ns % 1000000000ULL;
	fs_fill_attr(&e->attr, st);
}

const char *fs_arg_name(struct fs_req *req, uint32_t off, uint32_t *next_off)
{
	const char *name = (const char *)req->arg + off;
	const char *nul;

	if (off >= req->arg_len)
		return NULL;
	nul = memchr(name, '\0', req->arg_len - off);
	if (!nul || nul == name || nul - name > NAME_MAX || memchr(name, '/', nul - name))
		return NULL;
	if (next_off)
		*next_off = off + (uint32_t)(nul - name) + 1;
	return name;
}

bool fs_name_is_dot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/*
 * FUSE 7.39 (Linux 6.6), newer than our linux/fuse.h: MAP_SHARED mappings of files opened with
 * FOPEN_DIRECT_IO (KRUN_FS_DIRECT_IO) are allowed, served from the page cache. A flags2 bit
 * (bits 32..63 of the INIT flags travel in flags2 when FUSE_INIT_EXT is set).
 */
#define FS_DIRECT_IO_ALLOW_MMAP_FLAGS2 (1U << (36 - 32))

/* flags2 of the INIT request: 0 unless the kernel sent the extended request. */
static uint32_t init_flags2(const struct fs_req *req, const struct fuse_init_in *in)
{
	if (!(in->flags & FUSE_INIT_EXT) ||
	    req->arg_len < offsetof(struct fuse_init_in, flags2) + sizeof(in->flags2))
		return 0;
	return in->flags2;
}

static ssize_t do_init(struct fs_req *req)
{
	const struct fuse_init_in *in = (const void *)req->arg;
	uint32_t want = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC |
		FUSE_EXPORT_SUPPORT | FUSE_BIG_WRITES | FUSE_FLOCK_LOCKS | FUSE_AUTO_INVAL_DATA |
		FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS |
		FUSE_MAX_PAGES | FUSE_HANDLE_KILLPRIV_V2 | FUSE_ASYNC_DIO;
	struct fuse_init_out out = { .major = FUSE_KERNEL_VERSION };

	/* Protocol negotiation, linux/fuse.h "INIT request/reply flags". */
	if (in->major < FUSE_KERNEL_VERSION)
		return fs_reply_err(req, -EPROTO);
	if (in->major > FUSE_KERNEL_VERSION) {
		out.minor = FUSE_KERNEL_MINOR_VERSION;  /* the kernel retries with our major */
		return fs_reply(req, &out, sizeof(out));
	}
	if (in->minor < 27)
		return fs_reply_err(req, -EPROTO);
	out.minor = in->minor < FUSE_KERNEL_MINOR_VERSION ? in->minor : FUSE_KERNEL_MINOR_VERSION;
	/* The kernel offers its whole readahead window; the larger, the fewer READs. */
	out.max_readahead = in->max_readahead;
	/* HANDLE_KILLPRIV_V2: we kill suid/sgid when asked (fs_inode_kill_suidgid); in exchange
	 * the kernel sets SB_NOSEC and stops sending GETXATTR security.capability before every
	 * WRITE (fs/fuse/inode.c process_init_reply). ASYNC_DIO: O_DIRECT I/O of one file may be
	 * in flight in several requests (each is a positioned preadv/pwritev). WRITEBACK_CACHE
	 * only when configured (cache_config): the guest then trusts its own sizes and times, so
	 * host-side changes to open files get lost. Not offered: DONT_MASK (the kernel applies
	 * the umask), SPLICE_* and DAX (not implemented), CACHE_SYMLINKS (a Linux 6.1 guest on
	 * virtio-fs hangs at boot with it, to be understood). */
	if (req->fs->writeback_wanted && !req->fs->read_only)
		want |= FUSE_WRITEBACK_CACHE;
	out.flags = in->flags & want;
	/* Without it, a guest since 6.6 refuses MAP_SHARED on direct-I/O files, as older ones do. */
	if ((req->fs->open_flags & FOPEN_DIRECT_IO) &&
	    (init_flags2(req, in) & FS_DIRECT_IO_ALLOW_MMAP_FLAGS2)) {
		out.flags |= FUSE_INIT_EXT;
		out.flags2 = FS_DIRECT_IO_ALLOW_MMAP_FLAGS2;
	}
	/* Background requests (readahead, writeback, async DIO) the kernel keeps in flight. */
	out.max_background = 64;
	out.congestion_threshold = 48;
	out.max_write = FS_MAX_WRITE;
	out.time_gran = 1;
	out.max_pages = FS_MAX_PAGES;
	pthread_mutex_lock(&req->fs->lock);
	req->fs->proto_minor = out.minor;
	req->fs->writeback = (out.flags & FUSE_WRITEBACK_CACHE) != 0;
	__atomic_store_n(&req->fs->initialized, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&req->fs->lock);
	return fs_reply(req, &out, sizeof(out));
}

static ssize_t do_destroy(struct fs_req *req)
{
	/* The guest unmounted: it holds no node ids or handles any more. */
	__atomic_store_n(&req->fs->initialized, false, __ATOMIC_RELEASE);
	fs_fh_release_all(req->fs);
	fs_inode_forget_all(req->fs);
	return fs_reply(req, NULL, 0);
}

static ssize_t do_interrupt(struct fs_req *req)
{
	const struct fuse_interrupt_in *in = (const void *)req->arg;

	/* Only SETLKW waits long enough to be worth interrupting (fs_lock.c). linux/fuse.h:
	 * for a request we do not know, EAGAIN makes the kernel queue the INTERRUPT again. */
	if (fs_lock_interrupt(req->fs, in->unique) || req->out_len < sizeof(struct fuse_out_header))
		return 0;
	return fs_reply_err(req, -EAGAIN);
}

static ssize_t vfile_nodata(struct fs_req *req)
{
	return fs_reply_err(req, -ENODATA);
}

static ssize_t vfile_ok(struct fs_req *req)
{
	return fs_reply(req, NULL, 0);
}

#define OP(code, f, in, out, ...) \
	[code] = { .fn = f, .in_size = in, .out_size = out, .name = &(#code)[sizeof("FUSE_") - 1], \
		   __VA_ARGS__ }
static const struct fs_op ops[] = {
	OP(FUSE_INIT, do_init, 16, sizeof(struct fuse_init_out)),
	OP(FUSE_DESTROY, do_destroy, 0, 0),
	OP(FUSE_INTERRUPT, do_interrupt, sizeof(struct fuse_interrupt_in), 0, .no_reply = true),
	OP(FUSE_LOOKUP, fs_entry_lookup, 0, sizeof(struct fuse_entry_out)),
	OP(FUSE_FORGET, fs_entry_forget, sizeof(struct fuse_forget_in), 0, .no_reply = true,
	   .vfile_fn = fs_entry_forget),
	OP(FUSE_BATCH_FORGET, fs_entry_batch_forget, sizeof(struct fuse_batch_forget_in), 0,
	   .no_reply = true),
	OP(FUSE_GETATTR, fs_entry_getattr, sizeof(struct fuse_getattr_in),
	   sizeof(struct fuse_attr_out), .vfile_fn = fs_vfile_getattr),
	OP(FUSE_SETATTR, fs_entry_setattr, sizeof(struct fuse_setattr_in),
	   sizeof(struct fuse_attr_out), .modifies = true, .vfile_fn = fs_vfile_setattr),
	OP(FUSE_READLINK, fs_entry_readlink, 0, 0, .vfile_fn = fs_vfile_readlink),
	OP(FUSE_STATFS, fs_entry_statfs, 0, sizeof(struct fuse_statfs_out)),
	OP(FUSE_ACCESS, fs_entry_access, sizeof(struct fuse_access_in), 0, .vfile_fn = vfile_ok),
	OP(FUSE_MKNOD, fs_entry_mknod, sizeof(struct fuse_mknod_in), sizeof(struct fuse_entry_out),
	   .modifies = true),
	OP(FUSE_MKDIR, fs_entry_mkdir, sizeof(struct fuse_mkdir_in), sizeof(struct fuse_entry_out),
	   .modifies = true),
	OP(FUSE_SYMLINK, fs_entry_symlink, 0, sizeof(struct fuse_entry_out), .modifies = true),
	OP(FUSE_LINK, fs_entry_link, sizeof(struct fuse_link_in), sizeof(struct fuse_entry_out),
	   .modifies = true),
	OP(FUSE_UNLINK, fs_entry_unlink, 0, 0, .modifies = true),
	OP(FUSE_RMDIR, fs_entry_rmdir, 0, 0, .modifies = true),
	OP(FUSE_RENAME, fs_entry_rename, sizeof(struct fuse_rename_in), 0, .modifies = true),
	OP(FUSE_RENAME2, fs_entry_rename2, sizeof(struct fuse_rename2_in), 0, .modifies = true),
	OP(FUSE_OPEN, fs_file_open, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out),
	   .vfile_fn = fs_vfile_open),
	OP(FUSE_CREATE, fs_file_create, sizeof(struct fuse_create_in),
	   sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out), .modifies = true),
	OP(FUSE_READ, fs_file_read, sizeof(struct fuse_read_in), 0, .vfile_fn = fs_vfile_read),
	OP(FUSE_WRITE, fs_file_write, sizeof(struct fuse_write_in), sizeof(struct fuse_write_out),
	   .modifies = true, .vfile_fn = fs_vfile_write),
	OP(FUSE_FLUSH, fs_file_flush, sizeof(struct fuse_flush_in), 0, .vfile_fn = vfile_ok),
	OP(FUSE_RELEASE, fs_file_release, sizeof(struct fuse_release_in), 0,
	   .vfile_fn = fs_vfile_release),
	OP(FUSE_FSYNC, fs_file_fsync, sizeof(struct fuse_fsync_in), 0, .vfile_fn = vfile_ok),
	OP(FUSE_FALLOCATE, fs_file_fallocate, sizeof(struct fuse_fallocate_in), 0,
	   .modifies = true),
	OP(FUSE_LSEEK, fs_file_lseek, sizeof(struct fuse_lseek_in), sizeof(struct fuse_lseek_out)),
	OP(FUSE_COPY_FILE_RANGE, fs_file_copy_file_range, sizeof(struct fuse_copy_file_range_in),
	   sizeof(struct fuse_write_out), .modifies = true),
	OP(FUSE_OPENDIR, fs_dir_opendir, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out)),
	OP(FUSE_READDIR, fs_dir_readdir, sizeof(struct fuse_read_in), 0),
	OP(FUSE_READDIRPLUS, fs_dir_readdirplus, sizeof(struct fuse_read_in), 0),
	/* A directory handle is a handle: release and sync are the file ones (same arguments). */
	OP(FUSE_RELEASEDIR, fs_file_release, sizeof(struct fuse_release_in), 0),
	OP(FUSE_FSYNCDIR, fs_file_fsync, sizeof(struct fuse_fsync_in), 0),
	OP(FUSE_GETXATTR, fs_xattr_get, sizeof(struct fuse_getxattr_in), 0,
	   .vfile_fn = vfile_nodata),
	OP(FUSE_LISTXATTR, fs_xattr_list, sizeof(struct fuse_getxattr_in), 0,
	   .vfile_fn = vfile_nodata),
	/* Without FUSE_SETXATTR_EXT the argument is the 8-byte compat struct. */
	OP(FUSE_SETXATTR, fs_xattr_set, FUSE_COMPAT_SETXATTR_IN_SIZE, 0, .modifies = true),
	OP(FUSE_REMOVEXATTR, fs_xattr_remove, 0, 0, .modifies = true),
	OP(FUSE_GETLK, fs_lock_getlk, sizeof(struct fuse_lk_in), sizeof(struct fuse_lk_out)),
	OP(FUSE_SETLK, fs_lock_setlk, sizeof(struct fuse_lk_in), 0),
	OP(FUSE_SETLKW, fs_lock_setlkw, sizeof(struct fuse_lk_in), 0),
	OP(FUSE_SYNCFS, fs_file_syncfs, sizeof(struct fuse_syncfs_in), 0, .vfile_fn = fs_file_syncfs),
	OP(FUSE_TMPFILE, fs_tmpfile_create, sizeof(struct fuse_create_in),
	   sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out), .modifies = true),
	/* Whether an ioctl modifies depends on the command: fs_ioctl checks read-only shares. */
	OP(FUSE_IOCTL, fs_ioctl, sizeof(struct fuse_ioctl_in), sizeof(struct fuse_ioctl_out),
	   .vfile_fn = fs_vfile_ioctl),
};

static ssize_t dispatch(struct fs_req *req, const struct fs_op *op)
{
	bool vfile = fs_vfile_id(req->hdr.nodeid);

	if (!__atomic_load_n(&req->fs->initialized, __ATOMIC_ACQUIRE) &&
	    req->hdr.opcode != FUSE_INIT)
		return op->no_reply ? 0 : fs_reply_err(req, -EIO);
	if (req->arg_len < op->in_size) {
		log_warn_guest("%s: %u argument bytes, need %u", op->name, req->arg_len, op->in_size);
		return op->no_reply ? 0 : fs_reply_err(req, -EINVAL);
	}
	if (vfile && op->vfile_fn)
		return op->vfile_fn(req);
	if (op->modifies && req->fs->read_only)
		return fs_reply_err(req, -EROFS);
	if (vfile)
		return op->no_reply ? 0 : fs_reply_err(req, -EACCES);
	return op->fn(req);
}

/* Copy the arguments out of guest memory so the guest cannot change them while we parse. */
static int copy_args(struct fs_req *req, uint8_t **buf)
{
	uint32_t n = req->hdr.len - sizeof(struct fuse_in_header);

	if (req->hdr.opcode == FUSE_WRITE && n > sizeof(struct fuse_write_in))
		n = sizeof(struct fuse_write_in);   /* the payload is read in place (fs_file.c) */
	/* /dev/fuse batches as many forgets as the reader's buffer holds. */
	if (n > (req->hdr.opcode == FUSE_BATCH_FORGET ? FS_MAX_WRITE + 4096 : FS_MAX_ARGS))
		return -E2BIG;
	*buf = malloc(n + 1);
	if (!*buf)
		return -ENOMEM;
	iov_to_buf(req->in, req->in_cnt, sizeof(struct fuse_in_header), *buf, n);
	(*buf)[n] = 0;
	req->arg = *buf;
	req->arg_len = n;
	return 0;
}

const char *fs_op_name(uint32_t opcode)
{
	return opcode < sizeof(ops) / sizeof(ops[0]) && ops[opcode].fn ? ops[opcode].name : NULL;
}

ssize_t fs_handle(struct fs *fs, const struct iovec *in, unsigned int in_cnt,
		  const struct iovec *out, unsigned int out_cnt)
{
	struct fs_req req = { .fs = fs, .in = in, .in_cnt = in_cnt, .out = out, .out_cnt = out_cnt };
	const struct fs_op *op = NULL;
	uint8_t *buf = NULL;
	ssize_t ret;
	int err;

	if (iov_to_buf(in, in_cnt, 0, &req.hdr, sizeof(req.hdr)) != sizeof(req.hdr)) {
		log_warn_guest("request shorter than fuse_in_header");
		return -EINVAL;
	}
	if (req.hdr.len != iov_length(in, in_cnt)) {
		log_warn_guest("request length %u does not match its buffers", req.hdr.len);
		return -EINVAL;
	}
	req.out_len = iov_length(out, out_cnt);
	if (req.hdr.opcode < sizeof(ops) / sizeof(ops[0]) && ops[req.hdr.opcode].fn)
		op = &ops[req.hdr.opcode];
	if ((!op || !op->no_reply) && req.out_len < sizeof(struct fuse_out_header) +
	    (op ? op->out_size : 0))
		return -ENOBUFS;
	if (!op)
		return fs_reply_err(&req, -ENOSYS);
	err = copy_args(&req, &buf);
	if (err)
		ret = op->no_reply ? 0 : fs_reply_err(&req, err == -E2BIG ? -EINVAL : err);
	else
		ret = dispatch(&req, op);
	free(buf);
	return ret;
}

/*
 * Entry and attribute cache timeouts (fuse_entry_out entry_valid/attr_valid, linux/fuse.h)
 * that the embedder's fs_config leaves at 0 come from the host process's environment, read
 * at fs_create:
 *   KRUN_FS_CACHE=none     0 s: every lookup and stat goes to the host (it edits the share),
 *                          and file data is not cached either (KRUN_FS_DIRECT_IO=1);
 *   KRUN_FS_CACHE=auto     1 s, the default: right when only the guest changes the share
 *                          (its kernel updates its own caches), and host-side edits show up
 *                          within a second (virtiofsd's cache=auto uses the same value);
 *   KRUN_FS_CACHE=always   1 day, open keeps the page cache (FOPEN_KEEP_CACHE) and writes
 *                          are cached (KRUN_FS_WRITEBACK=1): only the guest changes the share;
 *   KRUN_FS_ENTRY_TIMEOUT, KRUN_FS_ATTR_TIMEOUT: seconds (0 to 86400, fractions allowed),
 *                          overriding KRUN_FS_CACHE for one of the two;
 *   KRUN_FS_WRITEBACK=1|0  guest writeback cache (FUSE_WRITEBACK_CACHE) on or off, overriding
 *                          KRUN_FS_CACHE: writes land in the guest's page cache and reach the
 *                          host later in batches (small writes get much faster), but the
 *                          guest keeps its own idea of file sizes and times, so a file the
 *                          host changes while the guest has it open may lose either side's
 *                          changes.
 *   KRUN_FS_DIRECT_IO=1|0  guest direct I/O (FOPEN_DIRECT_IO) on or off, overriding
 *                          KRUN_FS_CACHE: read and write move data straight between the
 *                          program's buffer and the host file (the guest kernel pins the
 *                          user pages; no copy through its page cache, which matters when
 *                          the guest CPU is slow, e.g. emulated), and host-side edits show
 *                          up at once; but nothing is cached, so small reads each cost a
 *                          round trip, and a Linux guest before 6.6 refuses MAP_SHARED
 *                          mappings of such files (ENODEV; private ones such as executables
 *                          work). As virtiofsd's cache=never and 9p's cache=none do.
 * Unknown or malformed values are ignored (with a warning).
 */
#define FS_CACHE_MAX_S 86400.0

static double cache_mode_secs(bool *keep_cache, bool *uncached)
{
	const char *mode = getenv("KRUN_FS_CACHE");

	if (!mode || strcmp(mode, "auto") == 0)
		return 1.0;
	if (strcmp(mode, "none") == 0) {
		*uncached = true;
		return 0.0;
	}
	if (strcmp(mode, "always") == 0) {
		*keep_cache = true;
		return FS_CACHE_MAX_S;
	}
	log_warn("ignoring KRUN_FS_CACHE=%s (none, auto or always)", mode);
	return 1.0;
}

static uint64_t timeout_ns(double cfg, const char *var, double mode_secs)
{
	const char *env = getenv(var);
	double s = mode_secs;
	char *end;

	if (cfg > 0) {
		s = cfg;
	} else if (env) {
		errno = 0;
		s = strtod(env, &end);
		if (errno || end == env || *end || !(s >= 0 && s <= FS_CACHE_MAX_S)) {
			log_warn("ignoring %s=%s (seconds, 0 to %.0f)", var, env, FS_CACHE_MAX_S);
			s = mode_secs;
		}
	}
	return (uint64_t)((s > FS_CACHE_MAX_S ? FS_CACHE_MAX_S : s) * 1e9);
}

static bool env_flag(const char *var, bool dflt)
{
	const char *env = getenv(var);

	if (!env)
		return dflt;
	if (strcmp(env, "0") == 0 || strcmp(env, "1") == 0)
		return env[0] == '1';
	log_warn("ignoring %s=%s (0 or 1)", var, env);
	return dflt;
}

static void cache_config(struct fs *fs, const struct fs_config *cfg)
{
	bool keep = false, uncached = false;
	double secs = cache_mode_secs(&keep, &uncached);

	fs->entry_valid_ns = timeout_ns(cfg->entry_timeout, "KRUN_FS_ENTRY_TIMEOUT", secs);
	fs->attr_valid_ns = timeout_ns(cfg->attr_timeout, "KRUN_FS_ATTR_TIMEOUT", secs);
	fs->open_flags = keep ? FOPEN_KEEP_CACHE : 0;
	if (env_flag("KRUN_FS_DIRECT_IO", uncached))
		fs->open_flags |= FOPEN_DIRECT_IO;
	fs->writeback_wanted = env_flag("KRUN_FS_WRITEBACK", keep);
}

static int open_dirs(struct fs *fs, const char *root)
{
	struct stat st;

	fs->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->root_fd < 0) {
		log_error("cannot open shared directory %s: %s", root, strerror(errno));
		return -errno;
	}
	if (fstat(fs->root_fd, &st))
		return -errno;
	/* See fs_inode_reopen: /proc/self/fd is how O_PATH fds are reopened safely. */
	fs->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->proc_fd < 0) {
		log_error("virtio-fs needs /proc/self/fd: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int fs_create(const struct fs_config *cfg, struct fs **out)
{
	struct fs *fs;
	int ret;

	if (!cfg || !cfg->root_dir || (cfg->nr_vfiles && !cfg->vfiles))
		return -EINVAL;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	pthread_mutex_init(&fs->lock, NULL);
	fs->root_fd = fs->proc_fd = -1;
	fs->read_only = cfg->read_only;
	fs->vfiles = cfg->vfiles;
	fs->nr_vfiles = cfg->nr_vfiles;
	cache_config(fs, cfg);
	fs->euid = geteuid();
	fs->egid = getegid();
	clock_gettime(CLOCK_REALTIME, &fs->created);
	fs_inode_fd_limit_init(fs);
	ret = open_dirs(fs, cfg->root_dir);
	if (!ret)
		ret = fs_table_init(&fs->handles, FS_MAX_HANDLES_DEFAULT, 1);
	if (!ret)
		ret = fs_inode_table_init(fs);
	if (ret) {
		fs_destroy(fs);
		return ret;
	}
	*out = fs;
	return 0;
}

void fs_destroy(struct fs *fs)
{
	if (!fs)
		return;
	__atomic_store_n(&fs->cancel_waits, true, __ATOMIC_RELAXED);
	fs_fh_table_fini(fs);
	fs_inode_table_fini(fs);
	if (fs->root_fd >= 0)
		close(fs->root_fd);
	if (fs->proc_fd >= 0)
		close(fs->proc_fd);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}
