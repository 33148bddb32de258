/* tcg_vm: the private socket dir, the QEMU microvm command line, and our vhost-user-fs backends. */
#include "tcg_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/launch.h"
#include "devices/fs/fs.h"
#include "devices/fs/virtio_fs.h"
#include "util/evloop.h"
#include "virtio/device.h"
#include "virtio/vhost_user.h"
#include "vmm/seccomp.h"

/* QEMU connects every chardev at startup; a loaded machine may take a while to get there. */
#define CONNECT_TIMEOUT_MS 60000
#define KILL_GRACE_MS 3000
/* virtio-fs queue size QEMU offers the guest (QEMU caps it at 1024). */
#define FS_QUEUE_SIZE 1024

static const char *const stream_sock[TVM_NR_STREAMS] = { "con", "stdin", "stdout", "stderr" };
static const char *const stream_port[TVM_NR_STREAMS] = {
	NULL, "krun-stdin", "krun-stdout", "krun-stderr",
};

void tcg_vm_path(const struct tcg_vm *t, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", t->dir, name);
}

/* Socket paths must fit sun_path (108 bytes): fall back to /tmp for a long TMPDIR. */
static int make_dir(struct tcg_vm *t)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	snprintf(t->dir, sizeof(t->dir), "%s/tcg_vm.XXXXXX", tmp);
	if (!mkdtemp(t->dir)) {
		t->dir[0] = '\0';
		return -errno;
	}
	return 0;
}

static int listen_at(struct tcg_vm *t, const char *name)
{
	char path[PATH_MAX];

	tcg_vm_path(t, name, path, sizeof(path));
	return vhost_user_listen(path);
}

/* The FUSE server and virtio-fs device for each share exist before QEMU starts. */
static int make_fs_devices(struct tcg_vm *t)
{
	t->nr_fs = t->spec->nr_shares;
	t->fs = calloc(t->nr_fs, sizeof(*t->fs));
	if (!t->fs)
		return -ENOMEM;
	for (unsigned int i = 0; i < t->nr_fs; i++)
		t->fs[i].listen_fd = -1;
	for (unsigned int i = 0; i < t->nr_fs; i++) {
		struct fs *fs;
		char name[32];
		int ret = launch_create_fs(t->spec, i, &fs);

		if (ret) {
			fprintf(stderr, "tcg_vm: cannot serve %s: %s\n", t->spec->shares[i].host_path,
				strerror(-ret));
			return ret;
		}
		ret = virtio_fs_create(t->spec->shares[i].tag, fs, 1, &t->fs[i].dev);
		if (ret) {
			fs_destroy(fs);
			return ret;
		}
		snprintf(name, sizeof(name), "fs%u", i);
		t->fs[i].listen_fd = listen_at(t, name);
		if (t->fs[i].listen_fd < 0)
			return t->fs[i].listen_fd;
	}
	return 0;
}

int tcg_vm_qemu_prepare(struct tcg_vm *t)
{
	int ret = make_dir(t);

	if (ret)
		return ret;
	for (int s = 0; s < TVM_NR_STREAMS; s++) {
		if (!t->stream_used[s])
			continue;
		t->stream_listen[s] = listen_at(t, stream_sock[s]);
		if (t->stream_listen[s] < 0)
			return t->stream_listen[s];
	}
	if (getenv("KRUN_SERIAL_LOG") && *getenv("KRUN_SERIAL_LOG"))
		snprintf(t->serial_log, sizeof(t->serial_log), "%s", getenv("KRUN_SERIAL_LOG"));
	else if (t->debug)
		snprintf(t->serial_log, sizeof(t->serial_log), "/tmp/tcg_vm.%d.serial.log", (int)getpid());
	ret = make_fs_devices(t);
	return ret ? ret : tcg_vm_vsock_prepare(t);
}

/* A growable argv of our own strings. */
struct args {
	char **v;
	size_t n, cap;
	bool oom;
};

static void add(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct args *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		char **v = realloc(a->v, (a->cap * 2 + 16) * sizeof(*v));
		if (!v) {
			a->oom = true;
			return;
		}
		a->v = v;
		a->cap = a->cap * 2 + 16;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		a->oom = true;
	else
		a->v[a->n++] = s;
	va_end(ap);
	a->v[a->n] = NULL;
}

static void free_args(struct args *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
}

