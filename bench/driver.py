#!/usr/bin/python3
"""bench/driver.py - runs the benchmark rows in interleaved rounds and prints
one markdown table (see bench/README.md).  Called by bench/run.sh after the
programs are built into bench/out/; not meant to be run by hand, but it can
be:  /usr/bin/python3 bench/driver.py --out bench/out [--quick] [--skip go]

Each row is one process that prints one line
    RESULT value=<v> unit=<u> [key=value ...]
and exits 0; anything else (a failed self-check exits 2, a crash, a
timeout, no RESULT line) fails the row and makes the driver exit 1.

Rounds: every round runs every row once, in a shuffled order (seeded by the
round number), so that a noisy minute on the shared machine spreads over
all rows instead of hitting one.  The table gives the median over rounds and
the min-max.  Ratio = anchor / conc of the same workload and class, for
figures where lower is better (time, bytes, CPU); conc / anchor for
efficiency.  Either way > 1 means conc is better.

Futex calls per task come from one extra pass under
`strace -f -c -e trace=futex` (its own run, not timed).
"""
import argparse
import datetime
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

WORKLOADS = {
    "1": "1 submitter: N empty tasks, then wait for all",
    "1w": "1 submitter, 1 worker (workload 1 with a one-worker pool)",
    "2": "2 submitters: N empty tasks, then wait for all",
    "3w": "round trip, warm (back to back)",
    "3c": "round trip, cold (2 ms pause: workers parked)",
    "4": "ordered map, f(x) over N items",
    "5": "fork-join fib(30), tasks down to n = 12",
    "6": "imbalanced: N spins, exponential, mean 1 µs",
    "7": "memory: RSS growth per pending task",
    "8": "idle: CPU of 8 idle workers over 1 s",
    "9": "process pool: registered tasks in 2 worker processes",
    "F": "issue 7 features, 1 submitter, N tasks with futures (ratio: time with the feature / without)",
    "C": "coroutines on one thread (issue 6): ns per operation, bytes per parked coroutine",
    "P": "physical limits (no pool)",
}
ORDER = list(WORKLOADS)
CLASS_ORDER = ["handle", "ff", "bulk", "per item", "chunked map", "fork-join", "idle",
               "one in flight", "pipelined", "chunked 64", "1 MiB in+out", "start-up",
               "fork, 1 GiB parent", "idle pool", "feature cost",
               "feature cost (process pool)", "switch", "yield", "channel hop",
               "spawn + run + free", "memory, parked", "physical"]
HIGHER_BETTER = {"efficiency", "GB/s"}
MPIEXEC = ["mpiexec", "-n", "1", "--oversubscribe"]


def load_plugins():
    """Workloads kept in their own files: bench/rows_*.py (sorted by name).

    A plug-in module may define
      WORKLOADS      {id: title}, shown after the built-in workloads, before P
      CLASSES        [class, ...] in display order
      HIGHER_BETTER  {unit, ...} where a larger value is better
      rows(quick, add)                     add(w, cls, impl, argv, n, **kw) as Row
      setup(out, env, quick) -> cleanup    called once before the rounds; may
                                           raise RuntimeError(reason): its rows fail
      targets(get, line, rows)             the issue's targets, as in targets()
      notes(row, extra_median, fmt_num)    the notes column of its rows
    """
    import importlib.util
    mods = []
    for name in sorted(os.listdir(HERE)):
        if name.startswith("rows_") and name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(HERE, name))
            m = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(m)
            mods.append(m)
    for m in mods:
        for k, v in getattr(m, "WORKLOADS", {}).items():
            WORKLOADS[k] = v
            ORDER.insert(ORDER.index("P"), k)
        CLASS_ORDER[-1:-1] = [c for c in getattr(m, "CLASSES", []) if c not in CLASS_ORDER]
        HIGHER_BETTER.update(getattr(m, "HIGHER_BETTER", set()))
    return mods


PLUGINS = load_plugins()


class Row:
    def __init__(self, w, cls, impl, argv, n, conc=False, lang="c", futex=False,
                 shown_n=None, env=None, rounds=None):
        self.w, self.cls, self.impl, self.argv, self.n = w, cls, impl, argv, n
        self.conc, self.lang, self.futex = conc, lang, futex
        self.shown_n = shown_n if shown_n is not None else n
        self.rounds = rounds  # run in the first `rounds` rounds only (slow anchors)
        self.results = []  # one dict per successful round
        self.failed = None  # first failure message
        self.futex_per_task = None
        self.plugin = None  # the bench/rows_*.py module that added it
        self.env = env or {}  # extra environment of this row's process

    def key(self):
        return (self.w, self.cls)

    def cmd(self, out, n=None):
        n = self.n if n is None else n
        args = [str(a).replace("{n}", str(n)) for a in self.argv]
        prog = args[0]
        if self.lang == "mpi":  # mpi4py.futures: spawn mode under mpiexec
            return MPIEXEC + ["/usr/bin/python3", os.path.join(HERE, prog)] + args[1:]
        if prog.endswith(".py"):
            return ["/usr/bin/python3", os.path.join(HERE, prog)] + args[1:]
        return [os.path.join(out, prog)] + args[1:]


