/*
 * POSIX record locks and flock for the guest (GETLK/SETLK/SETLKW, linux/fuse.h fuse_lk_in).
 *
 * POSIX locks belong to a lock owner (a guest process), not to a file handle, so each
 * (inode, owner) gets its own open file description and the locks are taken on it as OFD
 * locks: owners conflict with each other exactly as processes would, and FLUSH (close in
 * the guest) drops an owner's locks by closing its description.
 *
 * SETLKW never sleeps in the kernel: it retries a non-blocking F_OFD_SETLK with a growing
 * pause (1 ms .. 50 ms). A waiting request occupies one server thread, so at most
 * FS_MAX_LOCK_WAITERS requests wait at once (more get ENOLCK) and the others keep
 * serving requests, including the unlock the waiters need. FUSE_INTERRUPT of a waiting
 * request, a device reset and fs_destroy end the wait with EINTR.
 *
 * OFD locks carry no pid, so F_GETLK would not name the holder. Each owner remembers the
 * guest pid (fuse_lk_in lk.pid, in the guest's pid namespace) of its last successful lock,
 * living and dying with the owner's description (FLUSH, last FORGET): memory stays one
 * record per (inode, owner). GETLK finds which owner's description holds the conflicting
 * lock from the host kernel's own record, /proc/self/fdinfo (lines "lock: N: OFDLCK
 * ADVISORY WRITE -1 dev:ino start end|EOF").
 */
#define LOG_MODULE "fs"
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* GETLK looks at this many other owners of the inode at most for the holder's pid. */
#define GETLK_SCAN_MAX 64
/* fdinfo text read per owner; lock lines beyond it are not seen (pid 0 then). */
#define FDINFO_MAX 8192

struct fs_lock_owner {
	uint64_t owner;
	int fd;
	uint32_t pid;               /* guest pid of its last lock, 0 unknown */
	struct fs_lock_owner *next;
};

/* Under fs->lock: the owner's description, opened on first use with the fh's access mode. */
static int find_owner_fd(struct fs *fs, struct fs_fh *fh, uint64_t owner)
{
	struct fs_inode *inode = fh->inode;
	struct fs_lock_owner *o;
	int flags, fd;

	for (o = inode->owners; o; o = o->next)
		if (o->owner == owner)
			return o->fd;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	flags = fcntl(fh->fd, F_GETFL);
	fd = fs_inode_reopen(fs, inode, flags < 0 ? O_RDONLY : flags & O_ACCMODE);
	if (fd < 0) {
		free(o);
		return fd;
	}
	o->owner = owner;
	o->fd = fd;
	o->next = inode->owners;
	inode->owners = o;
	return fd;
}

void fs_lock_drop_owner(struct fs *fs, struct fs_inode *inode, uint64_t owner)
{
	struct fs_lock_owner **link, *o = NULL;

	pthread_mutex_lock(&fs->lock);
	for (link = &inode->owners; *link; link = &(*link)->next) {
		if ((*link)->owner == owner) {
			o = *link;
			*link = o->next;
			break;
		}
	}
	pthread_mutex_unlock(&fs->lock);
	if (o) {
		close(o->fd);
		free(o);
	}
}

void fs_lock_drop_all(struct fs_inode *inode)
{
	while (inode->owners) {
		struct fs_lock_owner *o = inode->owners;
		inode->owners = o->next;
		close(o->fd);
		free(o);
	}
}

/*
 * A private dup of the owner's description: a concurrent FLUSH may close the owner's fd,
 * but the OFD locks live as long as any fd of the description, so using the dup is safe.
 */
static int owner_fd(struct fs *fs, struct fs_fh *fh, uint64_t owner)
{
	int fd;

	pthread_mutex_lock(&fs->lock);
	fd = find_owner_fd(fs, fh, owner);
	if (fd >= 0) {
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		fd = fd < 0 ? (errno == EMFILE ? -ENFILE : -errno) : fs_inode_fd_guard(fs, fd);
	}
	pthread_mutex_unlock(&fs->lock);
	return fd;
}

/* Under fs->lock: only a lock taken tells who holds the owner's locks. */
static void remember_pid(struct fs_inode *inode, uint64_t owner, uint32_t pid)
{
	for (struct fs_lock_owner *o = inode->owners; o; o = o->next) {
		if (o->owner == owner) {
			o->pid = pid;
			return;
		}
	}
}

