/*
 * The inode table: every file the guest knows is one O_PATH fd, keyed by (st_dev, st_ino)
 * so hard links and repeated lookups share one node id. Counts follow FUSE semantics
 * (linux/fuse.h: every entry reply is a lookup, FORGET subtracts nlookup).
 */
#define LOG_MODULE "fs"
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

#define HASH_SIZE (1U << 16)

static uint32_t hash_key(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4fULL;

	return (uint32_t)(h >> 40) & (HASH_SIZE - 1);
}

static struct fs_inode *slot_inode(struct fs *fs, uint32_t idx)
{
	return fs->inodes.slots[idx].ptr;
}

static struct fs_inode *hash_find(struct fs *fs, dev_t dev, ino_t ino)
{
	for (uint32_t i = fs->hash[hash_key(dev, ino)]; i; i = slot_inode(fs, i)->hash_next) {
		struct fs_inode *n = slot_inode(fs, i);
		if (n->dev == dev && n->ino == ino)
			return n;
	}
	return NULL;
}

static void hash_remove(struct fs *fs, struct fs_inode *inode)
{
	uint32_t *link = &fs->hash[hash_key(inode->dev, inode->ino)];

	while (*link && *link != inode->idx)
		link = &slot_inode(fs, *link)->hash_next;
	if (*link)
		*link = inode->hash_next;
}

/* Under fs->lock: takes ownership of fd. */
static int insert(struct fs *fs, int fd, const struct stat *st, struct fs_inode **out)
{
	struct fs_inode *n = calloc(1, sizeof(*n));
	uint32_t h = hash_key(st->st_dev, st->st_ino);
	int ret;

	if (!n)
		return -ENOMEM;
	ret = fs_table_alloc(&fs->inodes, n, &n->idx);
	if (ret) {
		free(n);
		return ret;
	}
	n->fd = fd;
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->type = st->st_mode & S_IFMT;
	n->hash_next = fs->hash[h];
	fs->hash[h] = n->idx;
	*out = n;
	return 0;
}

/* Under fs->lock. */
static void maybe_free(struct fs *fs, struct fs_inode *inode)
{
	if (inode->nlookup || inode->refs || inode->idx == FUSE_ROOT_ID)
		return;
	hash_remove(fs, inode);
	fs_table_free(&fs->inodes, inode->idx);
	fs_lock_drop_all(inode);
	close(inode->fd);
	free(inode);
}

/*
 * Every inode and handle holds a host fd, and the guest decides how many. We stop short of
 * RLIMIT_NOFILE so the rest of the process (the VMM's eventfds, sockets) always finds
 * FS_FD_RESERVE free descriptors; the guest gets ENFILE instead. Descriptors are allocated
 * lowest first, so a new fd's number tells how full the table is. The limit is cached (a
 * getrlimit per open was measurable): read at fs_create, again whenever the cached value
 * would refuse an fd (the limit may have been raised) and at most once per
 * FS_FD_LIMIT_REFRESH_S otherwise (it may have been lowered).
 */
static rlim_t fd_limit(struct fs *fs, bool refresh)
{
	struct timespec now;
	struct rlimit rl;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);    /* vDSO: no system call */
	if (!refresh && now.tv_sec - __atomic_load_n(&fs->fd_limit_at, __ATOMIC_RELAXED) <
	    FS_FD_LIMIT_REFRESH_S)
		return __atomic_load_n(&fs->fd_limit, __ATOMIC_RELAXED);
	if (getrlimit(RLIMIT_NOFILE, &rl))
		rl.rlim_cur = RLIM_INFINITY;
	__atomic_store_n(&fs->fd_limit, rl.rlim_cur, __ATOMIC_RELAXED);
	__atomic_store_n(&fs->fd_limit_at, (int64_t)now.tv_sec, __ATOMIC_RELAXED);
	return rl.rlim_cur;
}

static bool fd_too_high(int fd, rlim_t limit)
{
	return limit != RLIM_INFINITY && (rlim_t)fd + FS_FD_RESERVE >= limit;
}

int fs_inode_fd_guard(struct fs *fs, int fd)
{
	if (fd < 256)
		return fd;
	if (fd_too_high(fd, fd_limit(fs, false)) && fd_too_high(fd, fd_limit(fs, true))) {
		close(fd);
		return -ENFILE;
	}
	return fd;
}

void fs_inode_fd_limit_init(struct fs *fs)
{
	fd_limit(fs, true);
}

int fs_inode_table_init(struct fs *fs)
{
	struct fs_inode *root;
	struct stat st;
	int ret;

	fs->hash = calloc(HASH_SIZE, sizeof(*fs->hash));
	if (!fs->hash)
		return -ENOMEM;
	ret = fs_table_init(&fs->inodes, FS_MAX_INODES_DEFAULT, FUSE_ROOT_ID);
	if (ret)
		return ret;
	if (fstat(fs->root_fd, &st))
		return -errno;
	ret = insert(fs, fs->root_fd, &st, &root);
	if (ret)
		return ret;
	fs->root_fd = -1;       /* owned by the root inode now */
	root->nlookup = 1;
	return 0;
}

