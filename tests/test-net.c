/* test-net.c - I/O on the coroutine loop (include/conc/net.h, src/io.c,
 * src/bridge.c, src/tcp.c, src/sigfile.c).
 *
 * DESIGN: every blocking bridge is tested with a ticker coroutine that
 * must keep advancing while the call waits: the event the call waits for
 * is produced only after the ticker has ticked GATE times (a coroutine or
 * a thread released by the ticker), so the call can only finish if the
 * loop kept running.  Threads are ordered with latches, never sleeps.
 * Timeout cases assert lower bounds only.  Every case ends with its loops
 * destroyed, its fds closed and the counting allocator empty.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define GATE 3

static conc_loop *new_loop(void) {
  conc_loop *l = NULL;
  ck_assert_int_eq(conc_loop_create(NULL, &l), 0);
  return l;
}

static void run_destroy(conc_loop *l) {
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}

/* ---- the ticker ---- */

static int ticks;
static bool ticker_stop;
static conc_test_latch *tick_latch; /* counted down at tick GATE */

static int ticker(void *arg, void **result) {
  (void)arg;
  (void)result;
  while (!ticker_stop) {
    ticks++;
    if (ticks == GATE && tick_latch)
      conc_test_latch_count_down(tick_latch);
    if (conc_coro_sleep(0.001) != 0)
      break;
  }
  return 0;
}

/* The ticker advanced while the call that began at tick t0 waited. */
static void check_ticked(int t0) {
  ck_assert_int_lt(t0, GATE);
  ck_assert_int_ge(ticks, GATE);
}

/* Sleep in small steps until the ticker has ticked at least n times. */
static void wait_ticks(int n) {
  while (ticks < n)
    ck_assert_int_eq(conc_coro_sleep(0.001), 0);
}

static void start_ticker(conc_loop *l) {
  ticks = 0;
  ticker_stop = false;
  ck_assert_int_eq(conc_coro_spawn(l, ticker, NULL, NULL, NULL), 0);
}

/* ---- conc_coro_wait_fd ---- */

static int pfd[2];
static int got_events;

static int wait_reader(void *arg, void **result) {
  (void)arg;
  (void)result;
  int t0 = ticks;
  got_events = conc_coro_wait_fd(pfd[0], CONC_POLL_IN, -1);
  check_ticked(t0); /* the loop ran meanwhile */
  ticker_stop = true;
  return 0;
}

static int gated_writer(void *arg, void **result) {
  (void)arg;
  (void)result;
  wait_ticks(GATE);
  ck_assert_int_eq(write(pfd[1], "x", 1), 1);
  return 0;
}

START_TEST(net_wait_fd_ready) {
  ck_assert_int_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
  conc_loop *l = new_loop();
  start_ticker(l);
  ck_assert_int_eq(conc_coro_spawn(l, wait_reader, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, gated_writer, NULL, NULL, NULL), 0);
  run_destroy(l);
  ck_assert_int_eq(got_events, CONC_POLL_IN);
  close(pfd[0]);
  close(pfd[1]);
}
END_TEST

/* Coroutines that keep yielding do not starve I/O: the poller is checked
 * every few dozen switches while coroutines stay runnable. */
static int ys_got;

static int ys_reader(void *arg, void **result) {
  (void)arg;
  (void)result;
  char c = 0;
  size_t n = 0;
  ck_assert_int_eq(conc_sock_read(pfd[0], &c, 1, 10, &n), 0);
  ck_assert_int_eq((int)n, 1);
  ys_got = 1;
  return 0;
}
static int ys_yielder(void *arg, void **result) {
  (void)result;
  long *yields = arg;
  ck_assert_int_eq(conc_coro_yield(), 0); /* the reader parks first */
  ck_assert_int_eq(write(pfd[1], "y", 1), 1);
  double t0 = conc_now();
  while (!ys_got) {
    ck_assert_msg(conc_now() - t0 < 10, "I/O starved by yields");
    ck_assert_int_eq(conc_coro_yield(), 0);
    (*yields)++;
  }
  return 0;
}

START_TEST(net_yield_io_not_starved) {
  ck_assert_int_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
  conc_loop *l = new_loop();
  ys_got = 0;
  long yields = 0;
  ck_assert_int_eq(conc_coro_spawn(l, ys_reader, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, ys_yielder, &yields, NULL, NULL), 0);
  run_destroy(l);
  ck_assert(ys_got);
  /* served within a few poll intervals of 64 switches, not never */
  ck_assert_int_lt(yields, 10000);
  close(pfd[0]);
  close(pfd[1]);
}
END_TEST

static int wait_misc(void *arg, void **result) {
  (void)arg;
  (void)result;
  /* Writable at once; a zero timeout polls. */
  ck_assert_int_eq(conc_coro_wait_fd(pfd[1], CONC_POLL_OUT, -1), CONC_POLL_OUT);
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], CONC_POLL_IN, 0), CONC_ETIMEDOUT);
  double t0 = conc_now();
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], CONC_POLL_IN, 0.05),
                   CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.05);
  ck_assert_int_eq(write(pfd[1], "x", 1), 1);
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], CONC_POLL_IN, 0), CONC_POLL_IN);
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], CONC_POLL_IN | CONC_POLL_OUT, -1),
                   CONC_POLL_IN);
  /* The writer gone: readable with HUP once drained. */
  char c;
  ck_assert_int_eq(read(pfd[0], &c, 1), 1);
  close(pfd[1]);
  int ev = conc_coro_wait_fd(pfd[0], CONC_POLL_IN, -1);
  ck_assert_int_gt(ev, 0);
  ck_assert(ev & CONC_POLL_HUP);
  /* Bad arguments. */
  ck_assert_int_eq(conc_coro_wait_fd(-1, CONC_POLL_IN, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], 0, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], CONC_POLL_IN, NAN), CONC_EINVAL);
  /* Not an open fd: EBADF from epoll and from the zero-timeout poll. */
  ck_assert_int_eq(conc_coro_wait_fd(900, CONC_POLL_IN, 1), CONC_EBADF);
  ck_assert_int_eq(conc_coro_wait_fd(900, CONC_POLL_IN, 0), CONC_EBADF);
  /* A regular file cannot be polled. */
  char path[] = "/tmp/conc-net-XXXXXX";
  int f = mkstemp(path);
  ck_assert_int_ge(f, 0);
  unlink(path);
  ck_assert_int_eq(conc_coro_wait_fd(f, CONC_POLL_IN, 1), CONC_ENOTSUP);
  close(f);
  return 0;
}

START_TEST(net_wait_fd_misc) {
  ck_assert_int_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], CONC_POLL_IN, 0), CONC_EPERM);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, wait_misc, NULL, NULL, NULL), 0);
  run_destroy(l);
  close(pfd[0]);
}
END_TEST

/* EBUSY, ECANCELED and ECLOSED from other coroutines. */
static conc_coro *parked;
static int parked_rc;

static int park_on_pipe(void *arg, void **result) {
  (void)arg;
  (void)result;
  parked_rc = conc_coro_wait_fd(pfd[0], CONC_POLL_IN, -1);
  return 0;
}

static int disturb(void *arg, void **result) {
  (void)result;
  ck_assert_int_eq(conc_coro_yield(), 0); /* park_on_pipe is parked now */
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], CONC_POLL_IN, -1), CONC_EBUSY);
  if (arg)
    ck_assert_int_eq(conc_sock_close(pfd[0]), 0);
  else
    ck_assert_int_eq(conc_coro_cancel(parked), 0);
  return 0;
}

START_TEST(net_wait_fd_cancel_close) {
  for (int closing = 0; closing < 2; closing++) {
    ck_assert_int_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    conc_loop *l = new_loop();
    ck_assert_int_eq(conc_coro_spawn(l, park_on_pipe, NULL, NULL, &parked), 0);
    ck_assert_int_eq(conc_coro_spawn(l, disturb, (void *)(intptr_t)closing,
                                     NULL, NULL), 0);
    run_destroy(l);
    conc_coro_release(parked);
    ck_assert_int_eq(parked_rc, closing ? CONC_ECLOSED : CONC_ECANCELED);
    if (!closing)
      close(pfd[0]);
    close(pfd[1]);
  }
  ck_assert_int_eq(conc_sock_close(-1), CONC_EINVAL);
  ck_assert_int_eq(conc_sock_close(900), CONC_EBADF);
}
END_TEST

/* A loop destroyed while a coroutine waits on an fd cancels the wait. */
START_TEST(net_destroy_cancels_fd_wait) {
  ck_assert_int_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, park_on_pipe, NULL, NULL, NULL), 0);
  /* Never run: destroy starts it; its wait returns CONC_ECANCELED. */
  ck_assert_int_eq(conc_loop_destroy(l), 0);
  ck_assert_int_eq(parked_rc, CONC_ECANCELED);
  close(pfd[0]);
  close(pfd[1]);
}
END_TEST

