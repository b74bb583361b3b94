/* test-progress.c - the progress display: plain lines, the terminal bar
 * under a pty, watched futures, map counting, the display thread; with an
 * injected clock, so every output is exact. */
#include "harness.h"

#include <fcntl.h>
#include <unistd.h>

static double fake_now;
static double fake_clock(void) { return fake_now; }

static char *read_all(int fd) {
  static char buf[8192];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof buf - 1 &&
         (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
    n += (size_t)r;
  buf[n] = 0;
  return buf;
}

START_TEST(progress_plain_lines) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  conc_progress_options o;
  conc_progress_options_init(&o);
  o.fd = fds[1];
  o.flags = CONC_PROGRESS_MANUAL;
  o.label = "crawl";
  o.clock = fake_clock;
  fake_now = 100;
  conc_progress *p;
  ck_assert_int_eq(conc_progress_start(&p, 10, &o), 0);
  conc_progress_add(p, 5, 0);
  ck_assert_int_eq(conc_progress_draw(p), 0); /* too soon: nothing */
  fake_now = 110;
  ck_assert_int_eq(conc_progress_draw(p), 0);
  conc_progress_add(p, 5, 2);
  fake_now = 112;
  size_t done, errors, total;
  conc_progress_counts(p, &done, &errors, &total);
  ck_assert_uint_eq(done, 10);
  ck_assert_uint_eq(errors, 2);
  ck_assert_uint_eq(total, 10);
  conc_progress_stop(p);
  close(fds[1]);
  ck_assert_str_eq(read_all(fds[0]),
                   "crawl: 5/10  50% 0.5/s elapsed 0:10 eta 0:10\n"
                   "crawl: 10/10 100% 0.8/s elapsed 0:12 eta 0:00 errors 2 "
                   "(done)\n");
  close(fds[0]);
}
END_TEST

static int open_pty(int *slave) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  ck_assert_int_ge(m, 0);
  ck_assert_int_eq(grantpt(m), 0);
  ck_assert_int_eq(unlockpt(m), 0);
  *slave = open(ptsname(m), O_RDWR | O_NOCTTY);
  ck_assert_int_ge(*slave, 0);
  return m;
}

static char *read_some(int fd) {
  static char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  ck_assert_int_gt(n, 0);
  buf[n] = 0;
  return buf;
}

START_TEST(progress_terminal_bar) {
  int slave, master = open_pty(&slave);
  ck_assert(isatty(slave));
  conc_progress_options o;
  conc_progress_options_init(&o);
  o.fd = slave;
  o.flags = CONC_PROGRESS_MANUAL;
  o.width = 50;
  o.clock = fake_clock;
  fake_now = 0;
  conc_progress *p;
  ck_assert_int_eq(conc_progress_start(&p, 4, &o), 0);
  conc_progress_add(p, 1, 0);
  fake_now = 2;
  ck_assert_int_eq(conc_progress_draw(p), 0);
  /* 50 columns: the bar takes what the numbers leave */
  ck_assert_str_eq(read_some(master), "\r|#####.................| 1/4  25% "
                                      "0.5/s 0:02<0:06\x1b[K");
  conc_progress_add(p, 3, 1);
  fake_now = 4;
  conc_progress_stop(p);
  ck_assert_str_eq(read_some(master),
                   "\r|#############| 4/4 100% 1.0/s 0:04<0:00 "
                   "errors 1\x1b[K\r\n");
  close(slave);
  close(master);
}
END_TEST

