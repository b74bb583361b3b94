/* harness.h - Check-based test support shared by every tests/test-*.c.
 *
 * A test file defines cases with START_TEST/END_TEST and ends with
 *
 *   CONC_TEST_MAIN("sync", lock_basic, lock_timeout, ...)
 *
 * Each case becomes its own TCase (run one with CK_RUN_CASE=name), runs in
 * a forked child under a hang timeout (CONC_TEST_TIMEOUT seconds, scaled by
 * CK_TIMEOUT_MULTIPLIER for sanitizer builds), and ends with a leak check:
 * the counting allocator installed through conc_set_allocator must hold no
 * live block.
 */
#ifndef CONC_TEST_HARNESS_H
#define CONC_TEST_HARNESS_H

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc.h"

#ifndef CONC_TEST_TIMEOUT
#define CONC_TEST_TIMEOUT 60
#endif

/* Live blocks allocated through conc's allocator hook. */
long conc_test_live_blocks(void);
/* Make the n-th allocation from now fail (1 = the next); 0 disables. */
void conc_test_fail_alloc_after(long n);
/* Number of allocations since the case began. */
long conc_test_alloc_count(void);
/* Skip the leak check for this case (the default executor, say). */
void conc_test_no_leak_check(void);

/* Latch: count down to zero, wait until zero.  Built on pthreads, not on
 * the code under test. */
typedef struct conc_test_latch {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  long count;
} conc_test_latch;
void conc_test_latch_init(conc_test_latch *l, long count);
void conc_test_latch_count_down(conc_test_latch *l);
void conc_test_latch_wait(conc_test_latch *l);

/* In a forked child, where Check's asserts cannot report: print the failed
 * condition and exit with status 1 (the parent checks the status). */
#define CHILD_CHECK(cond)                                                     \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "child check failed at line %d: %s\n", __LINE__,        \
              #cond);                                                         \
      _exit(1);                                                               \
    }                                                                         \
  } while (0)

/* Open file descriptors of this process (entries of /proc/self/fd). */
int conc_test_fd_count(void);

/* Run a shell command, capture its stdout (malloc'd, caller frees). Returns
 * the exit status (-1 on failure). */
int conc_test_capture(const char *cmd, char **out);

int conc_test_main(const char *suite, const TTest *const *tests, size_t n,
                   int argc, char **argv);

#define CONC_TEST_MAIN(suite, ...)                                            \
  int main(int argc, char **argv) {                                           \
    const TTest *const tests_[] = {__VA_ARGS__};                              \
    return conc_test_main(suite, tests_, sizeof tests_ / sizeof tests_[0],    \
                          argc, argv);                                        \
  }

#endif
