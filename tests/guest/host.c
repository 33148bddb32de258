/*
 * Host half of the guest tests: runs a kernel (normally tests/guest's guest.elf) through
 * vmm_run_ex with a console on stdout and, with --fs, a virtio-fs root share. Exit status:
 * the guest's reported status; 1 if it ended without one (reset, triple fault); 70 after a
 * vCPU fault; 130 when stopped by a signal; 71 when the VM could not be built.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/krun_init.h"
#include "devices/balloon.h"
#include "devices/console.h"
#include "devices/fs/fs.h"
#include "devices/fs/virtio_fs.h"
#include "util/log.h"
#include "vmm/seccomp.h"
#include "vmm/vmm_run.h"

struct opts {
	const char *kernel, *cmdline, *fs_dir;
	unsigned int cpus;
	unsigned long ram_mib;
	unsigned int shutdown_ms;   /* write the shutdown eventfd after this long (0: never) */
	bool linux_guest;
	const char *port;           /* --port NAME=FILE: a named console port the guest writes to FILE */
	const char *balloon;        /* --balloon[=GPA,PAGES]: add the device; report those pages after */
	int seccomp;                /* --seccomp=off|log|on (default: KRUN_SECCOMP) */
};

struct shutdown_timer {
	int fd;
	unsigned int ms;
};

static void *shutdown_later(void *opaque)
{
	struct shutdown_timer *t = opaque;
	uint64_t one = 1;

	usleep(t->ms * 1000u);
	if (write(t->fd, &one, sizeof(one)) < 0)
		perror("host: shutdown eventfd");
	return NULL;
}

static ssize_t exit_file_write(void *opaque, const void *buf, size_t len, uint64_t offset)
{
	int *status = opaque;
	char text[8] = { 0 };

	(void)offset;
	memcpy(text, buf, len < sizeof(text) - 1 ? len : sizeof(text) - 1);
	*status = atoi(text);
	return (ssize_t)len;
}

static int add_fs(struct vmm_config *cfg, const char *dir, int *exit_status)
{
	static struct fs_vfile vfile;
	struct fs_config fc = { .root_dir = dir, .vfiles = &vfile, .nr_vfiles = 1 };
	struct fs *fs;
	int ret;

	vfile = (struct fs_vfile){ .name = KRUN_EXIT_NAME, .mode = 0222, .write = exit_file_write,
				   .opaque = exit_status };
	ret = fs_create(&fc, &fs);
	if (ret)
		return ret;
	ret = virtio_fs_create(KRUN_ROOT_TAG, fs, 1, &cfg->devices[cfg->nr_devices]);
	if (ret == 0)
		cfg->nr_devices++;
	return ret;
}

/*
 * Balloon check: a thread takes its own reference to guest RAM's memfd while the VM runs, so the
 * pages can be inspected after teardown (below the MMIO hole, memfd offset = guest address).
 */
struct ram_probe {
	pthread_t thread;
	int fd;
};

static int open_ram_memfd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char link[128];
	int fd = -1;

	while (d && fd < 0 && (e = readdir(d))) {
		ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
		if (n > 0 && (link[n] = 0, !strncmp(link, "/memfd:krun-guest-ram", 21)))
			fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
	}
	if (d)
		closedir(d);
	return fd;
}

static void *find_ram(void *opaque)
{
	struct ram_probe *p = opaque;

	for (int i = 0; i < 5000 && p->fd < 0; i++) {
		p->fd = open_ram_memfd();
		if (p->fd < 0)
			usleep(1000);
	}
	return NULL;
}

static int add_balloon(struct vmm_config *cfg, struct ram_probe *p)
{
	int ret = virtio_balloon_create(&cfg->devices[cfg->nr_devices]);

	if (ret == 0)
		cfg->nr_devices++;
	p->fd = -1;
	if (ret == 0 && pthread_create(&p->thread, NULL, find_ram, p))
		ret = -EAGAIN;
	return ret;
}

/* One line per page: "hole" (released to the host) or "data" with its first 8 bytes. */
static void balloon_report(struct ram_probe *p, const char *spec)
{
	char *end;
	unsigned long long gpa = strtoull(spec, &end, 0), pages = *end == ',' ? strtoull(end + 1, NULL, 0) : 0;

	pthread_join(p->thread, NULL);
	if (p->fd < 0) {
		fprintf(stderr, "host: guest RAM memfd not found\n");
		return;
	}
	for (unsigned long long i = 0; i < pages; i++) {
		off_t off = (off_t)(gpa + i * 4096), data = lseek(p->fd, off, SEEK_DATA);
		uint64_t v = 0;

		if (data != off)
			fprintf(stderr, "host: ram page 0x%llx: hole\n", (unsigned long long)off);
		else if (pread(p->fd, &v, sizeof(v), off) == (ssize_t)sizeof(v))
			fprintf(stderr, "host: ram page 0x%llx: data 0x%016llx\n", (unsigned long long)off,
				(unsigned long long)v);
	}
	close(p->fd);
}

