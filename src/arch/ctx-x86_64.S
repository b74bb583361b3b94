/* ctx-x86_64.S - context switch for x86-64 System V.
 *
 * DESIGN: conc__ctx_switch(from, to) pushes what the ABI says a callee
 * must preserve - rbx rbp r12-r15, plus the control parts of the floating-
 * point state (MXCSR: rounding, exception masks, FTZ/DAZ; the x87 control
 * word: precision and rounding) - onto the running stack, stores rsp in
 * from->sp (offset 0 of struct conc__ctx), loads to->sp and pops the same
 * frame.  xmm registers are all caller-saved in this ABI; the MXCSR status
 * flags travel with the context as well (saved whole).  Frame, from rsp up:
 *   [0] MXCSR  [4] x87 CW  [8] r15 [16] r14 [24] r13 [32] r12 [40] rbx
 *   [48] rbp  [56] return address
 * conc__ctx_make (src/ctx.h) builds the same frame for a new context with
 * the return address set to conc__ctx_trampoline, rbx = boot function and
 * r12 = its argument.  No locks, no memory other than the two stacks.
 * The switch leaves by popping the return address and jumping to it, not
 * by ret: a ret always goes somewhere other than the return-stack
 * predictor expects (the other context's call site), and that
 * misprediction doubled the cost of a switch (measured on AMD EPYC: 15 ns
 * with ret, 7.3 ns with pop+jmp, 5.9 ns without the FP control state).
 * Builds with IBT (-fcf-protection) keep the ret, which IBT does not
 * check.  Restoring MXCSR and the x87 CW only when they differ was tried
 * and was slower (8.5 ns).
 * Shadow stacks (CET SHSTK) are not supported (a switch returns to an
 * address the shadow stack has not seen), so only IBT is claimed.
 */
#if defined(__x86_64__)

#if defined(__CET__) && (__CET__ & 1)
#define CONC_ENDBR endbr64
#else
#define CONC_ENDBR
#endif

	.text
	.p2align 4
	.globl conc__ctx_switch
	.hidden conc__ctx_switch
	.type conc__ctx_switch, @function
conc__ctx_switch:
	.cfi_startproc
	CONC_ENDBR
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	subq $8, %rsp
	stmxcsr (%rsp)
	fnstcw 4(%rsp)
	movq %rsp, (%rdi)
	movq (%rsi), %rsp
	ldmxcsr (%rsp)
	fldcw 4(%rsp)
	addq $8, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
#if defined(__CET__) && (__CET__ & 1)
	ret			/* IBT: an indirect jmp would need endbr64 there */
#else
	popq %rcx		/* pop + jmp: see DESIGN */
	jmp *%rcx
#endif
	.cfi_endproc
	.size conc__ctx_switch, .-conc__ctx_switch

/* conc__ctx_switch_ret(from, to): the same switch and frame, leaving by
 * ret.  For the scheduler, whose coroutines all switch from one call site
 * (coro.c's switch_out): there the return-stack predictor's top entry is
 * that call site, which is also where the resumed context continues, and
 * the predictor stays balanced for the returns that follow.  pop + jmp
 * leaves one entry behind per switch, so each later return in the resumed
 * coroutine mispredicts (measured on AMD EPYC: yield through the scheduler
 * 37 -> 22 ns, channel hop 180 -> 135 ns, while the asymmetric
 * main <-> coroutine ping-pong of bench-coro switch goes 11 -> 25 ns). */
	.p2align 4
	.globl conc__ctx_switch_ret
	.hidden conc__ctx_switch_ret
	.type conc__ctx_switch_ret, @function
conc__ctx_switch_ret:
	.cfi_startproc
	CONC_ENDBR
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	subq $8, %rsp
	stmxcsr (%rsp)
	fnstcw 4(%rsp)
	movq %rsp, (%rdi)
	movq (%rsi), %rsp
	ldmxcsr (%rsp)
	fldcw 4(%rsp)
	addq $8, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.cfi_endproc
	.size conc__ctx_switch_ret, .-conc__ctx_switch_ret

/* First code of a new context: boot(arg) with rbx = boot, r12 = arg; rsp is
 * 16-byte aligned here as at a call site.  boot never returns. */
	.p2align 4
	.globl conc__ctx_trampoline
	.hidden conc__ctx_trampoline
	.type conc__ctx_trampoline, @function
conc__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	CONC_ENDBR
	movq %r12, %rdi
	call *%rbx
	ud2
	.cfi_endproc
	.size conc__ctx_trampoline, .-conc__ctx_trampoline

#if defined(__CET__) && (__CET__ & 1)
	/* GNU property note: IBT (GNU_PROPERTY_X86_FEATURE_1_AND, bit 0). */
	.section .note.gnu.property, "a"
	.p2align 3
	.long 4
	.long 16
	.long 5
	.asciz "GNU"
	.long 0xc0000002
	.long 4
	.long 1
	.p2align 3
#endif

#endif /* __x86_64__ */

	.section .note.GNU-stack, "", %progbits
