/* bench/bench-map.c - conc: ordered map over N items (workload 4).
 *
 *   bench-map CHUNK N
 *   bench-map for N      conc_executor_for writing f(x) into an array
 *
 * conc_executor_map with chunksize CHUNK and the default buffersize; every
 * result is consumed in order by conc_map_next and checked against
 * f(x) = x * 2654435761 mod 2^32, the same f as the anchors'.  Prints ns
 * per item. */
#include "conc-bench.h"

static inline uint64_t f_of(uint64_t x) { return (x * 2654435761u) & 0xffffffffu; }

static void *task_f(void *arg) {
  uint64_t x = (uint64_t)(uintptr_t)arg;
  bench_account(x);
  return (void *)(uintptr_t)f_of(x);
}

static uint64_t *out_arr;
static int for_body(size_t b, size_t e, void *ctx) {
  (void)ctx;
  for (size_t i = b; i < e; i++) {
    bench_account((uint64_t)i + 1);
    out_arr[i] = f_of((uint64_t)i + 1);
  }
  return 0;
}

static int run_for(long n) {
  out_arr = malloc((size_t)n * sizeof *out_arr);
  BENCH_CHECK(out_arr && n > 0, "bad args");
  /* touched before the clock starts, as every anchor's array: the row
   * measures the loop, not the kernel's first-touch page faults */
  memset(out_arr, 0, (size_t)n * sizeof *out_arr);
  conc_executor *ex = bench_conc_pool(2);
  bench_mark_submitter();
  bench_slots_reset();
  int64_t t0 = bench_now_ns();
  CONC_OK(conc_executor_for(ex, (size_t)n, 1024, for_body, NULL));
  int64_t t1 = bench_now_ns();
  for (long k = 0; k < n; k++)
    BENCH_CHECK(out_arr[k] == f_of((uint64_t)k + 1),
                "result %ld wrong", k);
  CONC_OK(conc_executor_destroy(ex));
  double share = bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "share=%.4f", share);
  bench_result((double)(t1 - t0) / (double)n, "ns/item", extra);
  free(out_arr);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "for") == 0)
    return run_for(bench_arg_long(argc, argv, 2, 1000000));
  long chunk = bench_arg_long(argc, argv, 1, 1024);
  long n = bench_arg_long(argc, argv, 2, 1000000);
  void **args = malloc((size_t)n * sizeof *args);
  BENCH_CHECK(args && n > 0 && chunk > 0, "bad args");
  for (long i = 0; i < n; i++) args[i] = (void *)(uintptr_t)(i + 1);
  conc_executor *ex = bench_conc_pool(2);
  bench_mark_submitter();
  bench_slots_reset();

  conc_map_options o;
  conc_map *m;
  void *r;
  long k = 0;
  int rc;
  conc_map_options_init(&o);
  o.chunksize = (size_t)chunk;
  int64_t t0 = bench_now_ns();
  CONC_OK(conc_executor_map(ex, task_f, args, (size_t)n, &o, &m));
  while ((rc = conc_map_next(m, &r)) == 1) {
    BENCH_CHECK(k < n && (uint64_t)(uintptr_t)r == f_of((uint64_t)k + 1),
                "map result %ld wrong or out of order", k);
    k++;
  }
  int64_t t1 = bench_now_ns();
  BENCH_CHECK(rc == 0, "conc_map_next: %s", conc_strerror(rc));
  BENCH_CHECK(k == n, "map yielded %ld of %ld", k, n);
  conc_map_destroy(m);
  CONC_OK(conc_executor_destroy(ex));
  double share = bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "share=%.4f", share);
  bench_result((double)(t1 - t0) / (double)n, "ns/item", extra);
  free(args);
  return 0;
}
