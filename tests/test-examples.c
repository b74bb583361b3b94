/* test-examples.c - run each example program and check what it prints.
 *
 * The examples are separate programs (one per examples/<name>.c, built into
 * CONC_EXAMPLES_DIR).  Each case runs one with small counts
 * (CONC_EXAMPLE_N) and scaled-down sleeps (CONC_EXAMPLE_SLEEP_SCALE) and
 * checks its output: line counts, per-thread order, every name present,
 * map results in input order.  Lines of different threads interleave in
 * any order, so only what the program guarantees is checked.  Timing is
 * checked as a lower bound only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCALE "0.01"

typedef struct lines {
  char *buf; /* the captured output, split in place */
  char **v;
  size_t n;
} lines;

/* Run `env <envs> CONC_EXAMPLES_DIR/<name>`, require exit status 0 and
 * split its stdout into lines. */
static lines run_example(const char *name, const char *envs) {
  char path[1024], cmd[2048];
  snprintf(path, sizeof path, "%s/%s", CONC_EXAMPLES_DIR, name);
  ck_assert_msg(access(path, X_OK) == 0,
                "%s is not built: build the examples target first", path);
  snprintf(cmd, sizeof cmd, "env %s '%s'", envs, path);
  lines l = {0};
  int st = conc_test_capture(cmd, &l.buf);
  ck_assert_msg(st == 0, "%s exited with status %d", cmd, st);
  ck_assert_ptr_nonnull(l.buf);
  size_t cap = 0;
  char *save = NULL;
  for (char *s = strtok_r(l.buf, "\n", &save); s;
       s = strtok_r(NULL, "\n", &save)) {
    if (l.n == cap) {
      cap = cap ? 2 * cap : 64;
      l.v = realloc(l.v, cap * sizeof *l.v);
      ck_assert_ptr_nonnull(l.v);
    }
    l.v[l.n++] = s;
  }
  return l;
}

static void lines_free(lines *l) {
  free(l->v);
  free(l->buf);
}

/* Lines "func i" and "main i", i = 0..n-1 each in order, interleaved in
 * any way, and nothing else. */
static void check_func_main(const lines *l, int n) {
  ck_assert_uint_eq(l->n, 2 * (size_t)n);
  int next_func = 0, next_main = 0;
  for (size_t i = 0; i < l->n; i++) {
    int k;
    char word[8];
    char extra;
    ck_assert_msg(sscanf(l->v[i], "%7s %d%c", word, &k, &extra) == 2,
                  "unexpected line '%s'", l->v[i]);
    if (strcmp(word, "func") == 0)
      ck_assert_int_eq(k, next_func++);
    else if (strcmp(word, "main") == 0)
      ck_assert_int_eq(k, next_main++);
    else
      ck_abort_msg("unexpected line '%s'", l->v[i]);
  }
  ck_assert_int_eq(next_func, n);
  ck_assert_int_eq(next_main, n);
}

START_TEST(example_thread_target) {
  lines l = run_example("thread-target", "CONC_EXAMPLE_N=200");
  check_func_main(&l, 200);
  lines_free(&l);
}
END_TEST

START_TEST(example_thread_subclass) {
  lines l = run_example("thread-subclass", "CONC_EXAMPLE_N=200");
  check_func_main(&l, 200);
  lines_free(&l);
}
END_TEST

/* 100 tasks named 线程0..线程99, each printing "<name> 0".."<name> n-1". */
START_TEST(example_pool_names) {
  enum { TASKS = 100, N = 7 };
  lines l = run_example("pool-names", "CONC_EXAMPLE_N=7");
  ck_assert_uint_eq(l.n, TASKS * N);
  int next[TASKS] = {0};
  for (size_t i = 0; i < l.n; i++) {
    int task, k;
    char extra;
    ck_assert_msg(sscanf(l.v[i], "线程%d %d%c", &task, &k, &extra) == 2,
                  "unexpected line '%s'", l.v[i]);
    ck_assert_int_ge(task, 0);
    ck_assert_int_lt(task, TASKS);
    ck_assert_int_eq(k, next[task]++);
  }
  for (int t = 0; t < TASKS; t++)
    ck_assert_int_eq(next[t], N);
  lines_free(&l);
}
END_TEST

