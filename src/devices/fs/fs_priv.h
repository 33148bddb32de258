/* Internal state of the FUSE passthrough server, shared by the fs_*.c files (not an API). */
#ifndef KRUN_DEVICES_FS_FS_PRIV_H
#define KRUN_DEVICES_FS_FS_PRIV_H

#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "devices/fs/fs.h"

/*
 * Node ids handed to the guest are never pointers: slot index in the low 32 bits, slot
 * generation in bits 32..61. The root is slot 1, generation 0, so its id is FUSE_ROOT_ID.
 * Virtual files use bit 62 plus their index. File handles use the same scheme.
 */
#define FS_ID_VFILE (1ULL << 62)
#define FS_GEN_MASK 0x3fffffffU
#define FS_MAX_INODES_DEFAULT (1U << 20)
#define FS_MAX_HANDLES_DEFAULT (1U << 16)
/* Largest request we copy out of the guest: SETXATTR value (64 KiB) plus header and name. */
#define FS_MAX_ARGS (65536 + 4096)
#define FS_MAX_WRITE (1U << 20)
#define FS_MAX_PAGES 256
/* Concurrent SETLKW waiters; beyond that SETLKW fails with ENOLCK (see fs_lock.c). Keep it
 * below the number of threads any transport runs fs_handle on. */
#define FS_MAX_LOCK_WAITERS 2
/* Descriptors below RLIMIT_NOFILE the server leaves to the rest of the process. */
#define FS_FD_RESERVE 64
/* How long the guard trusts its cached RLIMIT_NOFILE (fs_inode_fd_guard). */
#define FS_FD_LIMIT_REFRESH_S 1

struct fs_lock_owner;

struct fs_inode {
	int fd;                     /* O_PATH | O_NOFOLLOW, never used for I/O directly */
	dev_t dev;
	ino_t ino;
	mode_t type;                /* S_IFMT bits; fixed for the inode's life */
	uint64_t nlookup;           /* guest references (LOOKUP and friends minus FORGET) */
	uint32_t refs;              /* in-flight requests using this inode */
	uint32_t idx;
	uint32_t hash_next;         /* chain in fs->hash, 0 = end */
	struct fs_lock_owner *owners;   /* per lock owner fds for POSIX locks */
};

struct fs_fh {
	int fd;
	uint32_t refs;              /* 1 for the guest's handle + in-flight requests */
	pthread_mutex_t dir_lock;   /* directory position (lseek + getdents) */
	uint64_t dir_pos;
	struct fs_inode *inode;     /* holds a ref */
};

struct fs_slot {
	void *ptr;                  /* struct fs_inode * or struct fs_fh *; NULL when free */
	uint32_t gen;
	uint32_t next_free;
};

struct fs_table {
	struct fs_slot *slots;
	uint32_t cap, used, limit, free_head;
};

struct fs {
	pthread_mutex_t lock;       /* inode/handle tables, counters, lock waiters */
	int root_fd;                /* O_PATH of the export root */
	int proc_fd;                /* /proc/self/fd, to reopen O_PATH fds (see fs_inode_reopen) */
	bool read_only;
	bool cancel_waits;           /* lock waiters give up (device reset, destroy) */
	const struct fs_vfile *vfiles;
	unsigned int nr_vfiles;
	uint64_t entry_valid_ns, attr_valid_ns;   /* see cache_config in fs.c */
	uint32_t open_flags;        /* FOPEN_* for every OPEN and CREATE reply */
	bool writeback_wanted;      /* offer FUSE_WRITEBACK_CACHE (cache_config in fs.c) */
	bool writeback;             /* negotiated at INIT: see fs_file_host_flags */
	struct fs_table inodes, handles;
	uint32_t *hash;             /* buckets of inode slot indexes */
	uint32_t hash_size;
	uint32_t proto_minor;
	bool initialized;
	struct {
		uint64_t unique;        /* 0: slot free */
		bool interrupted;
	} waiters[FS_MAX_LOCK_WAITERS];
	uid_t euid;
	gid_t egid;
	struct timespec created;    /* timestamps of the virtual files */
	rlim_t fd_limit;            /* cached RLIMIT_NOFILE soft limit (fs_inode_fd_guard) */
	int64_t fd_limit_at;        /* CLOCK_MONOTONIC_COARSE seconds of that reading */
};

/* One request being handled: header and args copied out of the guest, reply iovecs. */
struct fs_req {
	struct fs *fs;
	struct fuse_in_header hdr;
	const uint8_t *arg;         /* copied arguments (for WRITE only fuse_write_in) */
	uint32_t arg_len;
	const struct iovec *in;     /* raw request, for the WRITE payload */
	unsigned int in_cnt;
	const struct iovec *out;
	unsigned int out_cnt;
	size_t out_len;
};

