/* krun_start_enter: a context becomes devices, a VM, and finally the process's exit status. */
#include "api/api.h"
#include "api/ctx.h"
#include "api/launch_priv.h"
#include "common/krun_init.h"
#include "devices/balloon.h"
#include "devices/console.h"
#include "devices/fs/virtio_fs.h"
#include "virtio/device.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LOG_MODULE "start"
#include "util/log.h"

static bool env_true(const char *name)
{
	const char *v = getenv(name);

	return v && !strcmp(v, "1");
}

/* Fail in a second with a reason instead of letting the guest crawl and crash for minutes. */
static int check_host(const struct launch_spec *spec, bool allow_pvm)
{
	if (spec->kernel.source == VMM_KERNEL_FLAT && !spec->kernel.image) {
		log_error("no guest kernel: libkrunfw.so.5 was not found (set KRUN_LIBKRUNFW to "
			  "its path) and krun_set_kernel was not called");
		return -ENOENT;
	}
	if (!allow_pvm && vmm_kvm_is_pvm()) {
		log_error("/dev/kvm is PVM (software nested virtualization): a Linux guest cannot "
			  "run on it; use a host with hardware KVM, or tcg_vm, or set "
			  "KRUN_ALLOW_PVM=1 to try anyway");
		return -ENOTSUP;
	}
	return 0;
}

/* krun_setgid/krun_setuid: drop privileges once the configuration is resolved (gid first). */
static int drop_privileges(const struct krun_ctx *c)
{
	int ret;

	if (c->has_gid && setgid(c->gid) < 0) {
		ret = -errno;
		log_error("setgid(%u): %s", (unsigned int)c->gid, strerror(-ret));
		return ret;
	}
	if (c->has_uid && setuid(c->uid) < 0) {
		ret = -errno;
		log_error("setuid(%u): %s", (unsigned int)c->uid, strerror(-ret));
		return ret;
	}
	return 0;
}

/*
 * The console (krun_init.h, "Standard streams"): each of fds 0/1/2 that is a terminal goes
 * through port 0 (hvc0); each that is not gets its own named port, a byte-exact stream with
 * EOF. Port 0 writes to stdout if that is a terminal, else to stderr (kernel and init messages
 * stay out of a piped stdout), or to the krun_set_console_output file, which also takes the
 * console's input away (as before).
 */
/*
 * The reader of the program's stdout or stderr left (`... | head -c1`): end the run as the
 * program would have ended locally, killed by SIGPIPE, by stopping the VM.
 */
