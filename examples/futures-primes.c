/* futures-primes.c - the "checking primes" example of Python's
 * concurrent.futures documentation, with a thread pool.
 *
 *     PRIMES = [112272535095293, 112582705942171, 112272535095293,
 *               115280095190773, 115797848077099, 1099726899285419]
 *
 *     def is_prime(n):
 *         if n < 2: return False
 *         if n == 2: return True
 *         if n % 2 == 0: return False
 *         sqrt_n = int(math.floor(math.sqrt(n)))
 *         for i in range(3, sqrt_n + 1, 2):
 *             if n % i == 0: return False
 *         return True
 *
 *     with concurrent.futures.ProcessPoolExecutor() as executor:
 *         for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
 *             print('%d is prime: %s' % (number, prime))
 *
 * Python needs processes here because its threads cannot run Python code in
 * parallel; C threads can, so a thread pool does the job (conc's process
 * pool is not built yet).  The pool's size defaults to Python's
 * min(32, CPUs + 4).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

static const uint64_t PRIMES[] = {
    112272535095293ULL, 112582705942171ULL, 112272535095293ULL,
    115280095190773ULL, 115797848077099ULL, 1099726899285419ULL,
};
enum { N = sizeof PRIMES / sizeof PRIMES[0] };

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

/* The task: arg points at the number; the answer travels in the result
 * pointer (NULL for false, non-NULL for true). */
static void *is_prime(void *arg) {
  uint64_t n = *(const uint64_t *)arg;
  bool prime = true;
  if (n < 2)
    prime = false;
  else if (n == 2)
    prime = true;
  else if (n % 2 == 0)
    prime = false;
  else
    for (uint64_t i = 3; i <= n / i; i += 2) /* i <= sqrt(n) */
      if (n % i == 0) {
        prime = false;
        break;
      }
  return prime ? (void *)arg : NULL;
}

int main(void) {
  conc_thread_pool_options opts;
  conc_thread_pool_options_init(&opts); /* max_workers 0: Python's default */
  conc_executor *executor;
  check(conc_thread_pool_create(&opts, &executor), "conc_thread_pool_create");

  /* map takes an array of argument pointers. */
  void *args[N];
  for (size_t i = 0; i < N; i++)
    args[i] = (void *)&PRIMES[i];

  conc_map *m;
  check(conc_executor_map(executor, is_prime, args, N, NULL, &m),
        "conc_executor_map");
  void *prime;
  int rc;
  for (size_t i = 0; (rc = conc_map_next(m, &prime)) == 1; i++)
    printf("%" PRIu64 " is prime: %s\n", PRIMES[i],
           prime ? "True" : "False");
  check(rc, "conc_map_next");
  conc_map_destroy(m);

  check(conc_executor_destroy(executor), "conc_executor_destroy");
  return 0;
}
