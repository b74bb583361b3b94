/* test-queue.c - the cross-process message queue.
 *
 * Peers are children forked from the single-threaded test process; they
 * report through exit codes and are ordered by the queue itself, pipes and
 * waitpid, never by sleeps.  Fault cases install the test-only hook
 * conc__queue_fault_hook (src/queue.c) in a child, which SIGKILLs itself
 * at a chosen protocol step; the parent then carries on and a 10^5-message
 * checksum run must pass.  Timeouts are checked as lower bounds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* Test-only hook of src/queue.c (hidden symbol; the tests link statically). */
extern void (*conc__queue_fault_hook)(int step);

static int child_status(pid_t pid) {
  int st = 0;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  return st;
}

static void child_ok(pid_t pid) {
  int st = child_status(pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x",
                st);
}

static conc_queue *make_queue(size_t cap, size_t max_msgs) {
  conc_queue_options o;
  conc_queue_options_init(&o);
  if (cap)
    o.capacity_bytes = cap;
  o.max_messages = max_msgs;
  conc_queue *q = NULL;
  ck_assert_int_eq(conc_queue_create(&q, &o), 0);
  ck_assert_ptr_nonnull(q);
  return q;
}

/* Message i: its length and bytes are a function of i (and a salt). */
static size_t msg_len(unsigned i, size_t maxlen) {
  return (size_t)((i * 2654435761u) % (maxlen + 1));
}
static void msg_fill(unsigned char *b, size_t n, unsigned i) {
  for (size_t k = 0; k < n; k++)
    b[k] = (unsigned char)(i * 31 + k * 7);
}
static bool msg_check(const unsigned char *b, size_t n, unsigned i) {
  for (size_t k = 0; k < n; k++)
    if (b[k] != (unsigned char)(i * 31 + k * 7))
      return false;
  return true;
}

/* ---- single process ---- */

START_TEST(queue_put_get_basic) {
  int fds = conc_test_fd_count();
  conc_queue *q = make_queue(0, 0);
  ck_assert_int_eq(conc_queue_count(q), 0);
  unsigned char buf[3000];
  for (unsigned i = 0; i < 50; i++) {
    size_t n = msg_len(i, sizeof buf);
    msg_fill(buf, n, i);
    ck_assert_int_eq(conc_queue_put(q, buf, n, -1), 0);
  }
  ck_assert_int_eq(conc_queue_put(q, NULL, 0, 0), 0); /* empty message */
  ck_assert_int_eq(conc_queue_count(q), 51);
  for (unsigned i = 0; i < 50; i++) {
    void *m = NULL;
    size_t n = 0;
    ck_assert_int_eq(conc_queue_get(q, &m, &n, -1), 0);
    ck_assert_uint_eq(n, msg_len(i, sizeof buf));
    ck_assert(msg_check(m, n, i));
    conc_queue_msg_free(m);
  }
  void *m = NULL;
  size_t n = 99;
  ck_assert_int_eq(conc_queue_try_get(q, &m, &n), 0);
  ck_assert_uint_eq(n, 0);
  ck_assert_ptr_nonnull(m);
  conc_queue_msg_free(m);
  conc_queue_msg_free(NULL);
  ck_assert_int_eq(conc_queue_try_get(q, &m, &n), CONC_EAGAIN);
  double t0 = conc_now();
  ck_assert_int_eq(conc_queue_get(q, &m, &n, 0.05), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.05);
  ck_assert_int_eq(conc_queue_count(q), 0);
  ck_assert_int_eq(conc_queue_destroy(q), 0);
  ck_assert_int_eq(conc_test_fd_count(), fds);
}
END_TEST

