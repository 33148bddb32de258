/* vmm_run: build the VM from a struct vmm_config, run vCPU threads plus the I/O loop, tear down. */
#define LOG_MODULE "vmm"
#include "vmm/vmm.h"

#include <cpuid.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86_64/arch.h"
#include "arch/x86_64/layout.h"
#include "util/evloop.h"
#include "util/log.h"
#include "virtio/mmio.h"
#include "vmm/seccomp.h"
#include "vmm/vm.h"
#include "vmm/vmm_run.h"
#include "vmm/vmm_signal.h"

struct vmm_device {
	struct virtio_mmio *mmio;
	int irq_fd;
	uint64_t base;
	unsigned int irq;
};

struct vmm {
	struct vm vm;
	struct evloop *loop;
	struct vmm_device devs[VMM_MAX_DEVICES];
	unsigned int nr_devs;
	int sig_fd;
	char cmdline[LAYOUT_CMDLINE_MAX];
};

/*
 * Hardware KVM needs VMX (CPUID.1:ECX[5]) or SVM (CPUID.80000001h:ECX[2]) in the CPU this
 * process runs on (nested clouds expose them to their guests); PVM works without either.
 * CPUID needs no /sys or /proc, which a container may not have.
 */
static bool cpu_has_hw_virt(void)
{
	unsigned int a, b, c, d;

	if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 5)))
		return true;
	return __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 2));
}

bool vmm_kvm_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0 || !cpu_has_hw_virt();
}

static int check_config(const struct vmm_config *cfg)
{
	if (cfg->vcpus == 0 || cfg->vcpus > VMM_MAX_VCPUS || cfg->nr_devices > VMM_MAX_DEVICES ||
	    cfg->ram_bytes < (4ull << 20) || !cfg->cmdline)
		return -EINVAL;
	for (unsigned int i = 0; i < cfg->nr_devices; i++)
		if (!cfg->devices[i])
			return -EINVAL;
	if (cfg->linux_guest && !cfg->allow_pvm && vmm_kvm_is_pvm()) {
		log_error("/dev/kvm is PVM (software nested virtualization, /sys/module/kvm_pvm): "
			  "a Linux guest dies there on instructions its emulator lacks and crawls "
			  "otherwise; use hardware KVM or the TCG runner (KRUN_ALLOW_PVM=1 to try anyway)");
		return -ENOTSUP;
	}
	return 0;
}

static int dev_access(void *opaque, uint64_t off, void *data, unsigned int len, bool write)
{
	struct vmm_device *d = opaque;

	return write ? virtio_mmio_write(d->mmio, off, data, len) : virtio_mmio_read(d->mmio, off, data, len);
}

/* irqfd for the interrupt line, ioeventfd per queue (QueueNotify with the queue index as data). */
static int wire_kvm(struct vmm *s, struct vmm_device *d)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)d->irq_fd, .gsi = d->irq };

	if (ioctl(s->vm.vm_fd, KVM_IRQFD, &irqfd) < 0) {
		log_error("KVM_IRQFD: %s", strerror(errno));
		return -errno;
	}
	for (unsigned int q = 0; q < virtio_mmio_num_queues(d->mmio); q++) {
		struct kvm_ioeventfd io = {
			.datamatch = q, .addr = d->base + 0x50, .len = 4,
			.fd = virtio_mmio_notify_fd(d->mmio, q), .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
		};
		/* Without it the kick still arrives as an MMIO exit; only slower. */
		if (ioctl(s->vm.vm_fd, KVM_IOEVENTFD, &io) < 0)
			log_debug("KVM_IOEVENTFD: %s", strerror(errno));
	}
	return mmio_bus_add(&s->vm.bus, d->base, LAYOUT_VIRTIO_MMIO_SIZE, dev_access, d);
}

static int add_device(struct vmm *s, struct vmm_config *cfg, unsigned int i)
{
	struct vmm_device *d = &s->devs[s->nr_devs];
	struct virtio_dev *dev = cfg->devices[i];
	int ret;

	cfg->devices[i] = NULL;     /* ours now, whatever happens */
	d->base = LAYOUT_VIRTIO_MMIO_BASE + i * LAYOUT_VIRTIO_MMIO_SIZE;
	d->irq = LAYOUT_IRQ_FIRST_DEVICE + i;
	d->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->irq_fd < 0) {
		virtio_dev_destroy(dev);
		return -errno;
	}
	ret = virtio_mmio_create(dev, &s->vm.mem, s->loop, d->irq_fd, &d->mmio);
	if (ret) {
		close(d->irq_fd);
		return ret;
	}
	s->nr_devs++;
	return wire_kvm(s, d);
}

/* The caller's command line plus one virtio_mmio.device=SIZE@BASE:IRQ per device (Linux virtio_mmio). */
static int build_cmdline(struct vmm *s, const char *base)
{
	size_t len = strlen(base);

	if (len >= sizeof(s->cmdline))
		return -E2BIG;
	memcpy(s->cmdline, base, len + 1);
	for (unsigned int i = 0; i < s->nr_devs; i++) {
		int n = snprintf(s->cmdline + len, sizeof(s->cmdline) - len, " virtio_mmio.device=4K@0x%llx:%u",
				 (unsigned long long)s->devs[i].base, s->devs[i].irq);
		if (n < 0 || (size_t)n >= sizeof(s->cmdline) - len)
			return -E2BIG;
		len += (size_t)n;
	}
	return 0;
}

