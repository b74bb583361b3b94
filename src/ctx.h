/* ctx.h - machine context switch (internal; never installed).
 *
 * Two layers:
 *  - raw: conc__ctx_switch(from, to) saves the caller's callee-saved state on
 *    its own stack, stores the stack pointer in from->sp, loads to->sp and
 *    returns into the other context.  Written in assembly for x86-64
 *    (src/arch/ctx-x86_64.S: rbx rbp r12-r15, MXCSR control bits, x87
 *    control word) and aarch64 (src/arch/ctx-aarch64.S: x19-x30, d8-d15,
 *    FPCR); other targets, or CONC_CTX_FORCE_UCONTEXT, use ucontext.
 *  - annotated: conc__ctx_jump / conc__ctx_jump_final wrap the raw switch
 *    with the ASan and TSan fiber annotations.  Everything that switches
 *    between coroutines uses these; the raw switch is for tests and benches.
 *
 * A context made by conc__ctx_make starts in a small boot function that
 * finishes the sanitizer switch and calls entry(arg).  entry must never
 * return: it ends by conc__ctx_jump_final to another context (returning
 * aborts the process).  A thread's own stack needs a conc__ctx too:
 * conc__ctx_init_current() prepares one to be switched away from.
 *
 * Thread-safety: a context runs on one thread at a time; nothing here locks.
 * The file depends only on libc so that tests/arch/ctx-smoke.c can build it
 * with a cross compiler.
 */
#ifndef CONC_CTX_H
#define CONC_CTX_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(CONC_CTX_FORCE_UCONTEXT) ||                                       \
    !(defined(__x86_64__) || defined(__aarch64__))
#define CONC_CTX_UCONTEXT 1
#include <fenv.h>
#include <ucontext.h>
#endif

/* Sanitizer detection (also usable without internal.h). */
#if defined(__SANITIZE_ADDRESS__)
#define CONC_CTX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONC_CTX_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CONC_CTX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONC_CTX_TSAN 1
#endif
#endif

#ifdef CONC_CTX_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old, size_t *size_old);
#endif
#ifdef CONC_CTX_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

typedef struct conc__ctx {
  void *sp;                  /* saved stack pointer (asm layout) */
  void (*entry)(void *);     /* set by conc__ctx_make */
  void *arg;
  const void *stack_lo;      /* [stack_lo, stack_lo + stack_size): for ASan */
  size_t stack_size;
#ifdef CONC_CTX_ASAN
  void *asan_fake;           /* fake stack saved while switched out */
#endif
#ifdef CONC_CTX_TSAN
  void *tsan_fiber;
  int tsan_owned;            /* created by us: destroyed by conc__ctx_destroy */
#endif
#ifdef CONC_CTX_UCONTEXT
  ucontext_t uc;
  int uc_round;              /* conc__ctx_make_fp: rounding mode at boot */
  int uc_round_set;
#endif
} conc__ctx;

/* ---- raw layer ---------------------------------------------------------- */

#ifdef CONC_CTX_UCONTEXT
static inline void conc__ctx_switch(conc__ctx *from, conc__ctx *to) {
  if (swapcontext(&from->uc, &to->uc) != 0)
    abort();
}
#else
/* Save the caller's state in from, resume to.  Returns when something
 * switches back to from.  Assembly; see src/arch/. */
void conc__ctx_switch(conc__ctx *from, conc__ctx *to);
/* First code a made context runs: calls boot(ctx) (held in callee-saved
 * registers of the initial frame), then aborts if that returns. */
void conc__ctx_trampoline(void);
#endif

#if defined(__x86_64__) && !defined(CONC_CTX_UCONTEXT)
/* The same switch, leaving by ret instead of pop + jmp: better predicted
 * when both sides switch from one call site (the scheduler; see
 * src/arch/ctx-x86_64.S).  Interchangeable with conc__ctx_switch (same
 * frame). */
void conc__ctx_switch_ret(conc__ctx *from, conc__ctx *to);
#else
#define conc__ctx_switch_ret conc__ctx_switch
#endif

static inline void conc__ctx_boot(conc__ctx *c);

#ifdef CONC_CTX_UCONTEXT
static inline void conc__ctx_uc_boot(unsigned hi, unsigned lo) {
  conc__ctx_boot((conc__ctx *)(((uintptr_t)hi << 16 << 16) | (uintptr_t)lo));
  abort();
}
#endif

/* Prepare ctx to run entry(arg) on [stack_lo, stack_lo + size) at its first
 * switch-in.  The floating-point control state (rounding, exception masks,
 * flush-to-zero) starts as the caller's.  size must hold at least a few
 * hundred bytes; stack_lo needs no particular alignment.  Returns 0, or -1
 * if the stack is too small.  Never allocates. */