/* ---- watches and timers ---- */

static int watch_calls;
static conc_coro_event watch_done;
static char watch_buf[16];
static size_t watch_len;

static void on_readable(conc_loop *l, int fd, unsigned ev, void *arg) {
  ck_assert_ptr_eq(arg, (void *)&watch_calls);
  ck_assert(ev & CONC_POLL_IN);
  ck_assert_ptr_null(conc_coro_self()); /* not in a coroutine */
  watch_calls++;
  char c;
  ssize_t r = read(fd, &c, 1); /* one byte per call: level-triggered */
  ck_assert_int_eq(r, 1);
  watch_buf[watch_len++] = c;
  if (c == 'q') {
    ck_assert_int_eq(conc_loop_unwatch(l, fd), 0);
    ck_assert_int_eq(conc_loop_unwatch(l, fd), CONC_ENOENT);
    conc_coro_event_set(&watch_done);
  }
}

static void on_other(conc_loop *l, int fd, unsigned ev, void *arg) {
  (void)l;
  (void)fd;
  (void)ev;
  (void)arg;
  ck_abort_msg("replaced watch called");
}

static int watch_driver(void *arg, void **result) {
  (void)result;
  conc_loop *l = arg;
  /* Three bytes at once: the level-triggered watch runs three times. */
  ck_assert_int_eq(write(pfd[1], "abq", 3), 3);
  ck_assert_int_eq(conc_coro_event_wait(&watch_done, -1), 0);
  ck_assert_int_eq(watch_calls, 3);
  ck_assert_int_eq(memcmp(watch_buf, "abq", 3), 0);
  /* A removed watch is not called: write with no watch, read it back. */
  ck_assert_int_eq(write(pfd[1], "z", 1), 1);
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], CONC_POLL_IN, -1), CONC_POLL_IN);
  char c;
  ck_assert_int_eq(read(pfd[0], &c, 1), 1);
  ck_assert_int_eq(watch_calls, 3);
  (void)l;
  return 0;
}

static void *watch_other_thread(void *arg) {
  conc_loop *l = arg;
  ck_assert_int_eq(conc_loop_watch(l, pfd[0], CONC_POLL_IN, on_other, NULL),
                   CONC_EPERM);
  conc_loop_timer *t = NULL;
  ck_assert_int_eq(conc_loop_timer_create(l, NULL, NULL, &t), CONC_EINVAL);
  return NULL;
}

START_TEST(net_watch) {
  ck_assert_int_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_event_init(&watch_done), 0);
  /* A watch replaced before the loop runs: only the last one counts. */
  ck_assert_int_eq(conc_loop_watch(l, pfd[0], CONC_POLL_IN, on_other, NULL), 0);
  ck_assert_int_eq(conc_loop_watch(l, pfd[0], CONC_POLL_IN, on_readable,
                                   &watch_calls), 0);
  ck_assert_int_eq(conc_loop_watch(NULL, pfd[0], CONC_POLL_IN, on_other, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_loop_watch(l, -1, CONC_POLL_IN, on_other, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_loop_watch(l, pfd[0], 0, on_other, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_watch(l, pfd[0], CONC_POLL_IN, NULL, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_loop_watch(l, 900, CONC_POLL_IN, on_other, NULL),
                   CONC_EBADF);
  ck_assert_int_eq(conc_loop_unwatch(l, 900), CONC_ENOENT);
  ck_assert_int_eq(conc_loop_unwatch(l, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_unwatch(NULL, 3), CONC_EINVAL);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, watch_other_thread, l), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(conc_coro_spawn(l, watch_driver, l, NULL, NULL), 0);
  run_destroy(l);
  conc_coro_event_destroy(&watch_done);
  close(pfd[0]);
  close(pfd[1]);
}
END_TEST

/* libcurl's order: remove the watch, then close the fd itself (plain
 * close); a new fd that gets the same number and is watched for the same
 * event must still be seen. */
static int reuse_calls;
static void on_reused(conc_loop *l, int fd, unsigned ev, void *arg) {
  (void)arg;
  ck_assert(ev & CONC_POLL_IN);
  reuse_calls++;
  ck_assert_int_eq(conc_loop_unwatch(l, fd), 0);
  conc_coro_event_set(&watch_done);
}

static int reuse_driver(void *arg, void **result) {
  (void)result;
  conc_loop *l = arg;
  for (int round = 0; round < 2; round++) {
    int p[2];
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    if (round == 1)
      ck_assert_int_eq(p[0], pfd[0]); /* the number was reused */
    conc_coro_event_clear(&watch_done);
    ck_assert_int_eq(conc_loop_watch(l, p[0], CONC_POLL_IN, on_reused, NULL),
                     0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_int_eq(conc_coro_event_wait(&watch_done, 10), 0);
    ck_assert_int_eq(reuse_calls, round + 1);
    pfd[0] = p[0];
    close(p[0]); /* plain close, as libcurl does */
    close(p[1]);
  }
  return 0;
}

START_TEST(net_watch_fd_reuse) {
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_event_init(&watch_done), 0);
  ck_assert_int_eq(conc_coro_spawn(l, reuse_driver, l, NULL, NULL), 0);
  run_destroy(l);
  conc_coro_event_destroy(&watch_done);
}
END_TEST

/* A watch alone does not keep the loop running; a watch on a writable fd
 * runs while a coroutine sleeps. */
static int out_calls;
static void on_writable(conc_loop *l, int fd, unsigned ev, void *arg) {
  (void)arg;
  ck_assert(ev & CONC_POLL_OUT);
  if (++out_calls == 2)
    ck_assert_int_eq(conc_loop_unwatch(l, fd), 0);
}

static int sleep_a_bit(void *arg, void **result) {
  (void)arg;
  (void)result;
  while (out_calls < 2)
    ck_assert_int_eq(conc_coro_sleep(0.001), 0);
  return 0;
}

START_TEST(net_watch_writable) {
  ck_assert_int_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_loop_watch(l, pfd[1], CONC_POLL_OUT, on_writable, NULL),
                   0);
  ck_assert_int_eq(conc_coro_spawn(l, sleep_a_bit, NULL, NULL, NULL), 0);
  run_destroy(l);
  ck_assert_int_eq(out_calls, 2);
  /* Regular files cannot be watched. */
  l = new_loop();
  char path[] = "/tmp/conc-net-XXXXXX";
  int f = mkstemp(path);
  ck_assert_int_ge(f, 0);
  unlink(path);
  ck_assert_int_eq(conc_loop_watch(l, f, CONC_POLL_IN, on_writable, NULL),
                   CONC_ENOTSUP);
  close(f);
  run_destroy(l);
  close(pfd[0]);
  close(pfd[1]);
}
END_TEST

static int timer_fired;
static double timer_at;
static conc_coro_event timer_ev;
static conc_loop_timer *self_destroying;

static void on_timer(conc_loop_timer *t, void *arg) {
  ck_assert_ptr_eq(arg, &timer_fired);
  ck_assert(!conc_loop_timer_active(t));
  timer_fired++;
  timer_at = conc_now();
  conc_coro_event_set(&timer_ev);
}

static void on_timer_destroy(conc_loop_timer *t, void *arg) {
  (void)arg;
  ck_assert_ptr_eq(t, self_destroying);
  conc_loop_timer_destroy(t);
  self_destroying = NULL;
}

static int timer_user(void *arg, void **result) {
  (void)result;
  conc_loop *l = arg;
  conc_loop_timer *t = NULL, *u = NULL;
  ck_assert_int_eq(conc_loop_timer_create(l, on_timer, &timer_fired, &t), 0);
  ck_assert(!conc_loop_timer_active(t));
  double t0 = conc_now();
  ck_assert_int_eq(conc_loop_timer_start(t, 10), 0);
  ck_assert(conc_loop_timer_active(t));
  ck_assert_int_eq(conc_loop_timer_start(t, 0.03), 0); /* re-armed */
  ck_assert_int_eq(conc_coro_event_wait(&timer_ev, -1), 0);
  ck_assert_int_eq(timer_fired, 1);
  ck_assert(timer_at - t0 >= 0.03);
  /* Stopped: does not fire. */
  ck_assert_int_eq(conc_loop_timer_start(t, 0.01), 0);
  ck_assert_int_eq(conc_loop_timer_stop(t), 0);
  ck_assert_int_eq(conc_loop_timer_stop(t), 0);
  ck_assert(!conc_loop_timer_active(t));
  ck_assert_int_eq(conc_coro_sleep(0.03), 0);
  ck_assert_int_eq(timer_fired, 1);
  /* Zero timeout: fires on the next pass. */
  conc_coro_event_clear(&timer_ev);
  ck_assert_int_eq(conc_loop_timer_start(t, 0), 0);
  ck_assert_int_eq(conc_coro_event_wait(&timer_ev, -1), 0);
  ck_assert_int_eq(timer_fired, 2);
  /* A timer may destroy itself in its callback. */
  ck_assert_int_eq(conc_loop_timer_create(l, on_timer_destroy, NULL, &u), 0);
  self_destroying = u;
  ck_assert_int_eq(conc_loop_timer_start(u, 0.001), 0);
  while (self_destroying)
    ck_assert_int_eq(conc_coro_sleep(0.001), 0);
  ck_assert_int_eq(conc_loop_timer_start(NULL, 1), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_timer_start(t, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_timer_start(t, NAN), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_timer_stop(NULL), CONC_EINVAL);
  ck_assert(!conc_loop_timer_active(NULL));
  ck_assert_int_eq(conc_loop_timer_create(l, on_timer, NULL, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_loop_timer_create(NULL, on_timer, NULL, &u),
                   CONC_EINVAL);
  conc_loop_timer_destroy(t);
  conc_loop_timer_destroy(NULL);
  return 0;
}

START_TEST(net_timer) {
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_event_init(&timer_ev), 0);
  ck_assert_int_eq(conc_coro_spawn(l, timer_user, l, NULL, NULL), 0);
  run_destroy(l);
  /* The loop refuses to be destroyed while a timer exists. */
  l = new_loop();
  conc_loop_timer *t = NULL;
  ck_assert_int_eq(conc_loop_timer_create(l, on_timer, &timer_fired, &t), 0);
  ck_assert_int_eq(conc_loop_timer_start(t, 0), 0);
  ck_assert_int_eq(conc_loop_destroy(l), CONC_EBUSY);
  conc_loop_timer_destroy(t);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
  conc_coro_event_destroy(&timer_ev);
}
END_TEST

/* ---- other threads: holds and conc_loop_spawn_threadsafe ---- */

static int add_one(void *arg, void **result) {
  ck_assert_int_eq(conc_coro_yield(), 0);
  *result = (void *)((intptr_t)arg + 1);
  return 0;
}

static int fails_own(void *arg, void **result) {
  (void)arg;
  (void)result;
  return -1234;
}

static void *remote_client(void *arg) {
  conc_loop *l = arg;
  for (intptr_t i = 0; i < 20; i++) {
    conc_future *f = NULL;
    ck_assert_int_eq(conc_loop_spawn_threadsafe(l, add_one, (void *)i, &f), 0);
    void *r = NULL;
    ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
    ck_assert_ptr_eq(r, (void *)(i + 1));
    conc_future_release(f);
  }
  conc_future *f = NULL;
  ck_assert_int_eq(conc_loop_spawn_threadsafe(l, fails_own, NULL, &f), 0);
  ck_assert_int_eq(conc_future_result(f, -1, NULL), CONC_ETASK);
  int detail = 0;
  ck_assert_int_eq(conc_future_error(f, &detail, NULL), CONC_ETASK);
  ck_assert_int_eq(detail, -1234);
  conc_future_release(f);
  ck_assert_int_eq(conc_loop_unref(l), 0);
  return NULL;
}

START_TEST(net_spawn_threadsafe) {
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_loop_unref(l), CONC_EINVAL); /* no hold */
  ck_assert_int_eq(conc_loop_ref(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_unref(NULL), CONC_EINVAL);
  conc_future *f = NULL;
  ck_assert_int_eq(conc_loop_spawn_threadsafe(NULL, add_one, NULL, &f),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_loop_spawn_threadsafe(l, NULL, NULL, &f), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_spawn_threadsafe(l, add_one, NULL, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_loop_ref(l), 0);
  ck_assert_int_eq(conc_loop_ref(l), 0);
  ck_assert_int_eq(conc_loop_unref(l), 0);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, remote_client, l), 0);
  /* Runs until the client dropped the last hold. */
  ck_assert_int_eq(conc_loop_run(l), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* The loop, held, serves a thread while the thread waits for results. */
static void *remote_then_unref(void *arg) {
  conc_loop *l = arg;
  conc_future *f = NULL;
  ck_assert_int_eq(conc_loop_spawn_threadsafe(l, add_one, (void *)41, &f), 0);
  void *r = NULL;
  ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
  ck_assert_ptr_eq(r, (void *)42);
  conc_future_release(f);
  ck_assert_int_eq(conc_loop_unref(l), 0);
  return NULL;
}

START_TEST(net_loop_ref_run_forever) {
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_loop_ref(l), 0);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, remote_then_unref, l), 0);
  /* No coroutine yet: the hold keeps run waiting for the thread's. */
  ck_assert_int_eq(conc_loop_run(l), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

static int sleep_briefly(void *arg, void **result) {
  (void)arg;
  (void)result;
  return conc_coro_sleep(0.02);
}

/* A loop whose coroutines only sleep still picks up remote spawns. */
static bool flag;
static int set_flag(void *arg, void **result) {
  (void)arg;
  (void)result;
  flag = true;
  return 0;
}
static int sleep_until_flag(void *arg, void **result) {
  (void)arg;
  (void)result;
  while (!flag)
    ck_assert_int_eq(conc_coro_sleep(0.001), 0);
  return 0;
}
static void *spawn_set_flag(void *arg) {
  conc_future *f = NULL;
  ck_assert_int_eq(conc_loop_spawn_threadsafe(arg, set_flag, NULL, &f), 0);
  ck_assert_int_eq(conc_future_result(f, -1, NULL), 0);
  conc_future_release(f);
  return NULL;
}

START_TEST(net_spawn_threadsafe_sleeping_loop) {
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, sleep_until_flag, NULL, NULL, NULL), 0);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, spawn_set_flag, l), 0);
  run_destroy(l);
  pthread_join(th, NULL);
  ck_assert(flag);
}
END_TEST

