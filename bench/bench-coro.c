/* bench/bench-coro.c - workload C: conc's coroutines on one thread.
 *
 *   bench-coro switch N     raw context switch (src/ctx.h), ns per switch
 *   bench-coro yield N      2 coroutines conc_coro_yield N times each:
 *                           ns per yield (one switch through the scheduler)
 *   bench-coro hop N        a token passed N times between 2 coroutines
 *                           over unbuffered channels: ns per hop
 *   bench-coro spawn N      spawn + run + free N detached coroutines from
 *                           one coroutine (in batches of 1024): ns each
 *   bench-coro floor-yield N  the floor under a yield: 2 raw contexts
 *                           (src/ctx.h), each pushes itself on a FIFO run
 *                           queue, pops the head and switches to it: no
 *                           scheduler, no cancellation, no I/O or timers
 *   bench-coro floor-hop N  the floor under a channel hop: the same two
 *                           contexts hand a value to each other through a
 *                           one-slot mailbox (store, wake = push, park =
 *                           pop + switch)
 *   bench-coro floor-spawn N  the floor under spawn + run + free: make a
 *                           context on one hot stack, switch in, the body
 *                           counts and switches back for good (no record,
 *                           no queue, no stack pool)
 *   bench-coro park-hop N   the scheduler's share of a hop: two coroutines
 *                           hand a value to each other with the internal
 *                           park/unpark of src/coro-int.h (what channels
 *                           use), no channel
 *   bench-coro mem N        N coroutines parked in a channel receive with
 *                           256 B of live locals: (RSS + page tables)
 *                           growth per coroutine, bytes
 *
 * Checks: switch and yield count every turn on both sides; hop checks the
 * token's value after N hops; spawn sums every coroutine's argument; mem
 * wakes every coroutine with a value, sums them and checks each one's
 * locals.  A failed check prints CHECK FAILED and exits 2.
 */
#include "common.h"

#include "conc/chan.h"
#include "conc/coro.h"
#include "../src/coro-int.h"
#include "../src/ctx.h"

static long N;

/* ---- raw switch ---- */

static conc__ctx sw_main, sw_co;
static long sw_turns;

static void sw_entry(void *arg) {
  (void)arg;
  for (;;) {
    sw_turns++;
    conc__ctx_jump(&sw_co, &sw_main);
  }
}

static void run_switch(void) {
  size_t sz = 64 * 1024;
  void *stk = malloc(sz);
  if (!stk)
    BENCH_FAIL("malloc");
  conc__ctx_init_current(&sw_main);
  if (conc__ctx_make(&sw_co, stk, sz, sw_entry, NULL) != 0)
    BENCH_FAIL("ctx_make");
  int64_t t0 = bench_now_ns();
  for (long i = 0; i < N; i++)
    conc__ctx_jump(&sw_main, &sw_co);
  int64_t t1 = bench_now_ns();
  if (sw_turns != N)
    BENCH_FAIL("switch: %ld turns, want %ld", sw_turns, N);
  /* 2 switches per iteration (there and back) */
  printf("RESULT value=%.3f unit=ns\n", (double)(t1 - t0) / (2.0 * (double)N));
  /* the coroutine is abandoned on its stack: never resumed, stack leaked
   * until exit */
}

/* ---- floors: raw contexts, a FIFO queue, nothing else ---- */

typedef struct fl_co {
  conc__ctx ctx;
  struct fl_co *next;
  long turns;
  long box; /* floor-hop: the value handed to this context */
} fl_co;

static conc__ctx fl_main;
static fl_co fl[2];
static fl_co *fl_head, *fl_tail, *fl_cur;
static int fl_hop;
static long fl_left;

static inline void fl_push(fl_co *c) {
  c->next = NULL;
  if (fl_tail)
    fl_tail->next = c;
  else
    fl_head = c;
  fl_tail = c;
}

static inline fl_co *fl_pop(void) {
  fl_co *c = fl_head;
  if (c) {
    fl_head = c->next;
    if (!fl_head)
      fl_tail = NULL;
  }
  return c;
}

/* One call site for every switch between the two (as conc's switch_out). */
static __attribute__((noinline)) void fl_switch(fl_co *c) {
  fl_co *n = fl_pop();
  if (!n) {
    conc__ctx_jump(&c->ctx, &fl_main);
    return;
  }
  if (n != c) {
    fl_cur = n;
    conc__ctx_jump_sym(&c->ctx, &n->ctx);
  }
}

