/*
 * The freestanding test guest: entered like Linux (64-bit boot protocol, rsi = boot_params), it
 * checks what the VMM built, drives the virtio devices named on the command line and ends with
 * a status on LAYOUT_PORT_TEST_EXIT (and in the root share's exit file when virtio-fs exists).
 * Command line: t.scenario=NAME t.ram=MIB t.cpus=N [t.status=N] [t.file=NAME t.content=TEXT]
 * [t.op=getattr|lookup t.n=COUNT] (fs_rtt).
 */
#include "common/krun_init.h"
#include "guest.h"

#define ZP_E820_ENTRIES 0x1e8
#define ZP_CMD_LINE_PTR 0x228
#define ZP_E820_TABLE 0x2d0
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_FS 26
#define UNMAPPED_GPA 0xe0000000ull       /* inside the MMIO hole, no device there */
#define OUTSIDE_RAM_GPA 0x7ff00000000ull /* a descriptor address far beyond RAM */

static struct vq con_vqs[2];
static unsigned int failures;
static const char *cmdline;

static void check(bool ok, const char *what)
{
	out_str(ok ? "guest: ok " : "guest: FAIL ");
	out_str(what);
	out_str("\n");
	failures += !ok;
}

static uint64_t arg_u64(const char *key, uint64_t dflt)
{
	char buf[24];

	return cmdline_get(cmdline, key, buf, sizeof(buf)) ? parse_u64(buf, 0) : dflt;
}

