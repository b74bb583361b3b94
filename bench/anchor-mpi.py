#!/usr/bin/python3
"""bench/anchor-mpi.py - anchor for workload 9: mpi4py.futures.MPIPoolExecutor
(Debian's python3-mpi4py on Open MPI) with max_workers=2, in its dynamic
process management mode, as its documentation's first example runs it:

  mpiexec -n 1 --oversubscribe /usr/bin/python3 bench/anchor-mpi.py MODE ...

(the driver adds the mpiexec prefix, and OMPI_ALLOW_RUN_AS_ROOT=1 /
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 when it runs as root).

  anchor-mpi.py one N          submit, one in flight per worker
  anchor-mpi.py map CHUNK N    MPIPoolExecutor.map(chunksize=CHUNK)
  anchor-mpi.py big N          1 MiB in, 1 MiB out per task (map)
  anchor-mpi.py start N        create + first result, N times
  anchor-mpi.py idle MS        CPU of parent + workers over MS ms once idle

Tasks and checks are anchor-py-proc.py's (bench/procpool-common.h): a
failed check prints CHECK FAILED and exits 2.  The workers are spawned by
Open MPI's daemon, not forked from the caller, so there is no row for a
large parent.  Worker pids (for CPU time) come from a getpid task.
"""
import os
import random
import resource
import sys
import time

from mpi4py.futures import MPIPoolExecutor

M64 = (1 << 64) - 1
BIG = 1 << 20
NBUF = 4
TABLES = [bytes((b + k) & 255 for b in range(256)) for k in range(256)]


def fail(msg):
    sys.stderr.write("CHECK FAILED: %s\n" % msg)
    sys.stderr.flush()
    os._exit(2)  # MPI teardown could hang on a half-finished pool


def check(ok, msg):
    if not ok:
        fail(msg)


def result(value, unit, **extra):
    fields = "".join(" %s=%s" % kv for kv in extra.items())
    print("RESULT value=%.6g unit=%s%s" % (value, unit, fields), flush=True)


def arg(i, dflt):
    return sys.argv[i] if len(sys.argv) > i else dflt


def tiny(x):
    x ^= x >> 33
    x = (x * 0xff51afd7ed558ccd) & M64
    x ^= x >> 33
    x = (x * 0xc4ceb9fe1a85ec53) & M64
    x ^= x >> 33
    return x


def big(b):
    k = 1 + int.from_bytes(b, "little") % 255
    return b.translate(TABLES[k])


def getpid(_):
    time.sleep(0.01)  # keep the worker busy so that the other one answers too
    return os.getpid()


def proc_cpu(pid):
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0]) * 1e-9
    except (OSError, ValueError, IndexError):
        with open("/proc/%d/stat" % pid) as f:
            t = f.read().rsplit(")", 1)[1].split()
        return (int(t[11]) + int(t[12])) / os.sysconf("SC_CLK_TCK")


def total_cpu(pids):
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime + sum(proc_cpu(p) for p in pids)


def started():
    ex = MPIPoolExecutor(max_workers=2)
    pids = set()
    for _ in range(50):
        pids |= set(ex.map(getpid, range(4)))
        if len(pids) == 2:
            break
    check(len(pids) == 2, "MPIPoolExecutor did not start 2 workers: %r" % pids)
    return ex, sorted(pids)


def run_one(ex, first, n):
    fs = [ex.submit(tiny, first + j) for j in range(min(2, n))]
    for i in range(n):
        x = first + i
        check(fs[i % 2].result() == tiny(x), "task %d: wrong result" % i)
        if i + 2 < n:
            fs[i % 2] = ex.submit(tiny, x + 2)


def row_one():
    n = int(arg(2, "20000"))
    ex, pids = started()
    run_one(ex, 1 << 30, 200)
    c0 = total_cpu(pids)
    t0 = time.perf_counter()
    run_one(ex, 1, n)
    el = time.perf_counter() - t0
    cpu = total_cpu(pids) - c0
    ex.shutdown(wait=True)
    result(el / n * 1e9, "ns/task", cpu_task_us="%.3f" % (cpu / n * 1e6))


def row_map():
    chunk = int(arg(2, "1"))
    n = int(arg(3, "20000"))
    ex, pids = started()
    xs = range(1, n + 1)
    c0 = total_cpu(pids)
    t0 = time.perf_counter()
    out = list(ex.map(tiny, xs, chunksize=chunk))
    check(len(out) == n, "map yielded %d of %d" % (len(out), n))
    for x, y in zip(xs, out):
        check(y == tiny(x), "task %d: wrong result or order" % x)
    el = time.perf_counter() - t0
    cpu = total_cpu(pids) - c0
    ex.shutdown(wait=True)
    result(el / n * 1e9, "ns/task", cpu_task_us="%.3f" % (cpu / n * 1e6))


def row_big():
    n = int(arg(2, "100"))
    r = random.Random(0x243F6A88)
    ins = [r.randbytes(BIG) for _ in range(NBUF)]
    expect = [big(b) for b in ins]
    ex, _ = started()
    el = 0
    for cnt in (4, n):
        t0 = time.perf_counter()
        got = 0
        for i, out in enumerate(ex.map(big, (ins[i % NBUF] for i in range(cnt)))):
            check(out == expect[i % NBUF], "payload task %d: wrong output" % i)
            got += 1
        check(got == cnt, "map yielded %d of %d" % (got, cnt))
        el = time.perf_counter() - t0
    ex.shutdown(wait=True)
    result(2.0 * BIG * n / el / 1e9, "GB/s", task_us="%.1f" % (el / n * 1e6))


def row_start():
    n = int(arg(2, "5"))
    ts = []
    for i in range(n):
        t0 = time.perf_counter()
        ex = MPIPoolExecutor(max_workers=2)
        y = ex.submit(tiny, i + 7).result()
        ts.append(time.perf_counter() - t0)
        check(y == tiny(i + 7), "first result wrong")
        ex.shutdown(wait=True)
    ts.sort()
    result(ts[len(ts) // 2] * 1e3, "ms", min_ms="%.3f" % (ts[0] * 1e3))


def row_idle():
    ms = int(arg(2, "1000"))
    ex, pids = started()
    run_one(ex, 1, 2000)
    c0 = total_cpu(pids)
    t0 = time.perf_counter()
    time.sleep(ms / 1e3)
    cpu = total_cpu(pids) - c0
    el = time.perf_counter() - t0
    ex.shutdown(wait=True)
    result(cpu / el * 100, "%CPU")


def main():
    modes = {"one": row_one, "map": row_map, "big": row_big, "start": row_start,
             "idle": row_idle}
    f = modes.get(arg(1, ""))
    if f is None:
        fail("usage: anchor-mpi.py one|map|big|start|idle ...")
    f()


if __name__ == "__main__":
    main()
