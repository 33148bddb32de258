/* VM creation on /dev/kvm: API checks, irqchip, guest RAM as a memfd split around the MMIO hole. */
#define LOG_MODULE "vm"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86_64/arch.h"
#include "util/log.h"

uint64_t vm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_kvm(struct vm *vm)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int err = -errno;
		log_error("cannot open /dev/kvm: %s", strerror(errno));
		return err;
	}
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		log_error("/dev/kvm has an unsupported API version");
		return -ENOTSUP;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		int err = -errno;
		log_error("KVM_CREATE_VM: %s", strerror(errno));
		return err;
	}
	return 0;
}

/*
 * RAM is one memfd mapped once (MAP_SHARED, so vhost-style sharing stays possible); pages are
 * touched lazily by the guest. KVM sees one slot per region around the MMIO hole.
 */
static int setup_ram(struct vm *vm, uint64_t ram_bytes)
{
	struct arch_ram_region r[ARCH_MAX_RAM_REGIONS];
	unsigned int n = arch_ram_regions(ram_bytes, r);
	uint64_t off = 0;

	vm->memfd = memfd_create("krun-guest-ram", MFD_CLOEXEC);
	if (vm->memfd < 0 || ftruncate(vm->memfd, (off_t)ram_bytes) < 0)
		return -errno;
	vm->ram = mmap(NULL, ram_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, vm->memfd, 0);
	if (vm->ram == MAP_FAILED) {
		vm->ram = NULL;
		return -errno;
	}
	vm->ram_bytes = ram_bytes;
	madvise(vm->ram, ram_bytes, MADV_HUGEPAGE);     /* a hint; shmem THP may be off */
	gmem_init(&vm->mem);
	for (unsigned int i = 0; i < n; i++) {
		struct kvm_userspace_memory_region slot = {
			.slot = i, .guest_phys_addr = r[i].gpa, .memory_size = r[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)(vm->ram + off),
		};
		int ret = gmem_add_region(&vm->mem, r[i].gpa, r[i].size, vm->ram + off, r[i].gpa);
		if (ret)
			return ret;
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			log_error("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
			return -errno;
		}
		off += r[i].size;
	}
	return 0;
}

int vm_create(struct vm *vm, uint64_t ram_bytes)
{
	int ret;

	vm->kvm_fd = vm->vm_fd = vm->memfd = -1;
	vm->test_status = -1;
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0)
		return -errno;
	ret = open_kvm(vm);
	if (!ret)
		ret = arch_vm_init(vm->vm_fd);
	if (!ret) {
		ret = setup_ram(vm, ram_bytes);
		if (ret)
			log_error("cannot set up %llu MiB of guest RAM: %s",
				  (unsigned long long)(ram_bytes >> 20), strerror(-ret));
	}
	return ret;
}

void vm_destroy(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	vm->nr_vcpus = 0;
	if (vm->ram)
		munmap(vm->ram, vm->ram_bytes);
	vm->ram = NULL;
	if (vm->memfd >= 0)
		close(vm->memfd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	vm->memfd = vm->vm_fd = vm->kvm_fd = vm->stop_fd = -1;
}

void vm_request_stop(struct vm *vm, int result)
{
	uint64_t one = 1;

	if (__atomic_exchange_n(&vm->stopping, true, __ATOMIC_SEQ_CST))
		return;
	vm->result = result;
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* Cannot fail for a fresh eventfd written once; the flag is set regardless. */
	}
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

bool vm_stopping(const struct vm *vm)
{
	return __atomic_load_n(&vm->stopping, __ATOMIC_SEQ_CST);
}