static void fl_entry(void *arg) {
  fl_co *me = arg, *other = me == &fl[0] ? &fl[1] : &fl[0];
  while (fl_left > 0) {
    fl_left--;
    me->turns++;
    if (fl_hop) {
      other->box = me->box + 1; /* send: copy into the parked receiver */
      fl_push(other);           /* wake it */
      fl_switch(me);            /* recv: park until handed a value */
    } else {
      fl_push(me);              /* yield */
      fl_switch(me);
    }
  }
  for (;;)
    conc__ctx_jump(&me->ctx, &fl_main);
}

static void run_floor(int hop) {
  size_t sz = 64 * 1024;
  fl_hop = hop;
  fl_left = N;
  conc__ctx_init_current(&fl_main);
  for (int i = 0; i < 2; i++) {
    void *stk = malloc(sz);
    if (!stk || conc__ctx_make(&fl[i].ctx, stk, sz, fl_entry, &fl[i]) != 0)
      BENCH_FAIL("floor setup");
  }
  if (!hop)
    fl_push(&fl[1]);
  int64_t t0 = bench_now_ns();
  fl_cur = &fl[0];
  conc__ctx_jump(&fl_main, &fl[0].ctx);
  int64_t t1 = bench_now_ns();
  if (fl[0].turns + fl[1].turns != N ||
      (hop && fl[0].box + fl[1].box < N - 1))
    BENCH_FAIL("floor: %ld + %ld turns, want %ld", fl[0].turns, fl[1].turns, N);
  printf("RESULT value=%.3f unit=ns\n", (double)(t1 - t0) / (double)N);
}

static conc__ctx fs_main, fs_co;
static long fs_sum;

static void fs_entry(void *arg) {
  fs_sum += (long)(intptr_t)arg;
  conc__ctx_jump_final(&fs_co, &fs_main);
}

static void run_floor_spawn(void) {
  size_t sz = 64 * 1024;
  void *stk = malloc(sz);
  if (!stk)
    BENCH_FAIL("malloc");
  conc__ctx_init_current(&fs_main);
  uint64_t fp = conc__ctx_get_fp();
  int64_t t0 = bench_now_ns();
  for (long i = 0; i < N; i++) {
    if (conc__ctx_make_fp(&fs_co, stk, sz, fs_entry, (void *)(intptr_t)i, fp,
                          NULL))
      BENCH_FAIL("ctx_make");
    conc__ctx_jump(&fs_main, &fs_co);
    conc__ctx_destroy(&fs_co);
  }
  int64_t t1 = bench_now_ns();
  if (fs_sum != N * (N - 1) / 2)
    BENCH_FAIL("floor-spawn: sum %ld", fs_sum);
  printf("RESULT value=%.3f unit=ns\n", (double)(t1 - t0) / (double)N);
}

/* ---- park-hop: the scheduler's park/unpark without a channel ---- */

static conc_coro *ph_co[2];
static long ph_box[2];
static int ph_parked[2];

static int ph_body(void *arg, void **result) {
  (void)result;
  int me = (int)(intptr_t)arg, other = 1 - me;
  ph_co[me] = conc__coro_current();
  if (me == 1) { /* parks first, to receive */
    ph_parked[1] = 1;
    if (conc__coro_park(ph_co[1], INFINITY) != 0)
      BENCH_FAIL("park");
  }
  for (long i = 0; i < N / 2; i++) {
    ph_box[other] = ph_box[me] + 1; /* send: store, wake the parked one */
    if (ph_parked[other]) {
      ph_parked[other] = 0;
      conc__coro_unpark(ph_co[other], 0);
    }
    if (i == N / 2 - 1)
      break;
    ph_parked[me] = 1; /* receive: park until handed a value */
    if (conc__coro_park(ph_co[me], INFINITY) != 0)
      BENCH_FAIL("park");
  }
  return 0;
}