START_TEST(progress_watch_futures) {
  conc_future *fs[3];
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(conc_future_create(&fs[i]), 0);
  conc_progress_options o;
  conc_progress_options_init(&o);
  o.flags = CONC_PROGRESS_OFF;
  conc_progress *p;
  ck_assert_int_eq(conc_progress_start(&p, 3, &o), 0);
  ck_assert_int_eq(conc_progress_watch(p, fs, 3), 0);
  conc_future_set_result(fs[0], NULL);
  conc_future_set_error(fs[2], 1, "bad");
  ck_assert_int_eq(conc_progress_draw(p), 0); /* samples, draws nothing */
  size_t done, errors;
  conc_progress_counts(p, &done, &errors, NULL);
  ck_assert_uint_eq(done, 2);
  ck_assert_uint_eq(errors, 1);
  ck_assert_int_eq(conc_progress_watch(p, NULL, 1), CONC_EINVAL);
  conc_future *nul = NULL;
  ck_assert_int_eq(conc_progress_watch(p, &nul, 1), CONC_EINVAL);
  conc_test_fail_alloc_after(1);
  conc_future *many[40];
  for (int i = 0; i < 40; i++)
    many[i] = fs[1];
  ck_assert_int_eq(conc_progress_watch(p, many, 40), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  conc_progress_stop(p); /* releases the one still pending */
  conc_future_set_result(fs[1], NULL);
  for (int i = 0; i < 3; i++)
    conc_future_release(fs[i]);
}
END_TEST

static void *ident(void *a) { return a; }

START_TEST(progress_counts_map_results) {
  conc_thread_pool_options po;
  conc_thread_pool_options_init(&po);
  po.max_workers = 2;
  conc_executor *ex;
  ck_assert_int_eq(conc_thread_pool_create(&po, &ex), 0);
  conc_progress_options o;
  conc_progress_options_init(&o);
  o.flags = CONC_PROGRESS_OFF;
  conc_progress *p;
  static void *args[500];
  ck_assert_int_eq(conc_progress_start(&p, 500, &o), 0);
  conc_map_options mo;
  conc_map_options_init(&mo);
  mo.chunksize = 7;
  mo.progress = p;
  conc_map *m;
  ck_assert_int_eq(conc_executor_map(ex, ident, args, 500, &mo, &m), 0);
  void *r;
  while (conc_map_next(m, &r) == 1)
    ;
  conc_map_destroy(m);
  size_t done;
  conc_progress_counts(p, &done, NULL, NULL);
  ck_assert_uint_eq(done, 500);
  conc_progress_stop(p);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(progress_display_thread_draws) {
  int slave, master = open_pty(&slave);
  conc_progress_options o;
  conc_progress_options_init(&o);
  o.fd = slave;
  o.interval = 0.001;
  o.label = "t";
  conc_progress *p;
  ck_assert_int_eq(conc_progress_start(&p, 0, &o), 0); /* unknown total */
  conc_progress_add(p, 3, 0);
  /* blocks until the display thread has drawn */
  const char *s = read_some(master);
  ck_assert(s[0] == '\r');
  ck_assert_ptr_nonnull(strstr(s, "t: "));
  conc_progress_stop(p);
  close(slave);
  close(master);
}
END_TEST

START_TEST(progress_invalid_and_nomem) {
  conc_progress *p;
  ck_assert_int_eq(conc_progress_start(NULL, 1, NULL), CONC_EINVAL);
  conc_progress_options o;
  conc_progress_options_init(&o);
  o.flags = CONC_PROGRESS_TTY | CONC_PROGRESS_PLAIN;
  ck_assert_int_eq(conc_progress_start(&p, 1, &o), CONC_EINVAL);
  conc_progress_options_init(&o);
  o.fd = -1;
  ck_assert_int_eq(conc_progress_start(&p, 1, &o), CONC_EINVAL);
  conc_progress_options_init(&o);
  o.size = 1;
  ck_assert_int_eq(conc_progress_start(&p, 1, &o), CONC_EINVAL);
  ck_assert_int_eq(conc_progress_draw(NULL), CONC_EINVAL);
  conc_progress_add(NULL, 1, 1);
  conc_progress_stop(NULL);
  size_t d = 9;
  conc_progress_counts(NULL, &d, NULL, NULL);
  ck_assert_uint_eq(d, 0);
  conc_progress_options_init(&o);
  o.flags = CONC_PROGRESS_MANUAL;
  o.label = "x";
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_progress_start(&p, 1, &o), CONC_ENOMEM);
  conc_test_fail_alloc_after(2);
  ck_assert_int_eq(conc_progress_start(&p, 1, &o), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
}
END_TEST

CONC_TEST_MAIN("progress", progress_plain_lines, progress_terminal_bar,
               progress_watch_futures, progress_counts_map_results,
               progress_display_thread_draws, progress_invalid_and_nomem)
