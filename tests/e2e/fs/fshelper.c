/*
 * Static helper for the guest half of tests/e2e/fs.sh: file system calls that busybox has no
 * applet for. Built with musl-gcc -static so it runs in the busybox root, the host root and on
 * the host. Each subcommand exits 0 on success, else prints why on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/* linux/fs.h, which musl-gcc does not see: the file attribute ioctls. */
struct fsxattr {
	unsigned int fsx_xflags, fsx_extsize, fsx_nextents, fsx_projid, fsx_cowextsize;
	unsigned char fsx_pad[8];
};
#define FS_IOC_GETFLAGS _IOR('f', 1, long)
#define FS_IOC_SETFLAGS _IOW('f', 2, long)
#define FS_IOC_GETVERSION _IOR('v', 1, long)
#define FS_IOC_FSGETXATTR _IOR('X', 31, struct fsxattr)
#define FS_NOATIME_FL 0x00000080

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}


static int rename2(const char *a, const char *b, unsigned flags)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static const char *ename(int e);

/* rename2 plain|noreplace|exchange A B: prints "ok" or the errno name. */
static int cmd_rename2(char **av)
{
	unsigned flags = !strcmp(av[0], "exchange") ? RENAME_EXCHANGE :
			 !strcmp(av[0], "noreplace") ? RENAME_NOREPLACE : 0;
	puts(rename2(av[1], av[2], flags) == 0 ? "ok" : ename(errno));
	return 0;
}

/* errno-of-open PATH FLAGS(r|w|rw|c): prints "ok" or the errno name (EACCES, EPERM, ...). */
static const char *ename(int e)
{
	switch (e) {
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EXDEV: return "EXDEV";
	case ENXIO: return "ENXIO";
	case ELOOP: return "ELOOP";
	case EEXIST: return "EEXIST";
	case EROFS: return "EROFS";
	case ENODEV: return "ENODEV";
	case EISDIR: return "EISDIR";
	case ENOTEMPTY: return "ENOTEMPTY";
	case ENOTDIR: return "ENOTDIR";
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	default: return strerror(e);
	}
}

static int cmd_open(char **av)
{
	int fl = !strcmp(av[1], "w") ? O_WRONLY : !strcmp(av[1], "rw") ? O_RDWR :
		 !strcmp(av[1], "c") ? O_WRONLY | O_CREAT : O_RDONLY;
	int fd = open(av[0], fl, 0644);
	puts(fd >= 0 ? "ok" : ename(errno));
	if (fd >= 0)
		close(fd);
	return 0;
}

/* mknod PATH c|b MAJ MIN; link OLD NEW: print "ok" or the errno name. */
static int cmd_mknod(char **av)
{
	mode_t t = av[1][0] == 'b' ? S_IFBLK : av[1][0] == 'p' ? S_IFIFO : S_IFCHR;
	int r = mknod(av[0], t | 0644, makedev(atoi(av[2]), atoi(av[3])));
	puts(r == 0 ? "ok" : ename(errno));
	return 0;
}

static int cmd_link(char **av)
{
	int r = linkat(AT_FDCWD, av[0], AT_FDCWD, av[1], av[2] ? AT_SYMLINK_FOLLOW : 0);
	puts(r == 0 ? "ok" : ename(errno));
	return 0;
}

/* asuser UID GID CMD ARGS...: drop to UID/GID (no groups) and exec. */
static int cmd_asuser(char **av)
{
	gid_t g = (gid_t)atoi(av[1]);
	if (setgroups(0, NULL) || setgid(g) || setuid((uid_t)atoi(av[0])))
		return fail("drop privileges: %s", strerror(errno));
	execv(av[2], av + 2);
	return fail("exec %s: %s", av[2], strerror(errno));
}

/* xattr FILE: set, get, list, replace, remove a user xattr; checks each step. */
static int cmd_xattr(char **av)
{
	char buf[256];
	ssize_t n;

	if (setxattr(av[0], "user.krun", "value1", 6, XATTR_CREATE))
		return fail("setxattr: %s", strerror(errno));
	if (setxattr(av[0], "user.krun", "x", 1, XATTR_CREATE) == 0 || errno != EEXIST)
		return fail("XATTR_CREATE on existing: %s", strerror(errno));
	if (setxattr(av[0], "user.other", "v", 1, XATTR_REPLACE) == 0 || errno != ENODATA)
		return fail("XATTR_REPLACE on missing: %s", strerror(errno));
	n = getxattr(av[0], "user.krun", buf, sizeof(buf));
	if (n != 6 || memcmp(buf, "value1", 6))
		return fail("getxattr: %zd %s", n, n < 0 ? strerror(errno) : "");
	if (getxattr(av[0], "user.krun", NULL, 0) != 6)
		return fail("getxattr size query");
	if (getxattr(av[0], "user.missing", buf, sizeof(buf)) >= 0 || errno != ENODATA)
		return fail("missing xattr: %s", strerror(errno));
	n = listxattr(av[0], buf, sizeof(buf));
	if (n < 0 || !memmem(buf, (size_t)n, "user.krun", 10))
		return fail("listxattr lacks user.krun: %zd", n);
	if (setxattr(av[0], "user.keep", "kept", 4, 0))
		return fail("setxattr keep: %s", strerror(errno));
	if (removexattr(av[0], "user.krun"))
		return fail("removexattr: %s", strerror(errno));
	if (getxattr(av[0], "user.krun", buf, sizeof(buf)) >= 0 || errno != ENODATA)
		return fail("removed xattr still there");
	return 0;
}

