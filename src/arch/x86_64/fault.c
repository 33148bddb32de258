/* Describe a faulting vCPU: registers and the code bytes at RIP, found through the guest's page tables. */
#define LOG_MODULE "vcpu"
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86_64/arch.h"
#include "util/log.h"

#define PTE_P 0x1ull
#define PTE_PS 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull
#define CODE_BYTES 16

/* 4-level walk (SDM vol. 3, 4.5); every table read is bounds-checked guest memory. */
static int translate(const struct gmem *mem, uint64_t cr3, uint64_t va, uint64_t *pa)
{
	uint64_t table = cr3 & PTE_ADDR;

	for (int level = 3; level >= 0; level--) {
		unsigned int shift = 12 + 9 * (unsigned int)level;
		uint64_t pte;

		if (gmem_read(mem, table + ((va >> shift) & 0x1ff) * 8, &pte, 8))
			return -EFAULT;
		if (!(pte & PTE_P))
			return -ENOENT;
		if (level == 0 || ((pte & PTE_PS) && level <= 2)) {
			uint64_t mask = (1ull << shift) - 1;
			*pa = (pte & PTE_ADDR & ~mask) | (va & mask);
			return 0;
		}
		table = pte & PTE_ADDR;
	}
	return -ENOENT;
}

static void code_bytes(const struct gmem *mem, const struct kvm_sregs *s, uint64_t rip, char *out,
		       size_t cap)
{
	uint64_t pa = rip;
	uint8_t buf[CODE_BYTES];
	size_t n = 0;

	if ((s->cr0 & 0x80000000ull) && translate(mem, s->cr3, rip, &pa)) {
		snprintf(out, cap, "(RIP not mapped)");
		return;
	}
	if (gmem_read(mem, pa, buf, sizeof(buf))) {
		snprintf(out, cap, "(RIP 0x%llx outside RAM)", (unsigned long long)pa);
		return;
	}
	out[0] = 0;
	for (unsigned int i = 0; i < sizeof(buf) && n + 4 < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%02x ", buf[i]);
}

void arch_vcpu_dump(int vcpu_fd, const struct gmem *mem)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	char bytes[CODE_BYTES * 3 + 32];

	if (ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0) {
		log_error("cannot read the faulting vCPU's registers: %s", strerror(errno));
		return;
	}
	code_bytes(mem, &s, r.rip, bytes, sizeof(bytes));
	log_error("RIP=0x%llx RSP=0x%llx RFLAGS=0x%llx CR0=0x%llx CR3=0x%llx CR4=0x%llx EFER=0x%llx",
		  (unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rflags,
		  (unsigned long long)s.cr0, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
		  (unsigned long long)s.efer);
	log_error("code at RIP: %s", bytes);
}