/* One fdinfo line: an OFD lock of type (F_RDLCK/F_WRLCK) overlapping [start, end]? */
static bool lock_line_matches(const char *line, short type, uint64_t start, uint64_t end)
{
	char kind[16], mode[16], rw[16], last[24];
	unsigned long long s, e;

	if (sscanf(line, "lock: %*d: %15s %15s %15s %*d %*s %llu %23s", kind, mode, rw,
		   &s, last) != 5)
		return false;
	if (strcmp(kind, "OFDLCK") || strcmp(rw, type == F_WRLCK ? "WRITE" : "READ"))
		return false;
	if (strcmp(last, "EOF") == 0)
		e = INT64_MAX;
	else if (sscanf(last, "%llu", &e) != 1)
		return false;
	return s <= end && start <= e;
}

static ssize_t read_all(int fd, char *buf, size_t size)
{
	size_t got = 0;
	ssize_t n;

	while (got < size && (n = read(fd, buf + got, size - got)) > 0)
		got += (size_t)n;
	return (ssize_t)got;
}

/* Whether the open file description behind fd holds such a lock (the kernel's record);
 * buf: FDINFO_MAX bytes of scratch. */
static bool holds_lock(struct fs *fs, int fd, char *buf, short type, uint64_t start,
		       uint64_t end)
{
	char path[32], *line, *save = NULL;
	bool found = false;
	ssize_t n;
	int info;

	/* proc_fd is /proc/<our pid>/fd: its sibling fdinfo describes the same descriptors. */
	snprintf(path, sizeof(path), "../fdinfo/%d", fd);
	info = openat(fs->proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (info < 0)
		return false;
	n = read_all(info, buf, FDINFO_MAX - 1);
	close(info);
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save))
		found = lock_line_matches(line, type, start, end);
	return found;
}

/*
 * Under fs->lock: the guest pid of another owner whose description holds the lock F_OFD_GETLK
 * reported, or 0 (a host process's lock, an owner that never told its pid, or one beyond the
 * scan limit). A few procfs reads under the lock: GETLK with a conflict is rare.
 */
static uint32_t holder_pid(struct fs *fs, struct fs_inode *inode, uint64_t self,
			   const struct fuse_file_lock *lk)
{
	unsigned int scanned = 0;
	uint32_t pid = 0;
	char *buf = malloc(FDINFO_MAX);

	for (struct fs_lock_owner *o = inode->owners; buf && o && scanned < GETLK_SCAN_MAX;
	     o = o->next) {
		if (o->owner == self || !o->pid)
			continue;
		scanned++;
		if (holds_lock(fs, o->fd, buf, (short)lk->type, lk->start, lk->end)) {
			pid = o->pid;
			break;
		}
	}
	free(buf);
	return pid;
}

static int to_flock(const struct fuse_file_lock *lk, struct flock *fl)
{
	if (lk->type != F_RDLCK && lk->type != F_WRLCK && lk->type != F_UNLCK)
		return -EINVAL;
	if (lk->start > INT64_MAX || lk->end < lk->start)
		return -EINVAL;
	*fl = (struct flock){ .l_type = (short)lk->type, .l_whence = SEEK_SET,
			      .l_start = (off_t)lk->start };
	/* linux/fuse.h: end is inclusive, OFFSET_MAX (INT64_MAX) meaning "to the end". */
	fl->l_len = lk->end >= INT64_MAX ? 0 : (off_t)(lk->end - lk->start + 1);
	return 0;
}

ssize_t fs_lock_getlk(struct fs_req *req)
{
	const struct fuse_lk_in *in = (const void *)req->arg;
	struct fuse_lk_out out = { 0 };
	struct flock fl;
	struct fs_fh *fh;
	int fd, ret;

	ret = to_flock(&in->lk, &fl);
	if (ret)
		return fs_reply_err(req, ret);
	fh = fs_fh_get(req->fs, in->fh);
	if (!fh)
		return fs_reply_err(req, -EBADF);
	fd = owner_fd(req->fs, fh, in->owner);
	ret = fd < 0 ? fd : fcntl(fd, F_OFD_GETLK, &fl) ? -errno : 0;
	if (fd >= 0)
		close(fd);
	out.lk.type = (uint32_t)fl.l_type;
	if (!ret && fl.l_type != F_UNLCK) {
		out.lk.start = (uint64_t)fl.l_start;
		out.lk.end = fl.l_len ? (uint64_t)(fl.l_start + fl.l_len - 1) : INT64_MAX;
		pthread_mutex_lock(&req->fs->lock);
		out.lk.pid = holder_pid(req->fs, fh->inode, in->owner, &out.lk);
		pthread_mutex_unlock(&req->fs->lock);
	}
	fs_fh_put(req->fs, fh);
	if (ret)
		return fs_reply_err(req, ret);
	return fs_reply(req, &out, sizeof(out));
}

