/* x86_64 vCPU state: CPUID with our topology, MSRs, LAPIC LINT pins, long-mode registers, fault dumps. */
#define LOG_MODULE "cpu"
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86_64/arch.h"
#include "arch/x86_64/layout.h"
#include "util/log.h"

#define CPUID_MAX_ENTRIES 256
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)

#define CR0_PE 0x1ull
#define CR0_ET 0x10ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static unsigned int order_base2(unsigned int n)
{
	unsigned int s = 0;

	while ((1u << s) < n)
		s++;
	return s;
}

/* Leaves 0xb/0x1f (SDM vol. 2, CPUID): one thread per core, nr_vcpus cores in one package. */
static void set_topology_leaf(struct kvm_cpuid_entry2 *e, unsigned int id, unsigned int nr)
{
	e->edx = id;
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = 0x100 | e->index;
		break;
	case 1:
		e->eax = order_base2(nr);
		e->ebx = nr;
		e->ecx = 0x200 | e->index;
		break;
	default:
		e->eax = e->ebx = 0;
		e->ecx = e->index;
		break;
	}
}

static void patch_cpuid(struct kvm_cpuid2 *c, unsigned int id, unsigned int nr)
{
	for (unsigned int i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			/* EBX[31:24] initial APIC id, [23:16] logical processors per package. */
			e->ebx = (e->ebx & 0xffff) | (id << 24) | ((nr > 1 ? nr : 1) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (nr > 1)
				e->edx |= CPUID_1_EDX_HTT;
			break;
		case 4:
			/* EAX[31:26]: cores per package - 1; [25:14]: threads sharing this cache - 1. */
			e->eax = (e->eax & 0x3fff) | ((nr - 1) << 26);
			break;
		case 0xb:
		case 0x1f:
			set_topology_leaf(e, id, nr);
			break;
		default:
			break;
		}
	}
}

static int setup_cpuid(int kvm_fd, int vcpu_fd, unsigned int id, unsigned int nr)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	int ret = 0;

	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		ret = -errno;
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	} else {
		patch_cpuid(c, id, nr);
		if (ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0) {
			ret = -errno;
			log_error("KVM_SET_CPUID2: %s", strerror(errno));
		}
	}
	free(c);
	return ret;
}

static const uint32_t boot_msrs[][2] = {
	{ 0x174, 0 },           /* IA32_SYSENTER_CS */
	{ 0x175, 0 },           /* IA32_SYSENTER_ESP */
	{ 0x176, 0 },           /* IA32_SYSENTER_EIP */
	{ 0xc0000081, 0 },      /* STAR */
	{ 0xc0000082, 0 },      /* LSTAR */
	{ 0xc0000083, 0 },      /* CSTAR */
	{ 0xc0000084, 0 },      /* SYSCALL_MASK */
	{ 0xc0000102, 0 },      /* KERNEL_GS_BASE */
	{ 0x10, 0 },            /* TSC */
	{ 0x1a0, 1 },           /* IA32_MISC_ENABLE: fast strings */
};

/*
 * Set each MSR on its own when the batch is refused: nested hypervisors (PVM) reject some,
 * and the guest works without them, so a refusal is logged at debug level only.
 */
static void setup_msrs(int vcpu_fd)
{
	const unsigned int n = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[sizeof(boot_msrs) / sizeof(boot_msrs[0])];
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = n;
	for (unsigned int i = 0; i < n; i++) {
		m.e[i].index = boot_msrs[i][0];
		m.e[i].data = boot_msrs[i][1];
	}
	if (ioctl(vcpu_fd, KVM_SET_MSRS, &m) == (int)n)
		return;
	for (unsigned int i = 0; i < n; i++) {
		m.hdr.nmsrs = 1;
		m.e[0].index = boot_msrs[i][0];
		m.e[0].data = boot_msrs[i][1];
		if (ioctl(vcpu_fd, KVM_SET_MSRS, &m) != 1)
			log_debug("MSR 0x%x not settable here; continuing without it", boot_msrs[i][0]);
	}
}

static int setup_lapic(int vcpu_fd)
{
	struct kvm_lapic_state s;
	uint32_t v;

	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &s) < 0)
		return -errno;
	/* LINT0 = ExtINT (the PIC), LINT1 = NMI, as the MP table says. Mode is bits 10:8. */
	memcpy(&v, s.regs + APIC_LVT_LINT0, 4);
	v = (v & ~0x700u) | (APIC_MODE_EXTINT << 8);
	memcpy(s.regs + APIC_LVT_LINT0, &v, 4);
	memcpy(&v, s.regs + APIC_LVT_LINT1, 4);
	v = (v & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(s.regs + APIC_LVT_LINT1, &v, 4);
	return ioctl(vcpu_fd, KVM_SET_LAPIC, &s) < 0 ? -errno : 0;
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

/* Long mode as the 64-bit boot protocol requires (Documentation/arch/x86/boot.rst). */
static int setup_sregs(int vcpu_fd)
{
	struct kvm_sregs s;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	set_seg(&s.cs, 0x10, 0xb, true);
	set_seg(&s.ds, 0x18, 0x3, false);
	s.es = s.fs = s.gs = s.ss = s.ds;
	memset(&s.tr, 0, sizeof(s.tr));
	s.tr.selector = 0x20;
	s.tr.limit = 0x67;
	s.tr.type = 0xb;
	s.tr.present = 1;
	s.gdt.base = LAYOUT_GDT;
	s.gdt.limit = 6 * 8 - 1;
	s.idt.base = LAYOUT_IDT;
	s.idt.limit = 0;
	s.cr0 = CR0_PE | CR0_ET | CR0_PG;
	s.cr3 = LAYOUT_PML4;
	s.cr4 = CR4_PAE;
	s.efer = EFER_LME | EFER_LMA;
	return ioctl(vcpu_fd, KVM_SET_SREGS, &s) < 0 ? -errno : 0;
}

static int setup_regs(int vcpu_fd, const struct arch_boot *boot)
{
	struct kvm_regs r;
	struct kvm_fpu fpu;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
		log_debug("KVM_SET_FPU: %s", strerror(errno));
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rip = boot->entry;
	r.rsp = r.rbp = LAYOUT_BOOT_STACK;
	r.rsi = LAYOUT_ZERO_PAGE;
	return ioctl(vcpu_fd, KVM_SET_REGS, &r) < 0 ? -errno : 0;
}

int arch_vcpu_init(int kvm_fd, int vcpu_fd, unsigned int id, unsigned int nr_vcpus,
		   const struct arch_boot *boot)
{
	int ret = setup_cpuid(kvm_fd, vcpu_fd, id, nr_vcpus);

	if (ret)
		return ret;
	setup_msrs(vcpu_fd);
	ret = setup_lapic(vcpu_fd);
	if (ret) {
		log_error("vCPU %u: LAPIC setup: %s", id, strerror(-ret));
		return ret;
	}
	if (id != 0) {
		/* APs wait for INIT/SIPI in the in-kernel LAPIC, as on a real machine. */
		struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_UNINITIALIZED };
		if (ioctl(vcpu_fd, KVM_SET_MP_STATE, &mp) < 0)
			log_debug("vCPU %u: KVM_SET_MP_STATE: %s", id, strerror(errno));
		return 0;
	}
	ret = setup_sregs(vcpu_fd);
	if (!ret)
		ret = setup_regs(vcpu_fd, boot);
	if (ret)
		log_error("vCPU 0: register setup: %s", strerror(-ret));
	return ret;
}