static conc_loop *closing_loop;
static int spawn_while_closing(void *arg, void **result) {
  (void)arg;
  (void)result;
  /* Parks until destroy cancels it, then tries to spawn remotely. */
  ck_assert_int_eq(conc_coro_sleep_until(INFINITY), CONC_ECANCELED);
  conc_future *f = NULL;
  ck_assert_int_eq(conc_loop_spawn_threadsafe(closing_loop, add_one, NULL, &f),
                   CONC_ECLOSED);
  return 0;
}

START_TEST(net_spawn_threadsafe_destroyed) {
  /* Posted but never run: destroy cancels the future. */
  conc_loop *l = new_loop();
  conc_future *f = NULL;
  ck_assert_int_eq(conc_loop_spawn_threadsafe(l, add_one, NULL, &f), 0);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
  ck_assert_int_eq(conc_future_result(f, 0, NULL), CONC_ECANCELED);
  ck_assert(conc_future_cancelled(f));
  conc_future_release(f);
  /* Posted from the loop's thread before run: run starts it even with no
   * other coroutine. */
  l = new_loop();
  ck_assert_int_eq(conc_loop_spawn_threadsafe(l, add_one, (void *)1, &f), 0);
  run_destroy(l);
  void *r = NULL;
  ck_assert_int_eq(conc_future_result(f, 0, &r), 0);
  ck_assert_ptr_eq(r, (void *)2);
  conc_future_release(f);
  /* Cancelled by the caller before it started: never runs (the sleeper
   * keeps the loop polling meanwhile). */
  l = new_loop();
  ck_assert_int_eq(conc_loop_spawn_threadsafe(l, fails_own, NULL, &f), 0);
  ck_assert(conc_future_cancel(f));
  ck_assert_int_eq(conc_coro_spawn(l, sleep_briefly, NULL, NULL, NULL), 0);
  run_destroy(l);
  conc_future_release(f);
  /* Spawning while the loop is being destroyed: CONC_ECLOSED. */
  l = closing_loop = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, spawn_while_closing, NULL, NULL, NULL),
                   0);
  ck_assert_int_eq(conc_loop_run(l), CONC_EDEADLK);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* ---- awaiting futures ---- */

static conc_future *gate_future;
static conc_test_latch gate;

static void *complete_after_gate(void *arg) {
  conc_test_latch_wait(&gate);
  ck_assert_int_eq(conc_future_set_result(gate_future, arg), 0);
  return NULL;
}

static int await_gated(void *arg, void **result) {
  (void)arg;
  (void)result;
  int t0 = ticks;
  void *r = NULL;
  ck_assert_int_eq(conc_coro_await_future(gate_future, -1, &r), 0);
  ck_assert_ptr_eq(r, (void *)77);
  check_ticked(t0);
  ticker_stop = true;
  /* Done already: returns at once, again. */
  ck_assert_int_eq(conc_coro_await_future(gate_future, 0, &r), 0);
  return 0;
}

START_TEST(net_await_future) {
  conc_test_latch_init(&gate, 1);
  tick_latch = &gate;
  ck_assert_int_eq(conc_future_create(&gate_future), 0);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, complete_after_gate, (void *)77),
                   0);
  conc_loop *l = new_loop();
  start_ticker(l);
  ck_assert_int_eq(conc_coro_spawn(l, await_gated, NULL, NULL, NULL), 0);
  run_destroy(l);
  pthread_join(th, NULL);
  conc_future_release(gate_future);
  tick_latch = NULL;
}
END_TEST