static inline uint64_t conc__ctx_get_fp(void);
static inline int conc__ctx_make_fp(conc__ctx *ctx, void *stack_lo,
                                    size_t size, void (*entry)(void *),
                                    void *arg, uint64_t fp, void *fiber);

static inline int conc__ctx_make(conc__ctx *ctx, void *stack_lo, size_t size,
                                 void (*entry)(void *), void *arg) {
  return conc__ctx_make_fp(ctx, stack_lo, size, entry, arg, conc__ctx_get_fp(),
                           NULL);
}

/* Give ctx, to be made later by conc__ctx_make_fp, its TSan fiber now
 * (nothing without TSan); conc__ctx_fiber_of then returns it for
 * conc__ctx_make_fp.  The scheduler does this at spawn, from the spawner:
 * created at the first switch in instead, 2*10^4 fibers exhausted TSan's
 * trace memory in the mprotect-guard test. */
static inline void conc__ctx_fiber_early(conc__ctx *ctx) {
#ifdef CONC_CTX_TSAN
  ctx->tsan_fiber = __tsan_create_fiber(0);
  ctx->tsan_owned = 1;
#else
  (void)ctx;
#endif
}

static inline void *conc__ctx_fiber_of(const conc__ctx *ctx) {
#ifdef CONC_CTX_TSAN
  return ctx->tsan_fiber;
#else
  (void)ctx;
  return NULL;
#endif
}

/* As conc__ctx_make, starting with the floating-point control state fp
 * (from conc__ctx_get_fp, maybe taken earlier or on another context of
 * this thread), and with the TSan fiber given by conc__ctx_fiber_early
 * (fiber from conc__ctx_fiber_of; NULL: create one now).  With the ucontext fallback only the rounding mode is
 * carried. */
static inline int conc__ctx_make_fp(conc__ctx *ctx, void *stack_lo,
                                    size_t size, void (*entry)(void *),
                                    void *arg, uint64_t fp, void *fiber) {
  if (size < 512)
    return -1;
  ctx->entry = entry;
  ctx->arg = arg;
  ctx->stack_lo = stack_lo;
  ctx->stack_size = size;
#ifdef CONC_CTX_ASAN
  ctx->asan_fake = NULL;
#endif
#ifdef CONC_CTX_TSAN
  ctx->tsan_fiber = fiber ? fiber : __tsan_create_fiber(0);
  ctx->tsan_owned = 1;
#else
  (void)fiber;
#endif
  uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
#if defined(CONC_CTX_UCONTEXT)
  ctx->uc_round_set = 0;
  if (getcontext(&ctx->uc) != 0)
    return -1;
  ctx->uc.uc_stack.ss_sp = stack_lo;
  ctx->uc.uc_stack.ss_size = size;
  ctx->uc.uc_link = NULL;
  uintptr_t p = (uintptr_t)ctx;
  makecontext(&ctx->uc, (void (*)(void))conc__ctx_uc_boot, 2,
              (unsigned)(p >> 16 >> 16), (unsigned)(p & 0xffffffffu));
  ctx->uc_round = (int)fp;
  ctx->uc_round_set = 1;
  (void)top;
#elif defined(__x86_64__)
  /* Frame popped by conc__ctx_switch, lowest address first:
   *   [0] MXCSR (low 32 bits) | x87 control word (bits 32-47)
   *   [1] r15 [2] r14 [3] r13 [4] r12 = boot arg [5] rbx = boot fn
   *   [6] rbp = 0 [7] return address = trampoline
   * After the ret, rsp = top (16-aligned), as at a call site. */
  uint64_t *f = (uint64_t *)top - 8;
  f[0] = fp; /* (MXCSR & ~status flags) | x87 CW << 32: conc__ctx_get_fp */
  f[1] = f[2] = f[3] = 0;
  f[4] = (uint64_t)(uintptr_t)ctx;
  f[5] = (uint64_t)(uintptr_t)conc__ctx_boot;
  f[6] = 0;
  f[7] = (uint64_t)(uintptr_t)conc__ctx_trampoline;
  ctx->sp = f;
#elif defined(__aarch64__)
  /* Frame of 176 bytes popped by conc__ctx_switch (8-byte slots):
   *   [0] x19 = boot fn [1] x20 = boot arg [2..9] x21-x28
   *   [10] x29 = 0 [11] x30 = trampoline [12..19] d8-d15 [20] FPCR [21] pad */
  uint64_t *f = (uint64_t *)top - 22;
  uint64_t fpcr = fp;
  for (int i = 0; i < 22; i++)
    f[i] = 0;
  f[0] = (uint64_t)(uintptr_t)conc__ctx_boot;
  f[1] = (uint64_t)(uintptr_t)ctx;
  f[11] = (uint64_t)(uintptr_t)conc__ctx_trampoline;
  f[20] = fpcr;
  ctx->sp = f;
#endif
  return 0;
}

