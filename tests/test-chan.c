/* test-chan.c - channels and select (include/conc/chan.h, src/chan.c).
 *
 * DESIGN: one loop thread, so orders are deterministic; ordering comes
 * from the scheduler (channel hand-offs and yields), never from sleeps.
 * Timeouts are checked by lower bounds only.  Cancellation is tested
 * while parked in send, recv and select, and checks that no value is lost
 * or duplicated.  The harness checks that nothing leaked.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <limits.h>
#include <math.h>

#define ITEMS 10000 /* per producer; four producers */

static conc_loop *new_loop(void) {
  conc_loop *l = NULL;
  ck_assert_int_eq(conc_loop_create(NULL, &l), 0);
  return l;
}

static void run_and_destroy(conc_loop *l) {
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}

/* ---- ping-pong ---- */

typedef struct pp {
  conc_chan *ping, *pong;
  int rounds;
} pp;

static int pinger(void *arg, void **result) {
  pp *p = arg;
  for (intptr_t i = 0; i < p->rounds; i++) {
    ck_assert_int_eq(conc_chan_send(p->ping, (void *)i, -1), 0);
    void *v = NULL;
    ck_assert_int_eq(conc_chan_recv(p->pong, &v, -1), 0);
    ck_assert_ptr_eq(v, (void *)(i + 1));
  }
  ck_assert_int_eq(conc_chan_close(p->ping), 0);
  *result = NULL;
  return 0;
}

static int ponger(void *arg, void **result) {
  pp *p = arg;
  void *v = NULL;
  int n = 0, err;
  while ((err = conc_chan_recv(p->ping, &v, -1)) == 0) {
    ck_assert_int_eq(conc_chan_send(p->pong, (void *)((intptr_t)v + 1), -1), 0);
    n++;
  }
  ck_assert_int_eq(err, CONC_ECLOSED);
  ck_assert_int_eq(n, p->rounds);
  *result = NULL;
  return 0;
}

START_TEST(chan_ping_pong) {
  conc_loop *l = new_loop();
  pp p = {.rounds = 1000};
  ck_assert_int_eq(conc_chan_create(&p.ping, 0), 0);
  ck_assert_int_eq(conc_chan_create(&p.pong, 0), 0);
  ck_assert_int_eq(conc_chan_cap(p.ping), 0);
  ck_assert_int_eq(conc_coro_spawn(l, ponger, &p, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, pinger, &p, NULL, NULL), 0);
  run_and_destroy(l);
  conc_chan_release(p.ping);
  conc_chan_release(p.pong);
}
END_TEST

/* ---- buffered FIFO, try_, close ---- */

static int fifo_body(void *arg, void **result) {
  (void)arg;
  conc_chan *ch = NULL;
  ck_assert_int_eq(conc_chan_create(&ch, 4), 0);
  ck_assert_int_eq(conc_chan_cap(ch), 4);
  void *v = NULL;
  ck_assert_int_eq(conc_chan_try_recv(ch, &v), CONC_EAGAIN);
  for (intptr_t i = 0; i < 4; i++)
    ck_assert_int_eq(conc_chan_send(ch, (void *)i, 0), 0);
  ck_assert_int_eq(conc_chan_len(ch), 4);
  ck_assert_int_eq(conc_chan_try_send(ch, (void *)9), CONC_EAGAIN);
  ck_assert_int_eq(conc_chan_send(ch, (void *)9, 0), CONC_ETIMEDOUT);
  for (intptr_t i = 0; i < 2; i++) {
    ck_assert_int_eq(conc_chan_recv(ch, &v, 0), 0);
    ck_assert_ptr_eq(v, (void *)i);
  }
  ck_assert_int_eq(conc_chan_try_send(ch, (void *)4), 0);
  ck_assert_int_eq(conc_chan_try_send(ch, (void *)5), 0);
  /* Close: sends fail, receives drain in order, then ECLOSED. */
  ck_assert_int_eq(conc_chan_close(ch), 0);
  ck_assert_int_eq(conc_chan_close(ch), CONC_ECLOSED);
  ck_assert_int_eq(conc_chan_send(ch, (void *)6, -1), CONC_ECLOSED);
  ck_assert_int_eq(conc_chan_try_send(ch, (void *)6), CONC_ECLOSED);
  for (intptr_t i = 2; i < 6; i++) {
    ck_assert_int_eq(i % 2 ? conc_chan_try_recv(ch, &v)
                           : conc_chan_recv(ch, &v, -1), 0);
    ck_assert_ptr_eq(v, (void *)i);
  }
  v = (void *)77;
  ck_assert_int_eq(conc_chan_recv(ch, &v, -1), CONC_ECLOSED);
  ck_assert_ptr_eq(v, (void *)77);
  ck_assert_int_eq(conc_chan_try_recv(ch, &v), CONC_ECLOSED);
  ck_assert_int_eq(conc_chan_len(ch), 0);
  conc_chan_release(ch);
  *result = NULL;
  return 0;
}

START_TEST(chan_buffered_fifo_close) {
  ck_assert_int_eq(conc_coro_run(fifo_body, NULL, NULL), 0);
}
END_TEST