static int try_lock(struct fs *fs, struct fs_fh *fh, const struct fuse_lk_in *in,
		    const struct flock *fl)
{
	struct flock l = *fl;
	int fd;

	if (in->lk_flags & FUSE_LK_FLOCK) {
		int op = fl->l_type == F_UNLCK ? LOCK_UN : fl->l_type == F_RDLCK ? LOCK_SH : LOCK_EX;
		return flock(fh->fd, op | LOCK_NB) ? -errno : 0;
	}
	int ret;

	fd = owner_fd(fs, fh, in->owner);
	if (fd < 0)
		return fd;
	ret = fcntl(fd, F_OFD_SETLK, &l) ? -errno : 0;
	close(fd);
	if (!ret && l.l_type != F_UNLCK && in->lk.pid) {
		pthread_mutex_lock(&fs->lock);
		remember_pid(fh->inode, in->owner, in->lk.pid);
		pthread_mutex_unlock(&fs->lock);
	}
	return ret;
}

/* Under fs->lock: a waiter slot for this request, or -1 when all are taken. */
static int add_waiter(struct fs *fs, uint64_t unique)
{
	for (int i = 0; i < FS_MAX_LOCK_WAITERS; i++) {
		if (!fs->waiters[i].unique) {
			fs->waiters[i].unique = unique ? unique : 1;
			fs->waiters[i].interrupted = false;
			return i;
		}
	}
	return -1;
}

bool fs_lock_interrupt(struct fs *fs, uint64_t unique)
{
	bool found = false;

	pthread_mutex_lock(&fs->lock);
	for (int i = 0; i < FS_MAX_LOCK_WAITERS; i++) {
		if (unique && fs->waiters[i].unique == unique) {
			fs->waiters[i].interrupted = true;
			found = true;
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return found;
}

static bool should_stop(struct fs *fs, int slot)
{
	bool stop;

	pthread_mutex_lock(&fs->lock);
	stop = fs->waiters[slot].interrupted || fs->cancel_waits;
	pthread_mutex_unlock(&fs->lock);
	return stop;
}

static bool busy(int ret)
{
	return ret == -EAGAIN || ret == -EACCES || ret == -EWOULDBLOCK;
}

static int wait_lock(struct fs_req *req, struct fs_fh *fh, const struct fuse_lk_in *in,
		     const struct flock *fl)
{
	struct timespec pause = { .tv_nsec = 1000000 };
	struct fs *fs = req->fs;
	int ret, slot;

	pthread_mutex_lock(&fs->lock);
	slot = add_waiter(fs, req->hdr.unique);
	pthread_mutex_unlock(&fs->lock);
	if (slot < 0)
		return -ENOLCK;
	while (busy(ret = try_lock(fs, fh, in, fl))) {
		if (should_stop(fs, slot)) {
			ret = -EINTR;
			break;
		}
		nanosleep(&pause, NULL);
		if (pause.tv_nsec < 50000000)
			pause.tv_nsec *= 2;
	}
	pthread_mutex_lock(&fs->lock);
	fs->waiters[slot].unique = 0;
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

static ssize_t setlk(struct fs_req *req, bool wait)
{
	const struct fuse_lk_in *in = (const void *)req->arg;
	struct flock fl;
	struct fs_fh *fh;
	int ret;

	ret = to_flock(&in->lk, &fl);
	if (ret)
		return fs_reply_err(req, ret);
	fh = fs_fh_get(req->fs, in->fh);
	if (!fh)
		return fs_reply_err(req, -EBADF);
	ret = try_lock(req->fs, fh, in, &fl);
	if (wait && busy(ret))
		ret = wait_lock(req, fh, in, &fl);
	fs_fh_put(req->fs, fh);
	return ret ? fs_reply_err(req, ret) : fs_reply(req, NULL, 0);
}

ssize_t fs_lock_setlk(struct fs_req *req)
{
	return setlk(req, false);
}

ssize_t fs_lock_setlkw(struct fs_req *req)
{
	return setlk(req, true);
}
