/* Intel MultiProcessor Specification 1.4 table: how the guest learns the vCPUs, IOAPIC and IRQ routing. */
#ifndef KRUN_ARCH_X86_64_MPTABLE_H
#define KRUN_ARCH_X86_64_MPTABLE_H

#include "vmm/gmem.h"

/* The IOAPIC's id in the table: one above the last vCPU's APIC id. */
#define MPTABLE_IOAPIC_ID(nr_vcpus) ((nr_vcpus) + 1)

/* Write the floating pointer and configuration table at LAYOUT_EBDA. */
int mptable_write(const struct gmem *mem, unsigned int nr_vcpus) __attribute__((warn_unused_result));

#endif