static void __attribute__((noreturn)) finish(int status)
{
	out_flush();
	outl(LAYOUT_PORT_TEST_EXIT, (uint32_t)status);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void check_cpu(void)
{
	uint64_t cr0, cr3, cr4;
	uint16_t cs;
	const uint64_t *pml4, *pdpt, *pd;

	__asm__ volatile("mov %%cr0, %0; mov %%cr3, %1; mov %%cr4, %2; mov %%cs, %3"
			 : "=r"(cr0), "=r"(cr3), "=r"(cr4), "=r"(cs));
	check((cr0 & CR0_PG) && (cr4 & CR4_PAE) && cs == 0x10, "long mode with paging, CS=__BOOT_CS");
	pml4 = (const uint64_t *)(cr3 & ~0xfffull);
	pdpt = (const uint64_t *)(pml4[0] & ~0xfffull);
	pd = (const uint64_t *)(pdpt[0] & ~0xfffull);
	/* 16 MiB (our code) and the device page at 0xd0000000 must be identity-mapped 2 MiB pages. */
	check((pml4[0] & 1) && (pd[8] & ~0xfffull) == 0x1000000 && (pd[8] & 0x81) == 0x81 &&
	      (((const uint64_t *)(pdpt[3] & ~0xfffull))[0x80] & ~0xfffull) == 0xd0000000,
	      "identity page tables");
}

/* e820 must describe exactly t.ram MiB: everything but the 0x9fc00-0x100000 legacy hole. */
static void check_e820(const uint8_t *bp)
{
	uint64_t ram = arg_u64("t.ram", 0) << 20, sum = 0, end = 0;
	uint64_t expect_end = ram <= 0xc0000000ull ? ram : ram + 0x40000000ull;
	unsigned int n = bp[ZP_E820_ENTRIES];

	for (unsigned int i = 0; i < n; i++) {
		const uint8_t *e = bp + ZP_E820_TABLE + 20 * i;
		uint64_t addr, size;
		uint32_t type;

		memcpy(&addr, e, 8);
		memcpy(&size, e + 8, 8);
		memcpy(&type, e + 16, 4);
		if (type == 1) {
			sum += size;
			end = addr + size > end ? addr + size : end;
		}
	}
	check(n >= 3 && sum == ram - (0x100000 - 0x9fc00) && end == expect_end,
	      "e820 map matches the configured RAM");
}

static uint8_t sum8(const uint8_t *p, unsigned int len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

/* MP table (MultiProcessor Specification 1.4): count the enabled processor entries. */
static void check_mptable(void)
{
	const uint8_t *fp = (const uint8_t *)LAYOUT_EBDA, *t, *e;
	uint32_t table;
	uint16_t len, count;
	unsigned int cpus = 0;

	if (memcmp(fp, "_MP_", 4) || sum8(fp, 16)) {
		check(false, "MP floating pointer");
		return;
	}
	memcpy(&table, fp + 4, 4);
	t = (const uint8_t *)(uintptr_t)table;
	memcpy(&len, t + 4, 2);
	memcpy(&count, t + 34, 2);
	if (memcmp(t, "PCMP", 4) || len > 1024 || sum8(t, len)) {
		check(false, "MP configuration table");
		return;
	}
	e = t + 44;
	for (unsigned int i = 0; i < count && e < t + len; i++) {
		cpus += e[0] == 0 && (e[3] & 1);
		e += e[0] == 0 ? 20 : 8;
	}
	check(cpus == arg_u64("t.cpus", 1), "MP table lists the configured vCPUs");
}

static void start_console(void)
{
	static struct vdev con;
	uint32_t isr, isr_after_ack;
	int ret;

	if (vdev_find(cmdline, VIRTIO_ID_CONSOLE, &con)) {
		check(false, "virtio console on the command line");
		finish(3);
	}
	ret = vdev_init(&con, con_vqs, 2);
	if (ret) {
		out_str("guest: console handshake failed at step ");
		out_u64((uint64_t)ret);
		out_str("\n");
		finish(3);
	}
	console_attach(&con, &con_vqs[1]);
	vdev_take_isr(&con);
	out_str("guest: hello from the test guest\n");
	/* The used-buffer interrupt came through irqfd: InterruptStatus bit 0 must be set. */
	isr = vdev_take_isr(&con);
	isr_after_ack = vdev_take_isr(&con);
	check(isr & 1, "used-buffer interrupt status set");
	check(isr_after_ack == 0, "interrupt acknowledged");
}

static struct vdev *console_dev(void)
{
	static struct vdev con;

	vdev_find(cmdline, VIRTIO_ID_CONSOLE, &con);
	return &con;
}

/* A transmit descriptor pointing outside RAM: the device must flag NEEDS_RESET, then recover. */
static int scenario_bad_chain(void)
{
	struct vdev *con = console_dev();
	const void *bufs[1] = { (const void *)OUTSIDE_RAM_GPA };
	uint32_t lens[1] = { 16 }, st = 0;

	console_attach(0, 0);
	vq_post(con, &con_vqs[1], bufs, lens, 1, 0);
	for (unsigned int i = 0; i < 100000 && !(st & 0x40); i++)
		st = vdev_status(con);
	if (vdev_init(con, con_vqs, 2))
		return 4;
	console_attach(con, &con_vqs[1]);
	check(st & 0x40, "device set NEEDS_RESET after a bad chain");
	check(true, "console works again after a reset");
	return st & 0x40 ? 0 : 4;
}

static int scenario_fault_mmio(void)
{
	uint32_t v;

	mmio_write32(UNMAPPED_GPA, 0x12345678);
	v = mmio_read32(UNMAPPED_GPA);
	check(v == 0xffffffff, "unmapped MMIO reads as all ones, write ignored");
	return v == 0xffffffff ? 0 : 4;
}

static void __attribute__((noreturn)) scenario_triple_fault(void)
{
	static const struct { uint16_t limit; uint64_t base; } __attribute__((packed)) empty = { 0, 0 };

	out_str("guest: triple fault now\n");
	out_flush();
	/* No IDT: the page fault below escalates to #DF and then to a shutdown (triple fault). */
	__asm__ volatile("lidt %0" : : "m"(empty));
	(void)*(volatile uint64_t *)0x8000000000ull;
	for (;;)
		__asm__ volatile("hlt");
}

/*
 * PVM only: an instruction its emulator lacks, right after an exit (so it is emulated), must end
 * as a vCPU fault with exit reason, RIP and code bytes. Hardware KVM just runs it.
 */
static int scenario_emul_fail(void)
{
	uint64_t in = 0xff, out;

	out_str("guest: popcnt inside an emulated stretch\n");
	out_flush();
	outb(LAYOUT_PORT_TEST_MARK, 0);
	__asm__ volatile("popcnt %1, %0" : "=r"(out) : "r"(in));
	return out == 8 ? 0 : 4;
}

extern char irq_entry[];
extern volatile uint32_t irq_count;

#define IRQ_VECTOR 0x30
#define IOAPIC_SEL LAYOUT_IOAPIC
#define IOAPIC_WIN (LAYOUT_IOAPIC + 0x10)
#define LAPIC_SVR (LAYOUT_LAPIC + 0xf0)
#define LAPIC_TPR (LAYOUT_LAPIC + 0x80)

/* Bonus path: irqfd -> IOAPIC pin -> LAPIC -> our IDT vector, waking sti; hlt (SDM vol. 3, 6.14). */
static int scenario_irq(void)
{
	static uint64_t idt[2 * 256] __attribute__((aligned(16)));
	static struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr;
	struct vdev *con = console_dev();
	uint64_t h = (uint64_t)(uintptr_t)irq_entry;
	uint32_t pin = con->irq, before = irq_count;

	/* 64-bit interrupt gate: offset, selector 0x10, present, type 0xe. */
	idt[2 * IRQ_VECTOR] = (h & 0xffff) | (0x10ull << 16) | (0x8e00ull << 32) | ((h >> 16 & 0xffff) << 48);
	idt[2 * IRQ_VECTOR + 1] = h >> 32;
	idtr.limit = sizeof(idt) - 1;
	idtr.base = (uint64_t)(uintptr_t)idt;
	__asm__ volatile("lidt %0" : : "m"(idtr));
	/* The 8259s would deliver through LINT0 (ExtINT) with vectors we have no gates for. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	mmio_write32(LAPIC_SVR, 0x1ff);         /* APIC software enable, spurious vector 0xff */
	mmio_write32(LAPIC_TPR, 0);
	mmio_write32(IOAPIC_SEL, 0x10 + 2 * pin + 1);
	mmio_write32(IOAPIC_WIN, 0);            /* destination APIC id 0 */
	mmio_write32(IOAPIC_SEL, 0x10 + 2 * pin);
	mmio_write32(IOAPIC_WIN, IRQ_VECTOR);   /* fixed, physical, edge, active high, unmasked */
	vdev_take_isr(con);
	out_str("guest: waiting for the console interrupt\n");
	/* sti's one-instruction shadow makes "sti; hlt" atomic: the interrupt cannot slip between. */
	for (int i = 0; i < 1000 && irq_count == before; i++)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	check(irq_count != before, "interrupt delivered through IOAPIC and LAPIC to our IDT");
	vdev_take_isr(con);
	return irq_count != before ? 0 : 4;
}

static void __attribute__((noreturn)) scenario_loop(void)
{
	out_str("guest: spinning forever\n");
	out_flush();
	for (;;)
		barrier();
}

static int scenario_fs(void)
{
	struct vdev fs;
	char want[128], got[128], name[64];
	int n;

	if (vdev_find(cmdline, VIRTIO_ID_FS, &fs)) {
		check(false, "virtio-fs device on the command line");
		return 5;
	}
	if (!cmdline_get(cmdline, "t.file", name, sizeof(name)) ||
	    !cmdline_get(cmdline, "t.content", want, sizeof(want)))
		return 5;
	n = fs_read_file(&fs, name, got, sizeof(got) - 1);
	if (n >= 0)
		got[n] = 0;
	check(n == (int)strlen(want) && !memcmp(got, want, (size_t)n), "FUSE read of the shared file");
	if (n < 0) {
		out_str("guest: fuse step failed: ");
		out_u64((uint64_t)-n);
		out_str("\n");
	}
	return n == (int)strlen(want) ? (int)arg_u64("t.status", 0) : 5;
}

static int scenario_fs_rtt(void)
{
	struct vdev fs;
	char name[64], op[16];

	if (vdev_find(cmdline, VIRTIO_ID_FS, &fs) || !cmdline_get(cmdline, "t.file", name, sizeof(name)))
		return 5;
	if (!cmdline_get(cmdline, "t.op", op, sizeof(op)))
		memcpy(op, "getattr", 8);
	return fs_rtt_scenario(&fs, !memcmp(op, "lookup", 7), name, arg_u64("t.n", 1000));
}

static void report_exit_file(int status)
{
	struct vdev fs;
	char text[4] = { (char)('0' + status / 100), (char)('0' + status / 10 % 10), (char)('0' + status % 10), 0 };
	const char *p = text;

	while (*p == '0' && p[1])
		p++;
	if (vdev_find(cmdline, VIRTIO_ID_FS, &fs) == 0 && fs_write_file(&fs, KRUN_EXIT_NAME, p) < 0)
		out_str("guest: could not write the exit file\n");
}

void guest_main(const uint8_t *bp);

void guest_main(const uint8_t *bp)
{
	char scenario[32];
	uint32_t cmd_ptr;
	int status;

	memcpy(&cmd_ptr, bp + ZP_CMD_LINE_PTR, 4);
	cmdline = (const char *)(uintptr_t)cmd_ptr;
	if (!cmd_ptr || !cmdline_get(cmdline, "t.scenario", scenario, sizeof(scenario)))
		finish(2);
	start_console();
	check_cpu();
	check_e820(bp);
	check_mptable();
	check(contains(cmdline, "t.scenario=") && contains(cmdline, "virtio_mmio.device=4K@0x"),
	      "command line from the host");
	status = (int)arg_u64("t.status", 0);
	if (!memcmp(scenario, "bad_chain", 10))
		status = scenario_bad_chain();
	else if (!memcmp(scenario, "fault_mmio", 11))
		status = scenario_fault_mmio();
	else if (!memcmp(scenario, "triple", 7))
		scenario_triple_fault();
	else if (!memcmp(scenario, "loop", 5))
		scenario_loop();
	else if (!memcmp(scenario, "irq", 4))
		status = scenario_irq();
	else if (!memcmp(scenario, "emul_fail", 10))
		status = scenario_emul_fail();
	else if (!memcmp(scenario, "fs", 3))
		status = scenario_fs();
	else if (!memcmp(scenario, "fs_rtt", 7))
		status = scenario_fs_rtt();
	else if (!memcmp(scenario, "console_mp", 11))
		status = console_mp_scenario(cmdline);
	else if (!memcmp(scenario, "balloon", 8))
		status = balloon_scenario(cmdline);
	else if (!memcmp(scenario, "idle", 5))
		idle_scenario(cmdline);
	if (failures && !status)
		status = 4;
	out_str("guest: done, status ");
	out_u64((uint64_t)status);
	out_str("\n");
	report_exit_file(status);
	finish(status);
}
