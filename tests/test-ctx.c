/* test-ctx.c - context switch (src/ctx.h, src/arch/) and stack pool
 * (src/stack.c).
 *
 * DESIGN: contexts run on stacks from the pool and are switched with the
 * annotated conc__ctx_jump, so the sanitizer builds check the fiber
 * annotations too.  Guard-page hits are checked in a forked child (it must
 * die of SIGSEGV; under ASan/TSan the sanitizer's report kills it instead).
 * Fork-using cases fork a single-threaded test child.  Nothing here times
 * anything except ctx_pingpong, which prints (never asserts) the cost of a
 * switch.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <fcntl.h>
#include <fenv.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"
#include "stack.h"

#if defined(CONC_TEST_ASAN) || defined(CONC_TEST_TSAN)
#define SANITIZED 1
#define MANY 10000
#else
#define MANY 100000
#endif

/* ---- helpers ---- */

static conc__stack_pool *new_pool(conc__guard_mode mode, size_t size) {
  conc__stack_options o;
  conc__stack_options_init(&o);
  o.guard = mode;
  if (size)
    o.stack_size = size;
  conc__stack_pool *p = NULL;
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), 0);
  return p;
}

static long maps_lines(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  ck_assert_ptr_nonnull(f);
  long n = 0;
  int c;
  while ((c = fgetc(f)) != EOF)
    n += c == '\n';
  fclose(f);
  return n;
}

static int wait_child(pid_t pid) {
  int st = 0;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  return st;
}

/* ---- ping-pong: values across many switches ---- */

enum { ROUNDS = 200000 };
static conc__ctx pp_main, pp_a, pp_b;
static volatile long pp_val;
static long pp_errors;

static void pp_a_entry(void *arg) {
  long *rounds = arg;
  for (long i = 0; i < *rounds; i++) {
    if (pp_val != 2 * i)
      pp_errors++;
    pp_val = 2 * i + 1;
    conc__ctx_jump(&pp_a, &pp_b);
  }
  conc__ctx_jump_final(&pp_a, &pp_main);
}

static void pp_b_entry(void *arg) {
  long local = (long)(intptr_t)arg; /* a value on B's own stack */
  for (long i = 0;; i++) {
    if (pp_val != 2 * i + 1 || local != 77 + i)
      pp_errors++;
    pp_val = 2 * i + 2;
    local++;
    conc__ctx_jump(&pp_b, &pp_a);
  }
}

START_TEST(ctx_pingpong) {
  conc__stack_pool *p = new_pool(CONC__GUARD_AUTO, 0);
  conc__stack sa, sb;
  ck_assert_int_eq(conc__stack_alloc(p, &sa), 0);
  ck_assert_int_eq(conc__stack_alloc(p, &sb), 0);
  long rounds = ROUNDS;
  conc__ctx_init_current(&pp_main);
  ck_assert_int_eq(conc__ctx_make(&pp_a, sa.lo, sa.size, pp_a_entry, &rounds), 0);
  ck_assert_int_eq(conc__ctx_make(&pp_b, sb.lo, sb.size, pp_b_entry, (void *)77), 0);
  double t0 = conc_now();
  conc__ctx_jump(&pp_main, &pp_a);
  double dt = conc_now() - t0;
  ck_assert_int_eq(pp_errors, 0);
  ck_assert_int_eq(pp_val, 2 * ROUNDS);
  printf("ctx_pingpong: %.1f ns per annotated switch (%d switches)\n",
         dt * 1e9 / (2.0 * ROUNDS), 2 * ROUNDS);
  conc__ctx_destroy(&pp_a);
  conc__ctx_destroy(&pp_b);
  conc__stack_free(p, &sa);
  conc__stack_free(p, &sb);
  conc__stack_pool_destroy(p);
}
END_TEST

/* ---- callee-saved registers survive a switch ---- */

static conc__ctx cs_main, cs_other;
static void cs_helper(void);
void (*volatile conc_test_cs_helper)(void) = cs_helper;

static void cs_helper(void) { conc__ctx_jump(&cs_main, &cs_other); }