static conc_coro *awaiter;
static int phase;
static int await_timeouts(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_future *f = gate_future;
  double t0 = conc_now();
  ck_assert_int_eq(conc_coro_await_future(f, 0.03, NULL), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.03);
  ck_assert_int_eq(conc_coro_await_future(f, 0, NULL), CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_coro_await_future(NULL, -1, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_await_future(f, NAN, NULL), CONC_EINVAL);
  /* Cancelled while waiting (by the sibling below). */
  phase = 1;
  ck_assert_int_eq(conc_coro_await_future(f, -1, NULL), CONC_ECANCELED);
  ck_assert(!conc_future_done(f));
  /* A task error passes through. */
  ck_assert_int_eq(conc_future_set_error(f, -5, "boom"), 0);
  ck_assert_int_eq(conc_coro_await_future(f, -1, NULL), CONC_ETASK);
  return 0;
}

static int cancel_awaiter(void *arg, void **result) {
  (void)arg;
  (void)result;
  while (phase != 1) /* the awaiter parks right after setting it */
    ck_assert_int_eq(conc_coro_sleep(0.001), 0);
  ck_assert_int_eq(conc_coro_cancel(awaiter), 0);
  return 0;
}

START_TEST(net_await_future_errors) {
  void *r;
  ck_assert_int_eq(conc_future_create(&gate_future), 0);
  ck_assert_int_eq(conc_coro_await_future(gate_future, 0, &r), CONC_EPERM);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, await_timeouts, NULL, NULL, &awaiter), 0);
  ck_assert_int_eq(conc_coro_spawn(l, cancel_awaiter, NULL, NULL, NULL), 0);
  run_destroy(l);
  conc_coro_release(awaiter);
  conc_future_release(gate_future);
}
END_TEST

/* A future completed after its loop was destroyed: the attached record
 * finds the inbox closed and is freed. */
static int await_then_time_out(void *arg, void **result) {
  (void)arg;
  (void)result;
  ck_assert_int_eq(conc_coro_await_future(gate_future, 0.01, NULL),
                   CONC_ETIMEDOUT);
  return 0;
}

START_TEST(net_await_future_outlives_loop) {
  ck_assert_int_eq(conc_future_create(&gate_future), 0);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, await_then_time_out, NULL, NULL, NULL),
                   0);
  run_destroy(l);
  ck_assert_int_eq(conc_future_set_result(gate_future, NULL), 0);
  conc_future_release(gate_future);
}
END_TEST

/* ---- run_in_executor ---- */

static void *gated_task(void *arg) {
  conc_test_latch_wait(&gate);
  return (void *)((intptr_t)arg * 2);
}

static conc_executor *pool;
static int to_thread_user(void *arg, void **result) {
  (void)arg;
  (void)result;
  int t0 = ticks;
  void *r = NULL;
  ck_assert_int_eq(conc_coro_run_in_executor(pool, gated_task, (void *)21, &r),
                   0);
  ck_assert_ptr_eq(r, (void *)42);
  check_ticked(t0);
  ticker_stop = true;
  ck_assert_int_eq(conc_coro_run_in_executor(pool, NULL, NULL, &r),
                   CONC_EINVAL);
  return 0;
}

static conc_executor *one_worker_pool(void) {
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.max_workers = 1;
  o.flags = CONC_EXECUTOR_NO_EXIT_HOOK;
  conc_executor *ex = NULL;
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), 0);
  return ex;
}

START_TEST(net_run_in_executor) {
  conc_test_latch_init(&gate, 1);
  tick_latch = &gate;
  pool = one_worker_pool();
  ck_assert_int_eq(conc_coro_run_in_executor(pool, gated_task, NULL, NULL),
                   CONC_EPERM);
  conc_loop *l = new_loop();
  start_ticker(l);
  ck_assert_int_eq(conc_coro_spawn(l, to_thread_user, NULL, NULL, NULL), 0);
  run_destroy(l);
  ck_assert_int_eq(conc_executor_destroy(pool), 0);
  tick_latch = NULL;
}
END_TEST

/* Cancel while running: the call waits for fn and returns CONC_ECANCELED
 * with the result; cancel while queued: fn never runs. */
static atomic_int started, ran_queued;
static void *signal_then_gate(void *arg) {
  atomic_fetch_add(&started, 1);
  conc_test_latch_wait(&gate);
  return arg;
}
static void *queued_fn(void *arg) {
  atomic_fetch_add(&ran_queued, 1);
  return arg;
}

static conc_coro *runner, *queued_runner;
static int run_cancelled(void *arg, void **result) {
  (void)arg;
  (void)result;
  void *r = NULL;
  ck_assert_int_eq(conc_coro_run_in_executor(pool, signal_then_gate, (void *)9,
                                             &r), CONC_ECANCELED);
  ck_assert_ptr_eq(r, (void *)9);
  return 0;
}
static int run_queued_cancelled(void *arg, void **result) {
  (void)arg;
  (void)result;
  ck_assert_int_eq(conc_coro_run_in_executor(pool, queued_fn, NULL, NULL),
                   CONC_ECANCELED);
  return 0;
}
static int canceller(void *arg, void **result) {
  (void)arg;
  (void)result;
  /* The first task runs on the only worker (and holds it until the gate
   * opens), so the second one stays queued. */
  while (atomic_load(&started) == 0)
    ck_assert_int_eq(conc_coro_sleep(0.001), 0);
  ck_assert_int_eq(conc_coro_cancel(queued_runner), 0);
  ck_assert_int_eq(conc_coro_cancel(runner), 0);
  ck_assert_int_eq(conc_coro_yield(), 0);
  conc_test_latch_count_down(&gate); /* never blocks */
  return 0;
}

START_TEST(net_run_in_executor_cancel) {
  conc_test_latch_init(&gate, 1);
  pool = one_worker_pool();
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, run_cancelled, NULL, NULL, &runner), 0);
  ck_assert_int_eq(conc_coro_spawn(l, run_queued_cancelled, NULL, NULL,
                                   &queued_runner), 0);
  ck_assert_int_eq(conc_coro_spawn(l, canceller, NULL, NULL, NULL), 0);
  run_destroy(l);
  conc_coro_release(runner);
  conc_coro_release(queued_runner);
  ck_assert_int_eq(conc_executor_destroy(pool), 0);
  ck_assert_int_eq(atomic_load(&ran_queued), 0);
}
END_TEST

/* The default executor (NULL). */
static void *triple(void *arg) { return (void *)((intptr_t)arg * 3); }
static int to_default(void *arg, void **result) {
  (void)arg;
  void *r = NULL;
  ck_assert_int_eq(conc_coro_run_in_executor(NULL, triple, (void *)5, &r), 0);
  *result = r;
  return 0;
}

START_TEST(net_run_in_default_executor) {
  conc_test_no_leak_check(); /* the default pool may outlive the check */
  void *r = NULL;
  ck_assert_int_eq(conc_coro_run(to_default, NULL, &r), 0);
  ck_assert_ptr_eq(r, (void *)15);
  ck_assert_int_eq(conc_library_shutdown(), 0);
}
END_TEST

/* ---- TCP ---- */

static int lfd, port;

static int echo_conn(void *arg, void **result) {
  (void)result;
  int fd = (int)(intptr_t)arg;
  char buf[1024];
  size_t n;
  while (conc_sock_read(fd, buf, sizeof buf, -1, &n) == 0 && n > 0)
    ck_assert_int_eq(conc_sock_write_all(fd, buf, n, -1, NULL), 0);
  ck_assert_int_eq(conc_sock_close(fd), 0);
  return 0;
}

static int echo_server(void *arg, void **result) {
  (void)result;
  int conns = (int)(intptr_t)arg;
  for (int i = 0; i < conns; i++) {
    int fd = -1;
    ck_assert_int_eq(conc_tcp_accept(lfd, -1, &fd), 0);
    ck_assert_int_eq(conc_coro_spawn(NULL, echo_conn, (void *)(intptr_t)fd,
                                     NULL, NULL), 0);
  }
  return 0;
}

static int echo_client(void *arg, void **result) {
  (void)result;
  const char *host = arg;
  int fd = -1;
  int t0 = ticks;
  ck_assert_int_eq(conc_tcp_connect(host, port, 5, &fd), 0);
  for (int i = 0; i < 10; i++) {
    char msg[32], back[32];
    int len = snprintf(msg, sizeof msg, "hello %d", i);
    size_t n = 0;
    ck_assert_int_eq(conc_sock_write_all(fd, msg, (size_t)len, 5, &n), 0);
    ck_assert_uint_eq(n, (size_t)len);
    ck_assert_int_eq(conc_sock_read_exactly(fd, back, (size_t)len, 5, &n), 0);
    ck_assert_uint_eq(n, (size_t)len);
    ck_assert_int_eq(memcmp(msg, back, (size_t)len), 0);
  }
  /* Half-close: the server sees the end and closes; we see the end. */
  ck_assert_int_eq(conc_sock_shutdown(fd, SHUT_WR), 0);
  size_t n = 1;
  char c;
  ck_assert_int_eq(conc_sock_read(fd, &c, 1, 5, &n), 0);
  ck_assert_uint_eq(n, 0);
  ck_assert_int_eq(conc_sock_close(fd), 0);
  (void)t0;
  return 0;
}

