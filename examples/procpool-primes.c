/* procpool-primes.c - the "checking primes" example of Python's
 * concurrent.futures documentation, on a real process pool:
 *
 *     with concurrent.futures.ProcessPoolExecutor() as executor:
 *         for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
 *             print('%d is prime: %s' % (number, prime))
 *
 * A task that crosses a process boundary is a registered task: a name,
 * bytes in, bytes out (CONC_TASK).  conc_init must come first in main: the
 * pool's fork server is this program run again, and stops there.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

static const uint64_t PRIMES[] = {
    112272535095293ULL, 112582705942171ULL, 112272535095293ULL,
    115280095190773ULL, 115797848077099ULL, 1099726899285419ULL,
};
enum { N = sizeof PRIMES / sizeof PRIMES[0] };

/* in: a uint64_t; out: one byte, 1 if prime */
CONC_TASK(is_prime, in, len, out) {
  uint64_t n;
  if (len != sizeof n)
    return conc_task_fail(1, "is_prime wants 8 bytes, got %zu", len);
  memcpy(&n, in, sizeof n);
  bool prime = n >= 2 && (n == 2 || n % 2);
  for (uint64_t i = 3; prime && i * i <= n; i += 2)
    if (n % i == 0)
      prime = false;
  unsigned char b = prime;
  return conc_bytes_append(out, &b, 1);
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

int main(int argc, char **argv) {
  conc_init(&argc, &argv);
  conc_executor *ex;
  check(conc_process_pool_create(NULL, &ex), "process pool");
  conc_buf in[N];
  for (int i = 0; i < N; i++)
    in[i] = (conc_buf){&PRIMES[i], sizeof PRIMES[i]};
  conc_map *m;
  check(conc_executor_map_task(ex, "is_prime", in, N, NULL, &m), "map");
  void *r;
  for (int i = 0; conc_map_next(m, &r) == 1; i++) {
    const conc_bytes *b = r;
    printf("%" PRIu64 " is prime: %s\n", PRIMES[i],
           b->data[0] ? "True" : "False");
  }
  int rc = conc_map_error(m, NULL, NULL);
  conc_map_destroy(m);
  check(rc, "is_prime");
  check(conc_executor_destroy(ex), "destroy");
  return 0;
}
