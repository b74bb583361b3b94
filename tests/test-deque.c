/* test-deque.c - the work-stealing deque (internal) and the pool's parking
 * under stress: every item taken exactly once, no lost wake-up. */
#include "harness.h"

#include "deque.h"

#include <sched.h>

#if defined(CONC_TEST_TSAN) || defined(CONC_TEST_ASAN)
#define ITEMS 100000
#else
#define ITEMS 1000000
#endif
#define THIEVES 3

static conc__deque dq;
static _Atomic unsigned char *seen;
static atomic_long taken;
static atomic_int owner_done;

/* Item i travels as the job {fn = i + 16, arg = ~i}: a torn pair (one word
 * of one item, the other of another) would fail the check. */
static conc__job item(uintptr_t i) {
  conc__job j = {(conc_fn)(i + 16), (void *)~i};
  return j;
}

static void claim_item(conc__job x) {
  uintptr_t i = (uintptr_t)x.fn - 16;
  ck_assert_uint_lt(i, ITEMS);
  ck_assert_msg((uintptr_t)x.arg == ~i, "torn job: fn %lu arg %lx",
                (unsigned long)i, (unsigned long)(uintptr_t)x.arg);
  unsigned char was = atomic_exchange(&seen[i], 1);
  ck_assert_msg(was == 0, "item %lu taken twice", (unsigned long)i);
  atomic_fetch_add(&taken, 1);
}

static void *thief(void *arg) {
  (void)arg;
  for (;;) {
    conc__job x;
    int rc = conc__deque_steal(&dq, &x);
    if (rc == CONC__STEAL_RETRY)
      continue;
    if (rc == CONC__STEAL_EMPTY) {
      if (atomic_load(&owner_done) && conc__deque_size(&dq) == 0)
        return NULL;
      sched_yield(); /* 2 cores: let the owner run */
      continue;
    }
    claim_item(x);
  }
}

START_TEST(deque_many_thieves_each_item_once) {
  seen = calloc(ITEMS, 1);
  atomic_store(&taken, 0);
  atomic_store(&owner_done, 0);
  ck_assert_int_eq(conc__deque_init(&dq, 2), 0); /* tiny: forces growth */
  pthread_t t[THIEVES];
  for (int i = 0; i < THIEVES; i++)
    pthread_create(&t[i], NULL, thief, NULL);
  unsigned seed = 12345;
  for (uintptr_t i = 0; i < ITEMS; i++) {
    ck_assert_int_eq(conc__deque_push(&dq, item(i)), 0);
    seed = seed * 1103515245u + 12345u;
    if ((seed >> 16) % 3 == 0) { /* the owner takes some back, LIFO */
      conc__job x;
      if (conc__deque_take(&dq, &x))
        claim_item(x);
    }
  }
  conc__job x;
  while (conc__deque_take(&dq, &x))
    claim_item(x);
  atomic_store(&owner_done, 1);
  for (int i = 0; i < THIEVES; i++)
    pthread_join(t[i], NULL);
  if (atomic_load(&taken) != ITEMS)
    for (long i = 0; i < ITEMS; i++)
      if (!seen[i])
        fprintf(stderr, "missing item %ld\n", i);
  ck_assert_int_eq(atomic_load(&taken), ITEMS);
  conc__deque_destroy(&dq);
  free((void *)seen);
}
END_TEST

START_TEST(deque_owner_lifo_thief_fifo) {
  ck_assert_int_eq(conc__deque_init(&dq, 1), 0);
  for (uintptr_t i = 1; i <= 10; i++)
    ck_assert_int_eq(conc__deque_push(&dq, item(i)), 0);
  ck_assert_int_eq(conc__deque_size(&dq), 10);
  conc__job x;
  ck_assert(conc__deque_take(&dq, &x));
  ck_assert_uint_eq((uintptr_t)x.fn, 10 + 16);
  ck_assert_uint_eq((uintptr_t)x.arg, ~(uintptr_t)10);
  ck_assert_int_eq(conc__deque_steal(&dq, &x), CONC__STEAL_OK);
  ck_assert_uint_eq((uintptr_t)x.fn, 1 + 16);
  ck_assert_int_eq(conc__deque_steal(&dq, &x), CONC__STEAL_OK);
  ck_assert_uint_eq((uintptr_t)x.fn, 2 + 16);
  for (uintptr_t i = 9; i >= 3; i--) {
    ck_assert(conc__deque_take(&dq, &x));
    ck_assert_uint_eq((uintptr_t)x.fn, i + 16);
  }
  ck_assert(!conc__deque_take(&dq, &x));
  ck_assert_int_eq(conc__deque_steal(&dq, &x), CONC__STEAL_EMPTY);
  conc__deque_destroy(&dq);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc__deque_init(&dq, 1), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  conc__deque_destroy(&dq);
}
END_TEST

/* 10^5 park/unpark rounds: one task at a time into an idle pool, each
 * waited for.  A lost wake-up hangs (and the case times out). */
static void *nop(void *a) { return a; }

START_TEST(pool_park_unpark_rounds) {
#if defined(CONC_TEST_TSAN) || defined(CONC_TEST_ASAN)
  enum { ROUNDS = 20000 };
#else
  enum { ROUNDS = 100000 };
#endif
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.max_workers = 2;
  conc_executor *ex;
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), 0);
  for (long i = 0; i < ROUNDS; i++) {
    conc_future *f;
    ck_assert_int_eq(conc_executor_submit(ex, nop, (void *)i, &f), 0);
    void *r;
    ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
    ck_assert_ptr_eq(r, (void *)i);
    conc_future_release(f);
    if (i % 1000 == 999) /* let the workers fall asleep now and then */
      conc_sleep(0.0002);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

CONC_TEST_MAIN("deque", deque_many_thieves_each_item_once,
               deque_owner_lifo_thief_fifo, pool_park_unpark_rounds)
