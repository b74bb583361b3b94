#!/usr/bin/python3
"""bench/anchor-py.py - anchor: Python's concurrent.futures.ThreadPoolExecutor
with max_workers=2, used as its documentation shows.  Run it with Debian's
/usr/bin/python3.

  anchor-py.py submit handle SUBMITTERS N   workloads 1, 2: submit + result
  anchor-py.py map N                        workload 4: Executor.map, ordered
  anchor-py.py rt warm|cold N [GAP_US]      workload 3
  anchor-py.py mem N                        workload 7
  anchor-py.py idle WORKERS MS              workload 8

Every result is checked; output is one RESULT line as the C programs print;
a failed check prints CHECK FAILED and exits 2.  Fork-join is left out (a
waiting worker does not help, so it deadlocks with 2 workers), and so are the
imbalanced 1 µs tasks (the GIL serialises them).
"""
import concurrent.futures as cf
import os
import resource
import sys
import threading
import time


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


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def task(i):
    return i * 3, threading.get_ident()


def started_pool(workers):
    """A pool whose `workers` threads have all started (they start lazily)."""
    ex = cf.ThreadPoolExecutor(max_workers=workers)
    barrier = threading.Barrier(workers, timeout=5)
    fs = [ex.submit(barrier.wait) for _ in range(workers)]
    for f in fs:
        f.result()
    return ex


def run_submit():
    subs = int(arg(3, "1"))
    n = int(arg(4, "100000"))
    ex = started_pool(int(os.environ.get("BENCH_WORKERS", "2")))
    submitters = set()
    start = threading.Barrier(subs + 1)

    def part(s, wait_start):
        submitters.add(threading.get_ident())
        lo, hi = 1 + s * n // subs, 1 + (s + 1) * n // subs
        if wait_start:
            start.wait()
        fs = [ex.submit(task, i) for i in range(lo, hi)]
        on_sub = 0
        for i, f in zip(range(lo, hi), fs):
            r, tid = f.result()
            check(r == i * 3, "task %d returned %r" % (i, r))
            on_sub += tid in submitters
        return on_sub

    if subs == 1:
        t0 = time.perf_counter()
        on_sub = part(0, False)
        el = time.perf_counter() - t0
    else:
        outs = [0] * subs

        def body(s):
            outs[s] = part(s, True)

        th = [threading.Thread(target=body, args=(s,)) for s in range(subs)]
        for t in th:
            t.start()
        time.sleep(0.01)
        t0 = time.perf_counter()
        start.wait()
        for t in th:
            t.join()
        el = time.perf_counter() - t0
        on_sub = sum(outs)
    ex.shutdown(wait=True)
    result(el / n * 1e9, "ns/task", share="%.4f" % (on_sub / n))


def run_map():
    n = int(arg(2, "100000"))
    ex = started_pool(2)
    main = threading.get_ident()
    t0 = time.perf_counter()
    out = list(ex.map(task, range(1, n + 1)))
    el = time.perf_counter() - t0
    check(len(out) == n, "map yielded %d of %d" % (len(out), n))
    on_sub = 0
    for i, (r, tid) in enumerate(out, 1):
        check(r == i * 3, "map result %d wrong or out of order" % i)
        on_sub += tid == main
    ex.shutdown(wait=True)
    result(el / n * 1e9, "ns/item", share="%.4f" % (on_sub / n))


def run_rt():
    cold = arg(2, "warm") == "cold"
    n = int(arg(3, "10000"))
    gap = int(arg(4, "2000")) * 1e-6
    ex = started_pool(2)
    main = threading.get_ident()
    lat = []
    c0 = cpu_seconds()
    for i in range(1, n + 1):
        if cold:
            time.sleep(gap)
        t0 = time.perf_counter_ns()
        r, tid = ex.submit(task, i).result()
        lat.append(time.perf_counter_ns() - t0)
        check(r == i * 3 and tid != main, "round trip %d wrong or ran on the caller" % i)
    cpu = cpu_seconds() - c0
    ex.shutdown(wait=True)
    lat.sort()
    q = lambda f: lat[int(f * (n - 1) + 0.5)]
    result(q(0.5), "ns", p99=q(0.99), cpu_us="%.3f" % (cpu / n * 1e6), share="0.0000")


def run_mem():
    n = int(arg(2, "100000"))
    ex = started_pool(2)
    gate = threading.Event()
    arrived = threading.Semaphore(0)

    def blocker():
        arrived.release()
        gate.wait()

    blockers = [ex.submit(blocker) for _ in range(2)]
    arrived.acquire()
    arrived.acquire()
    rss0 = rss_kb()
    fs = [ex.submit(task, i) for i in range(1, n + 1)]
    rss1 = rss_kb()
    check(not any(f.done() for f in fs), "tasks ran while the workers were blocked")
    gate.set()
    for f in blockers:
        f.result()
    for i, f in enumerate(fs, 1):
        check(f.result()[0] == i * 3, "task %d wrong" % i)
    ex.shutdown(wait=True)
    result((rss1 - rss0) * 1024 / n, "B/task", rss_mb="%.1f" % ((rss1 - rss0) / 1024))


def run_idle():
    workers = int(arg(2, "8"))
    ms = int(arg(3, "1000"))
    ex = started_pool(workers)
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    time.sleep(ms / 1000)
    cpu = cpu_seconds() - c0
    wall = time.perf_counter() - t0
    ex.shutdown(wait=True)
    result(cpu / wall * 100, "%cpu", cpu_ms="%.3f" % (cpu * 1e3))


if __name__ == "__main__":
    cmds = {"submit": run_submit, "map": run_map, "rt": run_rt, "mem": run_mem, "idle": run_idle}
    if arg(1, "") not in cmds:
        sys.stderr.write("usage: anchor-py.py submit|map|rt|mem|idle ...\n")
        sys.exit(64)
    cmds[sys.argv[1]]()