/* getx FILE NAME: prints the value (host side check). */
static int cmd_getx(char **av)
{
	char buf[256];
	ssize_t n = getxattr(av[0], av[1], buf, sizeof(buf) - 1);
	if (n < 0)
		return fail("getxattr %s: %s", av[1], strerror(errno));
	buf[n] = 0;
	puts(buf);
	return 0;
}

/* locks FILE: POSIX (fcntl) and BSD (flock) locks between two processes. */
static int cmd_locks(char **av)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	int p2c[2], c2p[2], fd, st;
	char c;
	pid_t pid;

	fd = open(av[0], O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		return fail("open: %s", strerror(errno));
	if (fcntl(fd, F_SETLK, &fl))
		return fail("F_SETLK: %s", strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB))
		return fail("flock: %s", strerror(errno));
	if (pipe(p2c) || pipe(c2p))
		return fail("pipe");
	pid = fork();
	if (pid == 0) {
		int fd2 = open(av[0], O_RDWR);
		struct flock t = fl;
		if (fd2 < 0)
			_exit(10);
		if (fcntl(fd2, F_SETLK, &t) == 0 || (errno != EAGAIN && errno != EACCES))
			_exit(11);      /* should conflict */
		t = fl;
		if (fcntl(fd2, F_GETLK, &t) || t.l_type != F_WRLCK)
			_exit(12);      /* GETLK sees the holder's lock */
		if (flock(fd2, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
			_exit(13);
		if (write(c2p[1], "x", 1) != 1)
			_exit(14);
		t = fl;
		if (fcntl(fd2, F_SETLKW, &t))   /* waits for the parent's unlock */
			_exit(15);
		if (flock(fd2, LOCK_EX))
			_exit(16);
		_exit(0);
	}
	close(c2p[1]);
	if (read(c2p[0], &c, 1) != 1) {
		waitpid(pid, &st, 0);
		return fail("child failed early: status %d", WEXITSTATUS(st));
	}
	usleep(300000);
	fl.l_type = F_UNLCK;
	if (fcntl(fd, F_SETLK, &fl))
		return fail("unlock: %s", strerror(errno));
	flock(fd, LOCK_UN);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return fail("child status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
	return 0;
}

/* getlkpid FILE: F_GETLK in a second process names the holder's pid (POSIX). */
static int cmd_getlkpid(char **av)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = open(av[0], O_RDWR | O_CREAT, 0644), st;
	pid_t pid;

	if (fd < 0 || fcntl(fd, F_SETLK, &fl))
		return fail("lock: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		struct flock t = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd2 = open(av[0], O_RDWR);
		if (fd2 < 0 || fcntl(fd2, F_GETLK, &t))
			_exit(2);
		if (t.l_pid != getppid()) {
			fprintf(stderr, "F_GETLK: l_type %d l_pid %d, holder is pid %d\n", t.l_type,
				(int)t.l_pid, (int)getppid());
			_exit(1);
		}
		_exit(0);
	}
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n++;
	closedir(d);
	return n;
}

/* An O_TMPFILE in DIR with some data; the directory never shows it. Returns the fd or -1. */
static int new_tmpfile(const char *dir, const char *data, int before)
{
	int fd = open(dir, O_TMPFILE | O_RDWR, 0640);
	ssize_t len = (ssize_t)strlen(data);
	struct stat st;

	if (fd < 0)
		return fail("open O_TMPFILE: %s", strerror(errno)), -1;
	if (write(fd, data, (size_t)len) != len || fstat(fd, &st))
		return fail("write/fstat: %s", strerror(errno)), -1;
	if (st.st_nlink != 0 || (st.st_mode & 07777) != 0640 || st.st_size != len)
		return fail("fstat: nlink %lu mode %o size %lld", (unsigned long)st.st_nlink,
			    (unsigned)st.st_mode & 07777, (long long)st.st_size), -1;
	if (dir_entries(dir) != before)
		return fail("the unnamed file shows in %s", dir), -1;
	return fd;
}

/* tmpfile DIR NAME: O_TMPFILE, write, linkat to DIR/NAME, reopen by name and compare; a
 * second one closed without a name never appears. */
static int cmd_tmpfile(char **av)
{
	const char *data = "tmpfile-data-from-guest";
	int before = dir_entries(av[0]), fd, fd2;
	char path[4096], buf[64] = { 0 };

	if (before < 0)
		return fail("opendir %s: %s", av[0], strerror(errno));
	fd = new_tmpfile(av[0], data, before);
	if (fd < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/%s", av[0], av[1]);
	if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH))
		return fail("linkat AT_EMPTY_PATH: %s", strerror(errno));
	close(fd);
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) != (ssize_t)strlen(data) || strcmp(buf, data))
		return fail("reopen %s by name: '%s' %s", path, buf, fd < 0 ? strerror(errno) : "");
	close(fd);
	if (dir_entries(av[0]) != before + 1)
		return fail("%s: %d entries after the link, expected %d", av[0], dir_entries(av[0]),
			    before + 1);
	fd2 = new_tmpfile(av[0], "never-named", before + 1);
	if (fd2 < 0)
		return 1;
	close(fd2);
	if (dir_entries(av[0]) != before + 1)
		return fail("a closed unnamed file appeared in %s", av[0]);
	return 0;
}

