// bench/anchor-boost-coro.cpp - workload C anchors: Boost.Context (a bare
// context switch) and Boost.Fiber (its round-robin scheduler), one thread.
//
//   anchor-boost-coro switch N   boost::context::fiber resume ping-pong: ns per switch
//   anchor-boost-coro yield N    2 fibers this_fiber::yield() N times each: ns per yield
//   anchor-boost-coro hop N      a token passed N times over 2 unbuffered_channels
//   anchor-boost-coro spawn N    fiber create + join... as detach, batches of 1024
//   anchor-boost-coro mem N      N fibers parked in a channel pop with 256 B of live
//                                locals (default stack allocator): (RSS + page tables)
//                                growth per fiber, bytes
//
// Checks as bench-coro.c; a failed check prints CHECK FAILED and exits 2.
#include "common.h"

#include <boost/context/fiber.hpp>
#include <boost/fiber/all.hpp>

#include <vector>

namespace ctx = boost::context;
namespace fib = boost::fibers;

static long N;

static long mem_now() {
  return (bench_status_kb("VmRSS") + bench_status_kb("VmPTE")) * 1024;
}

static double run_switch() {
  long turns = 0;
  ctx::fiber f{[&turns](ctx::fiber &&main) {
    for (;;) {
      turns++;
      main = std::move(main).resume();
    }
    return std::move(main);
  }};
  int64_t t0 = bench_now_ns();
  for (long i = 0; i < N; i++)
    f = std::move(f).resume();
  int64_t t1 = bench_now_ns();
  if (turns != N)
    BENCH_FAIL("switch: %ld turns", turns);
  return (double)(t1 - t0) / (2.0 * (double)N);
}

static double run_yield() {
  long cnt[2] = {0, 0};
  int64_t t0 = bench_now_ns();
  fib::fiber a([&] {
    for (long i = 0; i < N; i++) {
      boost::this_fiber::yield();
      cnt[0]++;
    }
  });
  fib::fiber b([&] {
    for (long i = 0; i < N; i++) {
      boost::this_fiber::yield();
      cnt[1]++;
    }
  });
  a.join();
  b.join();
  int64_t t1 = bench_now_ns();
  if (cnt[0] != N || cnt[1] != N)
    BENCH_FAIL("yield counts %ld %ld", cnt[0], cnt[1]);
  return (double)(t1 - t0) / (2.0 * (double)N);
}

static double run_hop() {
  N &= ~1L;
  fib::unbuffered_channel<long> a, b;
  long v = 0;
  int64_t t0 = bench_now_ns();
  fib::fiber pong([&] {
    for (long i = 0; i < N / 2; i++) {
      long x;
      if (a.pop(x) != fib::channel_op_status::success ||
          b.push(x + 2) != fib::channel_op_status::success)
        BENCH_FAIL("pong");
    }
  });
  fib::fiber ping([&] {
    for (long i = 0; i < N / 2; i++) {
      if (a.push(v) != fib::channel_op_status::success ||
          b.pop(v) != fib::channel_op_status::success)
        BENCH_FAIL("ping");
    }
  });
  ping.join();
  pong.join();
  int64_t t1 = bench_now_ns();
  if (v != N)
    BENCH_FAIL("hop: token %ld", v);
  return (double)(t1 - t0) / (double)N;
}

static double run_spawn() {
  long sum = 0, done = 0;
  std::vector<fib::fiber> batch;
  batch.reserve(1024);
  int64_t t0 = bench_now_ns();
  for (long i = 0; i < N;) {
    long end = i + 1024 < N ? i + 1024 : N;
    for (; i < end; i++)
      batch.emplace_back([&sum, &done, i] {
        sum += i;
        done++;
      });
    for (auto &f : batch)
      f.join();
    batch.clear();
  }
  int64_t t1 = bench_now_ns();
  if (done != N || sum != N * (N - 1) / 2)
    BENCH_FAIL("spawn: %ld ran, sum %ld", done, sum);
  return (double)(t1 - t0) / (double)N;
}

static double run_mem() {
  fib::unbuffered_channel<long> ch;
  long parked = 0, woken = 0, sum = 0, bad = 0;
  long m0 = mem_now();
  std::vector<fib::fiber> fs;
  fs.reserve((size_t)N);
  for (long i = 0; i < N; i++)
    fs.emplace_back([&, i] {
      volatile unsigned char locals[256];
      for (int k = 0; k < 256; k++)
        locals[k] = (unsigned char)(i + k);
      parked++;
      long v = 0;
      if (ch.pop(v) != fib::channel_op_status::success)
        bad++;
      for (int k = 0; k < 256; k++)
        if (locals[k] != (unsigned char)(i + k))
          bad++;
      sum += v;
      woken++;
    });
  while (parked < N)
    boost::this_fiber::yield();
  long g = mem_now() - m0;
  for (long i = 0; i < N; i++)
    ch.push(i + 1);
  for (auto &f : fs)
    f.join();
  if (bad || woken != N || sum != N * (N + 1) / 2)
    BENCH_FAIL("mem: %ld bad, %ld woken, sum %ld", bad, woken, sum);
  return (double)g / (double)N;
}

int main(int argc, char **argv) {
  if (argc < 3)
    BENCH_FAIL("usage: anchor-boost-coro switch|yield|hop|spawn|mem N");
  N = atol(argv[2]);
  if (N <= 0)
    BENCH_FAIL("bad N");
  std::string m = argv[1];
  double v;
  if (m == "switch")
    v = run_switch();
  else if (m == "yield")
    v = run_yield();
  else if (m == "hop")
    v = run_hop();
  else if (m == "spawn")
    v = run_spawn();
  else if (m == "mem")
    v = run_mem();
  else
    BENCH_FAIL("unknown mode %s", argv[1]);
  printf("RESULT value=%.3f unit=%s\n", v, m == "mem" ? "B" : "ns");
  return 0;
}
