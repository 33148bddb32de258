/* krun_* calls for the machine: vCPUs, RAM, kernel, credentials, console and shutdown. */
#include "api/api.h"
#include "api/ctx.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MODULE "api"
#include "util/log.h"

/* x86 Linux reads at most this much command line (COMMAND_LINE_SIZE). */
#define KERNEL_CMDLINE_MAX 2048

static uint64_t host_ram_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || page <= 0)
		return UINT32_MAX;
	return (uint64_t)pages * (uint64_t)page >> 20;
}

int32_t krun_set_vm_config(uint32_t ctx_id, uint8_t num_vcpus, uint32_t ram_mib)
{
	struct krun_ctx *c;

	if (num_vcpus < 1 || num_vcpus > VMM_MAX_VCPUS)
		return -EINVAL;
	/* Less cannot boot a kernel; more than the host has is a mistake, not overcommit. */
	if (ram_mib < CTX_MIN_RAM_MIB || ram_mib > host_ram_mib())
		return -EINVAL;
	c = ctx_lock(ctx_id);
	if (!c)
		return -ENOENT;
	c->vcpus = num_vcpus;
	c->ram_mib = ram_mib;
	ctx_unlock();
	return 0;
}

/* A host file that must exist and be regular; *out is its canonical path. */
static int regular_file(const char *path, char **out)
{
	struct stat st;

	if (!path || !*path)
		return -EINVAL;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*out = realpath(path, NULL);
	return *out ? 0 : -errno;
}

static int kernel_format_ok(uint32_t format)
{
	if (format == KRUN_KERNEL_FORMAT_RAW || format == KRUN_KERNEL_FORMAT_ELF)
		return 0;
	if (format <= KRUN_KERNEL_FORMAT_IMAGE_ZSTD)
		return -ENOTSUP;
	return -EINVAL;
}

static void set_kernel_locked(struct krun_ctx *c, char **path, uint32_t format, char **initrd,
			      char **cmdline)
{
	free(c->kernel_path);
	free(c->initrd_path);
	free(c->kernel_cmdline);
	c->kernel_path = *path;
	c->kernel_format = format;
	c->initrd_path = *initrd;
	c->kernel_cmdline = *cmdline;
	*path = *initrd = *cmdline = NULL;
}

int32_t krun_set_kernel(uint32_t ctx_id, const char *kernel_path, uint32_t kernel_format,
			const char *initramfs, const char *cmdline)
{
	char *path = NULL, *initrd = NULL, *line = NULL;
	struct krun_ctx *c;
	int ret = kernel_format_ok(kernel_format);

	if (!ret)
		ret = regular_file(kernel_path, &path);
	if (!ret && initramfs)
		ret = regular_file(initramfs, &initrd);
	if (!ret && cmdline) {
		if (!*cmdline || strlen(cmdline) >= KERNEL_CMDLINE_MAX)
			ret = -EINVAL;
		else if (!(line = strdup(cmdline)))
			ret = -ENOMEM;
	}
	if (!ret) {
		c = ctx_lock(ctx_id);
		if (c) {
			set_kernel_locked(c, &path, kernel_format, &initrd, &line);
			ctx_unlock();
		} else {
			ret = -ENOENT;
		}
	}
	free(path);
	free(initrd);
	free(line);
	return ret;
}

int32_t krun_setuid(uint32_t ctx_id, uid_t uid)
{
	struct krun_ctx *c = ctx_lock(ctx_id);

	if (!c)
		return -ENOENT;
	c->uid = uid;
	c->has_uid = true;
	ctx_unlock();
	return 0;
}

int32_t krun_setgid(uint32_t ctx_id, gid_t gid)
{
	struct krun_ctx *c = ctx_lock(ctx_id);

	if (!c)
		return -ENOENT;
	c->gid = gid;
	c->has_gid = true;
	ctx_unlock();
	return 0;
}

int32_t krun_split_irqchip(uint32_t ctx_id, bool enable)
{
	struct krun_ctx *c = ctx_lock(ctx_id);

	if (!c)
		return -ENOENT;
	ctx_unlock();
	/* The VMM uses KVM's full in-kernel irqchip; a userspace IOAPIC is not implemented. */
	return enable ? -ENOTSUP : 0;
}

int32_t krun_set_gpu_options2(uint32_t ctx_id, uint32_t virgl_flags, uint64_t shm_size)
{
	struct krun_ctx *c = ctx_lock(ctx_id);

	if (!c)
		return -ENOENT;
	/* Kept for introspection only: clients set GPU options unconditionally. */
	c->gpu_virgl_flags = virgl_flags;
	c->gpu_shm_size = shm_size;
	ctx_unlock();
	log_debug("ctx %u: GPU options stored, no GPU device in this build", ctx_id);
	return 0;
}

int32_t krun_set_gpu_options(uint32_t ctx_id, uint32_t virgl_flags)
{
	return krun_set_gpu_options2(ctx_id, virgl_flags, 0);
}

int32_t krun_set_console_output(uint32_t ctx_id, const char *c_filepath)
{
	struct krun_ctx *c;
	char *copy;
	int ret = 0;

	if (!c_filepath || !*c_filepath)
		return -EINVAL;
	copy = strdup(c_filepath);
	if (!copy)
		return -ENOMEM;
	c = ctx_lock(ctx_id);
	if (!c) {
		free(copy);
		return -ENOENT;
	}
	if (c->console_output)
		ret = -EINVAL;
	else
		c->console_output = copy;
	ctx_unlock();
	if (ret)
		free(copy);
	return ret;
}

int32_t krun_get_shutdown_eventfd(uint32_t ctx_id)
{
	struct krun_ctx *c = ctx_lock(ctx_id);
	int ret;

	if (!c)
		return -ENOENT;
	/* Created on demand: a context that never asks for it holds no descriptor. */
	if (c->shutdown_efd < 0)
		c->shutdown_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ret = c->shutdown_efd >= 0 ? c->shutdown_efd : -errno;
	ctx_unlock();
	return ret;
}
