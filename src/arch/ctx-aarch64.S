/* ctx-aarch64.S - context switch for AArch64 (AAPCS64).
 *
 * DESIGN: conc__ctx_switch(from, to) saves what the ABI says a callee must
 * preserve - x19-x28, the frame pointer x29, the link register x30, the low
 * halves d8-d15 of v8-v15, and FPCR (rounding, flush-to-zero, trap enables)
 * - in a 176-byte frame on the running stack, stores sp in from->sp (offset
 * 0 of struct conc__ctx), loads to->sp, restores the same frame and returns
 * through x30.  Frame, from sp up (bytes):
 *   [0] x19 x20 [16] x21 x22 [32] x23 x24 [48] x25 x26 [64] x27 x28
 *   [80] x29 x30 [96] d8 d9 [112] d10 d11 [128] d12 d13 [144] d14 d15
 *   [160] FPCR [168] unused
 * conc__ctx_make (src/ctx.h) builds the same frame for a new context with
 * x30 = conc__ctx_trampoline, x19 = boot function, x20 = its argument.
 * FPCR is written only when it differs (msr fpcr can be slow).  Entry
 * points start with BTI c when the compiler builds for BTI; the trampoline
 * is reached by ret, which BTI does not check.  No pointer authentication
 * is used, so only BTI is claimed in the property note.
 */
#if defined(__aarch64__)

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define CONC_BTI_C hint 34
#else
#define CONC_BTI_C
#endif

	.text
	.p2align 4
	.globl conc__ctx_switch
	.hidden conc__ctx_switch
	.type conc__ctx_switch, %function
conc__ctx_switch:
	.cfi_startproc
	CONC_BTI_C
	sub sp, sp, #176
	stp x19, x20, [sp, #0]
	stp x21, x22, [sp, #16]
	stp x23, x24, [sp, #32]
	stp x25, x26, [sp, #48]
	stp x27, x28, [sp, #64]
	stp x29, x30, [sp, #80]
	stp d8, d9, [sp, #96]
	stp d10, d11, [sp, #112]
	stp d12, d13, [sp, #128]
	stp d14, d15, [sp, #144]
	mrs x9, fpcr
	str x9, [sp, #160]
	mov x10, sp
	str x10, [x0]
	ldr x10, [x1]
	mov sp, x10
	ldp x19, x20, [sp, #0]
	ldp x21, x22, [sp, #16]
	ldp x23, x24, [sp, #32]
	ldp x25, x26, [sp, #48]
	ldp x27, x28, [sp, #64]
	ldp x29, x30, [sp, #80]
	ldp d8, d9, [sp, #96]
	ldp d10, d11, [sp, #112]
	ldp d12, d13, [sp, #128]
	ldp d14, d15, [sp, #144]
	ldr x10, [sp, #160]
	cmp x9, x10
	b.eq 1f
	msr fpcr, x10
1:	add sp, sp, #176
	ret
	.cfi_endproc
	.size conc__ctx_switch, .-conc__ctx_switch

/* First code of a new context: boot(arg) with x19 = boot, x20 = arg. */
	.p2align 4
	.globl conc__ctx_trampoline
	.hidden conc__ctx_trampoline
	.type conc__ctx_trampoline, %function
conc__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	CONC_BTI_C
	mov x0, x20
	blr x19
	brk #0x3c
	.cfi_endproc
	.size conc__ctx_trampoline, .-conc__ctx_trampoline

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
	/* GNU property note: BTI (GNU_PROPERTY_AARCH64_FEATURE_1_AND, bit 0). */
	.section .note.gnu.property, "a"
	.p2align 3
	.long 4
	.long 16
	.long 5
	.asciz "GNU"
	.long 0xc0000000
	.long 4
	.long 1
	.long 0
#endif

#endif /* __aarch64__ */

	.section .note.GNU-stack, "", %progbits