/* The other side scribbles over every callee-saved register. */
static void cs_entry(void *arg) {
  (void)arg;
  for (;;) {
#if defined(__x86_64__)
    __asm__ __volatile__("movq $-1, %%rbx\n\tmovq $-2, %%r12\n\tmovq $-3, %%r13\n\t"
                         "movq $-4, %%r14\n\tmovq $-5, %%r15"
                         ::: "rbx", "r12", "r13", "r14", "r15");
#elif defined(__aarch64__)
    __asm__ __volatile__("mov x19, #1\n\tmov x20, #2\n\tmov x21, #3\n\t"
                         "mov x22, #4\n\tmov x23, #5\n\tmov x24, #6\n\t"
                         "mov x25, #7\n\tmov x26, #8\n\tmov x27, #9\n\t"
                         "mov x28, #10\n\tfmov d8, xzr\n\tfmov d15, xzr"
                         ::: "x19", "x20", "x21", "x22", "x23", "x24", "x25",
                           "x26", "x27", "x28", "d8", "d15");
#endif
    conc__ctx_jump(&cs_other, &cs_main);
  }
}

#if defined(__x86_64__)
/* Load patterns into rbx rbp r12-r15, switch away and back (through
 * conc_test_cs_helper, an ordinary C function), and return a bit mask of
 * the registers that changed. */
static unsigned long cs_roundtrip(void) {
  unsigned long bad;
  __asm__ __volatile__(
      "pushq %%rbp\n\t"
      "movq %%rsp, %%rax\n\t"
      "subq $256, %%rsp\n\t" /* stay clear of the red zone */
      "andq $-16, %%rsp\n\t"
      "pushq %%rax\n\t"
      "pushq %%rax\n\t"
      "movabsq $0x1111111111111111, %%rbx\n\t"
      "movabsq $0x2222222222222222, %%rbp\n\t"
      "movabsq $0x3333333333333333, %%r12\n\t"
      "movabsq $0x4444444444444444, %%r13\n\t"
      "movabsq $0x5555555555555555, %%r14\n\t"
      "movabsq $0x6666666666666666, %%r15\n\t"
      "call *conc_test_cs_helper(%%rip)\n\t"
      "xorl %%eax, %%eax\n\t"
      "movabsq $0x1111111111111111, %%rcx\n\tcmpq %%rcx, %%rbx\n\t"
      "setne %%dl\n\torb %%dl, %%al\n\t"
      "movabsq $0x2222222222222222, %%rcx\n\tcmpq %%rcx, %%rbp\n\t"
      "setne %%dl\n\tshlb $1, %%dl\n\torb %%dl, %%al\n\t"
      "movabsq $0x3333333333333333, %%rcx\n\tcmpq %%rcx, %%r12\n\t"
      "setne %%dl\n\tshlb $2, %%dl\n\torb %%dl, %%al\n\t"
      "movabsq $0x4444444444444444, %%rcx\n\tcmpq %%rcx, %%r13\n\t"
      "setne %%dl\n\tshlb $3, %%dl\n\torb %%dl, %%al\n\t"
      "movabsq $0x5555555555555555, %%rcx\n\tcmpq %%rcx, %%r14\n\t"
      "setne %%dl\n\tshlb $4, %%dl\n\torb %%dl, %%al\n\t"
      "movabsq $0x6666666666666666, %%rcx\n\tcmpq %%rcx, %%r15\n\t"
      "setne %%dl\n\tshlb $5, %%dl\n\torb %%dl, %%al\n\t"
      "popq %%rcx\n\t"
      "popq %%rcx\n\t"
      "movq %%rcx, %%rsp\n\t"
      "popq %%rbp"
      : "=a"(bad)
      :
      : "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3",
        "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15");
  return bad;
}
#else
/* Elsewhere: many values live across the switch, in whatever registers the
 * compiler picks. */
static unsigned long cs_roundtrip(void) {
  volatile unsigned long seed = 12345;
  unsigned long a = seed * 3, b = seed * 5, c = seed * 7, d = seed * 11,
                e = seed * 13, f = seed * 17, g = seed * 19, h = seed * 23;
  double x = (double)seed * 0.5, y = (double)seed * 0.25;
  conc_test_cs_helper();
  unsigned long s = seed;
  return (a != s * 3) | (b != s * 5) << 1 | (c != s * 7) << 2 |
         (d != s * 11) << 3 | (e != s * 13) << 4 | (f != s * 17) << 5 |
         (g != s * 19) << 6 | (h != s * 23) << 7 |
         (unsigned long)(x != (double)s * 0.5) << 8 |
         (unsigned long)(y != (double)s * 0.25) << 9;
}
#endif

