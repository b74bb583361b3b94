/* ctx-smoke.c - standalone check of the context switch (src/ctx.h with
 * src/arch/ctx-<arch>.S, or the ucontext fallback), for cross builds run
 * under qemu-user (tools/test-aarch64.sh).  No Check, no libconc: stacks
 * come from mmap.  Exits 0 when every check passes, 1 otherwise.
 *
 * DESIGN: the same properties as tests/test-ctx.c in miniature - values
 * across many switches, callee-saved registers (by assembly on aarch64:
 * x19-x28 and d8-d15 loaded with patterns across a switch to a context that
 * scribbles on them; elsewhere by live values), the floating-point control
 * state per context (fesetround), and deep recursion on a coroutine stack.
 */
#define _GNU_SOURCE
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ctx.h"

static int failures;
#define CHECK(c)                                                              \
  do {                                                                        \
    if (!(c)) {                                                               \
      fprintf(stderr, "ctx-smoke: check failed at line %d: %s\n", __LINE__,   \
              #c);                                                            \
      failures++;                                                             \
    }                                                                         \
  } while (0)

static void *stack_new(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  return p;
}

/* ---- ping-pong ---- */
static conc__ctx m, a, b;
static volatile long val;
static long errs;
enum { ROUNDS = 100000 };

static void a_entry(void *arg) {
  (void)arg;
  for (long i = 0; i < ROUNDS; i++) {
    errs += val != 2 * i;
    val = 2 * i + 1;
    conc__ctx_jump(&a, &b);
  }
  conc__ctx_jump_final(&a, &m);
}
static void b_entry(void *arg) {
  long local = (long)(intptr_t)arg;
  for (long i = 0;; i++) {
    errs += val != 2 * i + 1 || local != 5 + i;
    val = 2 * i + 2;
    local++;
    conc__ctx_jump(&b, &a);
  }
}

/* ---- callee-saved registers ---- */
static conc__ctx cm, co;
static void helper(void) { conc__ctx_jump(&cm, &co); }
void (*volatile smoke_helper)(void) = helper;

static void co_entry(void *arg) {
  (void)arg;
  for (;;) {
#if defined(__aarch64__)
    __asm__ __volatile__("mov x19, #1\n\tmov x20, #2\n\tmov x21, #3\n\t"
                         "mov x22, #4\n\tmov x23, #5\n\tmov x24, #6\n\t"
                         "mov x25, #7\n\tmov x26, #8\n\tmov x27, #9\n\t"
                         "mov x28, #10\n\tfmov d8, xzr\n\tfmov d9, xzr\n\t"
                         "fmov d10, xzr\n\tfmov d11, xzr\n\tfmov d12, xzr\n\t"
                         "fmov d13, xzr\n\tfmov d14, xzr\n\tfmov d15, xzr"
                         ::: "x19", "x20", "x21", "x22", "x23", "x24", "x25",
                           "x26", "x27", "x28", "d8", "d9", "d10", "d11",
                           "d12", "d13", "d14", "d15");
#endif
    conc__ctx_jump(&co, &cm);
  }
}

#if defined(__aarch64__)
static unsigned long roundtrip(void) {
  unsigned long bad;
  __asm__ __volatile__(
      "mov x19, #0x1119\n\tmov x20, #0x1120\n\tmov x21, #0x1121\n\t"
      "mov x22, #0x1122\n\tmov x23, #0x1123\n\tmov x24, #0x1124\n\t"
      "mov x25, #0x1125\n\tmov x26, #0x1126\n\tmov x27, #0x1127\n\t"
      "mov x28, #0x1128\n\t"
      "mov x9, #0x2208\n\tfmov d8, x9\n\tmov x9, #0x2209\n\tfmov d9, x9\n\t"
      "mov x9, #0x2210\n\tfmov d10, x9\n\tmov x9, #0x2211\n\tfmov d11, x9\n\t"
      "mov x9, #0x2212\n\tfmov d12, x9\n\tmov x9, #0x2213\n\tfmov d13, x9\n\t"
      "mov x9, #0x2214\n\tfmov d14, x9\n\tmov x9, #0x2215\n\tfmov d15, x9\n\t"
      "adrp x9, smoke_helper\n\tldr x9, [x9, :lo12:smoke_helper]\n\t"
      "blr x9\n\t"
      "mov %0, #0\n\t"
#define R(reg, v, bit)                                                        \
  "mov x9, #" #v "\n\tcmp " #reg ", x9\n\tcset x10, ne\n\torr %0, %0, x10, lsl #" #bit "\n\t"
#define D(reg, v, bit)                                                        \
  "fmov x11, " #reg "\n\tmov x9, #" #v "\n\tcmp x11, x9\n\tcset x10, ne\n\torr %0, %0, x10, lsl #" #bit "\n\t"
      R(x19, 0x1119, 0) R(x20, 0x1120, 1) R(x21, 0x1121, 2) R(x22, 0x1122, 3)
      R(x23, 0x1123, 4) R(x24, 0x1124, 5) R(x25, 0x1125, 6) R(x26, 0x1126, 7)
      R(x27, 0x1127, 8) R(x28, 0x1128, 9)
      D(d8, 0x2208, 10) D(d9, 0x2209, 11) D(d10, 0x2210, 12) D(d11, 0x2211, 13)
      D(d12, 0x2212, 14) D(d13, 0x2213, 15) D(d14, 0x2214, 16) D(d15, 0x2215, 17)
      : "=&r"(bad)
      :
      : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10",
        "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x19", "x20", "x21",
        "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x30", "v0", "v1",
        "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12",
        "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22",
        "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31", "memory",
        "cc");
  return bad;
}
#else
static unsigned long roundtrip(void) {
  volatile unsigned long seed = 99;
  unsigned long x1 = seed * 3, x2 = seed * 5, x3 = seed * 7, x4 = seed * 11;
  double d1 = (double)seed / 3, d2 = (double)seed / 7;
  smoke_helper();
  unsigned long s = seed;
  return (x1 != s * 3) | (x2 != s * 5) | (x3 != s * 7) | (x4 != s * 11) |
         (d1 != (double)s / 3) | (d2 != (double)s / 7);
}
#endif

/* ---- floating-point control ---- */
static conc__ctx fm, fc;
static volatile int seen_initial, seen_after;

static void fp_entry(void *arg) {
  (void)arg;
  seen_initial = fegetround();
  fesetround(FE_UPWARD);
  conc__ctx_jump(&fc, &fm);
  volatile double one = 1.0, three = 3.0;
  volatile double q = one / three;
  seen_after = fegetround() == FE_UPWARD && q * 3.0 > 1.0;
  conc__ctx_jump_final(&fc, &fm);
}

/* ---- recursion ---- */
static conc__ctx rm, rc;
static long depth_reached, rec_bad;
static long __attribute__((noinline)) rec(long d) {
  volatile char buf[128];
  for (int i = 0; i < 128; i++)
    buf[i] = (char)(d + i);
  long r = d < 4000 ? rec(d + 1) : d;
  for (int i = 0; i < 128; i++)
    rec_bad += buf[i] != (char)(d + i);
  return r;
}
static void rec_entry(void *arg) {
  (void)arg;
  depth_reached = rec(0);
  conc__ctx_jump_final(&rc, &rm);
}

int main(void) {
  const size_t sz = 64 * 1024;
  void *sa = stack_new(sz), *sb = stack_new(sz), *sc = stack_new(sz),
       *sf = stack_new(sz), *sr = stack_new(2 << 20);

  conc__ctx_init_current(&m);
  CHECK(conc__ctx_make(&a, sa, sz, a_entry, NULL) == 0);
  CHECK(conc__ctx_make(&b, sb, sz, b_entry, (void *)5) == 0);
  conc__ctx_jump(&m, &a);
  CHECK(errs == 0);
  CHECK(val == 2 * ROUNDS);

  conc__ctx_init_current(&cm);
  CHECK(conc__ctx_make(&co, sc, sz, co_entry, NULL) == 0);
  for (int i = 0; i < 100; i++)
    CHECK(roundtrip() == 0);

  fesetround(FE_DOWNWARD);
  conc__ctx_init_current(&fm);
  CHECK(conc__ctx_make(&fc, sf, sz, fp_entry, NULL) == 0);
  fesetround(FE_TONEAREST);
  conc__ctx_jump(&fm, &fc);
  CHECK(seen_initial == FE_DOWNWARD);
  CHECK(fegetround() == FE_TONEAREST);
  fesetround(FE_TOWARDZERO);
  conc__ctx_jump(&fm, &fc);
  CHECK(seen_after == 1);
  CHECK(fegetround() == FE_TOWARDZERO);
  fesetround(FE_TONEAREST);

  conc__ctx_init_current(&rm);
  CHECK(conc__ctx_make(&rc, sr, 2 << 20, rec_entry, NULL) == 0);
  conc__ctx_jump(&rm, &rc);
  CHECK(depth_reached == 4000 && rec_bad == 0);

  char tiny[16];
  CHECK(conc__ctx_make(&rc, tiny, sizeof tiny, rec_entry, NULL) == -1);

  printf("ctx-smoke: %s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}
