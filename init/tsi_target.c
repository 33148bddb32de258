/* TSI guest side: access to the process behind a notification (memory, fds), safe from pid reuse. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tsi_int.h"

/* The thread group of a thread: pidfd_open takes only a group leader on this kernel. */
static pid_t tgid_of(pid_t tid)
{
	char path[64], buf[512];
	int fd, n;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "\nTgid:");
	return p ? (pid_t)strtol(p + 6, NULL, 10) : -1;
}

/*
 * Opens pidfd and mem first, then checks the notification is still live: the thread cannot
 * have died and its pid been reused between the two, so what we opened is the right process.
 */
int tsi_target_open(struct tsi_target *t, int listener, const struct tsi_notif *n)
{
	char path[64];
	pid_t tgid;

	t->tid = (pid_t)n->pid;
	/*
	 * Most callers are a group leader (single-threaded programs): then the pid is the group's
	 * and pidfd_open takes it at once. Other threads' group is read from /proc (EINVAL here),
	 * which costs about 0.1 ms under QEMU TCG.
	 */
	t->pidfd = (int)syscall(SYS_pidfd_open, t->tid, 0);
	if (t->pidfd < 0 && errno == EINVAL) {
		tgid = tgid_of(t->tid);
		t->pidfd = tgid > 0 ? (int)syscall(SYS_pidfd_open, tgid, 0) : -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)n->pid);
	t->memfd = open(path, O_RDWR | O_CLOEXEC);
	if (t->pidfd < 0 || t->memfd < 0 || !tsi_id_valid(listener, n->id)) {
		tsi_target_close(t);
		return -ESRCH;
	}
	return 0;
}

void tsi_target_close(struct tsi_target *t)
{
	if (t->pidfd >= 0)
		close(t->pidfd);
	if (t->memfd >= 0)
		close(t->memfd);
	t->pidfd = t->memfd = -1;
}

int tsi_target_read(const struct tsi_target *t, uint64_t addr, void *buf, size_t len)
{
	if (addr > INT64_MAX - len)
		return -EFAULT;
	return pread(t->memfd, buf, len, (off_t)addr) == (ssize_t)len ? 0 : -EFAULT;
}

int tsi_target_write(const struct tsi_target *t, uint64_t addr, const void *buf, size_t len)
{
	if (addr > INT64_MAX - len)
		return -EFAULT;
	return pwrite(t->memfd, buf, len, (off_t)addr) == (ssize_t)len ? 0 : -EFAULT;
}

int tsi_target_getfd(const struct tsi_target *t, int fd)
{
	long r = fd < 0 ? -1 : syscall(SYS_pidfd_getfd, t->pidfd, fd, 0);

	return r < 0 ? -errno : (int)r;
}

bool tsi_target_cloexec(const struct tsi_target *t, int fd)
{
	char path[64], buf[256];
	int f, n;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)t->tid, fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return false;
	n = (int)read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strstr(buf, "flags:");
	return p && (strtoul(p + 6, NULL, 8) & O_CLOEXEC);
}