START_TEST(ctx_callee_saved) {
  conc__stack_pool *p = new_pool(CONC__GUARD_AUTO, 0);
  conc__stack s;
  ck_assert_int_eq(conc__stack_alloc(p, &s), 0);
  conc__ctx_init_current(&cs_main);
  ck_assert_int_eq(conc__ctx_make(&cs_other, s.lo, s.size, cs_entry, NULL), 0);
  for (int i = 0; i < 1000; i++)
    ck_assert_uint_eq(cs_roundtrip(), 0);
  /* cs_other is parked mid-loop; its stack is simply dropped. */
  conc__ctx_destroy(&cs_other);
  conc__stack_free(p, &s);
  conc__stack_pool_destroy(p);
}
END_TEST

/* ---- floating-point control state is per context ---- */

static conc__ctx fp_main, fp_co;
static volatile int fp_seen_round;
static volatile unsigned fp_seen_csr;
static volatile int fp_step;

#if defined(__x86_64__)
static unsigned get_mxcsr(void) {
  unsigned v;
  __asm__ __volatile__("stmxcsr %0" : "=m"(v));
  return v;
}
static void set_mxcsr(unsigned v) { __asm__ __volatile__("ldmxcsr %0" ::"m"(v)); }
static unsigned get_fcw(void) {
  unsigned short v;
  __asm__ __volatile__("fnstcw %0" : "=m"(v));
  return v;
}
static void set_fcw(unsigned v) {
  unsigned short w = (unsigned short)v;
  __asm__ __volatile__("fldcw %0" ::"m"(w));
}
#endif

/* Rounding observed by arithmetic, not just by fegetround. */
static int observed_round(void) {
  volatile double one = 1.0, three = 3.0;
  double up = one / three, down = -one / three;
  volatile double u = up, d = down;
  if (u * 3.0 > 1.0 && d * 3.0 > -1.0)
    return FE_UPWARD;
  return 0;
}

static void fp_entry(void *arg) {
  (void)arg;
  fp_seen_round = fegetround(); /* inherited from the creator */
  ck_assert_int_eq(fesetround(FE_UPWARD), 0);
#if defined(__x86_64__)
  set_mxcsr(get_mxcsr() | 0x8040); /* FTZ | DAZ */
  set_fcw((get_fcw() & ~0x300u) | 0x000u); /* x87 precision: single */
#endif
  fp_step = 1;
  conc__ctx_jump(&fp_co, &fp_main);
  /* main changed its own state meanwhile; ours must be intact */
  fp_seen_round = fegetround() == FE_UPWARD && observed_round() == FE_UPWARD;
#if defined(__x86_64__)
  fp_seen_csr = (get_mxcsr() & 0x8040) == 0x8040 && (get_fcw() & 0x300) == 0;
#else
  fp_seen_csr = 1;
#endif
  fp_step = 2;
  conc__ctx_jump_final(&fp_co, &fp_main);
}

START_TEST(ctx_fp_control_isolated) {
  conc__stack_pool *p = new_pool(CONC__GUARD_AUTO, 0);
  conc__stack s;
  ck_assert_int_eq(conc__stack_alloc(p, &s), 0);
  ck_assert_int_eq(fesetround(FE_DOWNWARD), 0);
  conc__ctx_init_current(&fp_main);
  ck_assert_int_eq(conc__ctx_make(&fp_co, s.lo, s.size, fp_entry, NULL), 0);
  ck_assert_int_eq(fesetround(FE_TONEAREST), 0);
#if defined(__x86_64__)
  unsigned csr0 = get_mxcsr(), fcw0 = get_fcw();
#endif
  conc__ctx_jump(&fp_main, &fp_co);
  ck_assert_int_eq(fp_step, 1);
  ck_assert_int_eq(fp_seen_round, FE_DOWNWARD); /* state at make time */
  ck_assert_int_eq(fegetround(), FE_TONEAREST);  /* not leaked back */
  ck_assert_int_ne(observed_round(), FE_UPWARD);
#if defined(__x86_64__)
  ck_assert_uint_eq(get_mxcsr() & ~0x3fu, csr0 & ~0x3fu);
  ck_assert_uint_eq(get_fcw(), fcw0);
#endif
  ck_assert_int_eq(fesetround(FE_TOWARDZERO), 0);
  conc__ctx_jump(&fp_main, &fp_co);
  ck_assert_int_eq(fp_step, 2);
  ck_assert_int_eq(fp_seen_round, 1);
  ck_assert_uint_eq(fp_seen_csr, 1);
  ck_assert_int_eq(fegetround(), FE_TOWARDZERO);
  fesetround(FE_TONEAREST);
  conc__ctx_destroy(&fp_co);
  conc__stack_free(p, &s);
  conc__stack_pool_destroy(p);
}
END_TEST

