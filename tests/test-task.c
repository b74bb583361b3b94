/* test-task.c - the task context outside executors, registered tasks, the
 * registry and bytes. */
#include "harness.h"

CONC_TASK(echo, in, len, out) { return conc_bytes_append(out, in, len); }

CONC_TASK(fails_with_message, in, len, out) {
  (void)in;
  (void)len;
  (void)out;
  return conc_task_fail(42, "bad input of %zu bytes", len);
}

static int plain_fn(const void *in, size_t len, conc_bytes *out) {
  (void)in;
  (void)len;
  (void)out;
  return 0;
}
static int other_fn(const void *in, size_t len, conc_bytes *out) {
  (void)in;
  (void)len;
  (void)out;
  return 1;
}

START_TEST(task_registered_at_load) {
  ck_assert_uint_ge(conc_task_count(), 2);
  conc_task_fn fn;
  ck_assert_int_eq(conc_task_lookup("echo", &fn), 0);
  ck_assert_ptr_eq((void *)(uintptr_t)fn, (void *)(uintptr_t)echo);
  ck_assert_int_eq(conc_task_lookup("missing", &fn), CONC_ENOENT);
  ck_assert_int_eq(conc_task_lookup(NULL, &fn), CONC_EINVAL);
  ck_assert_int_eq(conc_task_lookup("echo", NULL), CONC_EINVAL);
  /* names are listed sorted */
  size_t n = conc_task_count();
  for (size_t i = 1; i < n; i++)
    ck_assert_int_lt(strcmp(conc_task_name(i - 1), conc_task_name(i)), 0);
  ck_assert_ptr_null(conc_task_name(n));
}
END_TEST

START_TEST(task_register_rules) {
  uint64_t h0 = conc_task_registry_hash();
  ck_assert_int_eq(conc_task_register("plain.fn-1:x", plain_fn), 0);
  ck_assert_int_eq(conc_task_register("plain.fn-1:x", plain_fn), 0);
  ck_assert_int_eq(conc_task_register("plain.fn-1:x", other_fn), CONC_EEXIST);
  ck_assert(conc_task_registry_hash() != h0);
  ck_assert_int_eq(conc_task_register("", plain_fn), CONC_EINVAL);
  ck_assert_int_eq(conc_task_register("has space", plain_fn), CONC_EINVAL);
  ck_assert_int_eq(conc_task_register(NULL, plain_fn), CONC_EINVAL);
  ck_assert_int_eq(conc_task_register("x", NULL), CONC_EINVAL);
  char longname[80];
  memset(longname, 'a', 64);
  longname[64] = 0;
  ck_assert_int_eq(conc_task_register(longname, plain_fn), CONC_EINVAL);
  longname[63] = 0;
  ck_assert_int_eq(conc_task_register(longname, plain_fn), 0);
  /* at-load registration reports failure through the log, not abort */
  conc_task_register_at_load("plain.fn-1:x", other_fn);
  conc_task_register_at_load("fresh_one", plain_fn);
  conc_task_fn fn;
  ck_assert_int_eq(conc_task_lookup("fresh_one", &fn), 0);
}
END_TEST

START_TEST(task_run_here) {
  conc_bytes out = {0};
  int code = -1;
  char msg[64];
  ck_assert_int_eq(conc_task_run("echo", "hello", 5, &out, &code, msg, 64), 0);
  ck_assert_uint_eq(out.len, 5);
  ck_assert(memcmp(out.data, "hello", 5) == 0);
  ck_assert_int_eq(code, 0);
  conc_bytes_free(&out);
  ck_assert_int_eq(
      conc_task_run("fails_with_message", "abc", 3, &out, &code, msg, 64),
      CONC_ETASK);
  ck_assert_int_eq(code, 42);
  ck_assert_str_eq(msg, "bad input of 3 bytes");
  ck_assert_int_eq(conc_task_run("nope", NULL, 0, &out, NULL, NULL, 0),
                   CONC_ENOENT);
  ck_assert_int_eq(conc_task_run(NULL, NULL, 0, &out, NULL, NULL, 0),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_task_run("echo", NULL, 0, NULL, NULL, NULL, 0),
                   CONC_EINVAL);
  conc_bytes_free(&out);
}
END_TEST

START_TEST(task_calls_outside_a_task) {
  conc_set_log_handler(NULL, NULL);
  ck_assert_int_eq(conc_task_fail(1, "nobody listens"), CONC_EPERM);
  ck_assert(!conc_task_stop_requested());
  ck_assert_int_eq(conc_task_wait_stop(0), CONC_EPERM);
  ck_assert_int_eq(conc_task_stopped(), CONC_EPERM);
}
END_TEST