static void run_park_hop(void) {
  N &= ~1L;
  conc_loop *l;
  if (conc_loop_create(NULL, &l) ||
      conc_coro_spawn(l, ph_body, (void *)(intptr_t)1, NULL, NULL) ||
      conc_coro_spawn(l, ph_body, (void *)(intptr_t)0, NULL, NULL))
    BENCH_FAIL("setup");
  int64_t t0 = bench_now_ns();
  if (conc_loop_run(l) != 0)
    BENCH_FAIL("run");
  int64_t t1 = bench_now_ns();
  if (ph_box[0] + ph_box[1] < N - 2)
    BENCH_FAIL("park-hop: %ld + %ld", ph_box[0], ph_box[1]);
  conc_loop_destroy(l);
  printf("RESULT value=%.3f unit=ns\n", (double)(t1 - t0) / (double)N);
}

/* ---- yield ---- */

static long y_count[2];

static int yielder(void *arg, void **result) {
  (void)result;
  long *c = arg;
  for (long i = 0; i < N; i++) {
    if (conc_coro_yield() != 0)
      BENCH_FAIL("yield");
    (*c)++;
  }
  return 0;
}

static void run_yield(void) {
  conc_loop *l;
  if (conc_loop_create(NULL, &l))
    BENCH_FAIL("loop");
  conc_coro_spawn(l, yielder, &y_count[0], NULL, NULL);
  conc_coro_spawn(l, yielder, &y_count[1], NULL, NULL);
  int64_t t0 = bench_now_ns();
  if (conc_loop_run(l) != 0)
    BENCH_FAIL("run");
  int64_t t1 = bench_now_ns();
  if (y_count[0] != N || y_count[1] != N)
    BENCH_FAIL("yield counts %ld %ld", y_count[0], y_count[1]);
  conc_loop_destroy(l);
  printf("RESULT value=%.3f unit=ns\n", (double)(t1 - t0) / (2.0 * (double)N));
}

/* ---- channel hop ---- */

static conc_chan *hop_a, *hop_b;

static int hop_ping(void *arg, void **result) {
  (void)arg;
  (void)result;
  void *v = (void *)(intptr_t)0;
  for (long i = 0; i < N / 2; i++) {
    if (conc_chan_send(hop_a, v, -1) != 0 || conc_chan_recv(hop_b, &v, -1) != 0)
      BENCH_FAIL("ping");
  }
  *result = v;
  return 0;
}

static int hop_pong(void *arg, void **result) {
  (void)arg;
  (void)result;
  for (long i = 0; i < N / 2; i++) {
    void *v;
    if (conc_chan_recv(hop_a, &v, -1) != 0 ||
        conc_chan_send(hop_b, (void *)((intptr_t)v + 2), -1) != 0)
      BENCH_FAIL("pong");
  }
  return 0;
}

static void run_hop(void) {
  N &= ~1L;
  conc_loop *l;
  if (conc_loop_create(NULL, &l) || conc_chan_create(&hop_a, 0) ||
      conc_chan_create(&hop_b, 0))
    BENCH_FAIL("setup");
  conc_coro *h;
  conc_coro_spawn(l, hop_ping, NULL, NULL, &h);
  conc_coro_spawn(l, hop_pong, NULL, NULL, NULL);
  int64_t t0 = bench_now_ns();
  if (conc_loop_run(l) != 0)
    BENCH_FAIL("run");
  int64_t t1 = bench_now_ns();
  void *r = NULL;
  if (conc_coro_result(h, &r) != 0 || (intptr_t)r != (intptr_t)N)
    BENCH_FAIL("hop: token %ld after %ld hops", (long)(intptr_t)r, N);
  conc_coro_release(h);
  conc_loop_destroy(l);
  conc_chan_release(hop_a);
  conc_chan_release(hop_b);
  printf("RESULT value=%.3f unit=ns\n", (double)(t1 - t0) / (double)N);
}

/* ---- spawn + run + free ---- */

static long sp_sum, sp_done;

static int sp_child(void *arg, void **result) {
  (void)result;
  sp_sum += (long)(intptr_t)arg;
  sp_done++;
  return 0;
}

static int sp_parent(void *arg, void **result) {
  (void)arg;
  (void)result;
  for (long i = 0; i < N;) {
    long end = i + 1024 < N ? i + 1024 : N;
    for (; i < end; i++)
      if (conc_coro_spawn(NULL, sp_child, (void *)(intptr_t)i, NULL, NULL))
        BENCH_FAIL("spawn");
    conc_coro_yield(); /* the batch runs and is freed */
  }
  return 0;
}

