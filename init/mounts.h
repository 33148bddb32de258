/* The guest's kernel file systems and the user's mapped volumes. */
#ifndef KRUN_INIT_MOUNTS_H
#define KRUN_INIT_MOUNTS_H

#include "config.h"

/*
 * Mounts /proc, /sys, /sys/fs/cgroup, /dev, /dev/pts, /dev/shm, /tmp, /run where their mount
 * points exist. Returns -errno only when a required one (proc, sysfs, devtmpfs) fails.
 */
int mounts_system(void);
/* Mounts each mount=TAG:PATH record as virtio-fs, creating PATH; virtio-fs mounts (these
 * and a virtio-fs root) get a 1 MiB readahead window. */
int mounts_volumes(const struct config *c);
/* Writes "VALUE\n" to a sysfs (or procfs) file: 0 or -errno (errno set too). */
int sysfs_write_int(const char *path, int value);

#endif