/* fs.c: replies. Return the reply length for fs_handle. */
ssize_t fs_reply_err(struct fs_req *req, int err);
ssize_t fs_reply(struct fs_req *req, const void *data, size_t len);
void fs_fill_attr(struct fuse_attr *a, const struct stat *st);
void fs_fill_entry(struct fs *fs, struct fuse_entry_out *e, uint64_t nodeid, const struct stat *st);
/* A single path component from the guest: NUL within arg, not empty, no '/', <= NAME_MAX. */
const char *fs_arg_name(struct fs_req *req, uint32_t off, uint32_t *next_off);
bool fs_name_is_dot(const char *name);

/* fs_inode.c: the inode table. */
int fs_inode_table_init(struct fs *fs);
void fs_inode_table_fini(struct fs *fs);
struct fs_inode *fs_inode_get(struct fs *fs, uint64_t nodeid);
void fs_inode_put(struct fs *fs, struct fs_inode *inode);
/* Look name up under parent (never following symlinks); one guest reference on success. */
int fs_inode_lookup(struct fs *fs, struct fs_inode *parent, const char *name,
		    uint64_t *nodeid, struct stat *st);
void fs_inode_forget(struct fs *fs, uint64_t nodeid, uint64_t nlookup);
/* DESTROY: the guest let go of every node id but the root. */
void fs_inode_forget_all(struct fs *fs);
int fs_inode_stat(struct fs_inode *inode, struct stat *st);
/* Open the inode for I/O with flags (no O_CREAT); regular files and directories only. */
int fs_inode_reopen(struct fs *fs, struct fs_inode *inode, int flags);
/* "N" for proc_fd-relative calls; buf holds at least 16 bytes. */
void fs_inode_procname(struct fs_inode *inode, char *buf, size_t len);
uint64_t fs_inode_nodeid(struct fs *fs, struct fs_inode *inode);
/* Passes fd through, or closes it and returns -ENFILE when the process runs short of fds. */
int fs_inode_fd_guard(struct fs *fs, int fd);
/* fs_create: first read of RLIMIT_NOFILE for the guard. */
void fs_inode_fd_limit_init(struct fs *fs);
/* FUSE_HANDLE_KILLPRIV_V2 duty: drop suid (and sgid if group-executable) of a regular file;
 * fd: an open descriptor of the inode, or -1 to go through the inode's O_PATH fd. */
int fs_inode_kill_suidgid(struct fs *fs, struct fs_inode *inode, int fd);
/* Register the file behind fd (any descriptor of it; left open) as an inode with one guest
 * reference, for files that have no name to look up (FUSE_TMPFILE). */
int fs_inode_adopt(struct fs *fs, int fd, uint64_t *nodeid, struct stat *st);

/* fs_fh.c: the file handle table. */
int fs_fh_new(struct fs *fs, int fd, struct fs_inode *inode, uint64_t *fh);
struct fs_fh *fs_fh_get(struct fs *fs, uint64_t fh);
void fs_fh_put(struct fs *fs, struct fs_fh *h);
int fs_fh_release(struct fs *fs, uint64_t fh);
void fs_fh_table_fini(struct fs *fs);
/* DESTROY: close every handle (in-flight users finish first). */
void fs_fh_release_all(struct fs *fs);

/* fs_table.c: generation-checked slot tables shared by inodes and handles. */
int fs_table_init(struct fs_table *t, uint32_t limit, uint32_t first);
void fs_table_fini(struct fs_table *t);
int fs_table_alloc(struct fs_table *t, void *ptr, uint32_t *idx);
void *fs_table_lookup(struct fs_table *t, uint64_t id);
void fs_table_free(struct fs_table *t, uint32_t idx);
uint64_t fs_table_id(struct fs_table *t, uint32_t idx);