/* Close wakes parked receivers and senders with ECLOSED. */
static int wait_recv_closed(void *arg, void **result) {
  void *v = NULL;
  *result = NULL;
  return conc_chan_recv(arg, &v, -1);
}
static int wait_send_closed(void *arg, void **result) {
  *result = NULL;
  return conc_chan_send(arg, (void *)1, -1);
}
static int closer(void *arg, void **result) {
  conc_chan **chs = arg;
  ck_assert_int_eq(conc_coro_yield(), 0); /* let the others park */
  ck_assert_int_eq(conc_chan_close(chs[0]), 0);
  ck_assert_int_eq(conc_chan_close(chs[1]), 0);
  *result = NULL;
  return 0;
}

START_TEST(chan_close_wakes) {
  conc_loop *l = new_loop();
  conc_chan *chs[2];
  ck_assert_int_eq(conc_chan_create(&chs[0], 0), 0);
  ck_assert_int_eq(conc_chan_create(&chs[1], 1), 0);
  ck_assert_int_eq(conc_chan_try_send(chs[1], (void *)5), 0); /* full */
  conc_coro *r = NULL, *s = NULL, *s2 = NULL;
  ck_assert_int_eq(conc_coro_spawn(l, wait_recv_closed, chs[0], NULL, &r), 0);
  ck_assert_int_eq(conc_coro_spawn(l, wait_send_closed, chs[0], NULL, &s), 0);
  ck_assert_int_eq(conc_coro_spawn(l, wait_send_closed, chs[1], NULL, &s2), 0);
  ck_assert_int_eq(conc_coro_spawn(l, closer, chs, NULL, NULL), 0);
  run_and_destroy(l);
  /* r and s met each other (unbuffered rendezvous) before the close. */
  ck_assert_int_eq(conc_coro_result(r, NULL), 0);
  ck_assert_int_eq(conc_coro_result(s, NULL), 0);
  ck_assert_int_eq(conc_coro_result(s2, NULL), CONC_ECLOSED);
  void *v = NULL;
  ck_assert_int_eq(conc_chan_try_recv(chs[1], &v), 0);
  ck_assert_ptr_eq(v, (void *)5);
  ck_assert_int_eq(conc_chan_try_recv(chs[1], &v), CONC_ECLOSED);
  conc_coro_release(r);
  conc_coro_release(s);
  conc_coro_release(s2);
  conc_chan_release(chs[0]);
  conc_chan_release(chs[1]);
}
END_TEST

START_TEST(chan_close_wakes_receiver) {
  conc_loop *l = new_loop();
  conc_chan *chs[2];
  ck_assert_int_eq(conc_chan_create(&chs[0], 0), 0);
  ck_assert_int_eq(conc_chan_create(&chs[1], 0), 0);
  conc_coro *r = NULL;
  ck_assert_int_eq(conc_coro_spawn(l, wait_recv_closed, chs[0], NULL, &r), 0);
  ck_assert_int_eq(conc_coro_spawn(l, closer, chs, NULL, NULL), 0);
  run_and_destroy(l);
  ck_assert_int_eq(conc_coro_result(r, NULL), CONC_ECLOSED);
  conc_coro_release(r);
  conc_chan_release(chs[0]);
  conc_chan_release(chs[1]);
}
END_TEST

/* ---- timeouts ---- */

static int timeout_body(void *arg, void **result) {
  (void)arg;
  conc_chan *ch = NULL;
  ck_assert_int_eq(conc_chan_create(&ch, 0), 0);
  void *v = NULL;
  double t0 = conc_now();
  ck_assert_int_eq(conc_chan_recv(ch, &v, 0.02), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.02);
  t0 = conc_now();
  ck_assert_int_eq(conc_chan_send(ch, v, 0.02), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.02);
  t0 = conc_now();
  ck_assert_int_eq(conc_chan_recv_until(ch, &v, t0 + 0.01), CONC_ETIMEDOUT);
  ck_assert(conc_now() >= t0 + 0.01);
  t0 = conc_now();
  ck_assert_int_eq(conc_chan_send_until(ch, v, t0 + 0.01), CONC_ETIMEDOUT);
  ck_assert(conc_now() >= t0 + 0.01);
  conc_chan_case cs = {ch, CONC_CHAN_RECV, NULL};
  size_t idx = 0;
  t0 = conc_now();
  ck_assert_int_eq(conc_chan_select(&cs, 1, 0.01, &idx), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.01);
  ck_assert_int_eq(idx, 1);
  t0 = conc_now();
  ck_assert_int_eq(conc_chan_select_until(&cs, 1, t0 + 0.01, &idx),
                   CONC_ETIMEDOUT);
  ck_assert(conc_now() >= t0 + 0.01);
  /* No case at all: waits for the timeout. */
  ck_assert_int_eq(conc_chan_select(NULL, 0, 0.001, &idx), CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_chan_try_select(&cs, 1, &idx), CONC_EAGAIN);
  conc_chan_release(ch);
  *result = NULL;
  return 0;
}

START_TEST(chan_timeouts) {
  ck_assert_int_eq(conc_coro_run(timeout_body, NULL, NULL), 0);
}
END_TEST

/* ---- errors ---- */

