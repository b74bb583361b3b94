"""bench/anchor-mpi4py.py - mpi4py.futures on the rows of bench-mpi.

    mpiexec -n 2 /usr/bin/python3 -m mpi4py.futures bench/anchor-mpi4py.py [--quick]

tiny-1: submit one task, wait for it, repeat; tiny-pipe: executor.map over
the inputs (mpi4py keeps them all in flight).  Results are checked.
"""
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def tiny(x):
    return x + 1


def main():
    quick = "--quick" in sys.argv
    n1 = 500 if quick else 5000
    n2 = 5000 if quick else 50000
    with MPIPoolExecutor() as ex:
        for i in range(100):
            assert ex.submit(tiny, i).result() == i + 1
        t0 = time.perf_counter()
        for i in range(n1):
            assert ex.submit(tiny, i).result() == i + 1
        t = time.perf_counter() - t0
        print("%-13s %10.2f us/task   (%d tasks, 1 in flight)" % ("tiny-1", t / n1 * 1e6, n1))
        t0 = time.perf_counter()
        for i, r in enumerate(ex.map(tiny, range(n2))):
            assert r == i + 1
        t = time.perf_counter() - t0
        print("%-13s %10.2f us/task   (%d tasks, map)" % ("tiny-pipe", t / n2 * 1e6, n2))


if __name__ == "__main__":
    main()