START_TEST(net_tcp_echo) {
  ck_assert_int_eq(conc_tcp_listen("127.0.0.1", 0, 16, &lfd), 0);
  ck_assert_int_eq(conc_sock_local_port(lfd, &port), 0);
  ck_assert_int_gt(port, 0);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, echo_server, (void *)2, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, echo_client, "127.0.0.1", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, echo_client, "127.0.0.1", NULL, NULL), 0);
  run_destroy(l);
  ck_assert_int_eq(conc_sock_close(lfd), 0);
}
END_TEST

/* A host name goes through getaddrinfo on the default executor while the
 * ticker keeps running. */
static int name_client(void *arg, void **result) {
  (void)arg;
  (void)result;
  int fd = -1;
  int t0 = ticks;
  ck_assert_int_eq(conc_tcp_connect("localhost", port, 10, &fd), 0);
  ck_assert_int_ge(ticks, t0);
  ck_assert_int_eq(conc_sock_write_all(fd, "ping", 4, 5, NULL), 0);
  char back[4];
  ck_assert_int_eq(conc_sock_read_exactly(fd, back, 4, 5, NULL), 0);
  ck_assert_int_eq(memcmp(back, "ping", 4), 0);
  ck_assert_int_eq(conc_sock_close(fd), 0);
  /* Names that do not resolve. */
  int err = conc_tcp_connect("no-such-host.invalid", 80, 10, &fd);
  ck_assert_msg(err == CONC_ENOENT || err == CONC_EAGAIN, "got %d", err);
  ticker_stop = true;
  return 0;
}

START_TEST(net_tcp_connect_name) {
  conc_test_no_leak_check(); /* the default pool may outlive the check */
  /* "localhost" may resolve to ::1 first: refused there, the next address
   * (127.0.0.1) connects. */
  ck_assert_int_eq(conc_tcp_listen("127.0.0.1", 0, 16, &lfd), 0);
  ck_assert_int_eq(conc_sock_local_port(lfd, &port), 0);
  conc_loop *l = new_loop();
  start_ticker(l);
  ck_assert_int_eq(conc_coro_spawn(l, echo_server, (void *)1, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, name_client, NULL, NULL, NULL), 0);
  run_destroy(l);
  conc_sock_close(lfd);
  ck_assert_int_eq(conc_library_shutdown(), 0);
}
END_TEST