/* ---- deep recursion within a stack ---- */

static conc__ctx dr_main, dr_co;
static const char *dr_lo;
static size_t dr_size;
static long dr_depth, dr_bad;

static long __attribute__((noinline)) recurse(long depth) {
  volatile char buf[200];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (char)(depth + (long)i);
  long r = depth;
  /* stop with a quarter of the stack (and the sanitizers' slack) left */
  if ((size_t)((const char *)buf - dr_lo) > dr_size / 4)
    r = recurse(depth + 1);
  for (size_t i = 0; i < sizeof buf; i++)
    if (buf[i] != (char)(depth + (long)i))
      dr_bad++;
  return r;
}

static void dr_entry(void *arg) {
  (void)arg;
  dr_depth = recurse(0);
  conc__ctx_jump_final(&dr_co, &dr_main);
}

START_TEST(ctx_deep_recursion) {
  conc__stack_pool *p = new_pool(CONC__GUARD_AUTO, 1 << 20);
  conc__stack s;
  ck_assert_int_eq(conc__stack_alloc(p, &s), 0);
  dr_lo = s.lo;
  dr_size = s.size;
  conc__ctx_init_current(&dr_main);
  ck_assert_int_eq(conc__ctx_make(&dr_co, s.lo, s.size, dr_entry, NULL), 0);
  conc__ctx_jump(&dr_main, &dr_co);
  ck_assert_int_eq(dr_bad, 0);
  ck_assert_int_gt(dr_depth, 1000); /* >= 200 B a frame over 3/4 MiB */
  conc__ctx_destroy(&dr_co);
  conc__stack_free(p, &s);
  conc__stack_pool_destroy(p);
}
END_TEST

/* ---- a stack overflow hits the guard page ---- */

static conc__ctx ov_main, ov_co;

static volatile long ov_limit = -1; /* never reached: -1 is huge */

static long __attribute__((noinline)) overflow(long n) {
  volatile char buf[64];
  buf[0] = (char)n;
  if ((unsigned long)n == (unsigned long)ov_limit)
    return 0;
  long r = overflow(n + 1) + buf[0]; /* not a tail call */
  return r;
}

static void ov_entry(void *arg) {
  (void)arg;
  overflow(0);
  conc__ctx_jump_final(&ov_co, &ov_main);
}

/* Overflow a stack of the given mode in a child; returns its wait status. */
static int overflow_in_child(conc__guard_mode mode) {
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* the sanitizers' overflow report is hundreds of frames: keep it out
     * of the test log */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
      dup2(devnull, 2);
    conc__stack_options o;
    conc__stack_options_init(&o);
    o.guard = mode;
    o.stack_size = 64 * 1024;
    conc__stack_pool *p = NULL;
    conc__stack s;
    if (conc__stack_pool_create(&o, &p) != 0 || conc__stack_alloc(p, &s) != 0 ||
        !s.guarded)
      _exit(3);
    conc__ctx_init_current(&ov_main);
    if (conc__ctx_make(&ov_co, s.lo, s.size, ov_entry, NULL) != 0)
      _exit(4);
    conc__ctx_jump(&ov_main, &ov_co);
    _exit(0); /* overflow went unnoticed */
  }
  return wait_child(pid);
}

static void check_overflow_detected(conc__guard_mode mode) {
  int st = overflow_in_child(mode);
  printf("ctx_guard_overflow (%s): child status %#x\n",
         conc__guard_mode_name(mode), st);
#ifdef SANITIZED
  /* The sanitizer reports the SIGSEGV and aborts or exits non-zero. */
  ck_assert_msg(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
                                    WEXITSTATUS(st) != 3 && WEXITSTATUS(st) != 4),
                "overflow not detected (status %#x)", st);