/* QEMU's option parser splits on ',': a literal comma is written ",,". */
static char *qemu_escape(const char *s)
{
	char *out = malloc(strlen(s) * 2 + 1), *p = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		*p++ = *s;
		if (*s == ',')
			*p++ = ',';
	}
	*p = '\0';
	return out;
}

/* "-chardev socket,id=ID,path=PATH" for a socket in our temp dir. */
static void add_socket_chardev(struct tcg_vm *t, struct args *a, const char *id)
{
	char path[PATH_MAX], *esc;

	tcg_vm_path(t, id, path, sizeof(path));
	esc = qemu_escape(path);
	if (!esc) {
		a->oom = true;
		return;
	}
	add(a, "-chardev");
	add(a, "socket,id=%s,path=%s", id, esc);
	free(esc);
}

/*
 * max_ports = the ports we attach. QEMU's default of 31 makes the guest driver set up a
 * receive and a transmit queue for every possible port, and QEMU's virtio-mmio offers each
 * 1024 entries: 54 unused rings, about 3.4 MiB of guest RAM and slab per VM (measured).
 */
static void add_streams(struct tcg_vm *t, struct args *a)
{
	unsigned int ports = 0;

	for (int s = 0; s < TVM_NR_STREAMS; s++)
		ports += t->stream_used[s];
	add(a, "-device");
	add(a, "virtio-serial-device,max_ports=%u", ports);
	for (int s = 0; s < TVM_NR_STREAMS; s++) {
		if (!t->stream_used[s])
			continue;
		add_socket_chardev(t, a, stream_sock[s]);
		add(a, "-device");
		if (s == TVM_CONSOLE)
			add(a, "virtconsole,chardev=%s", stream_sock[s]);
		else
			add(a, "virtserialport,chardev=%s,name=%s", stream_sock[s], stream_port[s]);
	}
}

static void add_shares(struct tcg_vm *t, struct args *a)
{
	char name[32];

	for (unsigned int i = 0; i < t->nr_fs; i++) {
		char *tag = qemu_escape(t->spec->shares[i].tag);

		snprintf(name, sizeof(name), "fs%u", i);
		add_socket_chardev(t, a, name);
		add(a, "-device");
		add(a, "vhost-user-fs-device,chardev=%s,tag=%s,queue-size=%u", name, tag ? tag : "",
		    FS_QUEUE_SIZE);
		free(tag);
	}
}

static void add_vsock(struct tcg_vm *t, struct args *a)
{
	if (!t->use_vsock)
		return;
	add_socket_chardev(t, a, "vsock");
	add(a, "-device");
	add(a, "vhost-user-vsock-device,chardev=vsock");
}

/*
 * Free page reporting: the guest hands back RAM it freed, QEMU punches it out of the memfd, so
 * the host footprint follows the guest's use as our own balloon makes it do on hardware KVM.
 */
static void add_balloon(struct args *a)
{
	const char *env = getenv("KRUN_TCG_BALLOON");

	if (env && strcmp(env, "0") == 0)
		return;
	add(a, "-device");
	add(a, "virtio-balloon-device,free-page-reporting=on");
}