CONC_TASK(stop_probe, in, len, out) {
  (void)in;
  (void)len;
  (void)out;
  /* run by conc_task_run: no future, so no stop can arrive */
  if (conc_task_stop_requested())
    return 1;
  if (conc_task_wait_stop(0.01) != CONC_ETIMEDOUT)
    return 2;
  return conc_task_stopped();
}

START_TEST(task_stop_calls_without_future) {
  conc_bytes out = {0};
  int code;
  ck_assert_int_eq(conc_task_run("stop_probe", NULL, 0, &out, &code, NULL, 0),
                   CONC_ECANCELED);
  conc_bytes_free(&out);
}
END_TEST

START_TEST(bytes_append_reserve_free) {
  conc_bytes b = {0};
  ck_assert_int_eq(conc_bytes_reserve(&b, 10), 0);
  ck_assert_uint_ge(b.cap, 10);
  ck_assert_uint_eq(b.len, 0);
  for (int i = 0; i < 1000; i++)
    ck_assert_int_eq(conc_bytes_append(&b, &i, sizeof i), 0);
  ck_assert_uint_eq(b.len, 1000 * sizeof(int));
  int x;
  memcpy(&x, b.data + 999 * sizeof(int), sizeof x);
  ck_assert_int_eq(x, 999);
  ck_assert_int_eq(conc_bytes_append(&b, NULL, 0), 0);
  ck_assert_int_eq(conc_bytes_append(&b, NULL, 1), CONC_EINVAL);
  ck_assert_int_eq(conc_bytes_append(NULL, "x", 1), CONC_EINVAL);
  ck_assert_int_eq(conc_bytes_reserve(NULL, 1), CONC_EINVAL);
  ck_assert_int_eq(conc_bytes_reserve(&b, SIZE_MAX), CONC_ENOMEM);
  conc_bytes_free(&b);
  ck_assert_ptr_null(b.data);
  ck_assert_uint_eq(b.cap, 0);
  conc_bytes_free(NULL);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_bytes_append(&b, "x", 1), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
}
END_TEST

/* ---- base: clock, sleep, cpus, allocator, log ---- */

START_TEST(base_clock_and_sleep) {
  double t0 = conc_now();
  ck_assert_int_eq(conc_sleep(0.02), 0);
  double dt = conc_now() - t0;
  ck_assert(dt >= 0.02 && dt < 10);
  ck_assert_int_eq(conc_sleep(-1), CONC_EINVAL);
  ck_assert_int_eq(conc_sleep(NAN), CONC_EINVAL);
  ck_assert_int_eq(conc_sleep(0), 0);
  ck_assert_int_ge(conc_cpu_count(), 1);
}
END_TEST

static long my_allocs;
static void *my_malloc(size_t n) {
  my_allocs++;
  return malloc(n);
}
static void *my_realloc(void *p, size_t n) { return realloc(p, n); }
static void *my_calloc(size_t c, size_t n) {
  my_allocs++;
  return calloc(c, n);
}

START_TEST(base_set_allocator) {
  ck_assert_int_eq(conc_set_allocator(my_malloc, NULL, NULL, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_set_allocator(my_malloc, my_realloc, my_calloc, free),
                   0);
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  conc_future_release(f);
  ck_assert_int_eq(my_allocs, 1);
  ck_assert_int_eq(conc_set_allocator(NULL, NULL, NULL, NULL), 0);
  conc_test_no_leak_check(); /* the harness's allocator was replaced */
}
END_TEST

static int levels_seen;
static void level_log(conc_log_level l, const char *m, void *ud) {
  (void)m;
  *(int *)ud |= 1 << l;
  levels_seen |= 1 << l;
}

START_TEST(base_log_handler_levels) {
  int mask = 0;
  conc_set_log_handler(level_log, &mask);
  conc_log(CONC_LOG_DEBUG, "d");
  conc_log(CONC_LOG_INFO, "i");
  conc_log(CONC_LOG_WARN, "w");
  conc_log(CONC_LOG_ERROR, "e");
  ck_assert_int_eq(mask, 0xf);
  conc_set_log_handler(NULL, NULL);
  conc_log(CONC_LOG_DEBUG, "to the default handler: dropped");
  ck_assert_int_eq(levels_seen, 0xf);
}
END_TEST

CONC_TEST_MAIN("task", task_registered_at_load, task_register_rules,
               task_run_here, task_calls_outside_a_task,
               task_stop_calls_without_future, bytes_append_reserve_free,
               base_clock_and_sleep, base_set_allocator,
               base_log_handler_levels)
