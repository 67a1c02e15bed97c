/*
 * start.S: entry point and exception stubs of the minivmm guest program.
 *
 * minivmm starts every vCPU here already in 64-bit long mode (paging on,
 * flat GDT, interrupts off) with RDI = vCPU index and RSP = that vCPU's own
 * stack top (MV_STACK_TOP - index * MV_STACK_SIZE). There are no interrupts;
 * the IDT only turns a guest bug into a report on MV_PORT_EXCEPTION instead of
 * a silent triple fault (guest_idt_setup() in guest.c installs these stubs).
 */
#define MV_PORT_EXCEPTION 0x501

	.section .text.start, "ax"
	.code64
	.globl	_start
_start:
	cld
	call	guest_main		/* rdi = vCPU index, does not return */
1:	hlt
	jmp	1b

/*
 * One stub per vector 0..31. The CPU pushes an error code only for some
 * vectors; the others push a zero so the frame is the same for all.
 */
	.text
	.macro	EXC_STUB vec, has_err
	.align	16
exc_stub_\vec:
	.if	\has_err == 0
	pushq	$0
	.endif
	pushq	$\vec
	jmp	exc_common
	.endm

	EXC_STUB 0, 0
	EXC_STUB 1, 0
	EXC_STUB 2, 0
	EXC_STUB 3, 0
	EXC_STUB 4, 0
	EXC_STUB 5, 0
	EXC_STUB 6, 0
	EXC_STUB 7, 0
	EXC_STUB 8, 1
	EXC_STUB 9, 0
	EXC_STUB 10, 1
	EXC_STUB 11, 1
	EXC_STUB 12, 1
	EXC_STUB 13, 1
	EXC_STUB 14, 1
	EXC_STUB 15, 0
	EXC_STUB 16, 0
	EXC_STUB 17, 1
	EXC_STUB 18, 0
	EXC_STUB 19, 0
	EXC_STUB 20, 0
	EXC_STUB 21, 1
	EXC_STUB 22, 0
	EXC_STUB 23, 0
	EXC_STUB 24, 0
	EXC_STUB 25, 0
	EXC_STUB 26, 0
	EXC_STUB 27, 0
	EXC_STUB 28, 0
	EXC_STUB 29, 1
	EXC_STUB 30, 1
	EXC_STUB 31, 0

/*
 * Frame: [rsp] vector, [rsp+8] error code, [rsp+16] RIP. The host reads
 * rbx/rcx with KVM_GET_REGS (and CR2 from the sregs) when the OUT exits.
 */
exc_common:
	movq	(%rsp), %rax
	movq	8(%rsp), %rcx
	movq	16(%rsp), %rbx
	movw	$MV_PORT_EXCEPTION, %dx
	outl	%eax, %dx
2:	hlt
	jmp	2b

/* Stub addresses for guest_idt_setup(), in vector order. */
	.section .rodata
	.align	8
	.globl	guest_exc_stubs
guest_exc_stubs:
	.irp	v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad	exc_stub_\v
	.endr

	.section .note.GNU-stack, "", @progbits