def make_rows(quick):
    q = quick
    N = 10_000 if q else 1_000_000
    NPY = 1_000 if q else 100_000      # Python: ~20 µs a task
    NGO = 10_000 if q else 1_000_000
    NMAP1 = 1_000 if q else 100_000    # one task per item: compared with Python
    RTW, RTWPY = (300, 200) if q else (20_000, 5_000)
    RTC = 10 if q else 400
    NIMB = 10_000 if q else 1_000_000
    NMEM, NMEMGO, NMEMPY = (10_000, 10_000, 1_000) if q else (1_000_000, 100_000, 100_000)
    IDLE = 100 if q else 1000
    R = []

    def add(*a, **k):
        R.append(Row(*a, **k))

    # 1, 2: N empty tasks from 1 or 2 submitters, every class
    for w, s in (("1", 1), ("2", 2)):
        add(w, "handle", "conc: submit + future", ["bench-submit", "handle", s, "{n}"], N, conc=True, futex=True)
        add(w, "handle", "pthread pool: mutex+condvar, future per task", ["anchor-pthread", "submit", "handle", s, "{n}"], N, futex=True)
        add(w, "handle", "libuv uv_queue_work + after-work callback", ["anchor-uv", "submit", "handle", s, "{n}"], N, lang="uv", futex=True)
        add(w, "handle", "Go goroutine + buffered chan (future)", ["anchor-go", "submit", "handle", s, "{n}"], NGO, lang="go", futex=True)
        add(w, "handle", "Python ThreadPoolExecutor.submit + result", ["anchor-py.py", "submit", "handle", s, "{n}"], NPY, lang="python", futex=True)
        add(w, "ff", "conc: submit, out = NULL", ["bench-submit", "ff", s, "{n}"], N, conc=True, futex=True)
        add(w, "ff", "pthread pool, no future", ["anchor-pthread", "submit", "ff", s, "{n}"], N, futex=True)
        add(w, "ff", "TBB task_group run + wait", ["anchor-tbb", "submit", "ff", s, "{n}"], N, lang="tbb", futex=True)
        add(w, "ff", "OpenMP task" + (" (single producer)" if s == 1 else " (both threads produce)"), ["anchor-omp", "submit", "ff", s, "{n}"], N, lang="omp", futex=True)
        add(w, "ff", "libuv uv_queue_work, no callback", ["anchor-uv", "submit", "ff", s, "{n}"], N, lang="uv", futex=True)
        add(w, "ff", "Go goroutine + WaitGroup", ["anchor-go", "submit", "wg", s, "{n}"], NGO, lang="go", futex=True)
        add(w, "ff", "Go worker pool on a channel (2 workers)", ["anchor-go", "submit", "pool", s, "{n}"], NGO, lang="go", futex=True)
    # 1w: workload 1 with one worker (TBB and OpenMP count the caller as a
    # worker: with one they run everything on it, so they are left out)
    one = {"BENCH_WORKERS": "1"}
    add("1w", "handle", "conc: submit + future", ["bench-submit", "handle", 1, "{n}"], N, conc=True, env=one)
    add("1w", "handle", "pthread pool: mutex+condvar, future per task", ["anchor-pthread", "submit", "handle", 1, "{n}"], N, env=one)
    add("1w", "handle", "libuv uv_queue_work + after-work callback", ["anchor-uv", "submit", "handle", 1, "{n}"], N, lang="uv", env=one)
    add("1w", "handle", "Python ThreadPoolExecutor.submit + result", ["anchor-py.py", "submit", "handle", 1, "{n}"], NPY, lang="python", env=one)
    add("1w", "ff", "conc: submit, out = NULL", ["bench-submit", "ff", 1, "{n}"], N, conc=True, env=one)
    add("1w", "ff", "pthread pool, no future", ["anchor-pthread", "submit", "ff", 1, "{n}"], N, env=one)
    add("1w", "ff", "libuv uv_queue_work, no callback", ["anchor-uv", "submit", "ff", 1, "{n}"], N, lang="uv", env=one)
    add("1w", "ff", "Go worker pool on a channel (1 worker)", ["anchor-go", "submit", "pool", 1, "{n}"], NGO, lang="go", env=one)
    add("1", "bulk", "conc: executor_for, grain 1024", ["bench-submit", "bulk", 1, "{n}", 1024], N, conc=True, futex=True)
    add("1", "bulk", "TBB parallel_for", ["anchor-tbb", "bulk", "{n}"], N, lang="tbb", futex=True)
    add("1", "bulk", "OpenMP parallel for", ["anchor-omp", "bulk", "{n}"], N, lang="omp", futex=True)
    add("1", "bulk", "OpenMP taskloop", ["anchor-omp", "taskloop", "{n}"], N, lang="omp", futex=True)

    # F: what each of issue 7's features costs when switched on
    add("F", "feature cost", "conc: submit + future, no feature", ["bench-submit", "handle", 1, "{n}"], N, conc=True)
    add("F", "feature cost", "conc: + statistics read at the end", ["bench-submit", "handle", 1, "{n}", 0, "stats"], N)
    add("F", "feature cost", "conc: + bounded queue (max_queued, never full)", ["bench-submit", "handle", 1, "{n}", 0, "bounded"], N)
    add("F", "feature cost", "conc: + CONC_EXECUTOR_TIMING", ["bench-submit", "handle", 1, "{n}", 0, "timing"], N)
    add("F", "feature cost", "conc: + priority 1 on every task", ["bench-submit", "handle", 1, "{n}", 0, "prio"], N)

    # 3: round trips
    for w, mode, n in (("3w", "warm", RTW), ("3c", "cold", RTC)):
        npy = RTWPY if mode == "warm" else RTC
        add(w, "handle", "conc: submit + result", ["bench-roundtrip", mode, "{n}"], n, conc=True)
        add(w, "handle", "pthread pool", ["anchor-pthread", "rt", mode, "{n}"], n)
        add(w, "handle", "libuv uv_queue_work + uv_run", ["anchor-uv", "rt", mode, "{n}"], n, lang="uv")
        add(w, "handle", "Go worker pool on channels", ["anchor-go", "rt", "pool", mode, "{n}"], n, lang="go")
        add(w, "handle", "Go goroutine + chan", ["anchor-go", "rt", "go", mode, "{n}"], n, lang="go")
        add(w, "handle", "Python submit().result()", ["anchor-py.py", "rt", mode, "{n}"], npy, lang="python")

    # 4: ordered map
    add("4", "per item", "conc: executor_map, chunksize 1", ["bench-map", 1, "{n}"], NMAP1, conc=True, futex=True)
    add("4", "per item", "Python Executor.map", ["anchor-py.py", "map", "{n}"], NMAP1, lang="python", futex=True)
    add("4", "chunked map", "conc: executor_map, chunksize 1024 (ordered iterator)", ["bench-map", 1024, "{n}"], N, conc=True, futex=True)
    add("4", "bulk", "conc: executor_for into an array", ["bench-map", "for", "{n}"], N, conc=True, futex=True)
    add("4", "bulk", "TBB parallel_for into an array", ["anchor-tbb", "map", "{n}"], N, lang="tbb", futex=True)
    add("4", "bulk", "OpenMP parallel for into an array", ["anchor-omp", "map", "{n}"], N, lang="omp", futex=True)

    # 5: fork-join
    add("5", "fork-join", "conc: tasks submit 2 children, wait", ["bench-fib", 30, 12], 30, conc=True, shown_n="fib(30)")
    add("5", "fork-join", "TBB task_group", ["anchor-tbb", "fib", 30, 12], 30, lang="tbb", shown_n="fib(30)")
    add("5", "fork-join", "OpenMP task + taskwait", ["anchor-omp", "fib", 30, 12], 30, lang="omp", shown_n="fib(30)")
    add("5", "fork-join", "Go goroutines + WaitGroup", ["anchor-go", "fib", 30, 12], 30, lang="go", shown_n="fib(30)")

    # 6: imbalanced
    add("6", "ff", "conc: submit, out = NULL", ["bench-imbalanced", "ff", "{n}"], NIMB, conc=True, futex=True)
    add("6", "handle", "conc: submit + future", ["bench-imbalanced", "handle", "{n}"], NIMB, conc=True, futex=True)
    add("6", "ff", "pthread pool", ["anchor-pthread", "imbal", "{n}"], NIMB, futex=True)
    add("6", "ff", "TBB task_group", ["anchor-tbb", "imbal", "{n}"], NIMB, lang="tbb", futex=True)
    add("6", "ff", "OpenMP task", ["anchor-omp", "imbal", "{n}"], NIMB, lang="omp", futex=True)
    add("6", "ff", "libuv uv_queue_work", ["anchor-uv", "imbal", "{n}"], NIMB, lang="uv", futex=True)
    add("6", "ff", "Go worker pool on a channel", ["anchor-go", "imbal", "pool", "{n}"], NIMB, lang="go", futex=True)
    add("6", "ff", "Go goroutine + WaitGroup", ["anchor-go", "imbal", "wg", "{n}"], NIMB, lang="go", futex=True)

    # 7: memory per pending task
    add("7", "handle", "conc: submit + future", ["bench-memory", "handle", "{n}"], NMEM, conc=True)
    add("7", "handle", "pthread pool, future per task", ["anchor-pthread", "mem", "handle", "{n}"], NMEM)
    add("7", "handle", "Python ThreadPoolExecutor.submit", ["anchor-py.py", "mem", "{n}"], NMEMPY, lang="python")
    add("7", "ff", "conc: submit, out = NULL", ["bench-memory", "ff", "{n}"], NMEM, conc=True)
    add("7", "ff", "pthread pool, no future", ["anchor-pthread", "mem", "ff", "{n}"], NMEM)
    add("7", "ff", "TBB task_group", ["anchor-tbb", "mem", "{n}"], NMEM, lang="tbb")
    add("7", "ff", "libuv uv_queue_work (uv_work_t counted)", ["anchor-uv", "mem", "{n}"], NMEM, lang="uv")
    add("7", "ff", "Go worker pool: channel buffer", ["anchor-go", "mem", "pool", "{n}"], NMEM, lang="go")
    add("7", "ff", "Go parked goroutine per task", ["anchor-go", "mem", "wg", "{n}"], NMEMGO, lang="go")

    # 8: idle cost
    add("8", "idle", "conc", ["bench-idle", 8, IDLE], 8, conc=True, shown_n="8 thr")
    add("8", "idle", "pthread pool", ["anchor-pthread", "idle", 8, IDLE], 8, shown_n="8 thr")
    add("8", "idle", "TBB (8 threads)", ["anchor-tbb", "idle", 8, IDLE], 8, lang="tbb", shown_n="8 thr")
    add("8", "idle", "OpenMP (8 threads)", ["anchor-omp", "idle", 8, IDLE], 8, lang="omp", shown_n="8 thr")
    add("8", "idle", "libuv (UV_THREADPOOL_SIZE=8)", ["anchor-uv", "idle", 8, IDLE], 8, lang="uv", shown_n="8 thr")
    add("8", "idle", "Go (8 worker goroutines)", ["anchor-go", "idle", 8, IDLE], 8, lang="go", shown_n="8 gor")
    add("8", "idle", "Python ThreadPoolExecutor", ["anchor-py.py", "idle", 8, IDLE], 8, lang="python", shown_n="8 thr")

    # 9: process pool (issue 5), 2 workers everywhere
    if q:
        P1, PPIPE, P64, PBIG, PSTART, PFORK, PMB, PIDLE = 500, 2_000, 5_000, 8, 2, 1, 256, 200
        PY1, PYPIPE, PY64, PYBIG, PYSTART = 200, 500, 2_000, 4, 1
        MPI1, MPIPIPE, MPI64, MPIBIG = 100, 200, 1_000, 4
    else:
        P1, PPIPE, P64, PBIG, PSTART, PFORK, PMB, PIDLE = 30_000, 200_000, 1_000_000, 300, 10, 5, 1024, 1000
        PY1, PYPIPE, PY64, PYBIG, PYSTART = 3_000, 20_000, 100_000, 100, 5
        MPI1, MPIPIPE, MPI64, MPIBIG = 2_000, 3_000, 50_000, 50
    py, pp, mpi = "anchor-py-proc.py", "anchor-forkpipe", "anchor-mpi.py"
    add("9", "one in flight", "conc: submit_task, 2 in flight", ["bench-procpool", "one", "{n}"], P1, conc=True)
    add("9", "one in flight", "C fork + pipe pair per worker", [pp, "one", "{n}"], P1)
    add("9", "one in flight", "Python ProcessPoolExecutor.submit", [py, "ppe-one", "{n}"], PY1, lang="python")
    add("9", "one in flight", "mpi4py MPIPoolExecutor.submit", [mpi, "one", "{n}"], MPI1, lang="mpi")
    add("9", "pipelined", "conc: map_task, chunksize 1, buffersize 4096", ["bench-procpool", "map", 1, "{n}"], PPIPE, conc=True)
    add("9", "pipelined", "conc: the same, pool option max_in_flight = 256", ["bench-procpool", "map", 1, "{n}", 256], PPIPE)
    add("9", "pipelined", "C fork + pipe: 256 in flight per worker, batched writes", [pp, "pipe", 256, "{n}"], PPIPE)
    add("9", "pipelined", "Python ProcessPoolExecutor.map, chunksize 1", [py, "ppe-map", 1, "{n}"], PY1, lang="python")
    add("9", "pipelined", "Python multiprocessing.Pool.map, chunksize 1", [py, "pool-map", 1, "{n}"], PYPIPE, lang="python")
    add("9", "pipelined", "mpi4py MPIPoolExecutor.map, chunksize 1", [mpi, "map", 1, "{n}"], MPIPIPE, lang="mpi")
    add("F", "feature cost (process pool)", "conc process pool: map_task, chunksize 1, no feature", ["bench-procpool", "map", 1, "{n}"], PPIPE, conc=True)
    add("F", "feature cost (process pool)", "+ CONC_EXECUTOR_TIMING", ["bench-procpool", "map", 1, "{n}", 0, "timing"], PPIPE)
    add("F", "feature cost (process pool)", "+ bounded queue (max_queued, never full)", ["bench-procpool", "map", 1, "{n}", 0, "bounded"], PPIPE)
    add("F", "feature cost (process pool)", "+ statistics read at the end", ["bench-procpool", "map", 1, "{n}", 0, "stats"], PPIPE)
    add("9", "chunked 64", "conc: map_task, chunksize 64", ["bench-procpool", "map", 64, "{n}"], P64, conc=True)
    add("9", "chunked 64", "Python ProcessPoolExecutor.map, chunksize 64", [py, "ppe-map", 64, "{n}"], PY64, lang="python")
    add("9", "chunked 64", "Python multiprocessing.Pool.map, chunksize 64", [py, "pool-map", 64, "{n}"], PY64, lang="python")
    add("9", "chunked 64", "mpi4py MPIPoolExecutor.map, chunksize 64", [mpi, "map", 64, "{n}"], MPI64, lang="mpi")
    add("9", "1 MiB in+out", "conc: map_task, buffersize 4", ["bench-procpool", "big", "{n}"], PBIG, conc=True)
    add("9", "1 MiB in+out", "C fork + pipe, 1 in flight per worker", [pp, "big", "{n}"], PBIG)
    add("9", "1 MiB in+out", "Python ProcessPoolExecutor.map", [py, "ppe-big", "{n}"], PYBIG, lang="python")
    add("9", "1 MiB in+out", "Python multiprocessing.Pool.imap, chunksize 1", [py, "pool-big", "{n}"], PYBIG, lang="python")
    add("9", "1 MiB in+out", "mpi4py MPIPoolExecutor.map", [mpi, "big", "{n}"], MPIBIG, lang="mpi")
    add("9", "start-up", "conc: create + first result", ["bench-procpool", "start", "{n}"], PSTART, conc=True, shown_n="%d×" % PSTART)
    add("9", "start-up", "C fork + pipe", [pp, "start", "{n}"], PSTART, shown_n="%d×" % PSTART)
    add("9", "start-up", "Python ProcessPoolExecutor", [py, "ppe-start", "{n}"], PYSTART, lang="python", shown_n="%d×" % PYSTART)
    add("9", "start-up", "Python multiprocessing.Pool", [py, "pool-start", "{n}"], PYSTART, lang="python", shown_n="%d×" % PYSTART)
    add("9", "start-up", "mpi4py MPIPoolExecutor (spawn)", [mpi, "start", "{n}"], PYSTART // 2 or 1, lang="mpi", shown_n="%d×" % (PYSTART // 2 or 1))
    gib = "%d MiB" % PMB if PMB != 1024 else "1 GiB"
    add("9", "fork, 1 GiB parent", "conc: touch %s, create + first result" % gib, ["bench-procpool", "start", "{n}", PMB], PFORK, conc=True, shown_n="%d×" % PFORK)
    add("9", "fork, 1 GiB parent", "C fork + pipe", [pp, "start", "{n}", PMB], PFORK, shown_n="%d×" % PFORK)
    add("9", "fork, 1 GiB parent", "Python ProcessPoolExecutor (fork)", [py, "ppe-start", "{n}", PMB], PFORK, lang="python", shown_n="%d×" % PFORK)
    add("9", "fork, 1 GiB parent", "Python multiprocessing.Pool (fork)", [py, "pool-start", "{n}", PMB], PFORK, lang="python", shown_n="%d×" % PFORK)
    add("9", "idle pool", "conc: parent + fork server + workers", ["bench-procpool", "idle", PIDLE], 2, conc=True, shown_n="%d ms" % PIDLE)
    add("9", "idle pool", "Python ProcessPoolExecutor", [py, "ppe-idle", PIDLE], 2, lang="python", shown_n="%d ms" % PIDLE)
    add("9", "idle pool", "Python multiprocessing.Pool", [py, "pool-idle", PIDLE], 2, lang="python", shown_n="%d ms" % PIDLE)
    add("9", "idle pool", "mpi4py MPIPoolExecutor", [mpi, "idle", PIDLE], 2, lang="mpi", shown_n="%d ms" % PIDLE)

    # C: coroutines on one thread (issue 6).  Targets: switch within 10 % of
    # Boost.Context, yield <= 15 ns, hop <= 25 ns, spawn <= 40 ns, memory
    # <= 4.5 KB per parked coroutine at 10^6.
    NSW = 100_000 if q else 20_000_000
    NY, NYB, NYGO, NYPY = (10_000, 10_000, 10_000, 2_000) if q else (5_000_000, 2_000_000, 2_000_000, 200_000)
    NSP, NSPB, NSPGO, NSPPY = (10_000, 2_000, 10_000, 2_000) if q else (2_000_000, 100_000, 1_000_000, 100_000)
    NMC, NMCPY, NMCB = (10_000, 2_000, 2_000) if q else (1_000_000, 100_000, 100_000)
    bc, bb, gc, pc = "bench-coro", "anchor-boost-coro", "anchor-go-coro", "anchor-py-coro.py"
    add("C", "switch", "conc: context switch (src/ctx.h, full ABI state)", [bc, "switch", "{n}"], NSW, conc=True)
    add("C", "switch", "Boost.Context fiber resume", [bb, "switch", "{n}"], NSW, lang="boost")
    add("C", "yield", "conc: conc_coro_yield, 2 coroutines", [bc, "yield", "{n}"], NY, conc=True)
    add("C", "yield", "Boost.Fiber this_fiber::yield, 2 fibers", [bb, "yield", "{n}"], NYB, lang="boost")
    add("C", "yield", "Go runtime.Gosched, 2 goroutines, GOMAXPROCS=1", [gc, "yield", "{n}"], NYGO, lang="go")
    add("C", "yield", "Python asyncio: await sleep(0), 2 tasks", [pc, "asyncio", "yield", "{n}"], NYPY, lang="python")
    add("C", "yield", "Python uvloop: await sleep(0), 2 tasks", [pc, "uvloop", "yield", "{n}"], NYPY, lang="python")
    add("C", "channel hop", "conc: unbuffered conc_chan ping-pong", [bc, "hop", "{n}"], NY, conc=True)
    add("C", "channel hop", "Boost.Fiber unbuffered_channel ping-pong", [bb, "hop", "{n}"], NYB, lang="boost")
    add("C", "channel hop", "Go unbuffered chan ping-pong, GOMAXPROCS=1", [gc, "hop", "{n}"], NYGO, lang="go")
    add("C", "channel hop", "Python asyncio.Queue(1) ping-pong", [pc, "asyncio", "hop", "{n}"], NYPY, lang="python")
    add("C", "channel hop", "Python uvloop, asyncio.Queue(1) ping-pong", [pc, "uvloop", "hop", "{n}"], NYPY, lang="python")
    add("C", "spawn + run + free", "conc: conc_coro_spawn detached, batches of 1024", [bc, "spawn", "{n}"], NSP, conc=True)
    add("C", "spawn + run + free", "Boost.Fiber fiber + join, batches of 1024", [bb, "spawn", "{n}"], NSPB, lang="boost")
    add("C", "spawn + run + free", "Go go f() + WaitGroup, batches of 1024", [gc, "spawn", "{n}"], NSPGO, lang="go")
    add("C", "spawn + run + free", "Python asyncio create_task + gather, batches of 1024", [pc, "asyncio", "spawn", "{n}"], NSPPY, lang="python")
    add("C", "spawn + run + free", "Python uvloop create_task + gather, batches of 1024", [pc, "uvloop", "spawn", "{n}"], NSPPY, lang="python")
    add("C", "memory, parked", "conc: parked in conc_chan_recv, 256 B locals, 128 KiB guarded stacks", [bc, "mem", "{n}"], NMC, conc=True)
    add("C", "memory, parked", "Boost.Fiber: parked in channel pop (default stacks)", [bb, "mem", "{n}"], NMCB, lang="boost")
    add("C", "memory, parked", "Go: parked in chan receive, [256]byte locals", [gc, "mem", "{n}"], NMC, lang="go")
    add("C", "memory, parked", "Python asyncio: parked in Queue.get, bytearray(256)", [pc, "asyncio", "mem", "{n}"], NMCPY, lang="python")

    # physical limits
    add("P", "physical", "futex ping-pong round trip (both park)", ["physical", "futex", "{n}"], 200 if q else 20_000)
    add("P", "physical", "spin ping-pong round trip", ["physical", "spin", "{n}"], 1_000 if q else 200_000)
    add("P", "physical", "atomic fetch_add, 1 thread", ["physical", "atomic1", "{n}"], 100_000 if q else 10_000_000)
    add("P", "physical", "atomic fetch_add, 2 threads, 1 word", ["physical", "atomic2", "{n}"], 100_000 if q else 10_000_000)
    add("P", "physical", "malloc(64) + free, 1 thread", ["physical", "malloc", "{n}"], 100_000 if q else 10_000_000)
    add("P", "physical", "serial fib(30), 1 thread", ["physical", "fib", 30], 30, shown_n="fib(30)")
    add("P", "physical", "imbalanced spins serially, 1 thread", ["physical", "imbal", "{n}"], NIMB)
    add("P", "physical", "handle floor: 64 B record per task, malloc'd, to a 2nd thread and back", ["physical", "handoff", "{n}", "fresh"], N)
    add("P", "physical", "handle floor: 64 B record per task, pre-touched array, to a 2nd thread and back", ["physical", "handoff", "{n}", "warm"], N)
    for m in PLUGINS:
        if hasattr(m, "rows"):
            mark = len(R)
            m.rows(q, add)
            for r in R[mark:]:
                r.plugin = m
    return R


RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)


