/* Finds the krun-stdin/stdout/stderr virtio-console ports (krun_init.h) by their sysfs names. */
#include "ports.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/krun_init.h"
#include "log.h"

#define PORTS_DIR "/sys/class/virtio-ports"
/* The host names ports through the control queue after the port appears; wait this long. */
#define NAME_WAIT_TRIES 50
#define NAME_WAIT_NS 10000000L

static const char *const port_names[3] = { KRUN_PORT_STDIN, KRUN_PORT_STDOUT, KRUN_PORT_STDERR };

/* Reads /sys/class/virtio-ports/<dev>/name without its newline; "" when unnamed yet. */
static void read_name(const char *dev, char *out, size_t cap)
{
	char path[300];
	ssize_t n = -1;

	snprintf(path, sizeof(path), PORTS_DIR "/%s/name", dev);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, out, cap - 1);
		close(fd);
	}
	if (n < 0)
		n = 0;
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

/* One pass over the ports; returns false if some non-console port has no name yet. */
static bool scan(char devs[3][64])
{
	DIR *d = opendir(PORTS_DIR);
	bool all_named = true;
	struct dirent *e;

	if (!d)
		return true;
	while ((e = readdir(d))) {
		char name[64];
		if (e->d_name[0] == '.' || strlen(e->d_name) >= 64)
			continue;
		read_name(e->d_name, name, sizeof(name));
		/* Port 0 is the console (hvc0), which the host leaves unnamed. */
		size_t len = strlen(e->d_name);
		if (!*name && !(len > 2 && !strcmp(e->d_name + len - 2, "p0")))
			all_named = false;
		for (int i = 0; i < 3; i++)
			if (!strcmp(name, port_names[i]))
				memcpy(devs[i], e->d_name, len + 1);     /* len < 64: checked above */
	}
	closedir(d);
	return all_named;
}

void ports_open(int fds[3])
{
	char devs[3][64] = { "", "", "" };
	struct timespec ts = { 0, NAME_WAIT_NS };

	for (int t = 0; !scan(devs) && t < NAME_WAIT_TRIES; t++)
		nanosleep(&ts, NULL);
	for (int i = 0; i < 3; i++) {
		char path[sizeof(devs) + 8];
		fds[i] = -1;
		if (!devs[i][0])
			continue;
		snprintf(path, sizeof(path), "/dev/%s", devs[i]);
		fds[i] = open(path, (i ? O_WRONLY : O_RDONLY) | O_NOCTTY | O_CLOEXEC);
		if (fds[i] < 0)
			log_error("warning: open %s (%s): %m; using the console", path, port_names[i]);
		else
			log_debug("%s is %s", port_names[i], path);
	}
}
