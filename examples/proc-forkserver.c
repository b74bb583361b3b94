/* proc-forkserver.c - processes started the "forkserver" way (Python's
 * default on Linux since 3.14):
 *
 *     mp.set_start_method("forkserver")
 *     ps = [Process(target=count_primes, args=(lo, hi, i)) for ...]
 *     for p in ps: p.start()
 *     for p in ps: p.join()
 *
 * conc_process_start_task starts each child from a fork server: a fresh
 * run of this program, stopped in conc_init, single-threaded and small
 * whatever main is doing.  The child inherits nothing from us, so what it
 * runs is a registered task (a name and input bytes), and what it finds
 * goes back through named shared memory (conc/shm.h).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <conc.h>

enum { NPROC = 4, LIMIT = 200000 };

/* What a child gets: where to write, and its range. */
typedef struct job {
  char shm[64];
  uint32_t slot;
  uint32_t lo, hi;
} job;

static bool is_prime(uint32_t n) {
  if (n < 2)
    return false;
  for (uint32_t d = 2; d * d <= n; d++)
    if (n % d == 0)
      return false;
  return true;
}

/* Count the primes in [lo, hi) into slot `slot` of the named block. */
CONC_TASK(count_primes, in, len, out) {
  (void)out;
  job j;
  if (len != sizeof j)
    return conc_task_fail(2, "count_primes wants a job, got %zu bytes", len);
  memcpy(&j, in, sizeof j);
  conc_shm s = {0};
  int rc = conc_shm_open(&s, j.shm);
  if (rc)
    return conc_task_fail(3, "cannot open %s: %s", j.shm, conc_strerror(rc));
  uint64_t n = 0;
  for (uint32_t i = j.lo; i < j.hi; i++)
    n += is_prime(i);
  ((uint64_t *)conc_shm_addr(&s))[j.slot] = n;
  conc_shm_close(&s);
  return 0;
}

static void check(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

int main(int argc, char **argv) {
  conc_init(&argc, &argv); /* first: the fork server stops here */
  char name[64];
  snprintf(name, sizeof name, "conc-example-primes-%d", (int)getpid());
  conc_shm counts = {0};
  check(conc_shm_create(&counts, name, NPROC * sizeof(uint64_t)),
        "conc_shm_create");
  conc_process ps[NPROC];
  memset(ps, 0, sizeof ps);
  for (uint32_t i = 0; i < NPROC; i++) {
    job j;
    memset(&j, 0, sizeof j);
    snprintf(j.shm, sizeof j.shm, "%s", name);
    j.slot = i;
    j.lo = i * (LIMIT / NPROC);
    j.hi = (i + 1) * (LIMIT / NPROC);
    check(conc_process_start_task(&ps[i], "count_primes", &j, sizeof j, NULL),
          "conc_process_start_task");
  }
  uint64_t total = 0;
  for (int i = 0; i < NPROC; i++) {
    int code = -1;
    check(conc_process_join(&ps[i], -1), "conc_process_join");
    check(conc_process_exitcode(&ps[i], &code), "conc_process_exitcode");
    uint64_t n = ((const uint64_t *)conc_shm_addr(&counts))[i];
    printf("child %d: exit code %d, %" PRIu64 " primes in [%d, %d)\n", i, code,
           n, i * (LIMIT / NPROC), (i + 1) * (LIMIT / NPROC));
    total += n;
  }
  printf("primes below %d: %" PRIu64 "\n", LIMIT, total);
  conc_shm_close(&counts);
  conc_shm_unlink(name);
  conc_library_shutdown(); /* stops the fork server */
  return total == 17984 ? 0 : 1;
}
