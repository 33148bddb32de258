/* The in-process VMM: build a KVM VM from plain configuration, run it, tear it down. */
#ifndef KRUN_VMM_VMM_H
#define KRUN_VMM_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct virtio_dev;

#define VMM_MAX_DEVICES 16
#define VMM_MAX_VCPUS 16

enum vmm_kernel_source {
	VMM_KERNEL_FLAT,   /* image already flattened: copy `size` bytes to load_addr, enter at entry */
	VMM_KERNEL_FILE,   /* a vmlinux (ELF) or bzImage file on disk */
};

struct vmm_kernel {
	enum vmm_kernel_source source;
	const void *image;      /* FLAT: e.g. from libkrunfw */
	size_t size;
	uint64_t load_addr;
	uint64_t entry;
	const char *path;       /* FILE */
	uint32_t format;        /* FILE: KRUN_KERNEL_FORMAT_* (ELF or raw bzImage) */
	const char *initrd_path;/* optional */
};

struct vmm_config {
	unsigned int vcpus;
	uint64_t ram_bytes;
	struct vmm_kernel kernel;
	const char *cmdline;    /* the VMM appends console/virtio_mmio.device= entries */
	/* Devices are created by the caller and owned by the VMM from vmm_run on. */
	struct virtio_dev *devices[VMM_MAX_DEVICES];
	unsigned int nr_devices;
	/* Readable eventfd a caller may write to stop the VM (krun_get_shutdown_eventfd), or -1. */
	int shutdown_eventfd;
	/* Try a Linux guest even on PVM, where it cannot work (KRUN_ALLOW_PVM=1). */
	bool allow_pvm;
	/* The kernel is a Linux kernel (PVM refusal applies); false for our test guest. */
	bool linux_guest;
	/* seccomp filter once set up: enum seccomp_level (vmm/seccomp.h); 0 = KRUN_SECCOMP env. */
	int seccomp_mode;
};

/*
 * Run the VM until the guest powers off or resets, a vCPU faults, or a signal/eventfd
 * stops it. Returns 0 after an orderly guest shutdown, -EINTR when stopped from the host,
 * -EFAULT after a vCPU fault (already logged with exit reason, RIP and code bytes), or
 * another -errno when setup failed. Destroys the devices in every case.
 */
int vmm_run(struct vmm_config *cfg) __attribute__((warn_unused_result));

/* True when /dev/kvm is PVM (software nested virtualization): Linux guests cannot run. */
bool vmm_kvm_is_pvm(void);

#endif