void fs_inode_table_fini(struct fs *fs)
{
	if (fs->inodes.slots) {
		for (uint32_t i = 1; i < fs->inodes.used; i++) {
			struct fs_inode *n = slot_inode(fs, i);
			if (!n)
				continue;
			fs_lock_drop_all(n);
			close(n->fd);
			free(n);
		}
	}
	fs_table_fini(&fs->inodes);
	free(fs->hash);
	fs->hash = NULL;
}

struct fs_inode *fs_inode_get(struct fs *fs, uint64_t nodeid)
{
	struct fs_inode *n;

	pthread_mutex_lock(&fs->lock);
	n = fs_table_lookup(&fs->inodes, nodeid);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

void fs_inode_put(struct fs *fs, struct fs_inode *inode)
{
	if (!inode)
		return;
	pthread_mutex_lock(&fs->lock);
	inode->refs--;
	maybe_free(fs, inode);
	pthread_mutex_unlock(&fs->lock);
}

uint64_t fs_inode_nodeid(struct fs *fs, struct fs_inode *inode)
{
	uint64_t id;

	pthread_mutex_lock(&fs->lock);
	id = fs_table_id(&fs->inodes, inode->idx);
	pthread_mutex_unlock(&fs->lock);
	return id;
}

int fs_inode_stat(struct fs_inode *inode, struct stat *st)
{
	if (fstatat(inode->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		return -errno;
	return 0;
}

/*
 * One component under dirfd, never following a symlink: with O_PATH|O_NOFOLLOW a trailing
 * symlink yields a handle on the link itself. openat2's RESOLVE_BENEATH also refuses any
 * walk outside dirfd should a multi-component name ever slip through validation.
 */
static int open_child(int dirfd, const char *name)
{
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS)
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

static int open_name(struct fs *fs, struct fs_inode *parent, const char *name)
{
	int fd;

	if (strcmp(name, ".") == 0 || (strcmp(name, "..") == 0 && parent->idx == FUSE_ROOT_ID))
		/* ".." of the root is the root: the guest never sees above the export. */
		fd = fcntl(parent->fd, F_DUPFD_CLOEXEC, 3);
	else if (strcmp(name, "..") == 0)
		/* Only asked for with EXPORT_SUPPORT; parent is a directory inside the export. */
		fd = openat(parent->fd, "..", O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	else
		return open_child(parent->fd, name);
	(void)fs;
	return fd < 0 ? -errno : fd;
}

/*
 * Most lookups of an existing name are the guest revalidating an entry whose timeout ran
 * out: the inode is already in the table. A stat of the name finds it by (st_dev, st_ino)
 * for one system call instead of open + stat + close. The name is a single component and
 * the stat follows nothing, so it cannot leave the export; an inode we hold an fd on keeps
 * its number, so a match is that very inode. 1: found, 0: not held (open it), -errno.
 */
static int lookup_known(struct fs *fs, struct fs_inode *parent, const char *name,
			uint64_t *nodeid, struct stat *st)
{
	struct fs_inode *n;

	if (fs_name_is_dot(name))
		return 0;
	if (fstatat(parent->fd, name, st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	pthread_mutex_lock(&fs->lock);
	n = hash_find(fs, st->st_dev, st->st_ino);
	if (n) {
		n->nlookup++;
		*nodeid = fs_table_id(&fs->inodes, n->idx);
	}
	pthread_mutex_unlock(&fs->lock);
	return n != NULL;
}

/*
 * One guest reference to the inode behind the O_PATH fd (taken over: kept in the table or
 * closed): the inode already held when its (st_dev, st_ino) is known, one fd per inode.
 */
static int hold_fd(struct fs *fs, int fd, uint64_t *nodeid, struct stat *st)
{
	struct fs_inode *n;
	int ret = 0;

	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	pthread_mutex_lock(&fs->lock);
	n = hash_find(fs, st->st_dev, st->st_ino);
	if (n)
		close(fd);
	else
		ret = insert(fs, fd, st, &n);
	if (!ret) {
		n->nlookup++;
		*nodeid = fs_table_id(&fs->inodes, n->idx);
	}
	pthread_mutex_unlock(&fs->lock);
	if (ret)
		close(fd);
	return ret;
}

int fs_inode_lookup(struct fs *fs, struct fs_inode *parent, const char *name,
		    uint64_t *nodeid, struct stat *st)
{
	int fd, ret;

	if (!S_ISDIR(parent->type))
		return -ENOTDIR;
	ret = lookup_known(fs, parent, name, nodeid, st);
	if (ret)
		return ret < 0 ? ret : 0;
	fd = fs_inode_fd_guard(fs, open_name(fs, parent, name));
	if (fd < 0)
		return fd == -EMFILE ? -ENFILE : fd;
	return hold_fd(fs, fd, nodeid, st);
}

void fs_inode_forget(struct fs *fs, uint64_t nodeid, uint64_t nlookup)
{
	struct fs_inode *n;

	pthread_mutex_lock(&fs->lock);
	n = fs_table_lookup(&fs->inodes, nodeid);
	if (n) {
		n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
		maybe_free(fs, n);
	}
	pthread_mutex_unlock(&fs->lock);
}

void fs_inode_procname(struct fs_inode *inode, char *buf, size_t len)
{
	snprintf(buf, len, "%d", inode->fd);
}

/*
 * Reopening an O_PATH fd for I/O. openat(fd, "", ...) does not exist for that purpose and
 * parent fd + name would reopen whatever the name points to *now* (a swapped-in symlink or
 * another file). Instead we open "N" relative to a directory fd of /proc/self/fd: that is a
 * magic link, and following it lands exactly on the inode our O_PATH fd holds, with no path
 * walk inside the export at all, so nothing a guest renames or swaps in can redirect it. The
 * O_PATH fd itself was obtained without following symlinks, and if it is a symlink the
 * kernel refuses to open it (ELOOP). Device nodes, fifos and sockets are refused here, by
 * the type recorded at lookup (an inode's type never changes).
 */
int fs_inode_reopen(struct fs *fs, struct fs_inode *inode, int flags)
{
	const int keep = FS_OPEN_GUEST_FLAGS | O_TRUNC | O_DIRECTORY;
	char name[16];
	int fd;

	if (S_ISCHR(inode->type) || S_ISBLK(inode->type))
		return -EACCES;
	if (S_ISLNK(inode->type))
		return -ELOOP;
	if (!S_ISREG(inode->type) && !S_ISDIR(inode->type))
		return -ENXIO;
	fs_inode_procname(inode, name, sizeof(name));
	fd = openat(fs->proc_fd, name, (flags & keep) | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == EMFILE ? -ENFILE : -errno;
	return fs_inode_fd_guard(fs, fd);
}

/*
 * FUSE_HANDLE_KILLPRIV_V2 (linux/fuse.h): the guest kernel leaves killing suid/sgid to us and
 * flags the WRITE (FUSE_WRITE_KILL_SUIDGID), SETATTR (FATTR_KILL_SUIDGID: truncate, chown) or
 * OPEN/CREATE with O_TRUNC (FUSE_OPEN_KILL_SUIDGID) whose caller lacks CAP_FSETID. The host
 * kernel kills them on its own only when this process lacks CAP_FSETID too (not as root), so
 * we apply the VFS rule: suid always, sgid only with group execute (without it, sgid marks
 * mandatory locking, not privilege). security.capability needs nothing from us: the host
 * kernel removes it on any write, truncate or chown, whatever our capabilities.
 */
int fs_inode_kill_suidgid(struct fs *fs, struct fs_inode *inode, int fd)
{
	mode_t kill = S_ISUID;
	struct stat st;
	char name[16];
	int ret;

	ret = fd >= 0 ? (fstat(fd, &st) ? -errno : 0) : fs_inode_stat(inode, &st);
	if (ret || !S_ISREG(st.st_mode))
		return ret;
	if (st.st_mode & S_IXGRP)
		kill |= S_ISGID;
	if (!(st.st_mode & kill))
		return 0;
	fs_inode_procname(inode, name, sizeof(name));
	ret = fd >= 0 ? fchmod(fd, st.st_mode & 07777 & ~kill) :
			fchmodat(fs->proc_fd, name, st.st_mode & 07777 & ~kill, 0);
	/* EPERM: we neither own the file nor have CAP_FOWNER, so we lack CAP_FSETID as well and
	 * the host kernel kills the bits itself with the write or truncate. */
	return ret && errno != EPERM ? -errno : 0;
}

void fs_inode_forget_all(struct fs *fs)
{
	pthread_mutex_lock(&fs->lock);
	for (uint32_t i = FUSE_ROOT_ID + 1; i < fs->inodes.used; i++) {
		struct fs_inode *n = slot_inode(fs, i);
		if (n) {
			n->nlookup = 0;
			maybe_free(fs, n);  /* in-flight users free it when they finish */
		}
	}
	pthread_mutex_unlock(&fs->lock);
}

/*
 * FUSE_TMPFILE: a file with no name to look up. fd is any descriptor of it (left open); the
 * table keeps an O_PATH one, opened through fd's /proc/self/fd magic link, which lands on the
 * very file with no path walk. Once the guest links it (FUSE_LINK), lookups of the new name
 * find this inode by (st_dev, st_ino).
 */
int fs_inode_adopt(struct fs *fs, int fd, uint64_t *nodeid, struct stat *st)
{
	char name[16];
	int pfd;

	snprintf(name, sizeof(name), "%d", fd);
	pfd = openat(fs->proc_fd, name, O_PATH | O_CLOEXEC);
	pfd = pfd < 0 ? (errno == EMFILE ? -ENFILE : -errno) : fs_inode_fd_guard(fs, pfd);
	if (pfd < 0)
		return pfd;
	return hold_fd(fs, pfd, nodeid, st);
}