static int bad_args_body(void *arg, void **result) {
  (void)arg;
  conc_chan *ch = NULL;
  ck_assert_int_eq(conc_chan_create(&ch, 1), 0);
  void *v;
  size_t idx;
  ck_assert_int_eq(conc_chan_send(NULL, NULL, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_send(ch, NULL, NAN), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_recv(NULL, &v, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_recv(ch, NULL, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_recv(ch, &v, NAN), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_select(NULL, 1, -1, &idx), CONC_EINVAL);
  conc_chan_case cs = {ch, (conc_chan_op)7, NULL};
  ck_assert_int_eq(conc_chan_select(&cs, 1, -1, &idx), CONC_EINVAL);
  cs.op = CONC_CHAN_RECV;
  ck_assert_int_eq(conc_chan_select(&cs, 1, -1, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_select(&cs, 1, NAN, &idx), CONC_EINVAL);
  conc_chan_release(ch);
  *result = NULL;
  return 0;
}

START_TEST(chan_bad_args_eperm) {
  conc_chan *ch = NULL;
  ck_assert_int_eq(conc_chan_create(NULL, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_create(&ch, ((size_t)1 << 30) + 1), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_create(&ch, 2), 0);
  ck_assert_ptr_eq(conc_chan_retain(ch), ch);
  ck_assert_ptr_null(conc_chan_retain(NULL));
  conc_chan_release(ch);
  void *v = NULL;
  size_t idx;
  conc_chan_case cs = {ch, CONC_CHAN_SEND, (void *)1};
  /* Outside a coroutine: blocking calls EPERM, try_ calls work. */
  ck_assert_int_eq(conc_chan_send(ch, NULL, -1), CONC_EPERM);
  ck_assert_int_eq(conc_chan_send_until(ch, NULL, INFINITY), CONC_EPERM);
  ck_assert_int_eq(conc_chan_recv(ch, &v, -1), CONC_EPERM);
  ck_assert_int_eq(conc_chan_recv_until(ch, &v, INFINITY), CONC_EPERM);
  ck_assert_int_eq(conc_chan_select(&cs, 1, -1, &idx), CONC_EPERM);
  ck_assert_int_eq(conc_chan_select_until(&cs, 1, INFINITY, &idx), CONC_EPERM);
  ck_assert_int_eq(conc_chan_try_select(&cs, 1, &idx), 0);
  ck_assert_int_eq(idx, 0);
  ck_assert_int_eq(conc_chan_try_recv(ch, &v), 0);
  ck_assert_ptr_eq(v, (void *)1);
  ck_assert_int_eq(conc_chan_try_send(NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_try_recv(NULL, &v), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_try_recv(ch, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_close(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_chan_len(NULL), 0);
  ck_assert_int_eq(conc_chan_cap(NULL), 0);
  conc_chan_release(NULL);
  conc_chan_release(ch);
  ck_assert_int_eq(conc_coro_run(bad_args_body, NULL, NULL), 0);
}
END_TEST

/* ---- cancellation ---- */

typedef struct cx {
  conc_chan *ch;
  conc_coro *victim;
  int err;
} cx;

static int victim_recv(void *arg, void **result) {
  cx *x = arg;
  void *v = (void *)55;
  x->err = conc_chan_recv(x->ch, &v, -1);
  ck_assert_ptr_eq(v, (void *)55); /* untouched */
  *result = NULL;
  return 0;
}
static int victim_send(void *arg, void **result) {
  cx *x = arg;
  x->err = conc_chan_send(x->ch, (void *)66, -1);
  *result = NULL;
  return 0;
}
static int victim_select(void *arg, void **result) {
  cx *x = arg;
  conc_chan_case cs[2] = {{x->ch, CONC_CHAN_RECV, NULL},
                          {x->ch, CONC_CHAN_SEND, (void *)66}};
  size_t idx = 0;
  /* Buffer full (cap 1 holding a value) means recv could proceed, so use
   * an unbuffered channel with nobody on the other side. */
  x->err = conc_chan_select(cs, 2, 10, &idx);
  ck_assert_int_eq(idx, 2);
  *result = NULL;
  return 0;
}
static int canceller(void *arg, void **result) {
  cx *x = arg;
  ck_assert_int_eq(conc_coro_yield(), 0); /* the victim parks */
  ck_assert_int_eq(conc_coro_cancel(x->victim), 0);
  /* Nothing was sent or taken: the channel is still empty and usable. */
  void *v = NULL;
  ck_assert_int_eq(conc_chan_try_recv(x->ch, &v), CONC_EAGAIN);
  ck_assert_int_eq(conc_chan_try_send(x->ch, (void *)1), CONC_EAGAIN);
  *result = NULL;
  return 0;
}

static void cancel_case(conc_coro_fn victim) {
  conc_loop *l = new_loop();
  cx x = {.err = 1};
  ck_assert_int_eq(conc_chan_create(&x.ch, 0), 0);
  ck_assert_int_eq(conc_coro_spawn(l, victim, &x, NULL, &x.victim), 0);
  ck_assert_int_eq(conc_coro_spawn(l, canceller, &x, NULL, NULL), 0);
  run_and_destroy(l);
  ck_assert_int_eq(x.err, CONC_ECANCELED);
  conc_coro_release(x.victim);
  conc_chan_release(x.ch);
}

START_TEST(chan_cancel_recv) { cancel_case(victim_recv); }
END_TEST
START_TEST(chan_cancel_send) { cancel_case(victim_send); }
END_TEST
START_TEST(chan_cancel_select) { cancel_case(victim_select); }
END_TEST

/* A receiver that was handed a value and then cancelled before it ran
 * keeps the value (not lost); the cancel hits its next wait. */
static int recv_then_wait(void *arg, void **result) {
  cx *x = arg;
  void *v = NULL;
  ck_assert_int_eq(conc_chan_recv(x->ch, &v, -1), 0);
  ck_assert_ptr_eq(v, (void *)42);
  x->err = conc_coro_yield();
  *result = NULL;
  return 0;
}
static int send_then_cancel(void *arg, void **result) {
  cx *x = arg;
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(conc_chan_try_send(x->ch, (void *)42), 0);
  ck_assert_int_eq(conc_coro_cancel(x->victim), 0);
  *result = NULL;
  return 0;
}

START_TEST(chan_cancel_after_handoff) {
  conc_loop *l = new_loop();
  cx x = {.err = 1};
  ck_assert_int_eq(conc_chan_create(&x.ch, 0), 0);
  ck_assert_int_eq(conc_coro_spawn(l, recv_then_wait, &x, NULL, &x.victim), 0);
  ck_assert_int_eq(conc_coro_spawn(l, send_then_cancel, &x, NULL, NULL), 0);
  run_and_destroy(l);
  ck_assert_int_eq(x.err, CONC_ECANCELED);
  conc_coro_release(x.victim);
  conc_chan_release(x.ch);
}
END_TEST

/* Direct handoff to a receiver parked with a deadline (its timer armed):
 * a blocking send hands the value over without parking, the timer is
 * disarmed, and a cancel that comes after the handoff hits the next wait,
 * not the receive. */
static int recv_deadline_then_wait(void *arg, void **result) {
  cx *x = arg;
  void *v = NULL;
  ck_assert_int_eq(conc_chan_recv(x->ch, &v, 10), 0);
  ck_assert_ptr_eq(v, (void *)7);
  x->err = conc_coro_sleep(0.001);
  *result = NULL;
  return 0;
}
static int send_blocking_then_cancel(void *arg, void **result) {
  cx *x = arg;
  ck_assert_int_eq(conc_coro_yield(), 0);
  double t0 = conc_now();
  ck_assert_int_eq(conc_chan_send(x->ch, (void *)7, 10), 0);
  ck_assert(conc_now() - t0 < 5); /* handed over, not a timeout */
  ck_assert_int_eq(conc_coro_cancel(x->victim), 0);
  *result = NULL;
  return 0;
}

START_TEST(chan_handoff_deadline_cancel) {
  conc_loop *l = new_loop();
  cx x = {.err = 1};
  ck_assert_int_eq(conc_chan_create(&x.ch, 0), 0);
  ck_assert_int_eq(
      conc_coro_spawn(l, recv_deadline_then_wait, &x, NULL, &x.victim), 0);
  ck_assert_int_eq(conc_coro_spawn(l, send_blocking_then_cancel, &x, NULL, NULL),
                   0);
  run_and_destroy(l);
  ck_assert_int_eq(x.err, CONC_ECANCELED);
  conc_coro_release(x.victim);
  conc_chan_release(x.ch);
}
END_TEST

/* A receiver whose deadline passed but which has not run yet is stale: a
 * send skips it and hands the value to the next parked receiver. */
static conc_chan *st_ch;
static int st_r1_err = 1, st_r2_err = 1;
static void *st_r2_val;
static double st_t0;

static int st_r1(void *arg, void **result) {
  (void)arg;
  void *v = NULL;
  st_t0 = conc_now(); /* margins of 100 ms: a loaded machine may stall us */
  st_r1_err = conc_chan_recv_until(st_ch, &v, st_t0 + 0.2);
  *result = NULL;
  return 0;
}
static int st_r2(void *arg, void **result) {
  (void)arg;
  st_r2_err = conc_chan_recv(st_ch, &st_r2_val, -1);
  *result = NULL;
  return 0;
}
static int st_sender(void *arg, void **result) {
  (void)arg;
  ck_assert_int_eq(conc_coro_sleep_until(st_t0 + 0.1), 0);
  /* r1 timed out in the same pass of the timers, after this one woke */
  ck_assert_int_eq(st_r1_err, 1);
  ck_assert_int_eq(conc_chan_send(st_ch, (void *)5, -1), 0);
  *result = NULL;
  return 0;
}
static int st_spinner(void *arg, void **result) {
  (void)arg;
  while (conc_now() < st_t0 + 0.3) /* both deadlines pass meanwhile */
    ;
  *result = NULL;
  return 0;
}

START_TEST(chan_stale_receiver_skipped) {
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_chan_create(&st_ch, 0), 0);
  ck_assert_int_eq(conc_coro_spawn(l, st_r1, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, st_r2, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, st_sender, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, st_spinner, NULL, NULL, NULL), 0);
  run_and_destroy(l);
  ck_assert_int_eq(st_r1_err, CONC_ETIMEDOUT);
  ck_assert_int_eq(st_r2_err, 0);
  ck_assert_ptr_eq(st_r2_val, (void *)5);
  conc_chan_release(st_ch);
}
END_TEST

/* Cancel pending before the call: returns at once, nothing sent. */
static int self_cancel(void *arg, void **result) {
  conc_chan *ch = arg;
  ck_assert_int_eq(conc_coro_cancel(conc_coro_self()), 0);
  ck_assert_int_eq(conc_chan_send(ch, (void *)1, -1), CONC_ECANCELED);
  ck_assert_int_eq(conc_chan_len(ch), 0);
  *result = NULL;
  return 0;
}

START_TEST(chan_cancel_pending) {
  conc_chan *ch = NULL;
  ck_assert_int_eq(conc_chan_create(&ch, 1), 0);
  ck_assert_int_eq(conc_coro_run(self_cancel, ch, NULL), 0);
  conc_chan_release(ch);
}
END_TEST

/* ---- select ---- */

static int select_body(void *arg, void **result) {
  (void)arg;
  conc_chan *a = NULL, *b = NULL;
  ck_assert_int_eq(conc_chan_create(&a, 1), 0);
  ck_assert_int_eq(conc_chan_create(&b, 1), 0);
  size_t idx = 9;
  /* Both ready: over many rounds each is chosen (fairness smoke). */
  int hits[2] = {0, 0};
  for (int i = 0; i < 1000; i++) {
    ck_assert_int_eq(conc_chan_try_send(a, (void *)1), 0);
    ck_assert_int_eq(conc_chan_try_send(b, (void *)2), 0);
    conc_chan_case cs[3] = {{a, CONC_CHAN_RECV, NULL},
                            {NULL, CONC_CHAN_RECV, NULL}, /* disabled */
                            {b, CONC_CHAN_RECV, NULL}};
    ck_assert_int_eq(conc_chan_select(cs, 3, -1, &idx), 0);
    ck_assert(idx == 0 || idx == 2);
    ck_assert_ptr_eq(cs[idx].value, (void *)(intptr_t)(idx ? 2 : 1));
    hits[idx / 2]++;
    void *v;
    ck_assert_int_eq(conc_chan_try_recv(idx ? a : b, &v), 0);
  }
  /* a random order: each about half, whatever lies between them (the
   * bound is 8 standard deviations out) */
  ck_assert_int_gt(hits[0], 370);
  ck_assert_int_gt(hits[1], 370);
  /* A send case; then a closed channel reports ECLOSED with its index. */
  conc_chan_case sc[2] = {{a, CONC_CHAN_SEND, (void *)3},
                          {b, CONC_CHAN_SEND, (void *)4}};
  ck_assert_int_eq(conc_chan_try_send(b, (void *)0), 0); /* b full */
  ck_assert_int_eq(conc_chan_select(sc, 2, 0, &idx), 0);
  ck_assert_int_eq(idx, 0);
  ck_assert_int_eq(conc_chan_close(b), 0);
  void *v;
  ck_assert_int_eq(conc_chan_try_recv(b, &v), 0);
  conc_chan_case rc = {b, CONC_CHAN_RECV, NULL};
  ck_assert_int_eq(conc_chan_select(&rc, 1, -1, &idx), CONC_ECLOSED);
  ck_assert_int_eq(idx, 0);
  ck_assert_int_eq(conc_chan_select(sc, 2, -1, &idx), CONC_ECLOSED);
  ck_assert_int_eq(idx, 1); /* a is full, b closed */
  conc_chan_release(a);
  conc_chan_release(b);
  *result = NULL;
  return 0;
}

START_TEST(chan_select_basic_fair) {
  ck_assert_int_eq(conc_coro_run(select_body, NULL, NULL), 0);
}
END_TEST

/* A parked select is completed by a sender on its second channel; its
 * other waiter is withdrawn (a later send there finds no receiver). */
typedef struct sx {
  conc_chan *a, *b;
} sx;
static int select_waiter(void *arg, void **result) {
  sx *x = arg;
  conc_chan_case cs[2] = {{x->a, CONC_CHAN_RECV, NULL},
                          {x->b, CONC_CHAN_RECV, NULL}};
  size_t idx = 9;
  ck_assert_int_eq(conc_chan_select(cs, 2, -1, &idx), 0);
  ck_assert_int_eq(idx, 1);
  ck_assert_ptr_eq(cs[1].value, (void *)7);
  /* Many cases: the heap path. */
  conc_chan_case many[20];
  for (int i = 0; i < 20; i++)
    many[i] = (conc_chan_case){i == 13 ? x->a : NULL, CONC_CHAN_RECV, NULL};
  ck_assert_int_eq(conc_chan_select(many, 20, -1, &idx), 0);
  ck_assert_int_eq(idx, 13);
  ck_assert_ptr_eq(many[13].value, (void *)8);
  *result = NULL;
  return 0;
}
static int select_feeder(void *arg, void **result) {
  sx *x = arg;
  ck_assert_int_eq(conc_chan_send(x->b, (void *)7, -1), 0);
  ck_assert_int_eq(conc_chan_try_send(x->a, (void *)1), CONC_EAGAIN);
  ck_assert_int_eq(conc_chan_send(x->a, (void *)8, -1), 0);
  *result = NULL;
  return 0;
}

START_TEST(chan_select_parked) {
  conc_loop *l = new_loop();
  sx x;
  ck_assert_int_eq(conc_chan_create(&x.a, 0), 0);
  ck_assert_int_eq(conc_chan_create(&x.b, 0), 0);
  ck_assert_int_eq(conc_coro_spawn(l, select_waiter, &x, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, select_feeder, &x, NULL, NULL), 0);
  run_and_destroy(l);
  conc_chan_release(x.a);
  conc_chan_release(x.b);
}
END_TEST

/* ---- producer / consumer ---- */

typedef struct pc {
  conc_chan *ch;
  unsigned long sum;
  long count;
} pc;

static int producer(void *arg, void **result) {
  pc *p = arg;
  for (intptr_t i = 1; i <= ITEMS; i++)
    ck_assert_int_eq(conc_chan_send(p->ch, (void *)i, -1), 0);
  *result = NULL;
  return 0;
}
static int consumer(void *arg, void **result) {
  pc *p = arg;
  void *v;
  int err;
  while ((err = conc_chan_recv(p->ch, &v, -1)) == 0) {
    p->sum += (unsigned long)(intptr_t)v;
    p->count++;
  }
  ck_assert_int_eq(err, CONC_ECLOSED);
  *result = NULL;
  return 0;
}
static int pc_main(void *arg, void **result) {
  pc *p = arg;
  conc_coro *prod[4];
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(conc_coro_spawn(NULL, producer, p, NULL, &prod[i]), 0);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(conc_coro_spawn(NULL, consumer, p, NULL, NULL), 0);
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(conc_coro_await(prod[i], -1, NULL), 0);
    conc_coro_release(prod[i]);
  }
  ck_assert_int_eq(conc_chan_close(p->ch), 0);
  *result = NULL;
  return 0;
}

static void pc_run(size_t cap) {
  pc p = {0};
  ck_assert_int_eq(conc_chan_create(&p.ch, cap), 0);
  ck_assert_int_eq(conc_coro_run(pc_main, &p, NULL), 0);
  ck_assert_int_eq(p.count, 4L * ITEMS);
  ck_assert_uint_eq(p.sum, 4UL * ITEMS * (ITEMS + 1) / 2);
  conc_chan_release(p.ch);
}

START_TEST(chan_producer_consumer) {
  pc_run(0);
  pc_run(16);
}
END_TEST

/* ---- coroutine-aware sync ---- */

static char trace[256];
static void tr(const char *s) {
  ck_assert(strlen(trace) + strlen(s) < sizeof trace);
  strcat(trace, s);
}

typedef struct syn {
  conc_coro_lock lock;
  conc_coro_event ev;
  conc_coro_semaphore sem;
  conc_coro_wait_group wg;
  conc_coro *victim;
  int err;
} syn;

static syn S;

static int lock_user(void *arg, void **result) {
  ck_assert_int_eq(conc_coro_lock_acquire(&S.lock, -1), 0);
  ck_assert(conc_coro_lock_locked(&S.lock));
  ck_assert_int_eq(conc_coro_lock_acquire(&S.lock, -1), CONC_EDEADLK);
  ck_assert_int_eq(conc_coro_lock_try_acquire(&S.lock), CONC_EDEADLK);
  tr(arg);
  ck_assert_int_eq(conc_coro_yield(), 0); /* others queue on the lock */
  tr(arg);
  ck_assert_int_eq(conc_coro_lock_release(&S.lock), 0);
  ck_assert_int_eq(conc_coro_lock_release(&S.lock), CONC_EPERM);
  ck_assert_int_eq(conc_coro_wait_group_done(&S.wg), 0);
  *result = NULL;
  return 0;
}

static int lock_main(void *arg, void **result) {
  (void)arg;
  ck_assert_int_eq(conc_coro_wait_group_add(&S.wg, 3), 0);
  ck_assert_int_eq(conc_coro_wait_group_count(&S.wg), 3);
  ck_assert_int_eq(conc_coro_spawn(NULL, lock_user, "a", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(NULL, lock_user, "b", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(NULL, lock_user, "c", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_yield(), 0); /* a holds it now */
  ck_assert_int_eq(conc_coro_lock_try_acquire(&S.lock), CONC_EAGAIN);
  ck_assert_int_eq(conc_coro_lock_release(&S.lock), CONC_EPERM);
  double t0 = conc_now();
  ck_assert_int_eq(conc_coro_lock_acquire_until(&S.lock, t0 - 1),
                   CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_coro_lock_destroy(&S.lock), CONC_EBUSY);
  ck_assert_int_eq(conc_coro_wait_group_wait(&S.wg, -1), 0);
  ck_assert_int_eq(conc_coro_wait_group_count(&S.wg), 0);
  ck_assert_str_eq(trace, "aabbcc");
  ck_assert(!conc_coro_lock_locked(&S.lock));
  ck_assert_int_eq(conc_coro_lock_try_acquire(&S.lock), 0);
  ck_assert_int_eq(conc_coro_lock_release(&S.lock), 0);
  *result = NULL;
  return 0;
}

START_TEST(coro_lock_fifo) {
  trace[0] = 0;
  ck_assert_int_eq(conc_coro_lock_init(&S.lock), 0);
  ck_assert_int_eq(conc_coro_wait_group_init(&S.wg), 0);
  ck_assert_int_eq(conc_coro_run(lock_main, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_lock_destroy(&S.lock), 0);
  ck_assert_int_eq(conc_coro_wait_group_destroy(&S.wg), 0);
}
END_TEST

static int ev_waiter(void *arg, void **result) {
  tr(arg);
  ck_assert_int_eq(conc_coro_event_wait(&S.ev, -1), 0);
  tr(arg);
  *result = NULL;
  return 0;
}

static int sem_user(void *arg, void **result) {
  ck_assert_int_eq(conc_coro_semaphore_acquire(&S.sem, -1), 0);
  tr(arg);
  *result = NULL;
  return 0;
}

static int ev_sem_main(void *arg, void **result) {
  (void)arg;
  /* Event: both waiters park, set wakes both in order. */
  ck_assert_int_eq(conc_coro_spawn(NULL, ev_waiter, "x", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(NULL, ev_waiter, "y", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(conc_coro_event_destroy(&S.ev), CONC_EBUSY);
  ck_assert(!conc_coro_event_is_set(&S.ev));
  ck_assert_int_eq(conc_coro_event_set(&S.ev), 0);
  ck_assert(conc_coro_event_is_set(&S.ev));
  ck_assert_int_eq(conc_coro_event_wait(&S.ev, 0), 0);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_str_eq(trace, "xyxy");
  ck_assert_int_eq(conc_coro_event_clear(&S.ev), 0);
  double t0 = conc_now();
  ck_assert_int_eq(conc_coro_event_wait(&S.ev, 0.01), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.01);
  ck_assert_int_eq(conc_coro_event_wait_until(&S.ev, conc_now() + 0.001),
                   CONC_ETIMEDOUT);
  /* Semaphore: one unit, three users; releases hand units in order. */
  trace[0] = 0;
  ck_assert_int_eq(conc_coro_semaphore_value(&S.sem), 1);
  ck_assert_int_eq(conc_coro_spawn(NULL, sem_user, "1", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(NULL, sem_user, "2", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(NULL, sem_user, "3", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_str_eq(trace, "1");
  ck_assert_int_eq(conc_coro_semaphore_value(&S.sem), 0);
  ck_assert_int_eq(conc_coro_semaphore_try_acquire(&S.sem), CONC_EAGAIN);
  ck_assert_int_eq(conc_coro_semaphore_destroy(&S.sem), CONC_EBUSY);
  ck_assert_int_eq(conc_coro_semaphore_release(&S.sem, 3), 0);
  ck_assert_int_eq(conc_coro_semaphore_value(&S.sem), 1);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_str_eq(trace, "123");
  ck_assert_int_eq(conc_coro_semaphore_try_acquire(&S.sem), 0);
  ck_assert_int_eq(conc_coro_semaphore_acquire_until(&S.sem, conc_now() + 0.001),
                   CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_coro_semaphore_release(&S.sem, UINT_MAX), 0);
  ck_assert_int_eq(conc_coro_semaphore_release(&S.sem, 1), CONC_EOVERFLOW);
  ck_assert_int_eq(conc_coro_semaphore_value(&S.sem), UINT_MAX);
  *result = NULL;
  return 0;
}

START_TEST(coro_event_semaphore) {
  trace[0] = 0;
  ck_assert_int_eq(conc_coro_event_init(&S.ev), 0);
  ck_assert_int_eq(conc_coro_semaphore_init(&S.sem, 1), 0);
  ck_assert_int_eq(conc_coro_run(ev_sem_main, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_event_destroy(&S.ev), 0);
  ck_assert_int_eq(conc_coro_semaphore_destroy(&S.sem), 0);
}
END_TEST

/* Cancel while parked in each wait: CONC_ECANCELED, nothing granted. */
static int sync_victim(void *arg, void **result) {
  int which = (int)(intptr_t)arg;
  switch (which) {
  case 0: S.err = conc_coro_lock_acquire(&S.lock, -1); break;
  case 1: S.err = conc_coro_event_wait(&S.ev, -1); break;
  case 2: S.err = conc_coro_semaphore_acquire(&S.sem, -1); break;
  default: S.err = conc_coro_wait_group_wait(&S.wg, -1); break;
  }
  *result = NULL;
  return 0;
}

static int sync_cancel_main(void *arg, void **result) {
  int which = (int)(intptr_t)arg;
  ck_assert_int_eq(conc_coro_lock_acquire(&S.lock, -1), 0);
  ck_assert_int_eq(conc_coro_spawn(NULL, sync_victim, arg, NULL, &S.victim), 0);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(conc_coro_cancel(S.victim), 0);
  ck_assert_int_eq(conc_coro_await(S.victim, -1, NULL), 0);
  ck_assert_int_eq(S.err, CONC_ECANCELED);
  conc_coro_release(S.victim);
  /* Nothing was granted to the victim. */
  ck_assert_int_eq(conc_coro_lock_release(&S.lock), 0);
  ck_assert(!conc_coro_lock_locked(&S.lock));
  ck_assert_int_eq(conc_coro_semaphore_release(&S.sem, 1), 0);
  ck_assert_int_eq(conc_coro_semaphore_value(&S.sem), 1);
  ck_assert_int_eq(conc_coro_wait_group_done(&S.wg), 0);
  (void)which;
  *result = NULL;
  return 0;
}

START_TEST(coro_sync_cancel) {
  for (int which = 0; which < 4; which++) {
    ck_assert_int_eq(conc_coro_lock_init(&S.lock), 0);
    ck_assert_int_eq(conc_coro_event_init(&S.ev), 0);
    ck_assert_int_eq(conc_coro_semaphore_init(&S.sem, 0), 0);
    ck_assert_int_eq(conc_coro_wait_group_init(&S.wg), 0);
    ck_assert_int_eq(conc_coro_wait_group_add(&S.wg, 1), 0);
    S.err = 1;
    ck_assert_int_eq(
        conc_coro_run(sync_cancel_main, (void *)(intptr_t)which, NULL), 0);
    ck_assert_int_eq(conc_coro_lock_destroy(&S.lock), 0);
    ck_assert_int_eq(conc_coro_event_destroy(&S.ev), 0);
    ck_assert_int_eq(conc_coro_semaphore_destroy(&S.sem), 0);
    ck_assert_int_eq(conc_coro_wait_group_destroy(&S.wg), 0);
  }
}
END_TEST

START_TEST(coro_sync_bad_args) {
  conc_coro_wait_group wg;
  ck_assert_int_eq(conc_coro_lock_init(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_lock_destroy(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_lock_release(NULL), CONC_EINVAL);
  ck_assert(!conc_coro_lock_locked(NULL));
  ck_assert_int_eq(conc_coro_event_init(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_event_destroy(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_event_set(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_event_clear(NULL), CONC_EINVAL);
  ck_assert(!conc_coro_event_is_set(NULL));
  ck_assert_int_eq(conc_coro_semaphore_init(NULL, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_semaphore_destroy(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_semaphore_try_acquire(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_semaphore_release(NULL, 1), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_semaphore_value(NULL), 0);
  ck_assert_int_eq(conc_coro_wait_group_init(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_wait_group_destroy(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_wait_group_add(NULL, 1), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_wait_group_count(NULL), 0);
  ck_assert_int_eq(conc_coro_wait_group_init(&wg), 0);
  ck_assert_int_eq(conc_coro_wait_group_done(&wg), CONC_EOVERFLOW);
  ck_assert_int_eq(conc_coro_wait_group_add(&wg, LONG_MAX), 0);
  ck_assert_int_eq(conc_coro_wait_group_add(&wg, 1), CONC_EOVERFLOW);
  ck_assert_int_eq(conc_coro_wait_group_add(&wg, -LONG_MAX), 0);
  /* Waits outside a coroutine. */
  ck_assert_int_eq(conc_coro_lock_init(&S.lock), 0);
  ck_assert_int_eq(conc_coro_lock_acquire(&S.lock, -1), CONC_EPERM);
  ck_assert_int_eq(conc_coro_lock_try_acquire(&S.lock), CONC_EPERM);
  ck_assert_int_eq(conc_coro_lock_release(&S.lock), CONC_EPERM);
  ck_assert_int_eq(conc_coro_event_wait(&S.ev, -1), CONC_EPERM);
  ck_assert_int_eq(conc_coro_semaphore_acquire(&S.sem, -1), CONC_EPERM);
  ck_assert_int_eq(conc_coro_wait_group_wait(&wg, -1), CONC_EPERM);
  ck_assert_int_eq(conc_coro_wait_group_wait_until(&wg, 0), CONC_EPERM);
  ck_assert_int_eq(conc_coro_wait_group_destroy(&wg), 0);
}
END_TEST

static int sync_inval_body(void *arg, void **result) {
  (void)arg;
  ck_assert_int_eq(conc_coro_lock_acquire(NULL, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_lock_acquire(&S.lock, NAN), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_lock_try_acquire(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_event_wait(NULL, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_semaphore_acquire(NULL, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_wait_group_wait(NULL, -1), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_wait_group_wait(&S.wg, 0), 0);
  ck_assert_int_eq(conc_coro_wait_group_add(&S.wg, 1), 0);
  ck_assert_int_eq(conc_coro_wait_group_wait_until(&S.wg, conc_now() + 0.001),
                   CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_coro_wait_group_done(&S.wg), 0);
  *result = NULL;
  return 0;
}

START_TEST(coro_sync_inval) {
  ck_assert_int_eq(conc_coro_lock_init(&S.lock), 0);
  ck_assert_int_eq(conc_coro_wait_group_init(&S.wg), 0);
  ck_assert_int_eq(conc_coro_run(sync_inval_body, NULL, NULL), 0);
}
END_TEST

CONC_TEST_MAIN("chan", chan_ping_pong, chan_buffered_fifo_close,
               chan_close_wakes, chan_close_wakes_receiver, chan_timeouts,
               chan_bad_args_eperm, chan_cancel_recv, chan_cancel_send,
               chan_cancel_select, chan_cancel_after_handoff,
               chan_handoff_deadline_cancel, chan_stale_receiver_skipped,
               chan_cancel_pending, chan_select_basic_fair,
               chan_select_parked, chan_producer_consumer,
               coro_lock_fifo, coro_event_semaphore, coro_sync_cancel,
               coro_sync_bad_args, coro_sync_inval)