def parse_result(text):
    m = RESULT_RE.search(text)
    if not m:
        return None
    d = {}
    for tok in m.group(1).split():
        k, _, v = tok.partition("=")
        d[k] = v
    return d


def run_row(row, out, env, timeout, n=None, prefix=None):
    cmd = (prefix or []) + row.cmd(out, n)
    if row.env:
        env = dict(env, **row.env)
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s (hang or lost wake-up?)" % timeout
    except OSError as e:
        return None, "cannot run %s: %s" % (cmd[0], e)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no stderr)"])[-3:]
        return None, "exit %d: %s" % (p.returncode, " | ".join(tail))
    d = parse_result(p.stdout)
    if d is None or "value" not in d:
        return None, "no RESULT line"
    return d, p.stderr


def fmt_num(v):
    if v is None:
        return "—"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 100:
        return "{:,.0f}".format(v)
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    if a >= 0.01:
        return "%.3f" % v
    return "%.2g" % v


def fmt_n(n):
    if isinstance(n, str):
        return n
    for e in range(9, 2, -1):
        if n == 10 ** e:
            return "10^%d" % e
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def med(xs):
    return statistics.median(xs) if xs else None


def extra_median(row, key):
    xs = []
    for r in row.results:
        if key in r:
            try:
                xs.append(float(r[key]))
            except ValueError:
                pass
    return med(xs)


