/* MP table writer (MultiProcessor Specification 1.4, chapter 4): CPUs, ISA bus, IOAPIC, IRQ routes. */
#define LOG_MODULE "mptable"
#include "arch/x86_64/mptable.h"

#include <errno.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "vmm/vmm.h"

#define MP_SPEC_REV 4
#define MP_CPU_EN 0x01
#define MP_CPU_BP 0x02
#define MP_APIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_ENTRY_CPU 0
#define MP_ENTRY_BUS 1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_IOINT 3
#define MP_ENTRY_LINT 4
#define MP_INT 0
#define MP_NMI 1
#define MP_EXTINT 3

struct writer {
	uint8_t *base;
	size_t len;
	size_t cap;
	uint16_t entries;
};

static void put(struct writer *w, const void *data, size_t len)
{
	if (w->len + len <= w->cap)
		memcpy(w->base + w->len, data, len);
	w->len += len;
}

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

static void put_cpu(struct writer *w, unsigned int id)
{
	/* 4.3.1: type, APIC id, version, flags, signature (family 6), feature flags (FPU, APIC). */
	uint8_t e[20] = { MP_ENTRY_CPU, (uint8_t)id, MP_APIC_VERSION,
			  MP_CPU_EN | (id == 0 ? MP_CPU_BP : 0), 0x00, 0x06, 0, 0, 0x01, 0x02, 0, 0 };

	put(w, e, sizeof(e));
	w->entries++;
}

static void put_ioint(struct writer *w, uint8_t type, uint8_t irq, uint8_t apic_id, uint8_t pin)
{
	uint8_t e[8] = { MP_ENTRY_IOINT, type, 0, 0, 0 /* bus */, irq, apic_id, pin };

	put(w, e, sizeof(e));
	w->entries++;
}

static void put_lint(struct writer *w, uint8_t type, uint8_t lint)
{
	/* Destination APIC id 0xff: every local APIC. */
	uint8_t e[8] = { MP_ENTRY_LINT, type, 0, 0, 0, 0, 0xff, lint };

	put(w, e, sizeof(e));
	w->entries++;
}

static void put_entries(struct writer *w, unsigned int nr_vcpus)
{
	uint8_t ioapic_id = (uint8_t)MPTABLE_IOAPIC_ID(nr_vcpus);
	uint8_t bus[8] = { MP_ENTRY_BUS, 0, 'I', 'S', 'A', ' ', ' ', ' ' };
	uint8_t ioapic[8] = { MP_ENTRY_IOAPIC, ioapic_id, MP_IOAPIC_VERSION, 0x01 };
	uint32_t ioapic_addr = (uint32_t)LAYOUT_IOAPIC;

	for (unsigned int i = 0; i < nr_vcpus; i++)
		put_cpu(w, i);
	put(w, bus, sizeof(bus));
	w->entries++;
	memcpy(ioapic + 4, &ioapic_addr, 4);
	put(w, ioapic, sizeof(ioapic));
	w->entries++;
	/* ISA IRQ i -> IOAPIC pin i for every pin (device IRQs included), as the KVM IOAPIC wires them. */
	for (uint8_t pin = 0; pin < LAYOUT_IOAPIC_PINS; pin++)
		put_ioint(w, MP_INT, pin, ioapic_id, pin);
	put_lint(w, MP_EXTINT, 0);
	put_lint(w, MP_NMI, 1);
}

int mptable_write(const struct gmem *mem, unsigned int nr_vcpus)
{
	uint8_t *p = gmem_ptr(mem, LAYOUT_EBDA, LAYOUT_MPTABLE_MAX);
	uint32_t table_gpa = (uint32_t)LAYOUT_EBDA + 16, lapic = (uint32_t)LAYOUT_LAPIC;
	struct writer w;
	uint16_t len16;

	if (!p || nr_vcpus == 0 || nr_vcpus > VMM_MAX_VCPUS)
		return -EINVAL;
	/* 4.1 floating pointer: signature, table address, length in 16-byte units, revision. */
	memset(p, 0, 16);
	memcpy(p, "_MP_", 4);   /* NOLINT(bugprone-not-null-terminated-result): a 4-byte tag */
	memcpy(p + 4, &table_gpa, 4);
	p[8] = 1;
	p[9] = MP_SPEC_REV;
	p[10] = checksum(p, 16);
	/* 4.2 configuration table header (44 bytes), entries follow. */
	w = (struct writer){ .base = p + 16, .len = 44, .cap = LAYOUT_MPTABLE_MAX - 16 };
	memset(w.base, 0, 44);
	put_entries(&w, nr_vcpus);
	if (w.len > w.cap)
		return -E2BIG;
	len16 = (uint16_t)w.len;
	memcpy(w.base, "PCMP", 4);
	memcpy(w.base + 4, &len16, 2);
	w.base[6] = MP_SPEC_REV;
	memcpy(w.base + 8, "KRUN    ", 8);
	memcpy(w.base + 16, "MICROVM     ", 12);
	memcpy(w.base + 34, &w.entries, 2);
	memcpy(w.base + 36, &lapic, 4);
	w.base[7] = checksum(w.base, w.len);
	return 0;
}