/* Handlers, one per opcode: fs_entry.c, fs_file.c, fs_dir.c, fs_xattr.c, fs_lock.c, fs_vfile.c */
typedef ssize_t (*fs_op_fn)(struct fs_req *req);
ssize_t fs_entry_lookup(struct fs_req *req);
ssize_t fs_entry_forget(struct fs_req *req);
ssize_t fs_entry_batch_forget(struct fs_req *req);
ssize_t fs_entry_getattr(struct fs_req *req);
ssize_t fs_entry_setattr(struct fs_req *req);
ssize_t fs_entry_readlink(struct fs_req *req);
ssize_t fs_entry_statfs(struct fs_req *req);
ssize_t fs_entry_access(struct fs_req *req);
ssize_t fs_entry_mknod(struct fs_req *req);
ssize_t fs_entry_mkdir(struct fs_req *req);
ssize_t fs_entry_symlink(struct fs_req *req);
ssize_t fs_entry_link(struct fs_req *req);
ssize_t fs_entry_unlink(struct fs_req *req);
ssize_t fs_entry_rmdir(struct fs_req *req);
ssize_t fs_entry_rename(struct fs_req *req);
ssize_t fs_entry_rename2(struct fs_req *req);
/* Entry for a name just created under parent (one lookup); want: mode to enforce, 0 none,
 * (mode_t)-1 leaves owner and mode alone (LINK). */
int fs_entry_new(struct fs_req *req, struct fs_inode *parent, const char *name, mode_t want,
		 struct fuse_entry_out *e);
/* Owner and exact mode (want) of a file just created through fd, as for a named one; st is
 * refreshed when anything changed. */
void fs_entry_own_new(struct fs_req *req, struct fs_inode *parent, int fd, struct stat *st,
		      mode_t want);

/* FUSE_WRITEBACK_CACHE: open flags as the host must see them (write-only becomes read-write,
 * no O_APPEND); the caller retries with the guest's flags when that open fails with EACCES. */
int fs_file_host_flags(struct fs *fs, int flags);
/* The guest's open flags that reach the host's open as they are; each opener adds what its
 * kind of open means (O_TRUNC, O_EXCL, O_DIRECTORY), everything else is ours to set. */
#define FS_OPEN_GUEST_FLAGS (O_ACCMODE | O_APPEND | O_DIRECT | O_DSYNC | O_SYNC | O_NOATIME | \
			     O_LARGEFILE | O_NONBLOCK)
ssize_t fs_file_open(struct fs_req *req);
ssize_t fs_file_create(struct fs_req *req);
ssize_t fs_file_read(struct fs_req *req);
ssize_t fs_file_write(struct fs_req *req);
ssize_t fs_file_flush(struct fs_req *req);
ssize_t fs_file_release(struct fs_req *req);
ssize_t fs_file_fsync(struct fs_req *req);
ssize_t fs_file_fallocate(struct fs_req *req);
ssize_t fs_file_lseek(struct fs_req *req);
ssize_t fs_file_copy_file_range(struct fs_req *req);
ssize_t fs_file_syncfs(struct fs_req *req);
/* fs_tmpfile.c: FUSE_TMPFILE, an unnamed file (open O_TMPFILE in the guest). */
ssize_t fs_tmpfile_create(struct fs_req *req);
/* fs_ioctl.c: FUSE_IOCTL, the file attribute ioctls only. */
ssize_t fs_ioctl(struct fs_req *req);

ssize_t fs_dir_opendir(struct fs_req *req);
ssize_t fs_dir_readdir(struct fs_req *req);
ssize_t fs_dir_readdirplus(struct fs_req *req);

ssize_t fs_xattr_get(struct fs_req *req);
ssize_t fs_xattr_set(struct fs_req *req);
ssize_t fs_xattr_list(struct fs_req *req);
ssize_t fs_xattr_remove(struct fs_req *req);

ssize_t fs_lock_getlk(struct fs_req *req);
ssize_t fs_lock_setlk(struct fs_req *req);
ssize_t fs_lock_setlkw(struct fs_req *req);
/* Drop the POSIX locks of one owner (FLUSH) or all of them (last forget). */
void fs_lock_drop_owner(struct fs *fs, struct fs_inode *inode, uint64_t owner);
void fs_lock_drop_all(struct fs_inode *inode);
/* FUSE_INTERRUPT for a waiting SETLKW: true if such a waiter was found (and told to stop). */
bool fs_lock_interrupt(struct fs *fs, uint64_t unique);

/* Virtual files: index for a root entry name, or -1. */
int fs_vfile_find(struct fs *fs, const char *name);
bool fs_vfile_id(uint64_t id);
ssize_t fs_vfile_lookup(struct fs_req *req, int idx);
ssize_t fs_vfile_getattr(struct fs_req *req);
ssize_t fs_vfile_setattr(struct fs_req *req);
ssize_t fs_vfile_open(struct fs_req *req);
ssize_t fs_vfile_read(struct fs_req *req);
ssize_t fs_vfile_write(struct fs_req *req);
ssize_t fs_vfile_release(struct fs_req *req);
ssize_t fs_vfile_readlink(struct fs_req *req);
ssize_t fs_vfile_ioctl(struct fs_req *req);

#endif
