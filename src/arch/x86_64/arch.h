/* What the generic VMM asks of the x86_64 code: machine setup, direct boot, vCPU state. */
#ifndef KRUN_ARCH_X86_64_ARCH_H
#define KRUN_ARCH_X86_64_ARCH_H

#include <stdint.h>

#include "vmm/gmem.h"
#include "vmm/vmm.h"

#define ARCH_MAX_RAM_REGIONS 2

struct arch_ram_region {
	uint64_t gpa;
	uint64_t size;
};

/* Where guest RAM goes: below the 32-bit MMIO hole, the rest from 4 GiB. Returns the count. */
unsigned int arch_ram_regions(uint64_t ram_bytes, struct arch_ram_region out[ARCH_MAX_RAM_REGIONS]);

/* KVM_SET_TSS_ADDR, identity map, in-kernel IRQ chip and PIT. */
int arch_vm_init(int vm_fd) __attribute__((warn_unused_result));

struct arch_boot {
	uint64_t entry;         /* 64-bit entry point (guest-physical, identity-mapped) */
	uint64_t kernel_end;    /* first byte after the loaded image */
};

/* Load the kernel (and initrd) into guest memory; fills the zero page's loader fields. */
int arch_load_kernel(const struct gmem *mem, const struct vmm_kernel *k, struct arch_boot *boot)
	__attribute__((warn_unused_result));
/* Zero page e820/cmdline, MP table, GDT and page tables: everything before the first instruction. */
int arch_setup_boot(const struct gmem *mem, uint64_t ram_bytes, const char *cmdline,
		    unsigned int nr_vcpus) __attribute__((warn_unused_result));

/* CPUID (topology for nr_vcpus), MSRs, LAPIC LINTs; for the BSP also registers and long mode. */
int arch_vcpu_init(int kvm_fd, int vcpu_fd, unsigned int id, unsigned int nr_vcpus,
		   const struct arch_boot *boot) __attribute__((warn_unused_result));
/* Log a faulting vCPU's registers and the code bytes at RIP. */
void arch_vcpu_dump(int vcpu_fd, const struct gmem *mem);

#endif