def notes_for(row):
    if row.plugin is not None and hasattr(row.plugin, "notes"):
        return row.plugin.notes(row, extra_median, fmt_num)
    parts = []
    p99 = extra_median(row, "p99")
    if p99 is not None:
        parts.append("p99 %s ns" % fmt_num(p99))
    cpu = extra_median(row, "cpu_us")
    if cpu is not None:
        parts.append("CPU %s µs/round trip" % fmt_num(cpu))
    wall = extra_median(row, "wall_ms")
    if wall is not None:
        parts.append("wall %s ms" % fmt_num(wall))
    cpt = extra_median(row, "cpu_task_us")
    if cpt is not None:
        parts.append("CPU %s µs/task (parent + pool processes)" % fmt_num(cpt))
    tus = extra_median(row, "task_us")
    if tus is not None:
        parts.append("%s µs/task" % fmt_num(tus))
    mn = extra_median(row, "min_ms")
    if mn is not None:
        parts.append("fastest %s ms" % fmt_num(mn))
    pmb = extra_median(row, "parent_mb")
    if pmb is not None:
        parts.append("parent RSS %s MB" % fmt_num(pmb))
    rss = extra_median(row, "rss_mb")
    if rss is not None:
        parts.append("%s MB for %s" % (fmt_num(rss), fmt_n(row.n)))
    return "; ".join(parts)


