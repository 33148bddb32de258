/*
 * TSI guest side: a program's connect() to a UNIX socket that lives on a virtio-fs share.
 * The guest kernel cannot reach the host process listening there; the host proxy can, given
 * "<share tag>/<path inside the share>" (it resolves that confined to the share).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tsi_int.h"

/* The path as the program meant it: relative ones from its working directory. */
static int program_path(const struct tsi_target *t, const char *path, char out[PATH_MAX])
{
	char link[64], cwd[PATH_MAX];
	struct stat a, b;
	ssize_t n;

	/* A program in its own chroot sees other paths than we do: leave it to the kernel. */
	snprintf(link, sizeof(link), "/proc/%d/root", (int)t->tid);
	if (stat(link, &a) || stat("/", &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -1;
	if (path[0] == '/')
		return snprintf(out, PATH_MAX, "%s", path) < PATH_MAX ? 0 : -1;
	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)t->tid);
	n = readlink(link, cwd, sizeof(cwd) - 1);
	if (n <= 0)
		return -1;
	cwd[n] = '\0';
	return snprintf(out, PATH_MAX, "%s/%s", cwd, path) < PATH_MAX ? 0 : -1;
}

/* A guest program listening on this path: the kernel connects it. */
static bool guest_listens(const char *abs)
{
	char line[PATH_MAX + 128];
	bool found = false;
	FILE *f = fopen("/proc/net/unix", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long flags;
		char path[PATH_MAX];
		/* "Num RefCount Protocol Flags Type St Inode Path"; flag 0x10000 = listening. */
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %4095s", &flags, path) == 2)
			found = (flags & 0x10000) && !strcmp(path, abs);
	}
	fclose(f);
	return found;
}

static bool under(const char *path, const char *mnt, size_t *skip)
{
	size_t n = strlen(mnt);

	if (!strcmp(mnt, "/")) {
		*skip = 1;
		return true;
	}
	if (strncmp(path, mnt, n) || path[n] != '/')
		return false;
	*skip = n + 1;
	return true;
}

/* The virtio-fs mount holding real (deepest mount point wins): "<tag>/<path in share>". */
static int share_path(const char *real, char *out, size_t size)
{
	char line[2 * PATH_MAX], root[PATH_MAX], mnt[PATH_MAX], fstype[64], source[256];
	size_t best = 0, skip;
	int ret = -1;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
		    sscanf(sep + 3, "%63s %255s", fstype, source) != 2 || strcmp(fstype, "virtiofs") ||
		    !under(real, mnt, &skip) || strlen(mnt) < best)
			continue;
		best = strlen(mnt);
		/* A bind of a directory inside the share: its root names that directory. */
		ret = snprintf(out, size, "%s%s/%s", source, strcmp(root, "/") ? root : "",
			       real + skip) < (int)size ? 0 : -1;
	}
	fclose(f);
	return ret;
}

int tsi_unix_classify(const struct tsi_target *t, const struct sockaddr_storage *ss, uint64_t len,
		      struct krun_tsi_request *r, char *path, size_t size)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
	size_t off = offsetof(struct sockaddr_un, sun_path), n;
	char given[sizeof(sun->sun_path) + 1], abs[PATH_MAX], real[PATH_MAX];
	struct stat st;

	if (ss->ss_family != AF_UNIX || len <= off || sun->sun_path[0] == '\0')
		return 0;   /* unnamed or abstract: nothing on a share */
	n = strnlen(sun->sun_path, len - off);
	memcpy(given, sun->sun_path, n);
	given[n] = '\0';
	if (program_path(t, given, abs) || stat(abs, &st) || !S_ISSOCK(st.st_mode) ||
	    !realpath(abs, real) || share_path(real, path, size) || guest_listens(abs) ||
	    guest_listens(real))
		return 0;
	r->family = AF_UNIX;
	r->path_len = (uint16_t)strlen(path);
	return r->path_len > 0 && r->path_len <= KRUN_TSI_PATH_MAX;
}