static int tcp_errors(void *arg, void **result) {
  (void)arg;
  (void)result;
  int fd = -1, s = -1;
  /* Refused: a port that was just closed. */
  int tmp, tport;
  ck_assert_int_eq(conc_tcp_listen("127.0.0.1", 0, 1, &tmp), 0);
  ck_assert_int_eq(conc_sock_local_port(tmp, &tport), 0);
  ck_assert_int_eq(conc_sock_close(tmp), 0);
  ck_assert_int_eq(conc_tcp_connect("127.0.0.1", tport, 5, &fd),
                   CONC_ECONNREFUSED);
  ck_assert_int_eq(conc_tcp_connect(NULL, 80, 5, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_tcp_connect("127.0.0.1", 0, 5, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_tcp_connect("127.0.0.1", 70000, 5, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_tcp_connect("127.0.0.1", 80, 5, NULL), CONC_EINVAL);
  /* Accept timeout. */
  double t0 = conc_now();
  ck_assert_int_eq(conc_tcp_accept(lfd, 0.03, &fd), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.03);
  ck_assert_int_eq(conc_tcp_accept(-1, 1, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_tcp_accept(lfd, 1, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_tcp_accept(900, 1, &fd), CONC_EBADF);
  /* A connection: read timeout, EPIPE after our own SHUT_WR (no SIGPIPE),
   * reset by the peer. */
  ck_assert_int_eq(conc_tcp_connect("127.0.0.1", port, 5, &fd), 0);
  ck_assert_int_eq(conc_tcp_accept(lfd, 5, &s), 0);
  char buf[8];
  size_t n = 9;
  t0 = conc_now();
  ck_assert_int_eq(conc_sock_read(fd, buf, sizeof buf, 0.03, &n),
                   CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.03);
  ck_assert_uint_eq(n, 0);
  ck_assert_int_eq(conc_sock_read(fd, buf, 0, 1, &n), 0);
  ck_assert_int_eq(conc_sock_write(fd, buf, 0, 1, &n), 0);
  ck_assert_uint_eq(n, 0);
  ck_assert_int_eq(conc_sock_read(fd, NULL, 1, 1, &n), CONC_EINVAL);
  ck_assert_int_eq(conc_sock_read(fd, buf, 1, 1, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_sock_read(-1, buf, 1, 1, &n), CONC_EINVAL);
  ck_assert_int_eq(conc_sock_write(fd, NULL, 1, 1, &n), CONC_EINVAL);
  ck_assert_int_eq(conc_sock_read_exactly(-1, buf, 1, 1, &n), CONC_EINVAL);
  ck_assert_int_eq(conc_sock_write_all(-1, buf, 1, 1, &n), CONC_EINVAL);
  ck_assert_int_eq(conc_sock_read(900, buf, 1, 1, &n), CONC_EBADF);
  ck_assert_int_eq(conc_sock_shutdown(fd, 42), CONC_EINVAL);
  ck_assert_int_eq(conc_sock_shutdown(900, SHUT_WR), CONC_EBADF);
  ck_assert_int_eq(conc_sock_local_port(900, &tport), CONC_EBADF);
  ck_assert_int_eq(conc_sock_local_port(fd, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_sock_shutdown(fd, SHUT_WR), 0);
  ck_assert_int_eq(conc_sock_write(fd, "x", 1, 1, &n), CONC_EPIPE);
  ck_assert_int_eq(conc_sock_write_all(fd, "x", 1, 1, &n), CONC_EPIPE);
  ck_assert_uint_eq(n, 0);
  /* Partial data then end of stream: read_exactly says ECLOSED. */
  ck_assert_int_eq(conc_sock_write_all(s, "abc", 3, 1, NULL), 0);
  ck_assert_int_eq(conc_sock_shutdown(s, SHUT_WR), 0);
  ck_assert_int_eq(conc_sock_read_exactly(fd, buf, 5, 1, &n), CONC_ECLOSED);
  ck_assert_uint_eq(n, 3);
  ck_assert_int_eq(conc_sock_close(fd), 0);
  ck_assert_int_eq(conc_sock_close(s), 0);
  /* Reset: the peer closes with SO_LINGER 0. */
  ck_assert_int_eq(conc_tcp_connect("127.0.0.1", port, 5, &fd), 0);
  ck_assert_int_eq(conc_tcp_accept(lfd, 5, &s), 0);
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  ck_assert_int_eq(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  ck_assert_int_eq(conc_sock_close(s), 0);
  ck_assert_int_eq(conc_sock_read(fd, buf, sizeof buf, 5, &n),
                   CONC_ECONNRESET);
  ck_assert_int_eq(conc_sock_close(fd), 0);
  return 0;
}

START_TEST(net_tcp_errors) {
  int fd;
  size_t n;
  char buf[4];
  ck_assert_int_eq(conc_tcp_listen("127.0.0.1", 0, 0, &lfd), 0);
  ck_assert_int_eq(conc_sock_local_port(lfd, &port), 0);
  /* Two listeners on one port: in use (SO_REUSEADDR does not allow it). */
  ck_assert_int_eq(conc_tcp_listen("127.0.0.1", port, 1, &fd),
                   CONC_EADDRINUSE);
  ck_assert_int_eq(conc_tcp_listen("localhost", 0, 1, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_tcp_listen(NULL, -1, 1, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_tcp_listen(NULL, 0, 1, NULL), CONC_EINVAL);
  /* Coroutine-only calls outside a coroutine. */
  ck_assert_int_eq(conc_tcp_accept(lfd, 0, &fd), CONC_EPERM);
  ck_assert_int_eq(conc_tcp_connect("127.0.0.1", port, 0, &fd), CONC_EPERM);
  ck_assert_int_eq(conc_sock_read(lfd, buf, 1, 0, &n), CONC_EPERM);
  ck_assert_int_eq(conc_sock_write(lfd, buf, 1, 0, &n), CONC_EPERM);
  ck_assert_int_eq(conc_sock_read_exactly(lfd, buf, 1, 0, &n), CONC_EPERM);
  ck_assert_int_eq(conc_sock_write_all(lfd, buf, 1, 0, &n), CONC_EPERM);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, tcp_errors, NULL, NULL, NULL), 0);
  run_destroy(l);
  ck_assert_int_eq(conc_sock_close(lfd), 0);
}
END_TEST

/* Partial writes and reads: 4 MiB through a socket read in small pieces,
 * while the writer's write_all meets a full send buffer many times. */
#define BIG (4u << 20)
static int big_writer(void *arg, void **result) {
  (void)result;
  int fd = (int)(intptr_t)arg;
  unsigned char *p = malloc(BIG);
  ck_assert_ptr_nonnull(p);
  for (size_t i = 0; i < BIG; i++)
    p[i] = (unsigned char)(i * 7 + 1);
  size_t n = 0;
  ck_assert_int_eq(conc_sock_write_all(fd, p, BIG, 30, &n), 0);
  ck_assert_uint_eq(n, BIG);
  free(p);
  ck_assert_int_eq(conc_sock_shutdown(fd, SHUT_WR), 0);
  return 0;
}

static int small_reader(void *arg, void **result) {
  (void)result;
  int fd = (int)(intptr_t)arg;
  size_t total = 0;
  unsigned char buf[1000];
  for (;;) {
    size_t n = 0;
    ck_assert_int_eq(conc_sock_read(fd, buf, sizeof buf, 30, &n), 0);
    if (n == 0)
      break;
    size_t bad = n; /* one check per read: Check's asserts cost a write */
    for (size_t i = 0; i < n && bad == n; i++)
      if (buf[i] != (unsigned char)((total + i) * 7 + 1))
        bad = i;
    ck_assert_uint_eq(bad, n);
    total += n;
    if ((total / sizeof buf) % 64 == 0)
      ck_assert_int_eq(conc_coro_yield(), 0);
  }
  ck_assert_uint_eq(total, BIG);
  return 0;
}

static int partial_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  int fd, s;
  ck_assert_int_eq(conc_tcp_connect("127.0.0.1", port, 5, &fd), 0);
  ck_assert_int_eq(conc_tcp_accept(lfd, 5, &s), 0);
  conc_coro *w, *r;
  ck_assert_int_eq(conc_coro_spawn(NULL, big_writer, (void *)(intptr_t)fd,
                                   NULL, &w), 0);
  ck_assert_int_eq(conc_coro_spawn(NULL, small_reader, (void *)(intptr_t)s,
                                   NULL, &r), 0);
  ck_assert_int_eq(conc_coro_await(w, -1, NULL), 0);
  ck_assert_int_eq(conc_coro_await(r, -1, NULL), 0);
  conc_coro_release(w);
  conc_coro_release(r);
  conc_sock_close(fd);
  conc_sock_close(s);
  return 0;
}

START_TEST(net_tcp_partial) {
  ck_assert_int_eq(conc_tcp_listen("127.0.0.1", 0, 4, &lfd), 0);
  ck_assert_int_eq(conc_sock_local_port(lfd, &port), 0);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, partial_main, NULL, NULL, NULL), 0);
  run_destroy(l);
  conc_sock_close(lfd);
}
END_TEST

/* Cancelling a read, closing a socket under an accept. */
static conc_coro *reader_h;
static int rd_cancelled(void *arg, void **result) {
  (void)result;
  int fd = (int)(intptr_t)arg;
  char c;
  size_t n;
  ck_assert_int_eq(conc_sock_read(fd, &c, 1, -1, &n), CONC_ECANCELED);
  int s;
  ck_assert_int_eq(conc_tcp_accept(lfd, -1, &s), CONC_ECLOSED);
  return 0;
}
static int rd_canceller(void *arg, void **result) {
  (void)arg;
  (void)result;
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(conc_coro_cancel(reader_h), 0);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(conc_sock_close(lfd), 0);
  return 0;
}

START_TEST(net_tcp_cancel) {
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  ck_assert_int_eq(conc_tcp_listen("127.0.0.1", 0, 4, &lfd), 0);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, rd_cancelled, (void *)(intptr_t)sv[0],
                                   NULL, &reader_h), 0);
  ck_assert_int_eq(conc_coro_spawn(l, rd_canceller, NULL, NULL, NULL), 0);
  run_destroy(l);
  conc_coro_release(reader_h);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* ---- Unix sockets ---- */

static char upath[64];
static int unix_client(void *arg, void **result) {
  (void)arg;
  (void)result;
  int fd;
  ck_assert_int_eq(conc_unix_connect(upath, 5, &fd), 0);
  ck_assert_int_eq(conc_sock_write_all(fd, "unix", 4, 5, NULL), 0);
  char back[4];
  ck_assert_int_eq(conc_sock_read_exactly(fd, back, 4, 5, NULL), 0);
  ck_assert_int_eq(memcmp(back, "unix", 4), 0);
  ck_assert_int_eq(conc_sock_close(fd), 0);
  /* Errors. */
  ck_assert_int_eq(conc_unix_connect("/nonexistent/conc.sock", 1, &fd),
                   CONC_ENOENT);
  ck_assert_int_eq(conc_unix_connect(NULL, 1, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_unix_connect(upath, NAN, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_unix_connect(upath, 1, NULL), CONC_EINVAL);
  /* A socket file nobody listens on any more. */
  char stale[80];
  snprintf(stale, sizeof stale, "%s.stale", upath);
  int s;
  ck_assert_int_eq(conc_unix_listen(stale, 1, &s), 0);
  ck_assert_int_eq(conc_sock_close(s), 0);
  ck_assert_int_eq(conc_unix_connect(stale, 1, &fd), CONC_ECONNREFUSED);
  unlink(stale);
  return 0;
}

/* A full backlog: connect retries until its deadline. */
static int unix_backlog(void *arg, void **result) {
  (void)arg;
  (void)result;
  char path[80];
  snprintf(path, sizeof path, "%s.full", upath);
  int l, fds[8], n = 0, fd;
  ck_assert_int_eq(conc_unix_listen(path, 1, &l), 0);
  int err;
  while (n < 8 && (err = conc_unix_connect(path, 0, &fds[n])) == 0)
    n++;
  ck_assert_int_eq(err, CONC_ETIMEDOUT); /* full */
  double t0 = conc_now();
  ck_assert_int_eq(conc_unix_connect(path, 0.03, &fd), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.03);
  for (int i = 0; i < n; i++)
    conc_sock_close(fds[i]);
  conc_sock_close(l);
  unlink(path);
  return 0;
}

START_TEST(net_unix) {
  int fd;
  snprintf(upath, sizeof upath, "/tmp/conc-net-%d.sock", (int)getpid());
  unlink(upath);
  ck_assert_int_eq(conc_unix_connect(upath, 0, &fd), CONC_EPERM);
  ck_assert_int_eq(conc_unix_listen(upath, 4, &lfd), 0);
  ck_assert_int_eq(conc_unix_listen(upath, 4, &fd), CONC_EADDRINUSE);
  ck_assert_int_eq(conc_unix_listen(NULL, 4, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_unix_listen("", 4, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_unix_listen(upath, 4, NULL), CONC_EINVAL);
  char longp[200];
  memset(longp, 'a', sizeof longp - 1);
  longp[sizeof longp - 1] = 0;
  ck_assert_int_eq(conc_unix_listen(longp, 4, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_unix_listen("/nonexistent/conc.sock", 4, &fd),
                   CONC_ENOENT);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, echo_server, (void *)1, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, unix_client, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, unix_backlog, NULL, NULL, NULL), 0);
  run_destroy(l);
  ck_assert_int_eq(conc_sock_close(lfd), 0);
  unlink(upath);
}
END_TEST

/* The read hint: after a short read the next read waits first; data that
 * arrived meanwhile is still read (level-triggered readiness), also with a
 * zero timeout. */
static int sv_hint[2];
static int hint_reader(void *arg, void **result) {
  (void)arg;
  (void)result;
  char buf[16];
  size_t n = 0;
  ck_assert_int_eq(conc_sock_read(sv_hint[0], buf, sizeof buf, 5, &n), 0);
  ck_assert_uint_eq(n, 3); /* short: marked drained */
  phase = 1;
  ck_assert_int_eq(conc_coro_yield(), 0); /* the writer adds 2 bytes */
  ck_assert_int_eq(conc_sock_read(sv_hint[0], buf, sizeof buf, 5, &n), 0);
  ck_assert_uint_eq(n, 2);
  ck_assert_int_eq(memcmp(buf, "de", 2), 0);
  phase = 2;
  ck_assert_int_eq(conc_coro_yield(), 0); /* one more byte */
  ck_assert_int_eq(conc_sock_read(sv_hint[0], buf, sizeof buf, 0, &n), 0);
  ck_assert_uint_eq(n, 1);
  double t0 = conc_now(); /* drained and empty: times out */
  ck_assert_int_eq(conc_sock_read(sv_hint[0], buf, sizeof buf, 0.02, &n),
                   CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.02);
  return 0;
}
static int hint_writer(void *arg, void **result) {
  (void)arg;
  (void)result;
  ck_assert_int_eq(conc_coro_yield(), 0); /* the reader waits now */
  ck_assert_int_eq(write(sv_hint[1], "abc", 3), 3);
  while (phase != 1)
    ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(write(sv_hint[1], "de", 2), 2);
  while (phase != 2)
    ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(write(sv_hint[1], "f", 1), 1);
  return 0;
}

START_TEST(net_read_hint) {
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
                              sv_hint), 0);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, hint_reader, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, hint_writer, NULL, NULL, NULL), 0);
  run_destroy(l);
  close(sv_hint[0]);
  close(sv_hint[1]);
}
END_TEST

/* ---- signals ---- */

static int sig_waiter(void *arg, void **result) {
  (void)arg;
  (void)result;
  int sigs[] = {SIGUSR1, SIGUSR2};
  int signo = 0;
  int t0 = ticks;
  ck_assert_int_eq(conc_coro_wait_signal(sigs, 2, -1, &signo), 0);
  ck_assert_int_eq(signo, SIGUSR2);
  check_ticked(t0);
  ticker_stop = true;
  double t1 = conc_now();
  ck_assert_int_eq(conc_coro_wait_signal(sigs, 1, 0.03, &signo),
                   CONC_ETIMEDOUT);
  ck_assert(conc_now() - t1 >= 0.03);
  /* Pending before the call: returned at once. */
  ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
  ck_assert_int_eq(conc_coro_wait_signal(sigs, 2, 1, &signo), 0);
  ck_assert_int_eq(signo, SIGUSR1);
  int bad[] = {SIGKILL};
  ck_assert_int_eq(conc_coro_wait_signal(bad, 1, 1, &signo), CONC_EINVAL);
  int nosig[] = {100000};
  ck_assert_int_eq(conc_coro_wait_signal(nosig, 1, 1, &signo), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_wait_signal(sigs, 0, 1, &signo), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_wait_signal(NULL, 1, 1, &signo), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_wait_signal(sigs, 1, 1, NULL), CONC_EINVAL);
  return 0;
}

static int sig_sender(void *arg, void **result) {
  (void)arg;
  (void)result;
  wait_ticks(GATE);
  ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
  return 0;
}

START_TEST(net_signal) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
  int signo;
  int sigs[] = {SIGUSR1};
  ck_assert_int_eq(conc_coro_wait_signal(sigs, 1, 0, &signo), CONC_EPERM);
  conc_loop *l = new_loop();
  start_ticker(l);
  ck_assert_int_eq(conc_coro_spawn(l, sig_waiter, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, sig_sender, NULL, NULL, NULL), 0);
  run_destroy(l);
}
END_TEST

/* ---- regular files ---- */

static char fifo_path[64];
static conc_coro *file_h;

static int fifo_reader(void *arg, void **result) {
  (void)result;
  conc_bytes b = {0};
  int t0 = ticks;
  int err = conc_file_read_all(fifo_path, &b);
  check_ticked(t0);
  ticker_stop = true;
  if (arg) { /* cancelled while the read ran */
    ck_assert_int_eq(err, CONC_ECANCELED);
  } else {
    ck_assert_int_eq(err, 0);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_int_eq(memcmp(b.data, "hello", 5), 0);
  }
  conc_bytes_free(&b);
  return 0;
}

static int fifo_writer(void *arg, void **result) {
  (void)result;
  wait_ticks(GATE);
  if (arg)
    ck_assert_int_eq(conc_coro_cancel(file_h), 0);
  int fd;
  /* The reader (a pool worker) opens the FIFO when it gets to it: retry
   * until it has (ENXIO until then). */
  while ((fd = open(fifo_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
    ck_assert_int_eq(errno, ENXIO);
    if (conc_coro_result(file_h, NULL) != CONC_EAGAIN)
      return 0; /* cancelled before the task started: nobody reads */
    ck_assert_int_eq(conc_coro_sleep(0.001), 0);
  }
  ck_assert_int_eq(write(fd, "hello", 5), 5);
  close(fd);
  return 0;
}

static int file_ops(void *arg, void **result) {
  (void)arg;
  (void)result;
  char path[] = "/tmp/conc-net-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  size_t n = 0;
  ck_assert_int_eq(conc_file_write(fd, "0123456789", 10, 0, &n), 0);
  ck_assert_uint_eq(n, 10);
  char buf[16] = {0};
  ck_assert_int_eq(conc_file_read(fd, buf, 4, 3, &n), 0);
  ck_assert_uint_eq(n, 4);
  ck_assert_int_eq(memcmp(buf, "3456", 4), 0);
  ck_assert_int_eq(conc_file_read(fd, buf, 4, 100, &n), 0);
  ck_assert_uint_eq(n, 0);
  conc_bytes b = {0};
  ck_assert_int_eq(conc_file_read_all(path, &b), 0);
  ck_assert_uint_eq(b.len, 10);
  ck_assert_int_eq(memcmp(b.data, "0123456789", 10), 0);
  conc_bytes_free(&b);
  ck_assert_int_eq(conc_file_read_all("/nonexistent/conc", &b), CONC_ENOENT);
  conc_bytes_free(&b);
  ck_assert_int_eq(conc_file_read_all(NULL, &b), CONC_EINVAL);
  ck_assert_int_eq(conc_file_read_all(path, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_file_read(900, buf, 4, 0, &n), CONC_EBADF);
  ck_assert_int_eq(conc_file_write(900, buf, 4, 0, &n), CONC_EBADF);
  ck_assert_int_eq(conc_file_read(fd, NULL, 4, 0, &n), CONC_EINVAL);
  ck_assert_int_eq(conc_file_read(fd, buf, 4, -1, &n), CONC_EINVAL);
  ck_assert_int_eq(conc_file_write(fd, buf, 4, 0, NULL), CONC_EINVAL);
  close(fd);
  unlink(path);
  return 0;
}

START_TEST(net_files) {
  conc_test_no_leak_check(); /* the default pool may outlive the check */
  size_t n;
  char buf[4];
  conc_bytes b = {0};
  ck_assert_int_eq(conc_file_read(0, buf, 1, 0, &n), CONC_EPERM);
  ck_assert_int_eq(conc_file_write(1, buf, 1, 0, &n), CONC_EPERM);
  ck_assert_int_eq(conc_file_read_all("/", &b), CONC_EPERM);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, file_ops, NULL, NULL, NULL), 0);
  run_destroy(l);
  /* A read that only a coroutine of the loop can let finish. */
  for (int cancel = 0; cancel < 2; cancel++) {
    snprintf(fifo_path, sizeof fifo_path, "/tmp/conc-net-fifo-%d-%d",
             (int)getpid(), cancel);
    ck_assert_int_eq(mkfifo(fifo_path, 0600), 0);
    l = new_loop();
    start_ticker(l);
    ck_assert_int_eq(conc_coro_spawn(l, fifo_reader, (void *)(intptr_t)cancel,
                                     NULL, &file_h), 0);
    ck_assert_int_eq(conc_coro_spawn(l, fifo_writer, (void *)(intptr_t)cancel,
                                     NULL, NULL), 0);
    run_destroy(l);
    conc_coro_release(file_h);
    unlink(fifo_path);
  }
  ck_assert_int_eq(conc_library_shutdown(), 0);
}
END_TEST

/* ---- allocation failures ---- */

static int oom_in_coro(void *arg, void **result) {
  (void)arg;
  (void)result;
  /* The poller cannot be created. */
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], CONC_POLL_IN, 1), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  ck_assert_int_eq(conc_coro_wait_fd(pfd[0], CONC_POLL_IN, 0), CONC_ETIMEDOUT);
  /* The fd table cannot grow. */
  int hi = fcntl(pfd[0], F_DUPFD_CLOEXEC, 500);
  ck_assert_int_ge(hi, 500);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_coro_wait_fd(hi, CONC_POLL_IN, 1), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  close(hi);
  /* The future-await record. */
  conc_future *f = NULL;
  ck_assert_int_eq(conc_future_create(&f), 0);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_coro_await_future(f, 1, NULL), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  conc_future_release(f);
  return 0;
}

START_TEST(net_out_of_memory) {
  ck_assert_int_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
  conc_loop *l = new_loop();
  /* The poller: its record, then its inbox. */
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_loop_ref(l), CONC_ENOMEM);
  conc_test_fail_alloc_after(2);
  ck_assert_int_eq(conc_loop_ref(l), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  ck_assert_int_eq(conc_loop_ref(l), 0);
  ck_assert_int_eq(conc_loop_unref(l), 0);
  conc_future *f = NULL;
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_loop_spawn_threadsafe(l, add_one, NULL, &f),
                   CONC_ENOMEM);
  conc_loop_timer *t = NULL;
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_loop_timer_create(l, on_timer, NULL, &t), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  ck_assert_int_eq(conc_loop_timer_create(l, on_timer, NULL, &t), 0);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_loop_timer_start(t, 1), CONC_ENOMEM);
  ck_assert(!conc_loop_timer_active(t));
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_loop_watch(l, pfd[0], CONC_POLL_IN, on_other, NULL),
                   CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  conc_loop_timer_destroy(t);
  ck_assert_int_eq(conc_coro_spawn(l, oom_in_coro, NULL, NULL, NULL), 0);
  run_destroy(l);
  close(pfd[0]);
  close(pfd[1]);
}
END_TEST