static void build_argv(struct tcg_vm *t, struct args *a)
{
	const char *extra = getenv("KRUN_KERNEL_ARGS");
	unsigned long tsc_khz = tcg_vm_tsc_khz();
	char tsc[40] = "";
	const char *qemu = getenv("KRUN_QEMU");
	uint64_t mib = t->spec->ram_bytes >> 20;

	add(a, "%s", qemu && *qemu ? qemu : "qemu-system-x86_64");
	add(a, "-accel");
	add(a, "tcg");
	add(a, "-cpu");
	add(a, "max");
	/*
	 * acpi=off: QEMU then puts virtio_mmio.device= entries on the kernel command line. rtc=on:
	 * without kvmclock the kernel reads the wall clock from the CMOS RTC and, finding none,
	 * spins for its 1 s timeout (a real second once the TSC is calibrated, see tcg_vm_clock.c).
	 */
	add(a, "-M");
	add(a, "microvm,x-option-roms=off,rtc=on,isa-serial=on,acpi=off,memory-backend=mem");
	/* QEMU's virtio-mmio is legacy (0.9.5) unless told otherwise; virtio-fs needs 1.x. */
	add(a, "-global");
	add(a, "virtio-mmio.force-legacy=false");
	add(a, "-smp");
	add(a, "%u", t->spec->vcpus);
	add(a, "-m");
	add(a, "%lluM", (unsigned long long)mib);
	/* vhost-user backends map guest RAM: it must be a shareable fd. */
	add(a, "-object");
	add(a, "memory-backend-memfd,id=mem,size=%lluM,share=on", (unsigned long long)mib);
	add(a, "-nodefaults");
	add(a, "-no-user-config");
	add(a, "-display");
	add(a, "none");
	add(a, "-no-reboot");
	add(a, "-kernel");
	add(a, "%s", t->vmlinux);
	add(a, "-append");
	/*
	 * hvc0 last: it is /dev/console. ttyS0 mirrors kernel messages into the log file; the
	 * log level is global, so only KRUN_DEBUG makes them verbose (hvc0 gets them too).
	 */
	if (tsc_khz)
		snprintf(tsc, sizeof(tsc), " tsc_early_khz=%lu", tsc_khz);
	add(a, "%s%s%s%s%s%s console=hvc0", t->spec->cmdline, tsc, t->serial_log[0] ? " console=ttyS0" : "",
	    t->debug ? " ignore_loglevel" : "", extra && *extra ? " " : "", extra ? extra : "");
	if (t->serial_log[0]) {
		char *log = qemu_escape(t->serial_log);

		add(a, "-chardev");
		add(a, "file,id=serial0,path=%s", log ? log : "/dev/null");
		free(log);
		add(a, "-serial");
		add(a, "chardev:serial0");
	}
	add_streams(t, a);
	add_shares(t, a);
	add_vsock(t, a);
	add_balloon(a);
}

static void print_command(const struct args *a)
{
	fprintf(stderr, "tcg_vm: running");
	for (size_t i = 0; i < a->n; i++)
		fprintf(stderr, strpbrk(a->v[i], " \"'$") ? " '%s'" : " %s", a->v[i]);
	fprintf(stderr, "\n");
}