#else
  ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
                "overflow not detected (status %#x)", st);
#endif
}

START_TEST(ctx_guard_overflow) {
  conc__guard_mode m = conc__stack_probe_guard();
  printf("guard mode probed: %s\n", conc__guard_mode_name(m));
  if (m == CONC__GUARD_INSTALL)
    check_overflow_detected(CONC__GUARD_INSTALL);
  check_overflow_detected(CONC__GUARD_MPROTECT);
}
END_TEST

/* ---- many stacks, few map entries ---- */

START_TEST(stack_many_guarded) {
  long before = maps_lines();
  conc__stack_pool *p = new_pool(CONC__GUARD_AUTO, 0);
  conc__guard_mode mode = conc__stack_pool_mode(p);
  conc__stack *s = malloc(MANY * sizeof *s);
  ck_assert_ptr_nonnull(s);
  long guarded = 0;
  for (long i = 0; i < MANY; i++) {
    ck_assert_int_eq(conc__stack_alloc(p, &s[i]), 0);
    guarded += s[i].guarded;
    ((volatile char *)s[i].lo)[s[i].size - 1] = 1; /* commit the top page */
  }
  long during = maps_lines();
  printf("stack_many_guarded: mode %s, %d stacks, %ld guarded, "
         "/proc/self/maps %ld -> %ld lines\n",
         conc__guard_mode_name(mode), MANY, guarded, before, during);
  ck_assert_int_lt(during, 65530 * 6 / 10); /* budget: half, plus slack */
  if (mode == CONC__GUARD_INSTALL) {
    ck_assert_int_eq(guarded, MANY);
    /* one line per slab of 256 (TSan adds shadow mappings of its own) */
    ck_assert_int_lt(during - before, MANY / 20);
  }
  ck_assert_uint_eq(conc__stack_pool_live(p), MANY);
  for (long i = MANY - 1; i >= 0; i--)
    conc__stack_free(p, &s[i]);
  /* reuse: LIFO, no new mappings */
  for (long i = 0; i < MANY; i++)
    ck_assert_int_eq(conc__stack_alloc(p, &s[i]), 0);
#ifndef SANITIZED
  ck_assert_int_le(maps_lines(), during + 2);
#endif
  for (long i = 0; i < MANY; i++)
    conc__stack_free(p, &s[i]);
  conc__stack_pool_trim(p);
  conc__stack_pool_destroy(p);
  free(s);
#ifndef SANITIZED /* the sanitizers' allocators map memory of their own */
  ck_assert_int_le(maps_lines(), before + 2);
#endif
}
END_TEST

/* ---- mprotect fallback, forced ---- */

static atomic_int log_warns;
static void count_log(conc_log_level level, const char *msg, void *ud) {
  (void)msg;
  (void)ud;
  if (level >= CONC_LOG_WARN)
    atomic_fetch_add(&log_warns, 1);
}

START_TEST(stack_mprotect_fallback) {
  long before = maps_lines();
  conc__stack_pool *p = new_pool(CONC__GUARD_MPROTECT, 0);
  ck_assert_int_eq(conc__stack_pool_mode(p), CONC__GUARD_MPROTECT);
  conc__stack s[300];
  for (int i = 0; i < 300; i++) {
    ck_assert_int_eq(conc__stack_alloc(p, &s[i]), 0);
    ck_assert(s[i].guarded);
  }
  long during = maps_lines();
  printf("stack_mprotect_fallback: 300 stacks, maps %ld -> %ld lines\n",
         before, during);
  ck_assert_int_ge(during - before, 300); /* each guard splits the VMA */
  /* the guard is PROT_NONE in this mode */
  ck_assert_int_eq(mprotect((char *)s[7].lo - 4096, 4096, PROT_NONE), 0);
  for (int i = 0; i < 300; i++)
    conc__stack_free(p, &s[i]);
  conc__stack_pool_destroy(p);
#ifndef SANITIZED
  ck_assert_int_le(maps_lines(), before + 2);
#endif
}
END_TEST