/* A remote spawn whose coroutine cannot be allocated: the future fails
 * with CONC_ETASK, detail CONC_ENOMEM. */
static int remote_spawn_oom(void *arg, void **result) {
  (void)result;
  conc_loop *l = arg;
  ck_assert_int_eq(conc_coro_sleep(0.001), 0); /* the timer heap exists */
  conc_future *f = NULL;
  ck_assert_int_eq(conc_loop_spawn_threadsafe(l, add_one, NULL, &f), 0);
  conc_test_fail_alloc_after(1); /* the coroutine's record */
  ck_assert_int_eq(conc_coro_sleep(0.01), 0);
  conc_test_fail_alloc_after(0);
  ck_assert(conc_future_done(f));
  int detail = 0;
  ck_assert_int_eq(conc_future_error(f, &detail, NULL), CONC_ETASK);
  ck_assert_int_eq(detail, CONC_ENOMEM);
  conc_future_release(f);
  return 0;
}

START_TEST(net_spawn_threadsafe_oom) {
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, remote_spawn_oom, l, NULL, NULL), 0);
  run_destroy(l);
}
END_TEST

/* Timeouts and cancellation of writes and connects. */
static int write_timeout(void *arg, void **result) {
  (void)arg;
  (void)result;
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  size_t big = 16u << 20, n = 0;
  char *p = calloc(1, big);
  ck_assert_ptr_nonnull(p);
  double t0 = conc_now();
  /* Nobody reads: the buffer fills and the rest times out. */
  ck_assert_int_eq(conc_sock_write_all(sv[0], p, big, 0.03, &n),
                   CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.03);
  ck_assert_uint_gt(n, 0);
  ck_assert_uint_lt(n, big);
  ck_assert_int_eq(conc_sock_write(sv[0], p, big, 0.01, &n), CONC_ETIMEDOUT);
  ck_assert_uint_eq(n, 0);
  free(p);
  close(sv[0]);
  close(sv[1]);
  /* A connect to a listener whose accept queue is full times out (the
   * kernel drops the SYN). */
  int full, fport, fds[16], nfd = 0, err = 0, fd;
  ck_assert_int_eq(conc_tcp_listen("127.0.0.1", 0, 1, &full), 0);
  ck_assert_int_eq(conc_sock_local_port(full, &fport), 0);
  while (nfd < 16 &&
         (err = conc_tcp_connect("127.0.0.1", fport, 0.05, &fds[nfd])) == 0)
    nfd++;
  ck_assert_int_eq(err, CONC_ETIMEDOUT);
  for (int i = 0; i < nfd; i++)
    conc_sock_close(fds[i]);
  conc_sock_close(full);
  /* Cancelled before the connect. */
  ck_assert_int_eq(conc_coro_cancel(conc_coro_self()), 0);
  ck_assert_int_eq(conc_tcp_connect("127.0.0.1", port, 1, &fd),
                   CONC_ECANCELED);
  return 0;
}

