/* Mounts the kernel file systems (only on existing mount points) and the mapped volumes. */
#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"

struct fs {
	const char *type;
	const char *path;
	unsigned long flags;
	const char *data;
	bool required;
};

/* Order matters: /dev/pts and /dev/shm live on the /dev mounted just before them. */
static const struct fs system_fs[] = {
	{ "proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, true },
	{ "sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, true },
	{ "cgroup2", "/sys/fs/cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, false },
	{ "devtmpfs", "/dev", MS_NOSUID, "mode=0755", true },
	{ "devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620", false },
	{ "tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV, "mode=1777", false },
	{ "tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=1777", false },
	{ "tmpfs", "/run", MS_NOSUID | MS_NODEV, "mode=0755", false },
};

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Entries the kernel's devtmpfs lacks but programs expect; /dev is ours, not the user's. */
static void populate_dev(void)
{
	static const char *const links[][2] = {
		{ "/proc/self/fd", "/dev/fd" }, { "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" },
		{ "pts/ptmx", "/dev/ptmx" },
	};

	if (mkdir("/dev/pts", 0755) && errno != EEXIST)
		log_debug("mkdir /dev/pts: %m");
	if (mkdir("/dev/shm", 01777) && errno != EEXIST)
		log_debug("mkdir /dev/shm: %m");
	/* devtmpfs normally has /dev/ptmx; the link only fills in when it does not. */
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) && errno != EEXIST)
			log_debug("symlink %s: %m", links[i][1]);
}

/*
 * Readahead window of a virtio-fs mount, in KiB: one request of the server's largest size
 * (max_pages 256, src/devices/fs). The kernel starts a FUSE mount at 128 KiB (INIT offers
 * that and the server may only shrink it), so a cold sequential read would cost a round trip
 * per 128 KiB; with 1 MiB it is one per MiB, and a request that big keeps the host busy while
 * the guest copies the previous one. Random reads are unaffected (readahead only grows on
 * sequential access); page faults on a mapping read around up to this window.
 */
#define VIRTIOFS_READAHEAD_KB 1024
/* statfs f_type of FUSE mounts (linux/magic.h, which musl's headers lack). */
#define FUSE_SUPER_MAGIC 0x65735546

/*
 * Like a block device's, the window is the mount's bdi read_ahead_kb in sysfs, named after
 * its anonymous device number. Files opened afterwards get it. Best effort: the mount works
 * either way, and only FUSE mounts (virtio-fs) are touched.
 */
static void set_virtiofs_readahead(const char *path)
{
	char bdi[64];
	struct statfs sfs;
	struct stat st;

	if (statfs(path, &sfs) || sfs.f_type != FUSE_SUPER_MAGIC || stat(path, &st))
		return;
	snprintf(bdi, sizeof(bdi), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	if (sysfs_write_int(bdi, VIRTIOFS_READAHEAD_KB))
		log_debug("readahead of %s: %s: %m", path, bdi);
}

int sysfs_write_int(const char *path, int value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (dprintf(fd, "%d\n", value) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int mounts_system(void)
{
	/*
	 * The root share is nodev too: device nodes in the user's directory must not open the
	 * guest's devices (the init mounts its own /dev below).
	 */
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_NODEV, NULL))
		log_error("warning: remount / nodev: %m");
	for (size_t i = 0; i < sizeof(system_fs) / sizeof(system_fs[0]); i++) {
		const struct fs *fs = &system_fs[i];
		if (!is_dir(fs->path)) {
			log_debug("no mount point %s, %s not mounted", fs->path, fs->type);
			continue;
		}
		if (mount(fs->type, fs->path, fs->type, fs->flags, fs->data)) {
			int err = errno;
			log_error("%s: mount %s on %s: %m", fs->required ? "error" : "warning",
				  fs->type, fs->path);
			if (fs->required)
				return -err;
			continue;
		}
		log_debug("mounted %s on %s", fs->type, fs->path);
		if (!strcmp(fs->path, "/dev"))
			populate_dev();
	}
	/* The root is a virtio-fs share unless the guest boots from a disk or an initramfs. */
	set_virtiofs_readahead("/");
	return 0;
}

/* mkdir -p; existing directories are fine. */
static int make_path(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		if (!c)
			return is_dir(buf) ? 0 : -ENOTDIR;
		*p = c;
	}
}

int mounts_volumes(const struct config *c)
{
	for (size_t i = 0; i < c->nmounts; i++) {
		const struct config_mount *m = &c->mounts[i];
		int r = make_path(m->path);
		if (r) {
			log_error("cannot create mount point %s: %s", m->path, strerror(-r));
			return r;
		}
		/* nodev: a device node in a share would open the guest's own device. */
		if (mount(m->tag, m->path, "virtiofs", MS_NODEV, NULL)) {
			r = -errno;
			log_error("mount virtio-fs %s on %s: %m", m->tag, m->path);
			return r;
		}
		log_debug("mounted virtio-fs %s on %s", m->tag, m->path);
		set_virtiofs_readahead(m->path);
	}
	return 0;
}