static int build(struct vmm *s, struct vmm_config *cfg)
{
	struct arch_boot boot;
	int ret = 0;

	for (unsigned int i = 0; !ret && i < cfg->nr_devices; i++)
		ret = add_device(s, cfg, i);
	if (!ret)
		ret = build_cmdline(s, cfg->cmdline);
	if (!ret)
		ret = arch_load_kernel(&s->vm.mem, &cfg->kernel, &boot);
	if (!ret)
		ret = arch_setup_boot(&s->vm.mem, cfg->ram_bytes, s->cmdline, cfg->vcpus);
	for (unsigned int i = 0; !ret && i < cfg->vcpus; i++) {
		ret = vcpu_create(&s->vm, i);
		s->vm.nr_vcpus = i + 1;
		if (!ret)
			ret = arch_vcpu_init(s->vm.kvm_fd, s->vm.vcpus[i].fd, i, cfg->vcpus, &boot);
	}
	return ret;
}

static void on_stop(void *opaque, uint32_t events)
{
	struct vmm *s = opaque;

	(void)events;
	evloop_stop(s->loop);
}

static void on_host_stop(void *opaque, uint32_t events)
{
	struct vmm *s = opaque;
	int sig = vmm_signal_last();

	(void)events;
	if (sig)
		log_warn("stopping the VM: the host process received signal %d (%s)", sig, strsignal(sig));
	else
		log_info("stopping the VM: shutdown requested through the eventfd");
	vm_request_stop(&s->vm, -EINTR);
	evloop_del(s->loop, s->sig_fd);
}

static int run(struct vmm *s, const struct vmm_config *cfg)
{
	int ret;

	s->sig_fd = vmm_signal_register();
	if (s->sig_fd < 0)
		return s->sig_fd;
	ret = evloop_add(s->loop, s->vm.stop_fd, EPOLLIN, on_stop, s);
	if (!ret)
		ret = evloop_add(s->loop, s->sig_fd, EPOLLIN, on_host_stop, s);
	if (!ret && cfg->shutdown_eventfd >= 0)
		ret = evloop_add(s->loop, cfg->shutdown_eventfd, EPOLLIN, on_host_stop, s);
	if (!ret)       /* setup is over: from here every thread runs under the allow-list */
		ret = seccomp_apply(cfg->seccomp_mode);
	for (unsigned int i = 0; !ret && i < s->vm.nr_vcpus; i++)
		ret = vcpu_start(&s->vm.vcpus[i]);
	if (ret)
		vm_request_stop(&s->vm, ret);
	else
		ret = evloop_run(s->loop);
	if (ret)
		vm_request_stop(&s->vm, ret);
	for (unsigned int i = 0; i < s->nr_devs; i++)
		virtio_mmio_detach_loop(s->devs[i].mmio);
	for (unsigned int i = 0; i < s->vm.nr_vcpus; i++)
		vcpu_kick(&s->vm.vcpus[i]);
	for (unsigned int i = 0; i < s->vm.nr_vcpus; i++)
		vcpu_join(&s->vm.vcpus[i]);
	vmm_signal_unregister();
	return s->vm.result;
}

static void teardown(struct vmm *s, struct vmm_result *res)
{
	for (unsigned int i = 0; i < s->nr_devs; i++) {
		if (res && (virtio_mmio_status(s->devs[i].mmio) & 0x40))
			res->needs_reset_mask |= 1u << i;
		virtio_mmio_destroy(s->devs[i].mmio);
		close(s->devs[i].irq_fd);
	}
	evloop_destroy(s->loop);
	vm_destroy(&s->vm);
}

int vmm_run_ex(struct vmm_config *cfg, struct vmm_result *res)
{
	uint64_t t0 = vm_now_ns();
	struct vmm *s = NULL;
	int ret;

	if (res)
		*res = (struct vmm_result){ .test_status = -1 };
	ret = check_config(cfg);
	if (!ret && !(s = calloc(1, sizeof(*s))))
		ret = -ENOMEM;
	if (!ret) {
		s->vm.t_start_ns = t0;
		ret = vm_create(&s->vm, cfg->ram_bytes);
	}
	if (!ret && !(s->loop = evloop_create()))
		ret = -ENOMEM;
	if (!ret) {
		log_debug("VM and %llu MiB RAM created in %llu us", (unsigned long long)(cfg->ram_bytes >> 20),
			  (unsigned long long)(vm_now_ns() - t0) / 1000);
		ret = build(s, cfg);
	}
	if (!ret) {
		log_debug("devices, kernel, boot data and %u vCPUs ready after %llu us", cfg->vcpus,
			  (unsigned long long)(vm_now_ns() - t0) / 1000);
		ret = run(s, cfg);
	}
	if (s && res) {
		res->test_status = s->vm.test_status;
		res->first_insn_ns = s->vm.t_mark_ns ? s->vm.t_mark_ns - t0 : 0;
	}
	if (s)
		teardown(s, res);
	free(s);
	for (unsigned int i = 0; i < cfg->nr_devices && i < VMM_MAX_DEVICES; i++) {
		virtio_dev_destroy(cfg->devices[i]);
		cfg->devices[i] = NULL;
	}
	if (res)
		res->total_ns = vm_now_ns() - t0;
	return ret;
}

int vmm_run(struct vmm_config *cfg)
{
	return vmm_run_ex(cfg, NULL);
}