/* fileattr FILE: FS_IOC_GETFLAGS / SETFLAGS (chattr +A) and FS_IOC_FSGETXATTR work; another
 * ioctl (FS_IOC_GETVERSION) is ENOTTY. */
static int cmd_fileattr(char **av)
{
	int fd = open(av[0], O_RDONLY), flags = 0, again = 0;
	struct fsxattr fx;

	if (fd < 0)
		return fail("open: %s", strerror(errno));
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags))
		return fail("FS_IOC_GETFLAGS: %s", strerror(errno));
	flags |= FS_NOATIME_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags))
		return fail("FS_IOC_SETFLAGS: %s", strerror(errno));
	if (ioctl(fd, FS_IOC_GETFLAGS, &again) || !(again & FS_NOATIME_FL))
		return fail("flags after SETFLAGS: %#x (%s)", again, strerror(errno));
	if (ioctl(fd, FS_IOC_FSGETXATTR, &fx))
		return fail("FS_IOC_FSGETXATTR: %s", strerror(errno));
	/* Anything else is refused by the server: the guest kernel answers ENOTTY. */
	if (ioctl(fd, FS_IOC_GETVERSION, &again) == 0 || errno != ENOTTY)
		return fail("FS_IOC_GETVERSION: %s, expected ENOTTY", strerror(errno));
	close(fd);
	return 0;
}

/* getflags FILE: prints the FS_IOC_GETFLAGS flags in hex (host side check). */
static int cmd_getflags(char **av)
{
	int fd = open(av[0], O_RDONLY), flags = 0;

	if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags))
		return fail("%s: %s", av[0], strerror(errno));
	printf("%#x\n", flags);
	return 0;
}