/* The calling thread's floating-point control state, for
 * conc__ctx_make_fp (so that a context made later starts with the state of
 * whoever asked for it, not of whoever makes it).  With the ucontext
 * fallback only the rounding mode is carried. */
static inline uint64_t conc__ctx_get_fp(void) {
#if defined(CONC_CTX_UCONTEXT)
  return (uint64_t)(unsigned)fegetround();
#elif defined(__x86_64__)
  uint32_t mxcsr;
  uint16_t fcw;
  __asm__ __volatile__("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(fcw));
  return (uint64_t)(mxcsr & ~0x3fu) | ((uint64_t)fcw << 32);
#elif defined(__aarch64__)
  uint64_t fpcr;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
  return fpcr;
#endif
}

/* ---- annotated layer ----------------------------------------------------- */

/* Prepare the calling thread's current stack as a context that can be
 * switched away from and back to (its stack bounds are learnt by ASan on
 * the first switch).  Never fails. */
static inline void conc__ctx_init_current(conc__ctx *ctx) {
  ctx->sp = NULL;
  ctx->entry = NULL;
  ctx->arg = NULL;
  ctx->stack_lo = NULL;
  ctx->stack_size = 0;
#ifdef CONC_CTX_ASAN
  ctx->asan_fake = NULL;
#endif
#ifdef CONC_CTX_TSAN
  ctx->tsan_fiber = __tsan_get_current_fiber();
  ctx->tsan_owned = 0;
#endif
}

/* Release what conc__ctx_make created (the TSan fiber).  Not while ctx
 * runs.  The stack belongs to the caller. */
static inline void conc__ctx_destroy(conc__ctx *ctx) {
#ifdef CONC_CTX_TSAN
  if (ctx->tsan_owned && ctx->tsan_fiber)
    __tsan_destroy_fiber(ctx->tsan_fiber);
  ctx->tsan_fiber = NULL;
#endif
  (void)ctx;
}

#ifdef CONC_CTX_ASAN
/* The context that switched last on this thread: the one resumed side
 * records its stack bounds (learnt from ASan) into it.  One variable for
 * the whole program (weak, so this header can define it), because the
 * switch out and the resumption may sit in different source files. */
__attribute__((weak, visibility("hidden"))) _Thread_local conc__ctx
    *conc__ctx_asan_prev;
static inline void conc__ctx_asan_finish(void *fake) {
  const void *lo = NULL;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(fake, &lo, &size);
  conc__ctx *prev = conc__ctx_asan_prev;
  if (prev && !prev->stack_lo) {
    prev->stack_lo = lo;
    prev->stack_size = size;
  }
}
#endif

static inline void conc__ctx_jump_(conc__ctx *from, conc__ctx *to, int final,
                                   int sym) {
#ifdef CONC_CTX_ASAN
  conc__ctx_asan_prev = from;
  __sanitizer_start_switch_fiber(final ? NULL : &from->asan_fake, to->stack_lo,
                                 to->stack_size);
#endif
#ifdef CONC_CTX_TSAN
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
  (void)final;
  if (sym)
    conc__ctx_switch_ret(from, to);
  else
    conc__ctx_switch(from, to);
#ifdef CONC_CTX_ASAN
  conc__ctx_asan_finish(from->asan_fake);
#endif
}

/* Switch from the running context (from) to to, with sanitizer annotations.
 * Returns when something switches back to from. */
static inline void conc__ctx_jump(conc__ctx *from, conc__ctx *to) {
  conc__ctx_jump_(from, to, 0, 0);
}

/* As conc__ctx_jump, for switches between contexts that all switch from
 * the same call site (the scheduler's switch_out): uses
 * conc__ctx_switch_ret, whose return is predicted right there. */
static inline void conc__ctx_jump_sym(conc__ctx *from, conc__ctx *to) {
  conc__ctx_jump_(from, to, 0, 1);
}

/* As conc__ctx_jump, for a context that will never be resumed (its entry is
 * finished): ASan frees its fake stack.  Must not return; the caller may
 * then conc__ctx_destroy from and free its stack from another context. */
static inline _Noreturn void conc__ctx_jump_final(conc__ctx *from,
                                                  conc__ctx *to) {
  conc__ctx_jump_(from, to, 1, 0);
  abort();
}

static inline void conc__ctx_boot(conc__ctx *c) {
#ifdef CONC_CTX_ASAN
  conc__ctx_asan_finish(NULL);
#endif
#ifdef CONC_CTX_UCONTEXT
  if (c->uc_round_set)
    fesetround(c->uc_round);
#endif
  c->entry(c->arg);
  abort(); /* entry returned: it must end with conc__ctx_jump_final */
}

#endif