START_TEST(queue_bounded) {
  conc_queue *q = make_queue(64, 0); /* 64 bytes: two 8-byte messages */
  unsigned char b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ck_assert_int_eq(conc_queue_try_put(q, b, 8), 0);
  ck_assert_int_eq(conc_queue_try_put(q, b, 8), 0);
  ck_assert_int_eq(conc_queue_try_put(q, b, 8), CONC_EAGAIN);
  double t0 = conc_now();
  ck_assert_int_eq(conc_queue_put(q, b, 8, 0.05), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.05);
  ck_assert_int_eq(conc_queue_count(q), 2);
  conc_queue_destroy(q);

  q = make_queue(4096, 3); /* by message count */
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(conc_queue_put(q, b, 1, 0), 0);
  ck_assert_int_eq(conc_queue_try_put(q, b, 1), CONC_EAGAIN);
  void *m;
  size_t n;
  ck_assert_int_eq(conc_queue_try_get(q, &m, &n), 0);
  conc_queue_msg_free(m);
  ck_assert_int_eq(conc_queue_try_put(q, b, 1), 0);
  conc_queue_destroy(q);
}
END_TEST

START_TEST(queue_close) {
  conc_queue *q = make_queue(0, 0);
  ck_assert_int_eq(conc_queue_put(q, "a", 1, 0), 0);
  ck_assert_int_eq(conc_queue_put(q, "b", 1, 0), 0);
  ck_assert_int_eq(conc_queue_close(q), 0);
  ck_assert_int_eq(conc_queue_close(q), 0);
  ck_assert_int_eq(conc_queue_put(q, "c", 1, 0), CONC_ECLOSED);
  ck_assert_int_eq(conc_queue_try_put(q, "c", 1), CONC_ECLOSED);
  void *m;
  size_t n;
  ck_assert_int_eq(conc_queue_get(q, &m, &n, 0), 0);
  ck_assert(n == 1 && *(char *)m == 'a');
  conc_queue_msg_free(m);
  ck_assert_int_eq(conc_queue_try_get(q, &m, &n), 0);
  ck_assert(n == 1 && *(char *)m == 'b');
  conc_queue_msg_free(m);
  ck_assert_int_eq(conc_queue_get(q, &m, &n, -1), CONC_ECLOSED);
  ck_assert_int_eq(conc_queue_try_get(q, &m, &n), CONC_ECLOSED);
  conc_queue_destroy(q);
}
END_TEST

START_TEST(queue_close_wakes_other_process) {
  conc_queue *q = make_queue(0, 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    void *m;
    size_t n;
    CHILD_CHECK(conc_queue_get(q, &m, &n, 60) == 0); /* the go message */
    conc_queue_msg_free(m);
    CHILD_CHECK(conc_queue_get(q, &m, &n, 60) == CONC_ECLOSED);
    conc_queue_destroy(q);
    _exit(0);
  }
  ck_assert_int_eq(conc_queue_put(q, "go", 2, -1), 0);
  ck_assert_int_eq(conc_queue_close(q), 0);
  child_ok(pid);
  conc_queue_destroy(q);
}
END_TEST

