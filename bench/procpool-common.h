/* bench/procpool-common.h - what the process-pool rows (workload 9) share:
 * the two task kernels, the expected results, and CPU time of other
 * processes read from /proc.
 *
 * DESIGN
 * - Tiny task: 8 bytes in (a uint64 x), 8 bytes out: pp_tiny(x), a 64-bit
 *   mix of every input byte (the murmur3 finaliser).  The parent checks
 *   every result against pp_tiny(i) for its input i.  The Python and MPI
 *   anchors compute the same function.
 * - Payload task: PP_BIG bytes in, PP_BIG bytes out.  k = 1 + (sum of the
 *   input bytes) mod 255 checksums the input; out[j] = in[j] + k (mod 256)
 *   writes every output byte.  The same definition in every implementation
 *   (Python: k = 1 + int.from_bytes(in) % 255, which is the same number,
 *   since 256 = 1 mod 255; out = in.translate(table[k])).  The parent
 *   keeps PP_NBUF distinct inputs, computes their expected outputs once
 *   before the clock starts, and compares every result byte for byte
 *   (memcmp) with the expected output of its input.
 * - CPU time of another process: /proc/PID/schedstat (ns on the CPU, exact)
 *   when the kernel has it, else utime + stime from /proc/PID/stat (clock
 *   ticks).  Workers and the fork server are single-threaded; the calling
 *   process is measured with getrusage (every thread).
 */
#ifndef CONC_BENCH_PROCPOOL_COMMON_H
#define CONC_BENCH_PROCPOOL_COMMON_H

#include "common.h"

#define PP_BIG ((size_t)1 << 20)
#define PP_NBUF 4

static inline uint64_t pp_tiny(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/* 1 + (sum of the bytes) mod 255.  Bytes are summed in 16-bit lanes of
 * 64-bit words (no overflow within 128 words), then folded. */
static inline unsigned pp_big_key(const unsigned char *in, size_t len) {
  const uint64_t M = 0x00ff00ff00ff00ffULL;
  uint64_t total = 0;
  size_t j = 0;
  for (; j + 1024 <= len; j += 1024) { /* 128 words: fixed trip count */
    uint64_t acc = 0;
    for (int w = 0; w < 128; w++) {
      uint64_t x;
      memcpy(&x, in + j + 8 * w, 8);
      acc += (x & M) + ((x >> 8) & M);
    }
    total += (acc & 0xffff) + ((acc >> 16) & 0xffff) + ((acc >> 32) & 0xffff) +
             (acc >> 48);
  }
  for (; j < len; j++) total += in[j];
  return 1 + (unsigned)(total % 255);
}

/* out[0..len-1] = in + key, every byte written (bytewise adds done 8 at a
 * time in 64-bit words, without carries between bytes). */
static inline void pp_big(const unsigned char *restrict in, size_t len,
                          unsigned char *restrict out) {
  const uint64_t H = 0x8080808080808080ULL;
  uint64_t k = 0x0101010101010101ULL * (uint64_t)pp_big_key(in, len);
  size_t j = 0;
  for (; j + 8 <= len; j += 8) {
    uint64_t x;
    memcpy(&x, in + j, 8);
    x = ((x & ~H) + (k & ~H)) ^ ((x ^ k) & H);
    memcpy(out + j, &x, 8);
  }
  for (; j < len; j++) out[j] = (unsigned char)(in[j] + (unsigned char)k);
}

/* PP_NBUF distinct inputs and their expected outputs (malloc'd). */
static inline void pp_big_inputs(unsigned char *in[PP_NBUF],
                                 unsigned char *expect[PP_NBUF]) {
  uint64_t s = 0x243F6A8885A308D3ULL;
  for (int b = 0; b < PP_NBUF; b++) {
    in[b] = (unsigned char *)malloc(PP_BIG);
    expect[b] = (unsigned char *)malloc(PP_BIG);
    BENCH_CHECK(in[b] && expect[b], "out of memory");
    for (size_t j = 0; j < PP_BIG; j += 8) {
      uint64_t x = bench_rand(&s);
      memcpy(in[b] + j, &x, 8);
    }
    pp_big(in[b], PP_BIG, expect[b]);
  }
}

/* CPU seconds of process pid (one thread: the process's main thread), or
 * -1 if it is gone. */
static inline double pp_proc_cpu(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
  FILE *f = fopen(path, "r");
  if (f) {
    unsigned long long ns;
    int ok = fscanf(f, "%llu", &ns) == 1;
    fclose(f);
    if (ok) return (double)ns * 1e-9;
  }
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  /* after ")": state(3) ... utime is field 14, stime 15 */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of this process (all threads) plus the listed processes. */
static inline double pp_total_cpu(const int *pids, int n) {
  double t = bench_cpu_seconds();
  for (int i = 0; i < n; i++) {
    double c = pp_proc_cpu(pids[i]);
    BENCH_CHECK(c >= 0, "process %d vanished", pids[i]);
    t += c;
  }
  return t;
}

/* Touch `bytes` of fresh memory (the "large parent" of the fork-cost rows);
 * returns it, never freed. */
static inline unsigned char *pp_ballast(size_t bytes) {
  unsigned char *p = (unsigned char *)malloc(bytes);
  BENCH_CHECK(p != NULL, "cannot allocate %zu bytes of ballast", bytes);
  memset(p, 1, bytes);
  long kb = bench_status_kb("VmRSS");
  BENCH_CHECK(kb >= (long)(bytes / 1024), "ballast not resident (%ld kB)", kb);
  return p;
}

#endif