def ratio(row, conc_row):
    if row.conc or conc_row is None or not row.results or not conc_row.results:
        return None
    a = med([float(r["value"]) for r in row.results])
    c = med([float(r["value"]) for r in conc_row.results])
    unit = row.results[0].get("unit")
    if unit in HIGHER_BETTER:
        return c / a if a > 0 else None
    return a / c if c > 0 else None


def machine_line():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    virt = ""
    try:
        for line in subprocess.run(["lscpu"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True).stdout.splitlines():
            if line.startswith("Hypervisor vendor:"):
                virt = "VM on " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = ", %.0f GiB RAM" % (kb / 1048576.0)
    except (OSError, ValueError, IndexError):
        pass
    return "%s, %d cores%s%s, Linux %s, %s" % (
        model, os.cpu_count() or 0, mem, (", " + virt) if virt else "",
        platform.release(), platform.machine())


def conc_revision():
    """The commit conc was built from, and whether src/ or include/ differ."""
    root = os.path.dirname(HERE)
    try:
        sha = subprocess.run(["git", "-C", root, "log", "-1", "--format=%h %s"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "src",
                                "include"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True).stdout.strip()
    except OSError:
        return "unknown (no git)"
    if not sha:
        return "unknown (not a git checkout)"
    return "commit %s%s" % (sha, " + uncommitted changes in src/ or include/" if dirty else "")


def tool_versions():
    def first(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True).stdout.splitlines()[0].strip()
        except (OSError, IndexError):
            return "?"

    def pkg(name):
        try:
            return subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True).stdout.strip() or "?"
        except OSError:
            return "?"
    return "gcc %s; oneTBB %s; libuv %s; %s; Python %s; mpi4py %s on Open MPI %s" % (
        pkg("gcc-12") if pkg("gcc-12") != "?" else first(["gcc", "-dumpfullversion"]),
        pkg("libtbb-dev"), pkg("libuv1-dev"),
        first([os.environ.get("CONC_BENCH_GO", "go"), "version"]).replace("go version ", ""),
        platform.python_version(), pkg("python3-mpi4py"), pkg("openmpi-bin"))


def strace_futex(row, out, env, timeout, n):
    with tempfile.NamedTemporaryFile(prefix="conc-bench-strace-", delete=False) as tf:
        path = tf.name
    try:
        d, err = run_row(row, out, env, timeout, n=n,
                         prefix=["strace", "-f", "--seccomp-bpf", "-c", "-e", "trace=futex",
                                 "-o", path])
        if d is None:
            return None, err
        calls = 0
        with open(path) as f:
            for line in f:
                t = line.split()
                if t and t[-1] == "futex" and len(t) >= 5:
                    calls = int(t[3])
        return calls / float(n), None
    finally:
        os.unlink(path)


def targets(rows):
    """The issue's targets, computed from the medians: list of markdown lines."""
    def get(w, cls, impl_prefix):
        for r in rows:
            if r.w == w and r.cls == cls and r.impl.startswith(impl_prefix) and r.results:
                return med([float(x["value"]) for x in r.results]), r
        return None, None

    lines = []

    def line(name, ok, text):
        if ok is None:
            lines.append("- %s: not measured (%s)" % (name, text))
        else:
            lines.append("- %s: **%s** — %s" % (name, "met" if ok else "NOT met", text))

    ch, _ = get("1", "handle", "conc")
    gp, _ = get("1", "ff", "Go worker pool")
    tb, _ = get("1", "ff", "TBB")
    py, _ = get("1", "handle", "Python")
    if ch and gp:
        line("handle class ≤ Go worker pool per task", ch <= gp,
             "conc %s ns/task vs Go pool %s ns/task (%.2f×)" % (fmt_num(ch), fmt_num(gp), gp / ch))
    if ch and tb:
        line("handle class ≥ 4× TBB task_group", tb / ch >= 4,
             "%.2f× (TBB %s ns/task)" % (tb / ch, fmt_num(tb)))
    if ch and py:
        line("handle class ≥ 500× Python submit", py / ch >= 500,
             "%.0f× (Python %s ns/task)" % (py / ch, fmt_num(py)))
    def share_of(r):
        xs = [float(x["share"]) for x in r.results if "share" in x]
        return med(xs)

    cf_, _ = get("1", "ff", "conc")
    best = best_handoff = None
    for r in rows:
        if r.w == "1" and r.cls == "ff" and not r.conc and r.results:
            v = med([float(x["value"]) for x in r.results])
            if best is None or v < best[0]:
                best = (v, r)
            sh = share_of(r)
            if (sh is None or sh < 0.5) and (best_handoff is None or v < best_handoff[0]):
                best_handoff = (v, r)
    if cf_ and best:
        sh = share_of(best[1])
        line("fire-and-forget ≥ 1.5× best anchor", best[0] / cf_ >= 1.5,
             "%.2f× vs %s (%s ns/task%s)" % (
                 best[0] / cf_, best[1].impl, fmt_num(best[0]),
                 ", %.0f %% of its tasks run by the submitting thread" % (100 * sh) if sh else ""))
    if cf_ and best_handoff and best_handoff is not best:
        line("fire-and-forget ≥ 1.5× best anchor that hands tasks to workers "
             "(< 50 % run by the submitter)", best_handoff[0] / cf_ >= 1.5,
             "%.2f× vs %s (%s ns/task)" % (best_handoff[0] / cf_, best_handoff[1].impl,
                                            fmt_num(best_handoff[0])))
    for w in ("1", "4"):
        cb, _ = get(w, "bulk", "conc")
        t, _ = get(w, "bulk", "TBB")
        o, _ = get(w, "bulk", "OpenMP parallel")
        if cb and (t or o):
            b = min(x for x in (t, o) if x)
            line("bulk (workload %s) within 1.5× of TBB/OpenMP parallel for" % w, cb <= 1.5 * b,
                 "conc %s vs best %s ns/item (conc takes %.2f× as long)" % (fmt_num(cb), fmt_num(b), cb / b))
    cfib, _ = get("5", "fork-join", "conc")
    tf, _ = get("5", "fork-join", "TBB")
    gf, _ = get("5", "fork-join", "Go")
    if cfib and (tf or gf):
        b = min(x for x in (tf, gf) if x)
        line("fork-join ≥ 1.2× best of TBB and Go", b / cfib >= 1.2,
             "%.2f× (conc %s ms, best %s ms)" % (b / cfib, fmt_num(cfib), fmt_num(b)))
    for cls in ("ff", "handle"):
        e, _ = get("6", cls, "conc")
        if e:
            line("imbalanced efficiency ≥ 0.9 (%s)" % cls, e >= 0.9, "%.3f" % e)
    rw, _ = get("3w", "handle", "conc")
    sp, _ = get("P", "physical", "spin ping-pong")
    if rw and sp:
        line("round trip warm p50 ≤ 2× spin ping-pong", rw <= 2 * sp,
             "%s ns vs floor %s ns (%.1f×)" % (fmt_num(rw), fmt_num(sp), rw / sp))
    rc, _ = get("3c", "handle", "conc")
    bestc = bestw = None
    for r in rows:
        if r.w == "3c" and not r.conc and r.results:
            v = med([float(x["value"]) for x in r.results])
            if bestc is None or v < bestc[0]:
                bestc = (v, r.impl)
            sh = share_of(r)
            if sh is not None and sh < 0.5 and (bestw is None or v < bestw[0]):
                bestw = (v, r.impl)
    if rc and bestc:
        line("round trip cold p50 ≤ best parked anchor", rc <= bestc[0],
             "%s ns vs %s %s ns" % (fmt_num(rc), bestc[1], fmt_num(bestc[0])))
    if rc and bestw and bestw != bestc:
        line("round trip cold p50 ≤ best parked anchor that runs the task on a "
             "worker thread (as conc must)", rc <= bestw[0],
             "%s ns vs %s %s ns" % (fmt_num(rc), bestw[1], fmt_num(bestw[0])))
    for cls in ("handle", "ff"):
        m, _ = get("7", cls, "conc")
        if m is not None:
            line("memory ≤ 64 B per pending task (%s)" % cls, m <= 64, "%s B" % fmt_num(m))
    # issue 5: the process pool
    p1, r1 = get("9", "one in flight", "conc")
    if p1 is not None:
        line("(issue 5) process pool, tiny task one in flight per worker ≤ 5 µs", p1 <= 5000,
             "%s ns/task; CPU %s µs/task" % (fmt_num(p1), fmt_num(extra_median(r1, "cpu_task_us"))))
    pp_, _ = get("9", "pipelined", "conc")
    if pp_ is not None:
        line("(issue 5) process pool, pipelined ≤ 2 µs", pp_ <= 2000, "%s ns/task" % fmt_num(pp_))
    pb, _ = get("9", "1 MiB in+out", "conc")
    if pb is not None:
        line("(issue 5) process pool, 1 MiB in + 1 MiB out ≥ 5 GB/s on 2 workers", pb >= 5,
             "%s GB/s" % fmt_num(pb))
    pi, _ = get("9", "idle pool", "conc")
    if pi is not None:
        line("(issue 5) process pool idle < 1 % of a CPU", pi < 1, "%s %%" % fmt_num(pi))
    # issue 6: coroutines (workload C)
    csw, _ = get("C", "switch", "conc")
    bsw, _ = get("C", "switch", "Boost.Context")
    if csw and bsw:
        line("(issue 6) switch within 10 % of Boost.Context", csw <= 1.1 * bsw,
             "conc %s ns vs Boost.Context %s ns (%.2f×)" % (fmt_num(csw), fmt_num(bsw), csw / bsw))
    for cls, name, limit, go_prefix in (("yield", "yield through the scheduler", 15, "Go"),
                                        ("channel hop", "channel hop", 25, "Go"),
                                        ("spawn + run + free", "spawn + run + free", 40, "Go")):
        cv, _ = get("C", cls, "conc")
        gv, _ = get("C", cls, go_prefix)
        if cv is not None:
            line("(issue 6) %s ≤ %d ns" % (name, limit), cv <= limit,
                 "%s ns%s" % (fmt_num(cv), "; Go %s ns (%.1f× conc's)" % (fmt_num(gv), gv / cv) if gv else ""))
    cm, _ = get("C", "memory, parked", "conc")
    if cm is not None:
        gm, _ = get("C", "memory, parked", "Go")
        line("(issue 6) memory ≤ 4.5 KB per parked coroutine", cm <= 4608,
             "%s B%s" % (fmt_num(cm), "; Go %s B" % fmt_num(gm) if gm else ""))
    idle, _ = get("8", "idle", "conc")
    if idle is not None:
        line("idle < 1 % of a CPU", idle < 1, "%s %%" % fmt_num(idle))
    for r in rows:
        if r.conc and r.w in ("1", "2") and r.futex_per_task is not None:
            line("< 0.01 futex calls per task (workload %s, %s)" % (r.w, r.cls),
                 r.futex_per_task < 0.01, "%s" % fmt_num(r.futex_per_task))
    for m in PLUGINS:
        if hasattr(m, "targets"):
            m.targets(get, line, rows)
    return lines


def load_gaps():
    """bench/gaps/*.md: for a target not met, its physical reason and what
    was tried.  Sections start with '## ' followed by the start of the
    target's name as targets() prints it (one file per issue)."""
    gaps, key = {}, None
    d = os.path.join(HERE, "gaps")
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if not name.endswith(".md"):
            continue
        key = None
        with open(os.path.join(d, name)) as f:
            for ln in f:
                if ln.startswith("## "):
                    key = ln[3:].strip()
                    gaps[key] = []
                elif key is not None:
                    gaps[key].append(ln.rstrip("\n"))
    return {k: "\n".join(v).strip() for k, v in gaps.items()}


def explain(lines):
    """The NOT met targets, each with its section of GAPS.md (or a warning
    that none is written)."""
    gaps = load_gaps()
    out = []
    for ln in lines:
        if "**NOT met**" not in ln:
            continue
        name = ln[2:].split(": **")[0]
        best = max((k for k in gaps if name.startswith(k)), key=len, default=None)
        out.append("### %s" % name)
        out.append("")
        out.append(gaps[best] if best else "(no explanation in bench/gaps/ yet)")
        out.append("")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--skip", action="append", default=[],
                    help="skip rows of a kind: conc, go, python, tbb, omp, uv, mpi, boost")
    ap.add_argument("--skip-reason", action="append", default=[])
    ap.add_argument("--results", default=None, help="markdown file to write")
    ap.add_argument("--only", default=None, help="regex on workload/impl (debugging)")
    a = ap.parse_args()

    rows = make_rows(a.quick)
    skipped_lines = list(a.skip_reason)
    kept = []
    for r in rows:
        kind = "conc" if r.conc else r.lang
        if kind in a.skip:
            continue
        if a.only and not re.search(a.only, "%s %s" % (r.w, r.impl)):
            continue
        kept.append(r)
    rows = kept
    rounds = a.rounds or (1 if a.quick else 5)
    timeout = 120 if a.quick else 300
    env = dict(os.environ)
    env.update({"GOMAXPROCS": "2", "OMP_NUM_THREADS": "2", "OMP_DYNAMIC": "false"})
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    if os.geteuid() == 0:  # Open MPI refuses root without these
        env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})

    cleanups = []
    for m in PLUGINS:
        mine = [r for r in rows if r.plugin is m]
        if not mine or not hasattr(m, "setup"):
            continue
        try:
            c = m.setup(a.out, env, a.quick)
            if c:
                cleanups.append(c)
        except RuntimeError as e:
            for r in mine:
                r.failed = "setup: %s" % e
            print("bench: FAILED setup of %s: %s" % (m.__name__, e), file=sys.stderr)
    try:
        return run_all(a, rows, rounds, timeout, env, skipped_lines)
    finally:
        for c in reversed(cleanups):
            c()


