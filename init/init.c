/* Guest PID 1 (init.krun): mounts, reads the workload, runs it, reports its status, reboots. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/krun_init.h"
#include "config.h"
#include "log.h"
#include "mounts.h"
#include "oci.h"
#include "ports.h"
#include "supervise.h"
#include "tsi.h"

#define RECORDS_MAX (1u << 20)
#define OCI_MAX (16u << 20)

static const char *const default_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/",
	"TERM=xterm",
};

/* Never returns: the status goes to the host through KRUN_EXIT_PATH, then the VM ends. */
static void __attribute__((noreturn)) finish(int status)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d", status);
	int fd = open(KRUN_EXIT_PATH, O_WRONLY | O_CLOEXEC);
	bool written = fd >= 0 && write(fd, buf, (size_t)n) == n;

	if (fd >= 0)
		close(fd);
	/* Without the virtual file (an initramfs test boot) the console is the only channel. */
	if (!written || log_debug_on())
		log_error("exit status %d", status);
	sync();
	if (getpid() != 1)
		_exit(status);
	reboot(RB_AUTOBOOT);
	reboot(RB_POWER_OFF);
	/* PID 1 must not exit (kernel panic); nothing else is left to try. */
	for (;;)
		pause();
}

/* Whole file into a NUL-terminated heap buffer; -ENOENT when absent, -EFBIG over max. */
static int read_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 0, n = 0;
	char *buf = NULL;
	int err = 0;

	*out = NULL;    /* defined on every path, whatever errno holds */
	*len = 0;
	if (fd < 0)
		return -errno;
	/* Read to EOF: a virtual file's size from stat is not to be trusted. */
	while (!err) {
		if (n == cap) {
			if (cap > max) {
				err = -EFBIG;
				break;
			}
			cap = cap ? cap * 2 : 4096;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r == 0)
			break;
		if (r > 0)
			n += (size_t)r;
		else if (errno != EINTR)
			err = -errno;
	}
	close(fd);
	if (!err && n > max)
		err = -EFBIG;
	if (err) {
		free(buf);
		return err;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* The kernel gave init no console if the root lacked /dev/console; use our devtmpfs one. */
static void ensure_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int nfd = open("/dev/console", O_RDWR | O_NOCTTY);
		if (nfd < 0)
			nfd = open("/dev/null", O_RDWR);
		if (nfd >= 0 && nfd != fd) {
			dup2(nfd, fd);
			close(nfd);
		}
	}
}

static void load_config(struct config *c)
{
	char *buf;
	size_t len;
	const char *why;
	int r = read_file(KRUN_INIT_CONFIG_PATH, RECORDS_MAX, &buf, &len);

	if (r && r != -ENOENT) {
		log_error("cannot read %s: %s", KRUN_INIT_CONFIG_PATH, strerror(-r));
		finish(1);
	}
	if (!r) {
		r = config_parse_records(c, buf, len, &why);
		free(buf);
		if (r) {
			log_error("%s: %s: %s", KRUN_INIT_CONFIG_PATH, strerror(-r), why);
			finish(1);
		}
	}
	if (c->exec)
		return;
	r = read_file(KRUN_OCI_CONFIG_PATH, OCI_MAX, &buf, &len);
	if (r) {
		log_error("no program to run: no exec record in %s and %s: %s",
			  KRUN_INIT_CONFIG_PATH, KRUN_OCI_CONFIG_PATH, strerror(-r));
		finish(1);
	}
	struct config oci;
	config_init(&oci);
	r = oci_load(&oci, buf, len, &why);
	free(buf);
	if (r) {
		log_error("%s: %s", KRUN_OCI_CONFIG_PATH, why);
		finish(1);
	}
	config_merge(c, &oci);
	config_free(&oci);
}

static bool env_has(const struct config *c, const char *kv)
{
	size_t klen = (size_t)(strchr(kv, '=') - kv) + 1;

	for (size_t i = 0; i < c->envc; i++)
		if (!strncmp(c->env[i], kv, klen))
			return true;
	return false;
}

/* The program's environment: exactly what was asked, plus PATH/HOME/TERM if missing. */
static void complete_env(struct config *c)
{
	for (size_t i = 0; i < sizeof(default_env) / sizeof(default_env[0]); i++) {
		const char *kv = default_env[i];
		struct stat st;
		if (env_has(c, kv))
			continue;
		if (!strncmp(kv, "HOME=", 5) && (!c->has_uid || c->uid == 0) &&
		    stat("/root", &st) == 0 && S_ISDIR(st.st_mode))
			kv = "HOME=/root";
		if (config_strv_push(&c->env, &c->envc, kv)) {
			log_error("out of memory");
			finish(1);
		}
	}
}

/* Programs expect 127.0.0.1 to work; the kernel leaves lo down until someone raises it. */
static void loopback_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			log_debug("cannot bring lo up: %m");
	}
	close(fd);
}

/*
 * Free page reporting (virtio-balloon) hands the host only free blocks of at least
 * page_reporting_order: 4 MiB (pageblock order) by default in this kernel, so memory that
 * programs free in smaller pieces stays resident on the host. With 256 KiB (order 6), a guest
 * after 20 s of heap churn and 12 s idle left tcg_vm's tree at 149-158 MiB PSS against 218-226,
 * at the same CPU time (docs/startup.md). The balloon driver resets the value when it
 * registers, which it has done by now; the file is absent without page reporting.
 */
#define PAGE_REPORTING_ORDER 6

static void tune_page_reporting(void)
{
	static const char path[] = "/sys/module/page_reporting/parameters/page_reporting_order";

	if (access(path, F_OK) == 0 && sysfs_write_int(path, PAGE_REPORTING_ORDER))
		log_debug("%s: %m", path);
}

/* Without an RTC (or kvm-clock) the guest starts in 1970: take the host's time instead. */
static void set_clock(const struct config *cfg)
{
	struct timespec now;

	if (cfg->clock_sec <= 0 || clock_gettime(CLOCK_REALTIME, &now) || now.tv_sec >= cfg->clock_sec)
		return;
	now = (struct timespec){ .tv_sec = (time_t)cfg->clock_sec };
	if (clock_settime(CLOCK_REALTIME, &now))
		log_error("warning: setting the clock: %m");
}

int main(void)
{
	struct config cfg;
	int fds[3];
	const char *debug = getenv("KRUN_DEBUG");

	log_set_debug(debug && *debug && strcmp(debug, "0"));
	int r = mounts_system();
	ensure_stdio();
	if (r)
		finish(1);
	tune_page_reporting();
	config_init(&cfg);
	load_config(&cfg);
	if (cfg.hostname && sethostname(cfg.hostname, strlen(cfg.hostname)))
		log_error("warning: sethostname %s: %m", cfg.hostname);
	set_clock(&cfg);
	loopback_up();
	if (mounts_volumes(&cfg))
		finish(1);
	complete_env(&cfg);
	/* Before the ports open: the supervisor must not hold the program's streams. */
	tsi_start();
	ports_open(fds);
	int status = supervise_run(&cfg, cfg.env, fds);
	tsi_finish();   /* before everything left is stopped: the port-map relay too */
	supervise_stop_all();
	tsi_settle();   /* the stopped processes' last bytes reach the host (bounded) */
	finish(status);
}
