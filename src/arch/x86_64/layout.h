/* Every guest-physical address, I/O port and IRQ of the x86_64 machine, in one place. */
#ifndef KRUN_ARCH_X86_64_LAYOUT_H
#define KRUN_ARCH_X86_64_LAYOUT_H

/* Low memory: boot structures the VMM writes before the first instruction. */
#define LAYOUT_GDT              0x500ull     /* 6 descriptors (boot protocol selectors 0x10/0x18) */
#define LAYOUT_IDT              0x540ull     /* empty IDT (limit 0) until the kernel loads its own */
#define LAYOUT_ZERO_PAGE        0x7000ull    /* struct boot_params, 4 KiB; rsi at entry */
#define LAYOUT_BOOT_STACK       0x8ff0ull    /* initial rsp (the kernel switches stacks at once) */
#define LAYOUT_PML4             0x9000ull    /* identity page tables: PML4, PDPT, 4 PDs */
#define LAYOUT_PDPT             0xa000ull
#define LAYOUT_PD               0xb000ull    /* 4 pages: 0xb000..0xefff, 2 MiB pages up to 4 GiB */
#define LAYOUT_PD_COUNT         4
#define LAYOUT_CMDLINE          0x20000ull
#define LAYOUT_CMDLINE_MAX      2048         /* Linux x86 COMMAND_LINE_SIZE, with the NUL */
#define LAYOUT_EBDA             0x9fc00ull   /* MP table here: searched by Linux (last KiB of 639K) */
#define LAYOUT_MPTABLE_MAX      0x400ull
#define LAYOUT_HIMEM            0x100000ull  /* 1 MiB: bzImage protected-mode kernel goes here */
#define LAYOUT_LOWMEM_MIN       0x100000ull  /* no kernel segment may start below this */

/* The 32-bit hole: device MMIO, IOAPIC, LAPIC, KVM's TSS. RAM beyond it continues at 4 GiB. */
#define LAYOUT_MMIO_HOLE_START  0xc0000000ull
#define LAYOUT_MMIO_HOLE_END    0x100000000ull
#define LAYOUT_VIRTIO_MMIO_BASE 0xd0000000ull
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ull    /* one page per device, virtio 1.2 section 4.2.2 */
#define LAYOUT_IOAPIC           0xfec00000ull
#define LAYOUT_LAPIC            0xfee00000ull
#define LAYOUT_KVM_IDENTITY_MAP 0xfeffc000ull /* KVM_SET_IDENTITY_MAP_ADDR: one page */
#define LAYOUT_KVM_TSS          0xfeffd000ull /* KVM_SET_TSS_ADDR: three pages */

/* IRQs (IOAPIC pins == GSIs): 0-4 legacy, virtio-mmio devices from 5 upwards. */
#define LAYOUT_IRQ_FIRST_DEVICE 5
#define LAYOUT_IOAPIC_PINS      24

/* I/O ports the VMM handles. */
#define LAYOUT_PORT_SERIAL      0x3f8        /* COM1 THR: output logged at debug level */
#define LAYOUT_PORT_SERIAL_END  0x400
#define LAYOUT_PORT_I8042_CMD   0x64         /* write 0xfe = pulse reset line */
#define LAYOUT_I8042_RESET      0xfe
/*
 * Test-only ports for our freestanding test guest (tests/guest). A Linux guest never
 * touches them. LAYOUT_PORT_TEST_EXIT: a 32-bit write of a status (0-255) ends the VM in
 * order and vmm_run_ex reports it. LAYOUT_PORT_TEST_MARK: any write timestamps "guest alive".
 */
#define LAYOUT_PORT_TEST_EXIT   0xf4
#define LAYOUT_PORT_TEST_MARK   0xf5

#endif