def run_all(a, rows, rounds, timeout, env, skipped_lines):
    t_start = time.time()
    for rnd in range(rounds):
        order = list(rows)
        random.Random(1000 + rnd).shuffle(order)
        t0 = time.time()
        for i, r in enumerate(order):
            if r.failed or (r.rounds is not None and rnd >= r.rounds):
                continue
            d, err = run_row(r, a.out, env, timeout)
            if d is None:
                r.failed = err
                print("bench: FAILED %s / %s / %s: %s" % (r.w, r.cls, r.impl, err),
                      file=sys.stderr)
            else:
                r.results.append(d)
        print("bench: round %d/%d done in %.0f s" % (rnd + 1, rounds, time.time() - t0),
              file=sys.stderr)

    # futex calls per task: one strace pass
    have_strace = shutil.which("strace") is not None
    if have_strace:
        probe = subprocess.run(["strace", "-f", "--seccomp-bpf", "-c", "-e", "trace=futex",
                                "-o", os.devnull, "true"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if probe.returncode != 0:
            have_strace = False
            skipped_lines.append("futex counts: strace cannot trace here (%s)"
                                 % (probe.stderr.strip().splitlines() or ["?"])[-1])
    else:
        skipped_lines.append("futex counts: strace not installed")
    if have_strace:
        for r in rows:
            if not r.futex or r.failed:
                continue
            if a.quick and not (r.conc or r.impl.startswith("pthread")):
                continue
            n = r.n if a.quick else min(r.n, 10_000 if r.lang == "python" else 100_000)
            v, err = strace_futex(r, a.out, env, timeout, n)
            if v is None:
                r.failed = "under strace: " + err
                print("bench: FAILED %s / %s (strace pass): %s" % (r.w, r.impl, err),
                      file=sys.stderr)
            else:
                r.futex_per_task = v

    # the table
    conc_of = {}
    for r in rows:
        if r.conc:
            conc_of.setdefault(r.key(), r)
    rows.sort(key=lambda r: (ORDER.index(r.w), CLASS_ORDER.index(r.cls), not r.conc))
    head = ("| workload | class | implementation | N | median | min–max | unit | "
            "anchor/conc (>1: conc better) | run by submitter | futex/task | notes |")
    out = [head, "|" + "---|" * 11]
    last_w = None
    for r in rows:
        wl = ("**%s** %s" % (r.w, WORKLOADS[r.w])) if r.w != last_w else ""
        last_w = r.w
        if r.failed:
            out.append("| %s | %s | %s | %s | **FAILED** | | | | | | %s |" % (
                wl, r.cls, r.impl, fmt_n(r.shown_n), r.failed.replace("|", "/")))
            continue
        vals = [float(x["value"]) for x in r.results]
        unit = r.results[0].get("unit", "")
        shares = [float(x["share"]) for x in r.results if "share" in x]
        rt = ratio(r, conc_of.get(r.key()))
        out.append("| %s | %s | %s | %s | %s | %s–%s | %s | %s | %s | %s | %s |" % (
            wl, r.cls, ("**%s**" % r.impl) if r.conc else r.impl, fmt_n(r.shown_n),
            fmt_num(med(vals)), fmt_num(min(vals)), fmt_num(max(vals)), unit,
            "ref" if r.conc else ("%.2f" % rt if rt is not None else "—"),
            ("%.0f %%" % (100 * med(shares))) if shares else "n/a",
            fmt_num(r.futex_per_task) if r.futex_per_task is not None else "—",
            notes_for(r)))
    table = "\n".join(out)
    tl = [] if a.quick else targets(rows)
    failed = [r for r in rows if r.failed]
    elapsed = time.time() - t_start

    print()
    print(table)
    print()
    if skipped_lines:
        for s in skipped_lines:
            print("SKIPPED: " + s)
    if a.quick:
        print("Targets (issues 4, 5, 6, 8, 9): judged on full runs only (quick mode asserts no speed)")
    elif tl:
        print("Targets (issues 4, 5, 6, 8, 9):")
        print("\n".join(tl))
        missing = [ln for ln in explain(tl) if ln.startswith("(no explanation")]
        if missing:
            print("bench: %d target(s) not met have no section in bench/gaps/" % len(missing))
    print("bench: %d rows, %d rounds, %.0f s%s" % (
        len(rows), rounds, elapsed, "; %d FAILED" % len(failed) if failed else ""))

    if a.results:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        mode = "quick (CONC_BENCH_QUICK=1: tiny N, numbers mean nothing)" if a.quick else "full"
        doc = ["# conc benchmark results", "",
               "- Date: %s" % now,
               "- Machine: %s" % machine_line(),
               "- Tools: %s" % tool_versions(),
               "- conc: %s" % conc_revision(),
               "- Mode: %s; %d rounds, interleaved; 2 workers everywhere unless the row says otherwise"
               % (mode, rounds),
               "- Generated by `make bench` (bench/run.sh); how to read it: bench/README.md", ""]
        if skipped_lines:
            doc += ["Skipped: " + s for s in skipped_lines] + [""]
        doc += [table, "", "## Targets (issues 4, 5, 6, 8, 9)", ""] + (tl or ["- (no conc rows)"]) + [""]
        gl = explain(tl)
        if gl:
            doc += ["## Targets not met: the gap, its physical reason, what was tried", "",
                    "From bench/gaps/, written by hand from measurements on this machine; "
                    "this run's figures are in the list above.", ""] + gl
        with open(a.results, "w") as f:
            f.write("\n".join(doc))
        print("bench: wrote %s" % a.results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