START_TEST(queue_bad_input) {
  conc_queue_options o;
  conc_queue_options_init(&o);
  conc_queue_options_init(NULL);
  conc_queue *q = NULL;
  ck_assert_int_eq(conc_queue_create(NULL, NULL), CONC_EINVAL);
  o.capacity_bytes = 0;
  ck_assert_int_eq(conc_queue_create(&q, &o), CONC_EINVAL);
  conc_queue_options_init(&o);
  o.size = 3;
  ck_assert_int_eq(conc_queue_create(&q, &o), CONC_EINVAL);
  ck_assert_int_eq(conc_queue_create(&q, NULL), 0);
  void *m;
  size_t n;
  ck_assert_int_eq(conc_queue_put(NULL, "x", 1, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_queue_put(q, NULL, 1, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_queue_try_put(NULL, "x", 1), CONC_EINVAL);
  ck_assert_int_eq(conc_queue_get(NULL, &m, &n, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_queue_get(q, NULL, &n, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_queue_try_get(q, &m, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_queue_close(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_queue_count(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_queue_destroy(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_queue_destroy(q), 0);
}
END_TEST

START_TEST(queue_enomem_keeps_message) {
  conc_queue *q = make_queue(0, 0);
  ck_assert_int_eq(conc_queue_put(q, "kept", 4, 0), 0);
  void *m;
  size_t n;
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_queue_get(q, &m, &n, 0), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  ck_assert_int_eq(conc_queue_get(q, &m, &n, 0), 0);
  ck_assert(n == 4 && memcmp(m, "kept", 4) == 0);
  conc_queue_msg_free(m);
  conc_queue_destroy(q);
}
END_TEST

/* ---- across processes ---- */

/* Cross-process messages are at least 4 bytes: the index comes first. */
static size_t len4(unsigned i, size_t maxlen) {
  return 4 + msg_len(i, maxlen - 4);
}

/* Producer child: messages lo..hi-1 of 4..maxlen bytes. */
static void produce(conc_queue *q, unsigned lo, unsigned hi, size_t maxlen) {
  unsigned char *b = malloc(maxlen);
  CHILD_CHECK(b);
  for (unsigned i = lo; i < hi; i++) {
    size_t n = len4(i, maxlen);
    msg_fill(b, n, i);
    memcpy(b, &i, 4);
    CHILD_CHECK(conc_queue_put(q, b, n, 60) == 0);
  }
  free(b);
}

static bool check_msg(const unsigned char *m, size_t n, unsigned i) {
  if (n < 4 || memcmp(m, &i, 4) != 0)
    return false;
  for (size_t k = 4; k < n; k++)
    if (m[k] != (unsigned char)(i * 31 + k * 7))
      return false;
  return true;
}

/* nprod children each put count messages (index lo + k*nprod... in
 * disjoint ranges); the parent gets them all and checks each one and the
 * sum of the indices.  Returns after joining the producers. */
static void checksum_run(conc_queue *q, int nprod, unsigned count,
                         size_t maxlen) {
  pid_t pids[4];
  ck_assert_int_le(nprod, 4);
  unsigned per = count / (unsigned)nprod;
  for (int p = 0; p < nprod; p++) {
    pids[p] = fork();
    ck_assert_int_ge(pids[p], 0);
    if (pids[p] == 0) {
      produce(q, (unsigned)p * per, (unsigned)(p + 1) * per, maxlen);
      conc_queue_destroy(q);
      _exit(0);
    }
  }
  unsigned long long sum = 0, want = 0;
  unsigned last[4] = {0, 0, 0, 0};
  bool seen[4] = {false, false, false, false};
  for (unsigned k = 0; k < per * (unsigned)nprod; k++) {
    void *m = NULL;
    size_t n = 0;
    ck_assert_int_eq(conc_queue_get(q, &m, &n, 60), 0);
    ck_assert_uint_ge(n, 4);
    unsigned i;
    memcpy(&i, m, 4);
    ck_assert_uint_lt(i, per * (unsigned)nprod);
    ck_assert_uint_eq(n, len4(i, maxlen));
    ck_assert_msg(check_msg(m, n, i), "message %u corrupt", i);
    unsigned p = i / per;
    ck_assert_msg(!seen[p] || i == last[p] + 1, "producer %u out of order",
                  p);
    seen[p] = true;
    last[p] = i;
    sum += i;
    conc_queue_msg_free(m);
  }
  for (unsigned i = 0; i < per * (unsigned)nprod; i++)
    want += i;
  ck_assert_uint_eq(sum, want);
  for (int p = 0; p < nprod; p++)
    child_ok(pids[p]);
  void *m;
  size_t n;
  ck_assert_int_eq(conc_queue_try_get(q, &m, &n), CONC_EAGAIN);
}

START_TEST(queue_cross_process_large_messages) {
  /* messages up to 100 kB through a 4 kB ring: chunked */
  conc_queue *q = make_queue(4096, 0);
  checksum_run(q, 2, 400, 100000);
  conc_queue_destroy(q);
}
END_TEST

/* Two producers and two consumers, small and streamed messages mixed: every
 * message arrives exactly once, whole. */
START_TEST(queue_many_to_many) {
  conc_queue *q = make_queue(2048, 0);
  enum { PER = 500, MAXLEN = 6000 };
  conc_shm shm = {0};
  ck_assert_int_eq(conc_shm_create_anon(&shm, 2 * sizeof(long long) * 2), 0);
  long long *res = conc_shm_addr(&shm); /* [sum, count] per consumer */
  pid_t cons[2], prod[2];
  for (int c = 0; c < 2; c++) {
    cons[c] = fork();
    ck_assert_int_ge(cons[c], 0);
    if (cons[c] == 0) {
      long long sum = 0, cnt = 0;
      for (;;) {
        void *m;
        size_t n;
        int r = conc_queue_get(q, &m, &n, 60);
        if (r == CONC_ECLOSED)
          break;
        CHILD_CHECK(r == 0);
        unsigned i;
        CHILD_CHECK(n >= 4);
        memcpy(&i, m, 4);
        CHILD_CHECK(n == len4(i, MAXLEN) && check_msg(m, n, i));
        sum += i;
        cnt++;
        conc_queue_msg_free(m);
      }
      res[2 * c] = sum;
      res[2 * c + 1] = cnt;
      conc_queue_destroy(q);
      _exit(0);
    }
  }
  for (int p = 0; p < 2; p++) {
    prod[p] = fork();
    ck_assert_int_ge(prod[p], 0);
    if (prod[p] == 0) {
      produce(q, (unsigned)p * PER, (unsigned)(p + 1) * PER, MAXLEN);
      conc_queue_destroy(q);
      _exit(0);
    }
  }
  for (int p = 0; p < 2; p++)
    child_ok(prod[p]);
  ck_assert_int_eq(conc_queue_close(q), 0);
  for (int c = 0; c < 2; c++)
    child_ok(cons[c]);
  long long want = 0;
  for (unsigned i = 0; i < 2 * PER; i++)
    want += i;
  ck_assert_int_eq(res[0] + res[2], want);
  ck_assert_int_eq(res[1] + res[3], 2 * PER);
  ck_assert_int_eq(conc_shm_close(&shm), 0);
  conc_queue_destroy(q);
}
END_TEST

START_TEST(queue_checksum_100k) {
  conc_queue *q = make_queue(1 << 16, 0);
  checksum_run(q, 2, 100000, 64);
  conc_queue_destroy(q);
}
END_TEST

/* ---- a peer SIGKILLed at each step of the protocol ---- */

static int fault_step, fault_hits, fault_notify_fd = -1;
static void fault_hook(int step) {
  if (step == 11 && fault_notify_fd >= 0) { /* "I hold rlock" */
    char c = 'r';
    if (write(fault_notify_fd, &c, 1) != 1)
      _exit(6);
  }
  if (step == fault_step && --fault_hits == 0)
    kill(getpid(), SIGKILL);
}

/* Fork a child that installs the hook (kill at the hits-th pass of step)
 * and runs body; the child must die by SIGKILL. */
static pid_t fault_child(int step, int hits, void (*body)(conc_queue *),
                         conc_queue *q) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    signal(SIGTERM, SIG_DFL);
    fault_step = step;
    fault_hits = hits;
    conc__queue_fault_hook = fault_hook;
    body(q);
    _exit(5); /* the hook did not fire */
  }
  return pid;
}

static void assert_killed(pid_t pid) {
  int st = child_status(pid);
  ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                "fault child did not die at its step (status %#x)", st);
}

static unsigned char big[20000];

static void body_put_small(conc_queue *q) { conc_queue_put(q, "dead", 4, 60); }
static void body_put_big(conc_queue *q) {
  conc_queue_put(q, big, sizeof big, 60);
}
static void body_get(conc_queue *q) {
  void *m;
  size_t n;
  conc_queue_get(q, &m, &n, 60);
}

/* After each fault: the parent puts and gets a marker; what it gets first
 * is a whole message (the dead put's, if it committed) or the marker. */
static void after_fault(conc_queue *q, bool may_hold_dead) {
  ck_assert_int_eq(conc_queue_put(q, "mark", 4, 30), 0);
  void *m;
  size_t n;
  ck_assert_int_eq(conc_queue_get(q, &m, &n, 30), 0);
  if (may_hold_dead && n == 4 && memcmp(m, "dead", 4) == 0) {
    conc_queue_msg_free(m);
    ck_assert_int_eq(conc_queue_get(q, &m, &n, 30), 0);
  }
  ck_assert_msg(n == 4 && memcmp(m, "mark", 4) == 0,
                "after a fault got %zu bytes instead of the marker", n);
  conc_queue_msg_free(m);
  ck_assert_int_eq(conc_queue_count(q), 0);
}

START_TEST(queue_peer_killed_at_each_step) {
  conc_queue *q = make_queue(4096, 0);
  /* put steps, single-record message; the parent waits in get meanwhile
   * for the steps that hold lock (it must not deadlock) */
  static const int put_steps[] = {1, 2, 3, 4, 5};
  for (size_t k = 0; k < sizeof put_steps / sizeof put_steps[0]; k++) {
    pid_t pid = fault_child(put_steps[k], 1, body_put_small, q);
    void *m;
    size_t n;
    int r = conc_queue_get(q, &m, &n, 0.3);
    if (r == 0) { /* step 5 published the message before dying */
      ck_assert_int_eq(put_steps[k], 5);
      ck_assert(n == 4 && memcmp(m, "dead", 4) == 0);
      conc_queue_msg_free(m);
    } else {
      ck_assert_int_eq(r, CONC_ETIMEDOUT);
    }
    assert_killed(pid);
    after_fault(q, false);
  }
  /* put killed in the middle of a streamed message (ring 4 kB, message
   * 20 kB): the parent, reading it, must drop the part it has */
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (unsigned char)i;
  static const int big_steps[][2] = {{6, 1}, {4, 3}}; /* step, pass */
  pid_t pid;
  for (size_t k = 0; k < 2; k++) {
    pid = fault_child(big_steps[k][0], big_steps[k][1], body_put_big, q);
    void *m;
    size_t n;
    /* reads the chunks, then drops them when the writer dies */
    ck_assert_int_eq(conc_queue_get(q, &m, &n, 0.3), CONC_ETIMEDOUT);
    assert_killed(pid);
    after_fault(q, false);
  }

  /* get steps: a message waits; the child dies getting it */
  static const int get_steps[] = {11, 12, 13, 14};
  for (size_t k = 0; k < sizeof get_steps / sizeof get_steps[0]; k++) {
    ck_assert_int_eq(conc_queue_put(q, "dead", 4, 0), 0);
    pid = fault_child(get_steps[k], 1, body_get, q);
    assert_killed(pid);
    /* steps 11..13: the message is still there; 14: it is gone */
    after_fault(q, true);
  }
  /* a reader killed in the middle of a streamed message: a second reader
   * takes over and skips the rest; the writer (parent) completes */
  int np[2];
  ck_assert_int_eq(pipe(np), 0);
  fault_notify_fd = np[1];
  pid_t reader = fault_child(13, 2, body_get, q);
  fault_notify_fd = -1;
  close(np[1]);
  char c;
  ck_assert_int_eq(read(np[0], &c, 1), 1); /* the reader holds rlock */
  close(np[0]);
  /* the rest of the big message is orphaned: the marker comes next */
  pid_t drain = fork();
  ck_assert_int_ge(drain, 0);
  if (drain == 0) {
    void *m;
    size_t n;
    CHILD_CHECK(conc_queue_get(q, &m, &n, 30) == 0);
    CHILD_CHECK(n == 4 && memcmp(m, "mark", 4) == 0);
    conc_queue_msg_free(m);
    conc_queue_destroy(q);
    _exit(0);
  }
  ck_assert_int_eq(conc_queue_put(q, big, sizeof big, 30), 0);
  assert_killed(reader);
  ck_assert_int_eq(conc_queue_put(q, "mark", 4, 30), 0);
  child_ok(drain);
  ck_assert_int_eq(conc_queue_count(q), 0);

  /* the queue is still fine: 10^5 messages with checksums */
  checksum_run(q, 2, 100000, 64);
  conc_queue_destroy(q);
}
END_TEST

CONC_TEST_MAIN("queue", queue_put_get_basic, queue_bounded, queue_close,
               queue_close_wakes_other_process, queue_bad_input,
               queue_enomem_keeps_message, queue_cross_process_large_messages,
               queue_many_to_many, queue_checksum_100k,
               queue_peer_killed_at_each_step)