START_TEST(net_timeouts) {
  conc_loop *l = new_loop();
  port = 9; /* not reached: the connect is cancelled first */
  ck_assert_int_eq(conc_coro_spawn(l, write_timeout, NULL, NULL, NULL), 0);
  run_destroy(l);
}
END_TEST

/* ---- the _until twins (absolute deadlines) ---- */

static int until_calls(void *arg, void **result) {
  (void)arg;
  (void)result;
  double past = conc_now() - 1, soon = conc_now() + 5;
  int sv[2], fd, s;
  char buf[4];
  size_t n;
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  ck_assert_int_eq(conc_coro_wait_fd_until(sv[0], CONC_POLL_IN, past),
                   CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_coro_wait_fd_until(sv[0], CONC_POLL_OUT, soon),
                   CONC_POLL_OUT);
  ck_assert_int_eq(conc_coro_wait_fd_until(sv[0], CONC_POLL_IN, NAN),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_sock_read_until(sv[0], buf, 4, past, &n),
                   CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_sock_read_exactly_until(sv[0], buf, 4, past, &n),
                   CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_sock_write_until(sv[1], "ab", 2, past, &n), 0);
  ck_assert_uint_eq(n, 2);
  ck_assert_int_eq(conc_sock_write_all_until(sv[1], "cd", 2, past, &n), 0);
  ck_assert_int_eq(conc_sock_read_exactly_until(sv[0], buf, 4, soon, &n), 0);
  ck_assert_int_eq(memcmp(buf, "abcd", 4), 0);
  ck_assert_int_eq(conc_sock_read_until(sv[0], buf, 4, NAN, &n), CONC_EINVAL);
  /* Plain close behind conc's back: the sockets conc creates next reuse
   * these numbers and must not inherit their stale registrations. */
  close(sv[0]);
  close(sv[1]);
  ck_assert_int_eq(conc_tcp_accept_until(lfd, past, &s), CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_tcp_connect_until("127.0.0.1", port, NAN, &fd),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_tcp_connect_until("127.0.0.1", port, soon, &fd), 0);
  ck_assert_int_eq(conc_tcp_accept_until(lfd, soon, &s), 0);
  conc_sock_close(fd);
  conc_sock_close(s);
  ck_assert_int_eq(conc_unix_connect_until(upath, NAN, &fd), CONC_EINVAL);
  ck_assert_int_eq(conc_unix_connect_until(upath, soon, &fd), 0);
  conc_sock_close(fd);
  int sigs[] = {SIGUSR1};
  int signo;
  ck_assert_int_eq(conc_coro_wait_signal_until(sigs, 1, past, &signo),
                   CONC_ETIMEDOUT);
  conc_future *f = NULL;
  ck_assert_int_eq(conc_future_create(&f), 0);
  ck_assert_int_eq(conc_coro_await_future_until(f, past, NULL),
                   CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_coro_await_future_until(f, NAN, NULL), CONC_EINVAL);
  conc_future_release(f);
  return 0;
}

START_TEST(net_until) {
  ck_assert_int_eq(conc_tcp_listen("127.0.0.1", 0, 4, &lfd), 0);
  ck_assert_int_eq(conc_sock_local_port(lfd, &port), 0);
  snprintf(upath, sizeof upath, "/tmp/conc-net-until-%d.sock", (int)getpid());
  unlink(upath);
  int ul;
  ck_assert_int_eq(conc_unix_listen(upath, 4, &ul), 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
  int fd;
  ck_assert_int_eq(conc_tcp_accept_until(lfd, 0, &fd), CONC_EPERM);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, until_calls, NULL, NULL, NULL), 0);
  run_destroy(l);
  conc_sock_close(lfd);
  conc_sock_close(ul);
  unlink(upath);
}
END_TEST

/* ---- error names of the network codes ---- */

START_TEST(net_error_codes) {
  ck_assert_int_eq(CONC_ECONNREFUSED, -ECONNREFUSED);
  ck_assert_int_eq(CONC_ECONNRESET, -ECONNRESET);
  ck_assert_int_eq(CONC_EPIPE, -EPIPE);
  ck_assert_int_eq(CONC_EADDRINUSE, -EADDRINUSE);
  ck_assert_int_eq(CONC_EBADF, -EBADF);
  ck_assert_str_eq(conc_err_name(CONC_ECONNREFUSED), "ECONNREFUSED");
  ck_assert_str_eq(conc_strerror(CONC_EPIPE), "broken pipe (peer closed)");
}
END_TEST

CONC_TEST_MAIN("net", net_wait_fd_ready, net_yield_io_not_starved,
               net_wait_fd_misc,
               net_wait_fd_cancel_close, net_destroy_cancels_fd_wait,
               net_watch, net_watch_fd_reuse, net_watch_writable, net_timer,
               net_spawn_threadsafe,
               net_loop_ref_run_forever, net_spawn_threadsafe_destroyed,
               net_spawn_threadsafe_sleeping_loop,
               net_await_future, net_await_future_errors,
               net_await_future_outlives_loop, net_run_in_executor,
               net_run_in_executor_cancel, net_run_in_default_executor,
               net_tcp_echo, net_tcp_connect_name, net_tcp_errors,
               net_tcp_partial, net_tcp_cancel, net_unix, net_read_hint,
               net_signal,
               net_files,
               net_out_of_memory, net_spawn_threadsafe_oom, net_timeouts,
               net_until,
               net_error_codes)