/* Three names, each once, in any (completion) order. */
START_TEST(example_pool_callback) {
  lines l = run_example("pool-callback", "CONC_EXAMPLE_SLEEP_SCALE=" SCALE);
  ck_assert_uint_eq(l.n, 3);
  const char *want[] = {"线程1", "线程2", "线程3"};
  for (int w = 0; w < 3; w++) {
    int seen = 0;
    for (size_t i = 0; i < l.n; i++)
      seen += strcmp(l.v[i], want[w]) == 0;
    ck_assert_msg(seen == 1, "'%s' printed %d times", want[w], seen);
  }
  lines_free(&l);
}
END_TEST

/* Results in input order, then the elapsed time: at least the longest
 * sleep (5 s scaled). */
START_TEST(example_pool_map) {
  lines l = run_example("pool-map", "CONC_EXAMPLE_SLEEP_SCALE=" SCALE);
  ck_assert_uint_eq(l.n, 4);
  ck_assert_str_eq(l.v[0], "result 5");
  ck_assert_str_eq(l.v[1], "result 2");
  ck_assert_str_eq(l.v[2], "result 3");
  char *end;
  double elapsed = strtod(l.v[3], &end);
  ck_assert_msg(*end == 0 && end != l.v[3], "bad elapsed '%s'", l.v[3]);
  ck_assert_double_ge(elapsed, 5 * atof(SCALE));
  lines_free(&l);
}
END_TEST

START_TEST(example_futures_primes) {
  lines l = run_example("futures-primes", "");
  const char *want[] = {
      "112272535095293 is prime: True", "112582705942171 is prime: True",
      "112272535095293 is prime: True", "115280095190773 is prime: True",
      "115797848077099 is prime: True", "1099726899285419 is prime: False",
  };
  ck_assert_uint_eq(l.n, 6);
  for (size_t i = 0; i < 6; i++)
    ck_assert_str_eq(l.v[i], want[i]);
  lines_free(&l);
}
END_TEST

/* The same on a process pool, through a task map. */
START_TEST(example_procpool_primes) {
  lines l = run_example("procpool-primes", "");
  const char *want[] = {
      "112272535095293 is prime: True", "112582705942171 is prime: True",
      "112272535095293 is prime: True", "115280095190773 is prime: True",
      "115797848077099 is prime: True", "1099726899285419 is prime: False",
  };
  ck_assert_uint_eq(l.n, 6);
  for (size_t i = 0; i < 6; i++)
    ck_assert_str_eq(l.v[i], want[i]);
  lines_free(&l);
}
END_TEST

/* The beyond-concurrent.futures features on the process pool. */
START_TEST(example_procpool_extras) {
  lines l = run_example("procpool-extras", "");
  ck_assert_uint_eq(l.n, 7);
  ck_assert_str_eq(l.v[0], "map: 200 results");
  ck_assert_str_eq(l.v[1], "late task: EDEADLINE");
  ck_assert_str_eq(l.v[2], "patient task: ECANCELED (cancelled: no)");
  ck_assert_str_eq(l.v[3], "stubborn task: EKILLED");
  ck_assert_str_eq(l.v[4], "urgent task: ok");
  ck_assert_str_eq(l.v[5], "stats: submitted 29, completed 26, failed 1, "
                           "cancelled 1, deadline missed 1");
  ck_assert_ptr_nonnull(strstr(l.v[6], "27 tasks timed"));
  lines_free(&l);
}
END_TEST

/* One task kills its worker: only it fails, with SIGSEGV. */
START_TEST(example_procpool_crash) {
  lines l = run_example("procpool-crash", "");
  ck_assert_uint_eq(l.n, 17);
  for (int i = 0; i < 16; i++) {
    char want[64];
    if (i == 13) {
      ck_assert_ptr_nonnull(strstr(l.v[i], "13 failed: worker died ("));
#if !defined(CONC_TEST_ASAN) && !defined(CONC_TEST_TSAN)
      /* (a sanitizer's SEGV handler turns the signal into an exit) */
      ck_assert_ptr_nonnull(strstr(l.v[i], "signal 11"));
      ck_assert_ptr_nonnull(strstr(l.v[i], "detail -11)"));
#endif
    } else {
      snprintf(want, sizeof want, "%d squared is %d", i, i * i);
      ck_assert_str_eq(l.v[i], want);
    }
  }
  ck_assert_str_eq(l.v[16], "15 of 16 tasks succeeded");
  lines_free(&l);
}
END_TEST

