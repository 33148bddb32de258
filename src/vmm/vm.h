/* One KVM virtual machine: its fds, guest RAM, MMIO bus, vCPUs and the stop protocol between threads. */
#ifndef KRUN_VMM_VM_H
#define KRUN_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/gmem.h"
#include "vmm/mmio_bus.h"
#include "vmm/vmm.h"

struct kvm_run;
struct vm;

struct vcpu {
	struct vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
	char serial_line[120];   /* COM1 output collected into lines for the debug log */
	unsigned int serial_len;
};

struct vm {
	int kvm_fd;
	int vm_fd;
	int memfd;
	uint8_t *ram;           /* one mapping of the memfd, ram_bytes long */
	uint64_t ram_bytes;
	struct gmem mem;
	struct mmio_bus bus;
	unsigned int nr_vcpus;
	struct vcpu vcpus[VMM_MAX_VCPUS];
	int stop_fd;            /* eventfd: written once when the VM must end */
	bool stopping;          /* atomic; the first vm_request_stop wins */
	int result;             /* vmm_run's return value, set by that first request */
	int test_status;        /* LAYOUT_PORT_TEST_EXIT value, or -1 */
	uint64_t t_start_ns;
	uint64_t t_mark_ns;     /* atomic: first LAYOUT_PORT_TEST_MARK write */
};

uint64_t vm_now_ns(void);
/* Open /dev/kvm, create the VM, the irqchip and guest RAM (memfd). */
int vm_create(struct vm *vm, uint64_t ram_bytes) __attribute__((warn_unused_result));
void vm_destroy(struct vm *vm);
/* Ask every thread to wind down; `result` becomes vmm_run's return unless a stop came first. */
void vm_request_stop(struct vm *vm, int result);
bool vm_stopping(const struct vm *vm);

int vcpu_create(struct vm *vm, unsigned int id) __attribute__((warn_unused_result));
int vcpu_start(struct vcpu *vcpu) __attribute__((warn_unused_result));
/* Make the vCPU leave KVM_RUN now (immediate_exit + signal) and not enter it again. */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);

#endif