START_TEST(stack_mprotect_budget) {
  conc_set_log_handler(count_log, NULL);
  conc__stack_options o;
  conc__stack_options_init(&o);
  o.guard = CONC__GUARD_MPROTECT;
  o.map_share = 8.5 / 65530.0; /* 4 stacks' worth on a default box */
  long max = 65530;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
  if (f) {
    ck_assert_int_eq(fscanf(f, "%ld", &max), 1);
    fclose(f);
  }
  o.map_share = 8.5 / (double)max;
  conc__stack_pool *p = NULL;
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), 0);
  conc__stack s[10];
  for (int i = 0; i < 10; i++) {
    ck_assert_int_eq(conc__stack_alloc(p, &s[i]), 0);
    ck_assert_int_eq(s[i].guarded, i < 4);
  }
  ck_assert_int_eq(atomic_load(&log_warns), 1); /* once */
  /* with fail_unguarded, the same budget gives CONC_ENOMEM */
  o.fail_unguarded = true;
  conc__stack_pool *q = NULL;
  ck_assert_int_eq(conc__stack_pool_create(&o, &q), 0);
  conc__stack t;
  ck_assert_int_eq(conc__stack_alloc(q, &t), CONC_ENOMEM);
  for (int i = 0; i < 10; i++)
    conc__stack_free(p, &s[i]);
  conc__stack_pool_destroy(p);
  /* budget returned: q can guard again */
  ck_assert_int_eq(conc__stack_alloc(q, &t), 0);
  ck_assert(t.guarded);
  conc__stack_free(q, &t);
  conc__stack_pool_destroy(q);
  ck_assert_int_eq(atomic_load(&log_warns), 1);
  conc_set_log_handler(NULL, NULL);
}
END_TEST

/* ---- many contexts on pooled stacks, round robin ---- */

enum { NCO = 1000, NSTEPS = 20 };
static conc__ctx rr_main, rr_ctx[NCO];
static long rr_count[NCO];

static void rr_entry(void *arg) {
  long i = (long)(intptr_t)arg;
  char local[256];
  memset(local, (int)i, sizeof local);
  for (int k = 0; k < NSTEPS; k++) {
    rr_count[i] += local[k % 256] == (char)i;
    conc__ctx_jump(&rr_ctx[i], &rr_main);
  }
  conc__ctx_jump_final(&rr_ctx[i], &rr_main);
}

START_TEST(ctx_many_round_robin) {
  conc__stack_pool *p = new_pool(CONC__GUARD_AUTO, 16384);
  static conc__stack s[NCO];
  conc__ctx_init_current(&rr_main);
  for (long i = 0; i < NCO; i++) {
    ck_assert_int_eq(conc__stack_alloc(p, &s[i]), 0);
    ck_assert_int_eq(conc__ctx_make(&rr_ctx[i], s[i].lo, s[i].size, rr_entry,
                                    (void *)(intptr_t)i), 0);
  }
  for (int k = 0; k <= NSTEPS; k++)
    for (long i = 0; i < NCO; i++)
      conc__ctx_jump(&rr_main, &rr_ctx[i]);
  for (long i = 0; i < NCO; i++) {
    ck_assert_int_eq(rr_count[i], NSTEPS);
    conc__ctx_destroy(&rr_ctx[i]);
    conc__stack_free(p, &s[i]);
  }
  conc__stack_pool_destroy(p);
}
END_TEST

/* ---- bad arguments and allocation failures ---- */