/* The console on stdout; with port ("NAME=FILE") a named port too (multiport, virtio 1.2 5.3.6). */
static int add_console(struct vmm_config *cfg, int null_fd, const char *port)
{
	struct console_config cc = { .in_fd = null_fd, .out_fd = STDOUT_FILENO };
	char name[CONSOLE_NAME_MAX];
	const char *eq = port ? strchr(port, '=') : NULL;
	int fd = -1, ret;

	if (eq) {
		snprintf(name, sizeof(name), "%.*s", (int)(eq - port), port);
		fd = open(eq + 1, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		cc.nr_ports = 1;
		cc.ports[0] = (struct console_port_config){ .name = name, .fd = fd, .dir = CONSOLE_FROM_GUEST };
	}
	ret = virtio_console_create(&cc, &cfg->devices[0]);
	if (fd >= 0)
		close(fd);
	return ret;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "kernel", required_argument, 0, 'k' }, { "cmdline", required_argument, 0, 'c' },
		{ "cpus", required_argument, 0, 'n' }, { "ram", required_argument, 0, 'm' },
		{ "fs", required_argument, 0, 'f' }, { "linux", no_argument, 0, 'l' },
		{ "log", required_argument, 0, 'v' }, { "shutdown-after", required_argument, 0, 's' },
		{ "balloon", optional_argument, 0, 'b' }, { "port", required_argument, 0, 'p' },
		{ "seccomp", required_argument, 0, 'S' },
		{ 0, 0, 0, 0 },
	};
	int c;

	*o = (struct opts){ .cmdline = "", .cpus = 1, .ram_mib = 64 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': o->kernel = optarg; break;
		case 'c': o->cmdline = optarg; break;
		case 'n': o->cpus = (unsigned int)atoi(optarg); break;
		case 'm': o->ram_mib = strtoul(optarg, NULL, 0); break;
		case 'f': o->fs_dir = optarg; break;
		case 'l': o->linux_guest = true; break;
		case 's': o->shutdown_ms = (unsigned int)atoi(optarg); break;
		case 'v': log_set_level((enum log_level)atoi(optarg)); break;
		case 'b': o->balloon = optarg ? optarg : ""; break;
		case 'p': o->port = optarg; break;
		case 'S':
			setenv("KRUN_SECCOMP", optarg, 1);
			o->seccomp = seccomp_resolve(SECCOMP_LEVEL_ENV);
			if (o->seccomp < 0)
				return -1;
			break;
		default: return -1;
		}
	}
	return o->kernel ? 0 : -1;
}

static int verdict(int ret, const struct vmm_result *res)
{
	fprintf(stderr, "host: vmm_run=%d (%s) status=%d first-instruction=%.0fus total=%.1fms\n",
		ret, ret ? strerror(-ret) : "ok", res->test_status, res->first_insn_ns / 1e3,
		res->total_ns / 1e6);
	if (res->needs_reset_mask)
		fprintf(stderr, "host: devices left in DEVICE_NEEDS_RESET: mask 0x%x\n", res->needs_reset_mask);
	if (ret == -EFAULT)
		return 70;
	if (ret == -EINTR)
		return 130;
	if (ret)
		return 71;
	if (res->test_status < 0) {
		fprintf(stderr, "host: guest ended without reporting a status (reset or triple fault)\n");
		return KRUN_STATUS_NO_REPORT;
	}
	return res->test_status;
}

int main(int argc, char **argv)
{
	struct vmm_config cfg;
	struct vmm_result res;
	struct opts o;
	int fs_status = -1, null_fd, ret;
	struct ram_probe probe;

	if (parse(argc, argv, &o)) {
		fprintf(stderr, "usage: %s --kernel FILE [--cmdline S] [--cpus N] [--ram MIB] [--fs DIR]"
			" [--linux] [--log LEVEL] [--shutdown-after MS] [--balloon[=GPA,PAGES]]"
			" [--port NAME=FILE] [--seccomp=off|log|on]\n", argv[0]);
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg = (struct vmm_config){ .vcpus = o.cpus, .ram_bytes = (uint64_t)o.ram_mib << 20,
		.cmdline = o.cmdline, .shutdown_eventfd = -1, .linux_guest = o.linux_guest,
		.seccomp_mode = o.seccomp,
		.kernel = { .source = VMM_KERNEL_FILE, .path = o.kernel, .format = 1 } };
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ret = add_console(&cfg, null_fd, o.port);
	if (ret == 0)
		cfg.nr_devices = 1;
	if (ret == 0 && o.fs_dir)
		ret = add_fs(&cfg, o.fs_dir, &fs_status);
	if (ret == 0 && o.balloon)
		ret = add_balloon(&cfg, &probe);
	if (ret) {
		fprintf(stderr, "host: device setup failed: %s\n", strerror(-ret));
		return 71;
	}
	if (o.shutdown_ms) {
		static struct shutdown_timer timer;
		pthread_t t;
		timer = (struct shutdown_timer){ .fd = eventfd(0, EFD_CLOEXEC), .ms = o.shutdown_ms };
		cfg.shutdown_eventfd = timer.fd;
		if (timer.fd < 0 || pthread_create(&t, NULL, shutdown_later, &timer))
			return 71;
		pthread_detach(t);
	}
	ret = vmm_run_ex(&cfg, &res);
	if (o.balloon)
		balloon_report(&probe, o.balloon);
	close(null_fd);
	if (o.fs_dir)
		fprintf(stderr, "host: exit file status=%d\n", fs_status);
	return verdict(ret, &res);
}