/* In the child: own process group (terminal signals are ours to forward), output to a log. */
static void child_exec(struct tcg_vm *t, char **argv)
{
	char log[PATH_MAX];
	sigset_t none;
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC), fd;

	tcg_vm_path(t, "qemu.log", log, sizeof(log));
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (null < 0 || fd < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(126);
	execvp(argv[0], argv);
	fprintf(stderr, "tcg_vm: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int tcg_vm_qemu_spawn(struct tcg_vm *t)
{
	struct args a = { .n = 0 };
	int ret = 0;

	build_argv(t, &a);
	if (a.oom) {
		free_args(&a);
		return -ENOMEM;
	}
	if (t->debug)
		print_command(&a);
	t->qemu = fork();
	if (t->qemu == 0)
		child_exec(t, a.v);
	if (t->qemu < 0)
		ret = -errno;
	free_args(&a);
	return ret;
}

static bool qemu_alive(struct tcg_vm *t)
{
	int status;

	if (t->qemu_status != -1)
		return false;
	if (waitpid(t->qemu, &status, WNOHANG) == t->qemu) {
		t->qemu_status = status;
		return false;
	}
	return true;
}

/* Accept on fd in slices, giving up as soon as QEMU is gone. */
static int accept_from_qemu(struct tcg_vm *t, int listen_fd)
{
	for (int waited = 0; waited < CONNECT_TIMEOUT_MS; waited += 100) {
		int fd = vhost_user_accept(listen_fd, 100);

		if (fd != -ETIMEDOUT)
			return fd;
		if (!qemu_alive(t))
			return -ECHILD;
	}
	return -ETIMEDOUT;
}

static void *loop_thread(void *arg)
{
	/* The backends run under the VMM's allow-list (KRUN_SECCOMP, docs/security.md). */
	if (seccomp_apply_thread(SECCOMP_LEVEL_ENV) == 0)
		evloop_run(arg);
	else
		kill(getpid(), SIGTERM);        /* to the main thread's signalfd: stop, exit 143 */
	return NULL;
}

/*
 * One event loop and thread per backend: shares never wait on each other's requests. A
 * backend that needs its loop earlier (the vsock one: the TSI proxy runs on it) brings it.
 */
static int start_backend(struct tcg_vm *t, struct tcg_vm_fs *f)
{
	int fd = accept_from_qemu(t, f->listen_fd), ret;

	if (fd < 0)
		return fd;
	if (!f->loop)
		f->loop = evloop_create();
	if (!f->loop) {
		close(fd);
		return -ENOMEM;
	}
	ret = vhost_user_create(f->dev, f->loop, fd, &f->vu);
	if (ret) {
		close(fd);
		return ret;
	}
	f->dev = NULL;
	ret = pthread_create(&f->thread, NULL, loop_thread, f->loop);
	if (ret)
		return -ret;
	f->running = true;
	return 0;
}

int tcg_vm_qemu_connect(struct tcg_vm *t)
{
	int ret;

	for (int s = 0; s < TVM_NR_STREAMS; s++) {
		if (!t->stream_used[s])
			continue;
		t->stream_fd[s] = accept_from_qemu(t, t->stream_listen[s]);
		if (t->stream_fd[s] < 0)
			return t->stream_fd[s];
		fcntl(t->stream_fd[s], F_SETFL, fcntl(t->stream_fd[s], F_GETFL) | O_NONBLOCK);
	}
	for (unsigned int i = 0; i < t->nr_fs; i++) {
		ret = start_backend(t, &t->fs[i]);
		if (ret)
			return ret;
	}
	return t->use_vsock ? start_backend(t, &t->vsock) : 0;
}

void tcg_vm_qemu_kill(struct tcg_vm *t)
{
	struct timespec ms = { .tv_nsec = 10 * 1000 * 1000 };

	if (t->qemu <= 0 || !qemu_alive(t))
		return;
	kill(t->qemu, SIGTERM);
	for (int waited = 0; waited < KILL_GRACE_MS && qemu_alive(t); waited += 10)
		nanosleep(&ms, NULL);
	if (qemu_alive(t)) {
		kill(t->qemu, SIGKILL);
		waitpid(t->qemu, &t->qemu_status, 0);
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void remove_file(const struct tcg_vm *t, const char *name)
{
	char path[PATH_MAX];

	tcg_vm_path(t, name, path, sizeof(path));
	unlink(path);
}

static void stop_backend(struct tcg_vm_fs *f)
{
	if (f->running) {
		evloop_stop(f->loop);
		pthread_join(f->thread, NULL);
	}
	f->running = false;
	vhost_user_destroy(f->vu);
	virtio_dev_destroy(f->dev);
	evloop_destroy(f->loop);
	f->vu = NULL;
	f->dev = NULL;
	f->loop = NULL;
	close_fd(&f->listen_fd);
}

static void stop_backends(struct tcg_vm *t)
{
	char name[32];

	for (unsigned int i = 0; t->fs && i < t->nr_fs; i++) {
		stop_backend(&t->fs[i]);
		snprintf(name, sizeof(name), "fs%u", i);
		remove_file(t, name);
	}
	free(t->fs);
	t->fs = NULL;
	if (t->use_vsock) {
		stop_backend(&t->vsock);
		remove_file(t, "vsock");
	}
}

void tcg_vm_qemu_cleanup(struct tcg_vm *t)
{
	stop_backends(t);
	for (int s = 0; s < TVM_NR_STREAMS; s++) {
		close_fd(&t->stream_listen[s]);
		close_fd(&t->stream_fd[s]);
		remove_file(t, stream_sock[s]);
	}
	if (t->dir[0]) {
		remove_file(t, "qemu.log");
		rmdir(t->dir);
		t->dir[0] = '\0';
	}
}

void tcg_vm_qemu_dump_devices(const struct tcg_vm *t)
{
	for (unsigned int i = 0; t->fs && i < t->nr_fs; i++)
		if (t->fs[i].vu && !vhost_user_closed(t->fs[i].vu))
			vhost_user_dump(t->fs[i].vu);
	if (t->vsock.vu && !vhost_user_closed(t->vsock.vu))
		vhost_user_dump(t->vsock.vu);
}

void tcg_vm_qemu_print_log(const struct tcg_vm *t)
{
	char path[PATH_MAX], buf[4096];
	FILE *f;
	long size;
	size_t n;

	tcg_vm_path(t, "qemu.log", path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > (long)sizeof(buf) ? size - (long)sizeof(buf) : 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n) {
		fprintf(stderr, "tcg_vm: QEMU said:\n");
		fwrite(buf, 1, n, stderr);
	}
}