START_TEST(stack_invalid_options) {
  conc__stack_options o;
  conc__stack_pool *p = NULL;
  ck_assert_int_eq(conc__stack_pool_create(NULL, NULL), CONC_EINVAL);
  conc__stack_options_init(&o);
  o.size = 1;
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), CONC_EINVAL);
  conc__stack_options_init(&o);
  o.stack_size = 0;
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), CONC_EINVAL);
  o.stack_size = (size_t)2 << 30;
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), CONC_EINVAL);
  conc__stack_options_init(&o);
  o.map_share = 0;
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), CONC_EINVAL);
  o.map_share = 1.5;
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), CONC_EINVAL);
  conc__stack_options_init(&o);
  o.slots_per_map = 0;
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), CONC_EINVAL);
  conc__stack_options_init(&o);
  o.guard = (conc__guard_mode)9;
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), CONC_EINVAL);
  if (conc__stack_probe_guard() != CONC__GUARD_INSTALL) {
    o.guard = CONC__GUARD_INSTALL;
    ck_assert_int_eq(conc__stack_pool_create(&o, &p), CONC_ENOTSUP);
  }
  ck_assert_ptr_null(p);
  /* NONE: no guard; odd sizes round up to pages */
  conc__stack_options_init(&o);
  o.guard = CONC__GUARD_NONE;
  o.stack_size = 5000;
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), 0);
  conc__stack s;
  ck_assert_int_eq(conc__stack_alloc(p, &s), 0);
  ck_assert(!s.guarded);
  ck_assert_uint_eq(s.size % (size_t)sysconf(_SC_PAGESIZE), 0);
  ck_assert_uint_ge(s.size, 5000);
  ck_assert_int_eq(conc__stack_alloc(NULL, &s), CONC_EINVAL);
  conc__stack_free(p, &s);
  conc__stack_pool_destroy(p);
  conc__stack_pool_destroy(NULL);
  /* a stack too small for a context */
  conc__ctx c;
  char small[64];
  ck_assert_int_eq(conc__ctx_make(&c, small, sizeof small, NULL, NULL), -1);
  ck_assert_str_eq(conc__guard_mode_name(CONC__GUARD_AUTO), "auto");
}
END_TEST

START_TEST(stack_alloc_failure) {
  conc__stack_pool *p = NULL;
  conc__stack_options o;
  conc__stack_options_init(&o);
  o.slots_per_map = 4;
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), CONC_ENOMEM);
  ck_assert_ptr_null(p);
  ck_assert_int_eq(conc__stack_pool_create(&o, &p), 0);
  conc__stack s[9];
  /* every allocation that can fail, in turn: the free array and the slab
   * table of each new slab */
  int ok = 0;
  for (int n = 1; ok < 9; n++) {
    conc_test_fail_alloc_after(1);
    int r = conc__stack_alloc(p, &s[ok]);
    conc_test_fail_alloc_after(0);
    if (r == 0) {
      ok++;
    } else {
      ck_assert_int_eq(r, CONC_ENOMEM);
      ck_assert_int_eq(conc__stack_alloc(p, &s[ok]), 0); /* then recovers */
      ok++;
    }
    ck_assert_int_lt(n, 100);
  }
  ck_assert_uint_eq(conc__stack_pool_live(p), 9);
  for (int i = 0; i < 9; i++)
    conc__stack_free(p, &s[i]);
  conc__stack_pool_destroy(p);
}
END_TEST

#ifndef SANITIZED
/* mmap failure: an address-space limit in a child. */
START_TEST(stack_mmap_failure) {
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    conc__stack_options o;
    conc__stack_options_init(&o);
    o.stack_size = 1 << 20;
    o.slots_per_map = 1024; /* 1 GiB a slab */
    conc__stack_pool *p = NULL;
    if (conc__stack_pool_create(&o, &p) != 0)
      _exit(2);
    struct rlimit cur;
    getrlimit(RLIMIT_AS, &cur);
    struct rlimit rl = {512u << 20, cur.rlim_max}; /* soft limit only */
    if (setrlimit(RLIMIT_AS, &rl) != 0)
      _exit(3);
    conc__stack s;
    if (conc__stack_alloc(p, &s) != CONC_ENOMEM)
      _exit(4);
    if (setrlimit(RLIMIT_AS, &cur) != 0)
      _exit(6);
    int r = conc__stack_alloc(p, &s);
    if (r != 0) {
      fprintf(stderr, "alloc after limit: %d %s\n", r, strerror(errno));
      _exit(5);
    }
    conc__stack_free(p, &s);
    conc__stack_pool_destroy(p);
    _exit(0);
  }
  int st = wait_child(pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}
END_TEST
#endif

CONC_TEST_MAIN("ctx", ctx_pingpong, ctx_callee_saved, ctx_fp_control_isolated,
               ctx_deep_recursion, ctx_guard_overflow, stack_many_guarded,
               stack_mprotect_fallback, stack_mprotect_budget,
               ctx_many_round_robin, stack_invalid_options, stack_alloc_failure
#ifndef SANITIZED
               , stack_mmap_failure
#endif
)
