/* Test guest entry, reached exactly like Linux's startup_64: long mode, rsi = boot_params. */
#define PORT_TEST_MARK 0xf5

	.section .text.entry, "ax"
	.globl _start
	.code64
_start:
	outb	%al, $PORT_TEST_MARK	/* first instruction: the host timestamps it */
	leaq	stack_top(%rip), %rsp
	movq	%rsi, %rdi
	call	guest_main
	/* guest_main never returns; if it does, halt forever with interrupts off. */
1:	cli
	hlt
	jmp	1b

	.section .bss
	.balign 16
	.globl stack_top
stack:
	.skip 16384
stack_top:

/* Interrupt handler for the irq scenario: count, EOI to the local APIC, return. */
	.section .text
	.globl irq_entry
	.globl irq_count
irq_entry:
	pushq	%rax
	incl	irq_count(%rip)
	movabsq	$0xfee000b0, %rax	/* LAPIC EOI register */
	movl	$0, (%rax)
	popq	%rax
	iretq

	.section .data
	.balign 4
irq_count:
	.long 0