/* Every source reported exactly once, in any order; the pages' sizes are
 * deterministic. */
START_TEST(example_futures_as_completed) {
  lines l = run_example("futures-as-completed",
                        "CONC_EXAMPLE_SLEEP_SCALE=" SCALE);
  const char *want[] = {
      "'http://www.foxnews.com/' page is 14669 bytes",
      "'http://www.cnn.com/' page is 5365 bytes",
      "'http://europe.wsj.com/' page is 11968 bytes",
      "'http://www.bbc.co.uk/' page is 3747 bytes",
      ("'http://nonexistent-subdomain.python.org/' generated an exception: "
       "<urlopen error [Errno -2] Name or service not known>"),
  };
  ck_assert_uint_eq(l.n, 5);
  for (int w = 0; w < 5; w++) {
    int seen = 0;
    for (size_t i = 0; i < l.n; i++)
      seen += strcmp(l.v[i], want[w]) == 0;
    ck_assert_msg(seen == 1, "'%s' printed %d times", want[w], seen);
  }
  lines_free(&l);
}
END_TEST

/* Each job once; the "still running" counts fall to 0 and end the output;
 * every round reports at least one job. */
START_TEST(example_wait_first_completed) {
  lines l = run_example("wait-first-completed",
                        "CONC_EXAMPLE_SLEEP_SCALE=" SCALE);
  const double delays[] = {0.4, 0.1, 0.3, 0.2};
  int seen[4] = {0};
  int jobs_in_round = 0, jobs = 0;
  long left = 4;
  for (size_t i = 0; i < l.n; i++) {
    int j;
    double d;
    long r;
    char extra;
    if (sscanf(l.v[i], "job %d done after %lf s%c", &j, &d, &extra) == 2) {
      ck_assert_int_ge(j, 0);
      ck_assert_int_lt(j, 4);
      ck_assert_double_eq_tol(d, delays[j], 1e-9);
      seen[j]++;
      jobs++;
      jobs_in_round++;
    } else if (sscanf(l.v[i], "%ld still running%c", &r, &extra) == 1) {
      ck_assert_int_ge(jobs_in_round, 1);
      ck_assert_int_eq(r, left - jobs_in_round);
      left = r;
      jobs_in_round = 0;
    } else {
      ck_abort_msg("unexpected line '%s'", l.v[i]);
    }
  }
  for (int j = 0; j < 4; j++)
    ck_assert_int_eq(seen[j], 1);
  ck_assert_int_eq(jobs, 4);
  ck_assert_int_eq(left, 0);
  ck_assert_msg(l.n > 0 && strcmp(l.v[l.n - 1], "0 still running") == 0,
                "output does not end with '0 still running'");
  lines_free(&l);
}
END_TEST


/* Backpressure, deadline, stop, priority, progress and statistics. */
START_TEST(example_pool_extras) {
  lines l = run_example("pool-extras", "CONC_EXAMPLE_N=320");
  ck_assert_uint_eq(l.n, 6);
  ck_assert_str_eq(l.v[0], "map: 320 results");
  ck_assert_str_eq(l.v[1], "non-blocking submit: ok or would block");
  ck_assert_str_eq(l.v[2], "late task: EDEADLINE");
  ck_assert_str_eq(l.v[3], "stopped task: ECANCELED (cancelled: no)");
  unsigned long long sub, comp, fail, canc, dl;
  ck_assert_int_eq(sscanf(l.v[4],
                          "stats: submitted %llu, completed %llu, failed "
                          "%llu, cancelled %llu, deadline missed %llu",
                          &sub, &comp, &fail, &canc, &dl),
                   5);
  /* 20 map chunks + the non-blocking, late, stopped and priority tasks */
  ck_assert(sub == 24 || sub == 23);
  ck_assert_uint_eq(comp, sub - 2);
  ck_assert_uint_eq(fail, 0);
  ck_assert_uint_eq(canc, 1);
  ck_assert_uint_eq(dl, 1);
  ck_assert_ptr_nonnull(strstr(l.v[5], "tasks timed"));
  lines_free(&l);
}
END_TEST