static void run_spawn(void) {
  conc_loop *l;
  if (conc_loop_create(NULL, &l))
    BENCH_FAIL("loop");
  /* warm the stack pool and the record cache */
  long n = N;
  N = 1024;
  conc_coro_spawn(l, sp_parent, NULL, NULL, NULL);
  conc_loop_run(l);
  N = n;
  sp_sum = sp_done = 0;
  conc_coro_spawn(l, sp_parent, NULL, NULL, NULL);
  int64_t t0 = bench_now_ns();
  if (conc_loop_run(l) != 0)
    BENCH_FAIL("run");
  int64_t t1 = bench_now_ns();
  if (sp_done != N || sp_sum != N * (N - 1) / 2)
    BENCH_FAIL("spawn: %ld ran, sum %ld", sp_done, sp_sum);
  conc_loop_destroy(l);
  printf("RESULT value=%.3f unit=ns\n", (double)(t1 - t0) / (double)N);
}

/* ---- memory per parked coroutine ---- */

static conc_chan *mem_ch;
static long mem_parked, mem_woken, mem_sum, mem_bad;

static int mem_child(void *arg, void **result) {
  (void)result;
  volatile unsigned char locals[256];
  long me = (long)(intptr_t)arg;
  for (int i = 0; i < 256; i++)
    locals[i] = (unsigned char)(me + i);
  mem_parked++;
  void *v;
  if (conc_chan_recv(mem_ch, &v, -1) != 0)
    mem_bad++;
  for (int i = 0; i < 256; i++)
    if (locals[i] != (unsigned char)(me + i))
      mem_bad++;
  mem_sum += (long)(intptr_t)v;
  mem_woken++;
  return 0;
}

static long mem_now(void) {
  return (bench_status_kb("VmRSS") + bench_status_kb("VmPTE")) * 1024;
}

static long mem_growth;

static int mem_parent(void *arg, void **result) {
  (void)arg;
  (void)result;
  long m0 = mem_now();
  for (long i = 0; i < N; i++)
    if (conc_coro_spawn(NULL, mem_child, (void *)(intptr_t)i, NULL, NULL))
      BENCH_FAIL("spawn %ld", i);
  while (mem_parked < N)
    conc_coro_yield();
  mem_growth = mem_now() - m0;
  for (long i = 0; i < N; i++)
    conc_chan_send(mem_ch, (void *)(intptr_t)(i + 1), -1);
  while (mem_woken < N)
    conc_coro_yield();
  return 0;
}

static void run_mem(void) {
  if (conc_chan_create(&mem_ch, 0))
    BENCH_FAIL("chan");
  if (conc_coro_run(mem_parent, NULL, NULL) != 0)
    BENCH_FAIL("run");
  if (mem_bad || mem_woken != N || mem_sum != N * (N + 1) / 2)
    BENCH_FAIL("mem: %ld bad, %ld woken, sum %ld", mem_bad, mem_woken, mem_sum);
  conc_chan_release(mem_ch);
  printf("RESULT value=%.0f unit=B\n", (double)mem_growth / (double)N);
}

int main(int argc, char **argv) {
  if (argc < 3)
    BENCH_FAIL("usage: bench-coro switch|yield|hop|spawn|floor-yield|floor-hop|floor-spawn|park-hop|mem N");
  N = atol(argv[2]);
  if (N <= 0)
    BENCH_FAIL("bad N");
  const char *m = argv[1];
  if (!strcmp(m, "switch"))
    run_switch();
  else if (!strcmp(m, "yield"))
    run_yield();
  else if (!strcmp(m, "hop"))
    run_hop();
  else if (!strcmp(m, "spawn"))
    run_spawn();
  else if (!strcmp(m, "floor-yield"))
    run_floor(0);
  else if (!strcmp(m, "floor-hop"))
    run_floor(1);
  else if (!strcmp(m, "park-hop"))
    run_park_hop();
  else if (!strcmp(m, "floor-spawn"))
    run_floor_spawn();
  else if (!strcmp(m, "mem"))
    run_mem();
  else
    BENCH_FAIL("unknown mode %s", m);
  return 0;
}