static void output_closed(void *opaque)
{
	struct launch_spec *spec = opaque;
	int unset = -1;
	uint64_t one = 1;

	__atomic_compare_exchange_n(&spec->exit_status, &unset, 128 + SIGPIPE, false,
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	if (write(spec->shutdown_eventfd, &one, sizeof(one)) < 0)
		log_warn("cannot stop the VM after the output reader left: %s", strerror(errno));
}

static int add_console(struct launch_spec *spec, struct vmm_config *cfg)
{
	static const char *const names[3] = { KRUN_PORT_STDIN, KRUN_PORT_STDOUT, KRUN_PORT_STDERR };
	struct console_config cc = { .in_fd = -1, .out_fd = -1, .output_closed = output_closed,
				     .opaque = spec };
	int ret, file = -1;

	for (int fd = 0; fd < 3; fd++) {
		if (isatty(fd) || fcntl(fd, F_GETFD) < 0)     /* a terminal, or closed */
			continue;
		cc.ports[cc.nr_ports++] = (struct console_port_config){ .name = names[fd], .fd = fd,
			.dir = fd == STDIN_FILENO ? CONSOLE_TO_GUEST : CONSOLE_FROM_GUEST };
	}
	if (spec->console_output) {
		file = open(spec->console_output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (file < 0) {
			ret = -errno;
			log_error("console output %s: %s", spec->console_output, strerror(-ret));
			return ret;
		}
		cc.out_fd = file;
	} else {
		cc.in_fd = isatty(STDIN_FILENO) ? STDIN_FILENO : -1;
		cc.out_fd = isatty(STDOUT_FILENO) ? STDOUT_FILENO :
			    fcntl(STDERR_FILENO, F_GETFD) >= 0 ? STDERR_FILENO : -1;
	}
	ret = virtio_console_create(&cc, &cfg->devices[cfg->nr_devices++]);
	/* The device works on its own descriptions; the file's descriptor is ours to close. */
	if (file >= 0)
		close(file);
	return ret;
}

static int add_share(struct launch_spec *spec, unsigned int i, struct vmm_config *cfg)
{
	struct fs *fs;
	int ret = launch_create_fs(spec, i, &fs);

	if (ret) {
		log_error("share %s (%s): %s", spec->shares[i].tag, spec->shares[i].host_path,
			  strerror(-ret));
		return ret;
	}
	/* The device owns fs from success on; on failure it is still ours. */
	ret = virtio_fs_create(spec->shares[i].tag, fs, 1, &cfg->devices[cfg->nr_devices++]);
	if (ret)
		fs_destroy(fs);
	return ret;
}

/*
 * virtio-vsock with the krun_add_vsock_port2 pairings and the TSI proxy (the guest's
 * networking). Always present, as in public libkrun.
 */
static int add_vsock(const struct launch_spec *spec, struct vmm_config *cfg)
{
	int ret = cfg->nr_devices < VMM_MAX_DEVICES ?
		  launch_create_vsock(spec, NULL, &cfg->devices[cfg->nr_devices]) : -E2BIG;

	if (!ret)
		cfg->nr_devices++;
	else
		log_error("vsock device: %s", strerror(-ret));
	return ret;
}

/* Free page reporting (virtio-balloon): guest-freed RAM goes back to the host. Last in the list
 * so it never moves the other devices' addresses; optional when every device slot is taken. */
static int add_balloon(struct vmm_config *cfg)
{
	if (cfg->nr_devices >= VMM_MAX_DEVICES) {
		log_info("no device slot left for the balloon: guest RAM is not given back when freed");
		return 0;
	}
	return virtio_balloon_create(&cfg->devices[cfg->nr_devices++]);
}

static int add_devices(struct launch_spec *spec, struct vmm_config *cfg)
{
	unsigned int i;
	int ret;

	if (1 + spec->nr_shares > VMM_MAX_DEVICES) {
		log_error("too many shares (%u)", spec->nr_shares);
		return -E2BIG;
	}
	ret = add_console(spec, cfg);
	for (i = 0; i < spec->nr_shares && !ret; i++)
		ret = add_share(spec, i, cfg);
	if (!ret)
		ret = add_vsock(spec, cfg);
	if (!ret)
		ret = add_balloon(cfg);
	return ret;
}

static void destroy_devices(struct vmm_config *cfg)
{
	unsigned int i;

	for (i = 0; i < cfg->nr_devices; i++)
		if (cfg->devices[i])
			virtio_dev_destroy(cfg->devices[i]);
	cfg->nr_devices = 0;
}

static void fill_config(const struct launch_spec *spec, bool allow_pvm, struct vmm_config *cfg)
{
	cfg->vcpus = spec->vcpus;
	cfg->ram_bytes = spec->ram_bytes;
	cfg->kernel = spec->kernel;
	cfg->cmdline = spec->cmdline;
	cfg->shutdown_eventfd = spec->shutdown_eventfd;
	cfg->allow_pvm = allow_pvm;
	cfg->linux_guest = true;
}

/* Everything up to vmm_run; on failure nothing is left behind but the spec. */
static int prepare(struct krun_ctx *c, struct launch_spec *spec, struct vmm_config *cfg)
{
	bool allow_pvm = env_true("KRUN_ALLOW_PVM");
	int ret = check_host(spec, allow_pvm);

	if (!ret)
		ret = drop_privileges(c);
	/*
	 * The process is the VM's from here on: a guest write past the caller's RLIMIT_FSIZE
	 * must fail with EFBIG in the guest, not kill the VMM with SIGXFSZ.
	 */
	if (!ret)
		signal(SIGXFSZ, SIG_IGN);
	/* The VMM's stop signal; devices use it too (see output_closed). */
	if (!ret && spec->shutdown_eventfd < 0) {
		spec->shutdown_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ret = spec->shutdown_eventfd < 0 ? -errno : 0;
	}
	if (!ret)
		ret = add_devices(spec, cfg);
	if (ret) {
		destroy_devices(cfg);
		return ret;
	}
	fill_config(spec, allow_pvm, cfg);
	return 0;
}

/* The guest ran (orderly end, host stop, or vCPU fault): exit with what it reported. */
static void __attribute__((noreturn)) finish(struct launch_spec *spec, int ret)
{
	int status = launch_exit_status(spec);

	if (ret)
		log_info("VM ended: %s; exit status %d", strerror(-ret), status);
	launch_spec_free(spec);
	exit(status);
}

int32_t krun_start_enter(uint32_t ctx_id)
{
	struct vmm_config cfg = { 0 };
	struct launch_spec *spec;
	struct krun_ctx *c = ctx_take(ctx_id);
	int ret, user_efd;

	if (!c)
		return -ENOENT;
	user_efd = c->shutdown_efd;
	ret = launch_spec_from(c, &spec);
	if (!ret) {
		ret = prepare(c, spec, &cfg);
		if (ret)
			launch_spec_free(spec);
	}
	/* The caller may write to its eventfd while the VM runs: close it only on failure. */
	ctx_destroy(c, !ret);
	if (ret)
		return ret;
	ret = vmm_run(&cfg);
	if (ret == 0 || ret == -EINTR || ret == -EFAULT)
		finish(spec, ret);
	log_error("could not start the VM: %s", strerror(-ret));
	launch_spec_free(spec);
	if (user_efd >= 0)
		close(user_efd);
	return ret;
}