/* The seed's scan -> download pipeline: two processes and a conc queue. */
START_TEST(example_proc_pipeline) {
  lines l = run_example("proc-pipeline", "");
  ck_assert_uint_eq(l.n, 53);
  size_t downloaded = 0;
  for (size_t i = 0; i < l.n; i++)
    downloaded += strncmp(l.v[i], "downloaded https://img.example/", 31) == 0;
  ck_assert_uint_eq(downloaded, 50);
  ck_assert_str_eq(l.v[50], "downloader: 50 images, 294191 bytes");
  ck_assert_str_eq(l.v[51], "scanner: 20 pages, 50 image addresses queued");
  ck_assert_str_eq(l.v[52], "main: scanner exited 0, downloader exited 0");
  lines_free(&l);
}
END_TEST

/* multiprocessing's forkserver start method: registered tasks in children
 * of the fork server, results through named shared memory. */
START_TEST(example_proc_forkserver) {
  lines l = run_example("proc-forkserver", "");
  ck_assert_uint_eq(l.n, 5);
  for (size_t i = 0; i < 4; i++)
    ck_assert_ptr_nonnull(strstr(l.v[i], "exit code 0"));
  ck_assert_str_eq(l.v[0], "child 0: exit code 0, 5133 primes in [0, 50000)");
  ck_assert_str_eq(l.v[4], "primes below 200000: 17984");
  lines_free(&l);
}
END_TEST

/* The seed's proxy pool: a fetcher and a validator process. */
START_TEST(example_proc_proxy_pool) {
  lines l = run_example("proc-proxy-pool", "");
  ck_assert_uint_ge(l.n, 8);
  size_t keep = 0, reject = 0, pool_line = l.n;
  for (size_t i = 0; i < l.n; i++) {
    keep += strncmp(l.v[i], "validator: keep", 15) == 0;
    reject += strncmp(l.v[i], "validator: reject", 17) == 0;
    if (strncmp(l.v[i], "pool: ", 6) == 0)
      pool_line = i;
  }
  ck_assert_uint_eq(keep, 6);
  ck_assert_uint_gt(reject, 0);
  ck_assert_uint_lt(pool_line, l.n);
  ck_assert_str_eq(l.v[pool_line], "pool: 6 valid proxies");
  ck_assert_uint_eq(l.n, pool_line + 1 + 6);
  lines_free(&l);
}
END_TEST


/* asyncio's create_task / sleep / cancel on conc's loop. */
START_TEST(example_coro_hello) {
  lines l = run_example("coro-hello", "");
  ck_assert_uint_eq(l.n, 4);
  ck_assert_str_eq(l.v[0], "hello");
  ck_assert_str_eq(l.v[1], "world");
  ck_assert_str_eq(l.v[2], "lengths 5 5");
  ck_assert_str_eq(l.v[3], "slow cancelled");
  lines_free(&l);
}
END_TEST

/* asyncio streams: an echo server and clients on one loop. */
START_TEST(example_coro_echo) {
  lines l = run_example("coro-echo", "CONC_EXAMPLE_N=3");
  ck_assert_uint_eq(l.n, 4);
  ck_assert_str_eq(l.v[0], "client 0: 5 echoes ok");
  ck_assert_str_eq(l.v[1], "client 1: 5 echoes ok");
  ck_assert_str_eq(l.v[2], "client 2: 5 echoes ok");
  ck_assert_str_eq(l.v[3], "server: closed");
  lines_free(&l);
}
END_TEST

CONC_TEST_MAIN("examples", example_thread_target, example_thread_subclass,
               example_pool_names, example_pool_callback, example_pool_map,
               example_futures_primes, example_futures_as_completed,
               example_wait_first_completed, example_pool_extras,
               example_proc_pipeline, example_proc_proxy_pool,
               example_proc_forkserver,
               example_coro_hello, example_coro_echo,
               example_procpool_primes, example_procpool_crash,
               example_procpool_extras)
