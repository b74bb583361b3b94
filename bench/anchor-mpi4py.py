"""bench/anchor-mpi4py.py - mpi4py.futures on workload M's rows (the rows of
bench-mpi and anchor-mpi-raw), with one worker as they have:

    mpiexec -n 2 /usr/bin/python3 -m mpi4py.futures bench/anchor-mpi4py.py MODE N

(bench/mpi-row.sh runs it so; rank 0 runs this script, rank 1 serves.)

  one N      submit one task, wait for its result, repeat (1 in flight)
  pipe N     MPIPoolExecutor.map over N inputs, chunksize 1 (all in flight)
  big N      map over N inputs of 1 MiB; the task returns its input

Every result is checked (a failure prints CHECK FAILED and exits 2); one
RESULT line as bench/common.h prints it.  A warm-up of N/10 tasks runs
first, untimed.
"""
import os
import sys
import time

from mpi4py.futures import MPIPoolExecutor

BIG = 1 << 20


def fail(msg):
    sys.stderr.write("CHECK FAILED: %s\n" % msg)
    sys.stderr.flush()
    os._exit(2)  # MPI teardown could hang on a half-finished pool


def tiny(x):
    return x + 1


def echo(b):
    return b


def one(ex, n):
    t0 = time.perf_counter()
    for i in range(n):
        if ex.submit(tiny, i * 3).result() != i * 3 + 1:
            fail("task %d: wrong result" % i)
    return time.perf_counter() - t0


def pipe(ex, n):
    t0 = time.perf_counter()
    k = 0
    for i, r in enumerate(ex.map(tiny, range(n))):
        if r != i + 1:
            fail("task %d: wrong result or order" % i)
        k += 1
    if k != n:
        fail("map yielded %d of %d" % (k, n))
    return time.perf_counter() - t0


def big(ex, n):
    ins = [bytes([(i * 131 + 7 + k) & 255 for i in range(256)]) * (BIG // 256)
           for k in range(4)]
    t0 = time.perf_counter()
    k = 0
    for i, r in enumerate(ex.map(echo, (ins[j % 4] for j in range(n)))):
        if r != ins[i % 4]:
            fail("payload task %d: wrong output" % i)
        k += 1
    if k != n:
        fail("map yielded %d of %d" % (k, n))
    return time.perf_counter() - t0


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    f = {"one": one, "pipe": pipe, "big": big}.get(mode)
    if f is None or n <= 0:
        fail("usage: anchor-mpi4py.py one|pipe|big N")
    with MPIPoolExecutor() as ex:
        f(ex, max(n // 10, 4 if mode == "big" else 10))
        t = f(ex, n)
    if mode == "big":
        print("RESULT value=%.6g unit=GB/s task_us=%.1f"
              % (2.0 * BIG * n / t / 1e9, t / n * 1e6), flush=True)
    else:
        print("RESULT value=%.6g unit=ns/task" % (t / n * 1e9), flush=True)


if __name__ == "__main__":
    main()