/* mmap FILE TEXT: writes TEXT at offset 5000 of a 3-page file through MAP_SHARED. */
static int cmd_mmap(char **av)
{
	size_t len = 3 * 4096, tl = strlen(av[1]);
	char buf[64] = { 0 };
	int fd = open(av[0], O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *m;

	if (fd < 0 || ftruncate(fd, (off_t)len))
		return fail("open/ftruncate: %s", strerror(errno));
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return fail("mmap: %s", strerror(errno));
	memcpy(m + 5000, av[1], tl);
	if (msync(m, len, MS_SYNC))
		return fail("msync: %s", strerror(errno));
	munmap(m, len);
	if (pread(fd, buf, tl, 5000) != (ssize_t)tl || memcmp(buf, av[1], tl))
		return fail("read back after msync differs");
	close(fd);
	return 0;
}

/* mmapread FILE OFF TEXT: a host-written file read through a read-only mapping. */
static int cmd_mmapread(char **av)
{
	int fd = open(av[0], O_RDONLY);
	struct stat st;
	long off = atol(av[1]);
	char *m;

	if (fd < 0 || fstat(fd, &st))
		return fail("open: %s", strerror(errno));
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return fail("mmap: %s", strerror(errno));
	if (memcmp(m + off, av[2], strlen(av[2])))
		return fail("mapping differs at %ld", off);
	return 0;
}

/* sparse FILE: 1 GiB file, 4 bytes of data at 512 MiB; SEEK_DATA/SEEK_HOLE find them. */
static int cmd_sparse(char **av)
{
	const off_t size = 1L << 30, at = 512L << 20;
	int fd = open(av[0], O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct stat st;
	off_t d, h;

	if (fd < 0 || ftruncate(fd, size))
		return fail("open/ftruncate: %s", strerror(errno));
	if (pwrite(fd, "data", 4, at) != 4)
		return fail("pwrite: %s", strerror(errno));
	if (fstat(fd, &st) || st.st_size != size)
		return fail("size %lld", (long long)st.st_size);
	if (st.st_blocks > 1024)
		return fail("st_blocks %lld: not sparse", (long long)st.st_blocks);
	d = lseek(fd, 0, SEEK_DATA);
	if (d < 0 || d > at || at - d > 1 << 20)
		return fail("SEEK_DATA from 0: %lld (%s)", (long long)d, d < 0 ? strerror(errno) : "");
	h = lseek(fd, d, SEEK_HOLE);
	if (h <= at || h > at + (1 << 20))
		return fail("SEEK_HOLE from data: %lld", (long long)h);
	if (lseek(fd, 0, SEEK_HOLE) != 0)
		return fail("SEEK_HOLE from 0 is not 0");
	if (lseek(fd, at + (2 << 20), SEEK_DATA) >= 0 || errno != ENXIO)
		return fail("SEEK_DATA past the last data: not ENXIO");
	close(fd);
	return 0;
}

/* unlinked FILE: an open file keeps working after its name is gone. */
static int cmd_unlinked(char **av)
{
	char buf[32] = { 0 };
	struct stat st;
	int fd = open(av[0], O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, "before", 6) != 6)
		return fail("open/write: %s", strerror(errno));
	if (unlink(av[0]))
		return fail("unlink: %s", strerror(errno));
	if (access(av[0], F_OK) == 0)
		return fail("name still there");
	if (write(fd, "after", 5) != 5)
		return fail("write after unlink: %s", strerror(errno));
	if (pread(fd, buf, 11, 0) != 11 || memcmp(buf, "beforeafter", 11))
		return fail("read after unlink: '%s'", buf);
	if (fstat(fd, &st) || st.st_nlink != 0 || st.st_size != 11)
		return fail("fstat after unlink: nlink %lu size %lld", (unsigned long)st.st_nlink,
			    (long long)st.st_size);
	if (ftruncate(fd, 3) || fstat(fd, &st) || st.st_size != 3)
		return fail("ftruncate after unlink: %s", strerror(errno));
	return close(fd) ? fail("close: %s", strerror(errno)) : 0;
}

/* append FILE N: two processes append N 16-byte records each through O_APPEND. */
static int cmd_append(char **av)
{
	int n = atoi(av[1]), st, bad = 0;
	pid_t pid;
	char rec[17], buf[17];
	int fd;

	close(open(av[0], O_WRONLY | O_CREAT | O_TRUNC, 0644));
	pid = fork();
	fd = open(av[0], O_WRONLY | O_APPEND);
	if (fd < 0)
		_exit(2);
	for (int i = 0; i < n; i++) {
		snprintf(rec, sizeof(rec), "%c%014d\n", pid ? 'P' : 'C', i);
		if (write(fd, rec, 16) != 16)
			_exit(3);
	}
	close(fd);
	if (pid == 0)
		_exit(0);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return fail("child failed");
	fd = open(av[0], O_RDONLY);
	int cnt[2] = { 0, 0 };
	while (read(fd, buf, 16) == 16) {
		if (buf[15] != '\n' || (buf[0] != 'P' && buf[0] != 'C'))
			bad++;
		else
			cnt[buf[0] == 'C']++;
	}
	if (bad || cnt[0] != n || cnt[1] != n)
		return fail("records: %d parent, %d child, %d torn", cnt[0], cnt[1], bad);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct { const char *name; int args; int (*fn)(char **); } cmds[] = {
		{ "rename2", 3, cmd_rename2 }, { "open", 2, cmd_open }, { "mknod", 4, cmd_mknod },
		{ "link", 2, cmd_link }, { "asuser", 3, cmd_asuser }, { "xattr", 1, cmd_xattr },
		{ "getx", 2, cmd_getx }, { "locks", 1, cmd_locks },
		{ "getlkpid", 1, cmd_getlkpid }, { "mmap", 2, cmd_mmap },
		{ "mmapread", 3, cmd_mmapread }, { "sparse", 1, cmd_sparse },
		{ "unlinked", 1, cmd_unlinked }, { "append", 2, cmd_append },
		{ "tmpfile", 2, cmd_tmpfile }, { "fileattr", 1, cmd_fileattr },
		{ "getflags", 1, cmd_getflags },
	};
	for (size_t i = 0; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name)) {
			if (argc - 2 < cmds[i].args)
				return fail("%s: %d arguments needed", argv[1], cmds[i].args);
			return cmds[i].fn(argv + 2);
		}
	return fail("usage: fshelper rename2|open|mknod|link|asuser|xattr|getx|locks|getlkpid|mmap|"
		    "mmapread|sparse|unlinked|append|tmpfile|fileattr|getflags ...");
}
