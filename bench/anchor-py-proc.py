#!/usr/bin/python3
"""bench/anchor-py-proc.py - anchors for workload 9: Python's process pools,
used as their documentation shows, with 2 workers and the default start
method (fork on Debian 12's Python 3.11).  Run with Debian's /usr/bin/python3.

  anchor-py-proc.py ppe-one N            ProcessPoolExecutor: submit, one in
                                         flight per worker
  anchor-py-proc.py ppe-map CHUNK N      ProcessPoolExecutor.map(chunksize)
  anchor-py-proc.py pool-map CHUNK N     multiprocessing.Pool.map(chunksize)
  anchor-py-proc.py ppe-big N            1 MiB in, 1 MiB out:
                                         ProcessPoolExecutor.map
  anchor-py-proc.py pool-big N           the same: Pool.imap(chunksize=1)
                                         (imap: map would hold every result)
  anchor-py-proc.py ppe-start N [MB]     create + first result (after
  anchor-py-proc.py pool-start N [MB]    touching MB MiB first), N times
  anchor-py-proc.py ppe-idle MS          CPU of parent + workers over MS ms
  anchor-py-proc.py pool-idle MS         once idle, after some work

The tasks are bench/procpool-common.h's: tiny = the murmur3 finaliser of a
64-bit input; payload: k = 1 + (sum of the input bytes) mod 255 (computed as
int.from_bytes(b) % 255, the same number), out = every byte + k
(bytes.translate).  Every result is checked (the payload byte for byte); a
failed check prints CHECK FAILED and exits 2.  CPU per task: the parent
(getrusage, all its threads) plus the workers (/proc/PID/schedstat).
"""
import concurrent.futures as cf
import multiprocessing as mp
import os
import random
import resource
import sys
import time

M64 = (1 << 64) - 1
BIG = 1 << 20
NBUF = 4
TABLES = [bytes((b + k) & 255 for b in range(256)) for k in range(256)]


def fail(msg):
    sys.stderr.write("CHECK FAILED: %s\n" % msg)
    sys.exit(2)


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
    return os.getpid()


def big_inputs():
    r = random.Random(0x243F6A88)
    ins = [r.randbytes(BIG) for _ in range(NBUF)]
    return ins, [big(b) for b in ins]


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


def make(kind):
    if kind == "ppe":
        return cf.ProcessPoolExecutor(max_workers=2)
    return mp.Pool(processes=2)


def worker_pids(ex, kind):
    if kind == "ppe":
        return list(ex._processes.keys())
    return [p.pid for p in ex._pool]


def close(ex, kind):
    if kind == "ppe":
        ex.shutdown(wait=True)
    else:
        ex.close()
        ex.join()


def warm(ex, kind):
    """Both workers started and busy once (PPE starts them on demand)."""
    if kind == "ppe":
        pids = set()
        for _ in range(200):
            pids |= set(ex.map(getpid, range(8)))
            if len(pids) == 2:
                break
    else:
        pids = set(ex.map(getpid, range(8), chunksize=1))
    return pids


def run_one(ex, first, n):
    """Keep one task in flight per worker (2 outstanding)."""
    fs = [ex.submit(tiny, first + j) for j in range(min(2, n))]
    for i in range(n):
        x = first + i
        check(fs[i % 2].result() == tiny(x), "task %d: wrong result" % i)
        if i + 2 < n:
            fs[i % 2] = ex.submit(tiny, x + 2)


def row_one():
    n = int(arg(2, "20000"))
    ex = make("ppe")
    warm(ex, "ppe")
    run_one(ex, 1 << 30, 200)
    pids = worker_pids(ex, "ppe")
    c0 = total_cpu(pids)
    t0 = time.perf_counter()
    run_one(ex, 1, n)
    el = time.perf_counter() - t0
    cpu = total_cpu(pids) - c0
    close(ex, "ppe")
    result(el / n * 1e9, "ns/task", cpu_task_us="%.3f" % (cpu / n * 1e6))


def row_map(kind):
    chunk = int(arg(2, "1"))
    n = int(arg(3, "20000"))
    ex = make(kind)
    warm(ex, kind)
    pids = worker_pids(ex, kind)
    xs = range(1, n + 1)
    c0 = total_cpu(pids)
    t0 = time.perf_counter()
    out = list(ex.map(tiny, xs, chunksize=chunk))
    check(len(out) == n, "map yielded %d of %d" % (len(out), n))
    for x, y in zip(xs, out):
        check(y == tiny(x), "task %d: wrong result or order" % x)
    el = time.perf_counter() - t0
    cpu = total_cpu(pids) - c0
    close(ex, kind)
    result(el / n * 1e9, "ns/task", cpu_task_us="%.3f" % (cpu / n * 1e6))


def row_big(kind):
    n = int(arg(2, "100"))
    ins, expect = big_inputs()
    ex = make(kind)
    warm(ex, kind)
    el = 0
    for cnt in (4, n):  # warm-up, then timed
        args = (ins[i % NBUF] for i in range(cnt))
        t0 = time.perf_counter()
        it = ex.map(big, args) if kind == "ppe" else ex.imap(big, args, chunksize=1)
        got = 0
        for i, out in enumerate(it):
            check(out == expect[i % NBUF], "payload task %d: wrong output" % i)
            got += 1
        check(got == cnt, "map yielded %d of %d" % (got, cnt))
        el = time.perf_counter() - t0
    close(ex, kind)
    result(2.0 * BIG * n / el / 1e9, "GB/s", task_us="%.1f" % (el / n * 1e6))


def row_start(kind):
    n = int(arg(2, "10"))
    mb = int(arg(3, "0"))
    ballast = b"\x01" * (mb << 20) if mb else b""  # every page touched
    ts = []
    for i in range(n):
        t0 = time.perf_counter()
        ex = make(kind)
        if kind == "ppe":
            y = ex.submit(tiny, i + 7).result()
        else:
            y = ex.apply(tiny, (i + 7,))
        ts.append(time.perf_counter() - t0)
        check(y == tiny(i + 7), "first result wrong")
        close(ex, kind)
    ts.sort()
    with open("/proc/self/status") as f:
        rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
    result(ts[len(ts) // 2] * 1e3, "ms", min_ms="%.3f" % (ts[0] * 1e3),
           parent_mb="%.0f" % (rss / 1024))
    del ballast


def row_idle(kind):
    ms = int(arg(2, "1000"))
    ex = make(kind)
    warm(ex, kind)
    if kind == "ppe":
        run_one(ex, 1, 2000)
    else:
        out = ex.map(tiny, range(1, 2001), chunksize=1)
        check(out == [tiny(x) for x in range(1, 2001)], "wrong result")
    pids = worker_pids(ex, kind)
    c0 = total_cpu(pids)
    t0 = time.perf_counter()
    time.sleep(ms / 1e3)
    cpu = total_cpu(pids) - c0
    el = time.perf_counter() - t0
    close(ex, kind)
    result(cpu / el * 100, "%CPU")


def main():
    mode = arg(1, "")
    kind, _, what = mode.partition("-")
    if kind not in ("ppe", "pool"):
        fail("usage: anchor-py-proc.py ppe-one|ppe-map|pool-map|...-big|-start|-idle")
    if mode == "ppe-one":
        row_one()
    elif what == "map":
        row_map(kind)
    elif what == "big":
        row_big(kind)
    elif what == "start":
        row_start(kind)
    elif what == "idle":
        row_idle(kind)
    else:
        fail("unknown mode %s" % mode)


if __name__ == "__main__":
    main()
